/**
 * `pause` / `resume`: PATCH /config {"pause": true} or {"pause": null} on the first reachable member, leader first. The
 * CLI never writes the DCS here (patronictl's `toggle_pause`); with --wait it polls the DCS until every member that had
 * an API reports the new state, for at most loop_wait + 1 seconds.
 */
import { UserError } from '../config/errors.js';
import type { Dcs } from '../dcs/dcs.js';
import { isPaused, parseIntLenient, type Cluster } from '../model/cluster.js';
import { callMember, describeError, membersLeaderFirst, sleepOf, warning, type ActionIo } from './actions.js';

/** patronictl's default loop_wait when the DCS config has none. */
const DEFAULT_LOOP_WAIT = 10;

export interface PauseRequest {
  readonly paused: boolean;
  readonly wait: boolean;
}

/** Returns false when the member answered with an error status. */
export async function togglePause(dcs: Dcs, io: ActionIo, req: PauseRequest): Promise<boolean> {
  const cluster = await dcs.getCluster();
  if (isPaused(cluster) === req.paused) {
    throw new UserError(`Cluster is ${req.paused ? 'already' : 'not'} paused`);
  }
  const word = req.paused ? 'pause' : 'resume';
  for (const member of membersLeaderFirst(cluster)) {
    let r;
    try {
      r = await callMember(member, 'PATCH', 'config', io, { pause: req.paused ? true : null });
    } catch (e) {
      warning(io, describeError(e));
      warning(io, `Member ${member.name} is not accessible`);
      continue;
    }
    if (r.status === 200) {
      if (req.wait) await waitUntilPauseIsApplied(dcs, io, req.paused, cluster);
      else io.out(`Success: cluster management is ${req.paused ? 'paused' : 'resumed'}`);
      return true;
    }
    io.out(`Failed: ${word} cluster management status code=${r.status}, (${r.body})`);
    return false;
  }
  throw new UserError('Can not find accessible cluster member');
}

async function waitUntilPauseIsApplied(dcs: Dcs, io: ActionIo, paused: boolean, old: Cluster): Promise<void> {
  io.out(`'${paused ? 'pause' : 'resume'}' request sent, waiting until it is recognized by all nodes`);
  const before = new Map(old.members.filter((m) => m.data.apiUrl).map((m) => [m.name, m.version]));
  const loopWait = parseIntLenient(old.config?.data['loop_wait']) ?? DEFAULT_LOOP_WAIT;
  const sleep = sleepOf(io);
  const now = (): number => (io.now ?? (() => new Date()))().getTime();
  const end = now() + (loopWait + 1) * 1000;
  let cluster = old;
  for (let i = 0; i < loopWait + 1 && now() < end; i++) {
    cluster = await dcs.getCluster();
    const waiting = cluster.members.filter((m) => before.has(m.name) && m.data.pause !== paused);
    if (waiting.length === 0) {
      io.progress?.clear();
      io.out(`Success: cluster management is ${paused ? 'paused' : 'resumed'}`);
      return;
    }
    io.progress?.show(
      `Waiting for ${waiting.map((m) => m.name).join(', ')} to report pause: ${paused ? 'true' : 'false'}`,
    );
    await sleep(1000);
  }
  io.progress?.clear();
  // As patronictl: only members whose key changed but still disagree are reported.
  const remaining = cluster.members
    .filter((m) => m.data.pause !== paused && before.has(m.name) && before.get(m.name) !== m.version)
    .map((m) => m.name);
  if (remaining.length > 0) {
    io.out(`${remaining.join(', ')} members didn't recognized pause state after ${loopWait} seconds`);
    return;
  }
  io.out(`Success: cluster management is ${paused ? 'paused' : 'resumed'}`);
}
