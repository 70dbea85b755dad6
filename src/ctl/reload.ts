/** `reload`: POST /reload on each selected member (patronictl's `get_members` selection, table first, confirmation). */
import type { Dcs } from '../dcs/dcs.js';
import { textOf } from '../model/text.js';
import { callMember, describeError, selectMembers, confirmMembersAction, type ActionIo } from './actions.js';
import type { MemberRole } from './read-commands.js';

export interface ReloadRequest {
  readonly clusterName: string;
  readonly members: readonly string[];
  readonly role: MemberRole;
  readonly force: boolean;
}

/** Returns false when any member did not accept the reload. */
export async function reloadMembers(dcs: Dcs, io: ActionIo, req: ReloadRequest): Promise<boolean> {
  const cluster = await dcs.getCluster();
  const members = await selectMembers(
    cluster,
    req.clusterName,
    req.members,
    req.role,
    req.force,
    'reload',
    io,
  );
  await confirmMembersAction(members, req.force, 'reload', io);
  // patronictl 3.0.2 prints Python's None when the config has no loop_wait.
  const loopWait = cluster.config?.data['loop_wait'];
  let ok = true;
  for (const member of members) {
    try {
      const r = await callMember(member, 'POST', 'reload', io);
      if (r.status === 200) io.out(`No changes to apply on member ${member.name}`);
      else if (r.status === 202)
        io.out(
          `Reload request received for member ${member.name} and will be processed within ${loopWait === undefined || loopWait === null ? 'None' : textOf(loopWait)} seconds`,
        );
      else {
        ok = false;
        io.out(`Failed: reload for member ${member.name}, status code=${r.status}, (${r.body})`);
      }
    } catch (e) {
      ok = false;
      io.out(`Failed: reload for member ${member.name}, ${describeError(e)}`);
    }
  }
  return ok;
}
