/** Shared pieces of `decide`: the per-call context, helpers over the snapshot, and actions several phases build. */
import type { Cluster, Member } from '../model/cluster.js';
import { clusterTimeline, syncStateMatches } from '../model/cluster.js';
import type { Lsn } from '../model/lsn.js';
import { tagNoFailover } from '../model/tags.js';
import type { Action, Decision, DemoteMode, FollowTarget, LogLine } from './actions.js';
import type { HaSnapshot, PeerStatus } from './snapshot.js';

/** Thrown inside `decide` when a rule needs peer health that the snapshot does not carry yet. */
export class NeedPeers extends Error {
  constructor() {
    super('peer statuses needed');
  }
}

/** Per-call scratch state: actions that run before the final branch's own actions, and extra log lines. */
export interface Ctx {
  readonly s: HaSnapshot;
  readonly c: Cluster;
  readonly pre: Action[];
  readonly logs: LogLine[];
}

// ---------------------------------------------------------------------------------------------------------------
// helpers over the snapshot

export const done = (
  message: string,
  actions: readonly Action[] = [],
  logs?: readonly LogLine[],
): Decision => (logs === undefined ? { actions, message } : { actions, message, logs });

export function hasLock(ctx: Ctx): boolean {
  return ctx.c.leader?.name === ctx.s.me.name;
}

/**
 * Patroni's `Tags.nofailover`: never promote. It already folds in `failover_priority` (a priority of 0 or less counts
 * only when no `nofailover` tag is given: an explicit `nofailover: false` wins, model/tags.ts), so the priority is
 * not checked again here.
 */
export function iAmNoFailover(s: HaSnapshot): boolean {
  return s.me.tags.nofailover;
}

/** Patroni's `is_standby_cluster`: the dynamic configuration has a `standby_cluster` section in effect. */
export function isStandbyCluster(s: HaSnapshot): boolean {
  return s.config.standby !== undefined;
}

export function isSyncMode(s: HaSnapshot): boolean {
  return s.config.synchronousMode !== 'off';
}

/** `synchronous_mode: quorum` (Patroni 4.0+ quorum commit). */
export function isQuorumMode(s: HaSnapshot): boolean {
  return s.config.synchronousMode === 'quorum';
}

/** Quorum commit is on and `/sync` names a leader (Patroni's `quorum_commit_mode_is_active`). */
export function quorumModeActive(ctx: Ctx): boolean {
  return isQuorumMode(ctx.s) && ctx.c.sync.leader !== undefined;
}

/** The `/sync` key's `quorum` as Patroni reads it: 0 unless a leader is named. */
export function syncQuorum(c: Cluster): number {
  return c.sync.leader !== undefined ? (c.sync.quorum ?? 0) : 0;
}

/** Patroni's `SyncState.members`: the `/sync` leader and its voters (empty when no leader is named). */
export function syncVoters(c: Cluster): readonly string[] {
  return c.sync.leader === undefined ? [] : [c.sync.leader, ...c.sync.members];
}

/** Patroni's `SyncState.matches`: the sync leader or one of the sync standbys. */
export function syncMatches(c: Cluster, name: string): boolean {
  const leader = c.sync.leader?.trim().toLowerCase();
  return (leader !== undefined && leader === name.trim().toLowerCase()) || syncStateMatches(c.sync, name);
}

/** Synchronous mode is on and `/sync` names a leader. */
export function syncModeActive(ctx: Ctx): boolean {
  return isSyncMode(ctx.s) && ctx.c.sync.leader !== undefined;
}

export function peer(ctx: Ctx, name: string): PeerStatus | undefined {
  if (ctx.s.peers === undefined) throw new NeedPeers();
  return ctx.s.peers.get(name);
}

/** Patroni's `failover_limitation() is None`: reachable, may promote, watchdog fine. */
export function peerCanPromote(st: PeerStatus): boolean {
  return st.reachable && !st.nofailover && !st.watchdogFailed;
}

export function isLagging(ctx: Ctx, wal: Lsn): boolean {
  return ctx.c.status.optime - wal > ctx.s.config.maximumLagOnFailover;
}

export function probePeers(s: HaSnapshot, c: Cluster): Decision {
  const seen = new Map<string, string>();
  const add = (name: string, apiUrl: string | undefined): void => {
    if (name !== s.me.name && apiUrl && !seen.has(name)) seen.set(name, apiUrl);
  };
  for (const m of c.members) add(m.name, m.data.apiUrl);
  for (const m of s.lastLockedCluster?.members ?? []) add(m.name, m.data.apiUrl);
  for (const [name, url] of Object.entries(c.failsafe ?? {})) add(name, url);
  return done('probing members', [
    { type: 'ProbePeers', members: [...seen].map(([name, apiUrl]) => ({ name, apiUrl })) },
  ]);
}

