/**
 * `reinit CLUSTER [MEMBERS...]`: POST /reinitialize on replicas (the leader cannot be reinitialized). A reinit
 * already in progress can be cancelled on confirmation; --wait polls GET /patroni every 2 s until the member no
 * longer reports `creating replica`.
 */
import type { Dcs } from '../dcs/dcs.js';
import type { Member } from '../model/cluster.js';
import {
  callMember,
  checkResponse,
  describeError,
  selectMembers,
  confirmMembersAction,
  sleepOf,
  type ActionIo,
} from './actions.js';

export interface ReinitRequest {
  readonly clusterName: string;
  readonly members: readonly string[];
  readonly force: boolean;
  readonly wait: boolean;
  /** 4.1+: clone from the leader rather than any member (sent only when given). */
  readonly fromLeader: boolean;
  /** Upper bound for --wait, seconds (patronictl has none). */
  readonly waitTimeoutSeconds?: number;
}

/** Cloning a large database takes time; the POST itself returns as soon as the job started. */
const REINIT_TIMEOUT_MS = 60_000;

export async function reinit(dcs: Dcs, io: ActionIo, req: ReinitRequest): Promise<boolean> {
  const cluster = await dcs.getCluster();
  const members = await selectMembers(
    cluster,
    req.clusterName,
    req.members,
    'replica',
    req.force,
    'reinitialize',
    io,
  );
  await confirmMembersAction(members, req.force, 'reinitialize', io);

  let ok = true;
  const waitOn: Member[] = [];
  for (const member of members) {
    // patronictl always sends the flag: {"force": false} without --force (oclif leaves an absent flag undefined).
    const body: Record<string, boolean> = { force: req.force === true };
    if (req.fromLeader) body['from_leader'] = true;
    let started = false;
    for (;;) {
      let r;
      try {
        r = await callMember(member, 'POST', 'reinitialize', io, body, REINIT_TIMEOUT_MS);
      } catch (e) {
        io.out(`Failed: reinitialize for member ${member.name}, ${describeError(e)}`);
        break;
      }
      started = checkResponse(r, member.name, 'reinitialize', io);
      if (
        !started &&
        r.body.endsWith(' already in progress') &&
        !req.force &&
        (await io.prompts.confirm('Do you want to cancel it and reinitialize anyway?', '--force'))
      ) {
        body['force'] = true;
        continue;
      }
      break;
    }
    if (!started) ok = false;
    if (started && req.wait) waitOn.push(member);
  }

  const sleep = sleepOf(io);
  const deadline = Date.now() + (req.waitTimeoutSeconds ?? 24 * 3600) * 1000;
  let shown = '';
  while (waitOn.length > 0) {
    const names = waitOn.map((m) => m.name).join(', ');
    if (names !== shown) {
      io.out(`Waiting for reinitialize to complete on: ${names}`);
      shown = names;
    }
    io.progress?.show(`Waiting for reinitialize to complete on ${names}`);
    await sleep(2000);
    for (const member of [...waitOn]) {
      let state: string | undefined;
      try {
        const r = await callMember(member, 'GET', 'patroni', io);
        state = (JSON.parse(r.body) as { state?: string }).state;
      } catch {
        state = 'creating replica'; // not answering yet: still working
      }
      if (state !== 'creating replica') {
        waitOn.splice(waitOn.indexOf(member), 1);
        // Output erases the progress line and draws it again: after the last member, it is gone for good.
        if (waitOn.length === 0) io.progress?.clear();
        io.out(`Reinitialize is completed on: ${member.name}`);
      }
    }
    if (waitOn.length > 0 && Date.now() > deadline) {
      io.progress?.clear();
      io.out(`Gave up waiting for reinitialize on: ${waitOn.map((m) => m.name).join(', ')}`);
      return false;
    }
  }
  return ok;
}
