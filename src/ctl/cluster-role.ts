/**
 * `demote-cluster` and `promote-cluster` (patronictl 4.1.4's `change_cluster_role`): check the leader, print the
 * topology, confirm, PATCH /config on the leader with `standby_cluster` (the remote primary to follow) or `null`
 * (run standalone), then poll the DCS every second, printing one state line each time, until the leader runs in
 * the target role (and, for a demotion, the former leader runs again), and print the topology once more. Like
 * patronictl, the wait has no upper bound: Ctrl-C stops it (the request has been made either way).
 */
import { UserError } from '../config/errors.js';
import type { Dcs } from '../dcs/dcs.js';
import type { Cluster } from '../model/cluster.js';
import { pyReprValue, pyStr } from '../model/python.js';
import { callMember, describeError, membersTable, sleepOf, type ActionIo } from './actions.js';
import { localTimestamp } from './watch.js';

/** `demote-cluster`'s options: the `standby_cluster` section it writes, keys in patronictl's order. */
export interface StandbyOptions {
  readonly host?: string;
  readonly port?: number;
  readonly restoreCommand?: string;
  readonly primarySlotName?: string;
}

/** patronictl's `demote_cluster` checks: at least one way to reach the remote primary; falsy values dropped. */
export function standbyClusterSection(o: StandbyOptions): Record<string, string | number> {
  if (!o.host && !o.port && !o.restoreCommand) {
    throw new UserError('At least --host, --port or --restore-command should be specified');
  }
  const section: Record<string, string | number> = {};
  if (o.host) section['host'] = o.host;
  if (o.port) section['port'] = o.port;
  if (o.primarySlotName) section['primary_slot_name'] = o.primarySlotName;
  if (o.restoreCommand) section['restore_command'] = o.restoreCommand;
  return section;
}

export interface ClusterRoleRequest {
  readonly clusterName: string;
  readonly force: boolean;
  /** The `standby_cluster` section to demote with; undefined promotes. */
  readonly standby?: Record<string, string | number>;
}

/** What the wait loop looks at, as patronictl reads it from the member keys (absent values are Python's None). */
interface RoleState {
  readonly unlocked: boolean;
  readonly leaderName?: string;
  readonly leaderRole: unknown;
  readonly leaderState: unknown;
  readonly oldLeaderState: unknown;
}

function roleState(cluster: Cluster, oldLeader: string): RoleState {
  const leaderName = cluster.leader?.name || undefined;
  const raw = leaderName ? cluster.leader?.member?.data.raw : undefined;
  return {
    unlocked: !leaderName,
    leaderName,
    leaderRole: raw?.['role'],
    leaderState: raw?.['state'],
    oldLeaderState: cluster.members.find((m) => m.name === oldLeader)?.data.raw['state'],
  };
}

/** One poll: done, or patronictl's state line (without its timestamp). */
export function roleProgress(
  s: RoleState,
  demote: boolean,
  oldLeader: string,
): { readonly done: boolean; readonly line: string } {
  const target = demote ? 'standby_leader' : 'primary';
  const done =
    !s.unlocked &&
    s.leaderRole === target &&
    s.leaderState === 'running' &&
    (!demote || s.oldLeaderState === 'running');
  const parts = [
    `cluster is unlocked: ${pyStr(s.unlocked)}`,
    `leader role: ${pyStr(s.leaderRole)}`,
    `leader state: ${pyStr(s.leaderState)}`,
  ];
  // patronictl tests the old state's truthiness: an empty string is left out too.
  if (demote && s.leaderName && s.leaderName !== oldLeader && s.oldLeaderState) {
    parts.push(`previous leader state: ${pyReprValue(s.oldLeaderState)}`);
  }
  return { done, line: parts.join(', ') };
}

/** Demotes (with `req.standby`) or promotes the cluster. Errors are thrown as patronictl raises them. */
export async function changeClusterRole(dcs: Dcs, io: ActionIo, req: ClusterRoleRequest): Promise<boolean> {
  const demote = req.standby !== undefined && Object.keys(req.standby).length > 0;
  const action = demote ? 'demot' : 'promot';
  const target = demote ? 'standby_leader' : 'primary';
  const name = req.clusterName;

  let cluster = await dcs.getCluster();
  const leaderName = cluster.leader?.name || undefined;
  if (!leaderName) throw new UserError(`Cluster has no leader, ${action}ion is not possible`);
  if (cluster.leader?.member?.data.raw['role'] === target) {
    throw new UserError('Cluster is already in the required state');
  }

  io.out('Current cluster topology');
  io.out(membersTable(cluster, name));
  if (!req.force) {
    const ok = await io.prompts.confirm(`Are you sure you want to ${action}e ${name} cluster?`, '--force');
    if (!ok) throw new UserError(`Aborted cluster ${action}ion`);
  }

  const failed = `Failed to ${action}e ${name} cluster: `;
  // patronictl raises the status error inside its own try, so that message carries the prefix twice.
  let r;
  try {
    const leader = cluster.leader?.member;
    if (!leader) throw new Error(`the leader ${leaderName} has no member key`);
    r = await callMember(leader, 'PATCH', 'config', io, { standby_cluster: demote ? req.standby : null });
  } catch (e) {
    throw new UserError(failed + describeError(e));
  }
  if (r.status !== 200) {
    throw new UserError(`${failed}${failed}/config PATCH status code=${r.status}, (${r.body})`);
  }

  const sleep = sleepOf(io);
  const clock = (): Date => (io.now ?? (() => new Date()))();
  const waitingFor = demote
    ? `Waiting for ${name} to run as a standby cluster`
    : `Waiting for ${name} to run standalone`;
  for (;;) {
    const started = clock().getTime();
    cluster = await dcs.getCluster();
    const p = roleProgress(roleState(cluster, leaderName), demote, leaderName);
    if (p.done) {
      io.progress?.clear();
      io.out(`${localTimestamp(clock())} cluster is successfully ${action}ed`);
      break;
    }
    io.out(`${localTimestamp(clock())} ${p.line}`);
    io.progress?.show(waitingFor);
    await sleep(Math.max(0, 1000 - (clock().getTime() - started)));
  }
  io.out(membersTable(cluster, name));
  return true;
}
