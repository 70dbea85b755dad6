/**
 * `switchover` and `failover` (patronictl 3.0.2's `_do_failover_or_switchover`): validate leader and candidate
 * against the DCS, ask what is missing, POST /switchover or /failover to the leader's API (the candidate's when
 * there is no leader), and fall back to writing the `failover` key only when the REST call raises.
 */
import type { RestResponse } from '../api/client.js';
import { UserError } from '../config/errors.js';
import type { Dcs } from '../dcs/dcs.js';
import { isPaused, type Cluster, type Member } from '../model/cluster.js';
import { pyJson } from '../model/pyjson.js';
import { pyBool } from '../model/python.js';
import {
  callMember,
  ctlTimestamp,
  describeError,
  isNoFailover,
  membersTable,
  nextHourExample,
  parseScheduled,
  warning,
  type ActionIo,
  type Scheduled,
} from './actions.js';

export type FailoverAction = 'switchover' | 'failover';

export interface SwitchoverRequest {
  readonly action: FailoverAction;
  readonly clusterName: string;
  readonly leader?: string;
  readonly candidate?: string;
  readonly scheduled?: string;
  readonly force: boolean;
}

/** The server polls the DCS for up to 2*max(10, loop_wait) s before answering; leave room for that. */
const SWITCHOVER_TIMEOUT_MS = 10 * 60_000;

function isStandbyCluster(cluster: Cluster): boolean {
  const sc = cluster.config?.data['standby_cluster'];
  if (typeof sc !== 'object' || sc === null) return false;
  const s = sc as Record<string, unknown>;
  return ['host', 'port', 'restore_command'].some((k) => pyBool(s[k]));
}

const title = (action: FailoverAction): string => action.charAt(0).toUpperCase() + action.slice(1);

/** Python's `str(list)` of names: `['pg2', 'pg3']`. */
const pyList = (names: readonly string[]): string => `[${names.map((n) => `'${n}'`).join(', ')}]`;

/** POST /switchover (or /failover); on a terminal, an immediate one shows that it waits for the member's answer. */
async function postAction(
  target: Member,
  action: FailoverAction,
  body: { readonly candidate: string | null },
  io: ActionIo,
  immediate: boolean,
): Promise<RestResponse> {
  if (immediate) {
    const to = body.candidate ? ` to ${body.candidate}` : '';
    io.progress?.show(`Waiting for ${target.name} to ${action}${to}`);
  }
  try {
    const r = await callMember(target, 'POST', action, io, body, SWITCHOVER_TIMEOUT_MS);
    // A member that only knows /failover (patronictl's fallback).
    if (
      r.status === 501 &&
      action === 'switchover' &&
      r.body.includes('Server does not support this operation')
    ) {
      return await callMember(target, 'POST', 'failover', io, body, SWITCHOVER_TIMEOUT_MS);
    }
    return r;
  } finally {
    io.progress?.clear();
  }
}

/** Returns false when the member refused the request. */
export async function switchover(dcs: Dcs, io: ActionIo, req: SwitchoverRequest): Promise<boolean> {
  const { action, clusterName, force } = req;
  let cluster = await dcs.getCluster();
  io.out('Current cluster topology');
  io.out(membersTable(cluster, clusterName));

  const lockHolder = cluster.leader?.name || undefined;
  if (action === 'switchover' && !lockHolder) throw new UserError('This cluster has no leader');

  let leader = req.leader;
  if (leader === undefined) {
    if (force || action === 'failover') {
      leader = lockHolder;
    } else {
      const current = cluster.leader?.member?.name ?? lockHolder ?? '';
      leader = await io.prompts.input(`${isStandbyCluster(cluster) ? 'Standby Leader' : 'Primary'}`, {
        default: current,
        flag: '--leader',
      });
    }
  }
  if (
    leader !== undefined &&
    cluster.leader &&
    (cluster.leader.member?.name ?? cluster.leader.name) !== leader
  ) {
    throw new UserError(`Member ${leader} is not the leader of cluster ${clusterName}`);
  }

  const candidateNames = cluster.members
    .filter((m) => m.name !== leader && !isNoFailover(m))
    .map((m) => m.name)
    .sort();
  if (candidateNames.length === 0) throw new UserError(`No candidates found to ${action} to`);

  let candidate = req.candidate;
  if (candidate === undefined && !force) {
    candidate = await io.prompts.select(
      `Candidate ${pyList(candidateNames)}`,
      [
        ...(action === 'switchover' ? [{ name: '(any healthy member)', value: '' }] : []),
        ...candidateNames.map((n) => ({ name: n, value: n })),
      ],
      { default: '', flag: '--candidate' },
    );
  }
  if (action === 'failover' && !candidate) {
    throw new UserError('Failover could be performed only to a specific candidate');
  }
  if (candidate === leader && candidate !== undefined) {
    throw new UserError(`${title(action)} target and source are the same.`);
  }
  if (candidate && !candidateNames.includes(candidate)) {
    throw new UserError(`Member ${candidate} does not exist in cluster ${clusterName}`);
  }

  let scheduledAt: Scheduled | undefined;
  if (action === 'switchover') {
    let scheduled = req.scheduled;
    if (scheduled === undefined && !force) {
      scheduled = await io.prompts.input(
        `When should the switchover take place (e.g. ${nextHourExample(io.now?.())} ) `,
        { default: 'now', flag: '--scheduled' },
      );
    }
    scheduledAt = parseScheduled(scheduled);
    if (scheduledAt && isPaused(cluster))
      throw new UserError("Can't schedule switchover in the paused state");
  }

  const body = {
    leader: leader ?? null,
    candidate: candidate || null,
    scheduled_at: scheduledAt?.iso ?? null,
  };

  if (!force) {
    const demote = leader ? `, demoting current leader ${leader}` : '';
    if (scheduledAt) {
      const ok = await io.prompts.confirm(
        `Are you sure you want to schedule ${action} of cluster ${clusterName} at ${scheduledAt.iso}${demote}?`,
        '--force',
      );
      if (!ok) throw new UserError(`Aborting scheduled ${action}`);
    } else {
      const ok = await io.prompts.confirm(
        `Are you sure you want to ${action} cluster ${clusterName}${demote}?`,
        '--force',
      );
      if (!ok) throw new UserError(`Aborting ${action}`);
    }
  }

  const target: Member | undefined =
    cluster.leader?.member ?? cluster.members.find((m) => m.name === candidate);
  try {
    if (!target?.data.apiUrl) throw new Error(`no REST API known for ${target?.name ?? 'the target member'}`);
    const r = await postAction(target, action, body, io, !scheduledAt);
    if (r.status !== 200 && r.status !== 202) {
      io.out(`${title(action)} failed, details: ${r.status}, ${r.body}`);
      return false;
    }
    cluster = await dcs.getCluster();
    io.out(`${ctlTimestamp(io.now?.())} ${r.body}`);
  } catch (e) {
    warning(io, describeError(e));
    warning(io, 'Failing over to DCS');
    io.out(`${ctlTimestamp(io.now?.())} Could not ${action} using Patroni api, falling back to DCS`);
    const value: Record<string, string> = {};
    if (leader) value['leader'] = leader;
    if (candidate) value['member'] = candidate;
    if (scheduledAt) value['scheduled_at'] = scheduledAt.iso;
    // Compare-and-set against the key as read when the command started: never overwrite a concurrent request.
    if (!(await dcs.replaceFailoverValue(pyJson(value, true), cluster.failover?.version)))
      throw new UserError(
        `the failover key changed while this ${action} was prepared; run the command again`,
      );
  }
  io.out(membersTable(cluster, clusterName));
  return true;
}
