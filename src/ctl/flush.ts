/**
 * `flush CLUSTER [MEMBERS...] restart|switchover`: discard scheduled restarts (DELETE /restart per member) or the
 * scheduled switchover (DELETE /switchover, leader first; when no member answers, clear the key in the DCS with CAS).
 */
import type { Dcs } from '../dcs/dcs.js';
import type { RestResponse } from '../api/client.js';
import {
  callMember,
  checkResponse,
  ctlTimestamp,
  describeError,
  membersLeaderFirst,
  selectMembers,
  confirmMembersAction,
  warning,
  type ActionIo,
} from './actions.js';
import type { MemberRole } from './read-commands.js';

export interface FlushRequest {
  readonly clusterName: string;
  readonly members: readonly string[];
  readonly target: 'restart' | 'switchover';
  readonly role: MemberRole;
  readonly force: boolean;
}

export async function flush(dcs: Dcs, io: ActionIo, req: FlushRequest): Promise<boolean> {
  const cluster = await dcs.getCluster();
  if (req.target === 'restart') {
    const members = await selectMembers(
      cluster,
      req.clusterName,
      req.members,
      req.role,
      req.force,
      'flush',
      io,
    );
    await confirmMembersAction(members, req.force, 'flush', io);
    let ok = true;
    for (const member of members) {
      if (member.data.scheduledRestart) {
        try {
          const r = await callMember(member, 'DELETE', 'restart', io);
          if (!checkResponse(r, member.name, 'flush scheduled restart', io)) ok = false;
        } catch (e) {
          ok = false;
          io.out(`Failed: flush scheduled restart for member ${member.name}, ${describeError(e)}`);
        }
      } else {
        io.out(`No scheduled restart for member ${member.name}`);
      }
    }
    return ok;
  }

  const failover = cluster.failover;
  if (!failover?.scheduledAt) {
    io.out('No pending scheduled switchover');
    return true;
  }
  for (const member of membersLeaderFirst(cluster)) {
    let r: RestResponse | undefined;
    try {
      r = await callMember(member, 'DELETE', 'switchover', io);
      if (r.status === 200 || r.status === 404) {
        io.out(`${r.status === 200 ? 'Success' : 'Failed'}: ${r.body}`);
        return r.status === 200;
      }
    } catch (e) {
      warning(io, describeError(e));
      warning(io, `Member ${member.name} is not accessible`);
    }
    if (r) io.out(`Failed: member=${member.name}, status_code=${r.status}, (${r.body})`);
  }
  warning(io, 'Failing over to DCS');
  io.out(`${ctlTimestamp(io.now?.())} Could not find any accessible member of cluster ${req.clusterName}`);
  return dcs.setFailoverValue('{}', failover.version);
}