/** Members other than us that may promote and have a REST API (the probe set of Patroni's health checks). */
export function promotable(ctx: Ctx, members: readonly Member[]): Member[] {
  return members.filter((m) => m.name !== ctx.s.me.name && !tagNoFailover(m.data.tags) && m.data.apiUrl);
}

/** Python's `{:.0f}`: round half to even. */
export function formatSeconds(x: number): string {
  const f = Math.floor(x);
  const diff = x - f;
  const r = diff > 0.5 || (diff === 0.5 && f % 2 !== 0) ? f + 1 : f;
  return String(Object.is(r, -0) ? 0 : r);
}

export function nodeToFollow(ctx: Ctx): FollowTarget {
  const { c, s } = ctx;
  // ha.py `_get_node_to_follow`: a `nostream` member streams from nobody, it replays WAL from the archive.
  if (s.me.tags.nostream) return { kind: 'none' };
  // A standby cluster's leader, and every member while nobody holds the lock (outside pause), follow the remote.
  if (isStandbyCluster(s)) {
    const leader = c.leader?.name;
    if (leader === s.me.name || ((leader === undefined || leader === '') && !s.config.paused)) {
      return { kind: 'remote' };
    }
  }
  const rf = s.me.tags.replicatefrom;
  let name: string | undefined;
  let connUrl: string | undefined;
  const fromMember = rf && rf !== s.me.name ? c.members.find((m) => m.name === rf) : undefined;
  if (fromMember) {
    name = fromMember.name;
    connUrl = fromMember.data.connUrl;
  } else if (c.leader?.name) {
    name = c.leader.name;
    connUrl = c.leader.member?.data.connUrl;
  }
  if (name === undefined || name === s.me.name) return { kind: 'none' };
  return connUrl === undefined ? { kind: 'member', name } : { kind: 'member', name, connUrl };
}

export function demote(mode: DemoteMode, async: boolean, description = `demote (${mode})`): Action {
  return { type: 'Demote', mode, async, kind: 'demote', description };
}

export function refreshLock(writeStatus: boolean, otherwise: Decision): Action {
  return { type: 'RefreshLock', writeStatus, otherwise };
}

export function startPostgres(
  as: 'replica' | 'primary',
  target: FollowTarget,
  timeout: number | undefined,
  description = 'restarting after failure',
  standbyLeader = false,
): Action {
  return {
    type: 'StartPostgres',
    as,
    target,
    ...(standbyLeader ? { standbyLeader: true as const } : {}),
    ...(timeout === undefined ? {} : { timeout }),
    async: true,
    kind: 'start',
    description,
  };
}

/**
 * Patroni's `is_failover_possible`: some other member could take over now. With `clusterLsn` (a leader's shutdown
 * checkpoint) a member must have reached that position instead of being within `maximum_lag_on_failover`. In quorum
 * commit mode enough of them must be healthy to reach the `/sync` quorum, unless a `failover` key names a candidate
 * that is not excluded (`excludeCandidate`: the named candidate was left out of `members` because it is unhealthy).
 */
export function isFailoverPossible(
  ctx: Ctx,
  members: readonly Member[],
  checkSynchronous = true,
  {
    clusterLsn,
    excludeCandidate = false,
  }: { readonly clusterLsn?: Lsn; readonly excludeCandidate?: boolean } = {},
): boolean {
  const { s, c } = ctx;
  let candidates = promotable(ctx, members);
  if (checkSynchronous && isSyncMode(s)) candidates = candidates.filter((m) => syncMatches(c, m.name));
  if (candidates.length === 0) {
    ctx.logs.push({ level: 'warning', text: 'manual failover: members list is empty' });
    return false;
  }
  const tl = clusterTimeline(c);
  let healthy = 0;
  for (const m of candidates) {
    const st = peer(ctx, m.name);
    if (st === undefined || !peerCanPromote(st)) continue;
    if (clusterLsn !== undefined && clusterLsn > 0n) {
      if (st.walPosition < clusterLsn) {
        ctx.logs.push({ level: 'info', text: `Member ${m.name} exceeds maximum replication lag` });
        continue;
      }
    } else if (isLagging(ctx, st.walPosition)) continue;
    if (s.config.checkTimeline && (!st.timeline || st.timeline < tl)) continue;
    healthy += 1;
  }
  const checkQuorum = quorumModeActive(ctx) && !(c.failover?.member && !excludeCandidate);
  if (checkQuorum && healthy - 1 < syncQuorum(c)) {
    ctx.logs.push({ level: 'info', text: `Quorum requirement ${syncQuorum(c)} can not be reached` });
    return false;
  }
  return healthy > 0;
}
