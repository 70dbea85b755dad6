/**
 * The HA core's decisions about stopping a member, pure (the loop, src/ha/loop-demote.ts and src/agent/shutdown.ts do
 * the I/O), after Patroni 4.1.4's `Ha.shutdown`, the `on_shutdown` of `Ha.demote` and `Ha.while_not_sync_standby`:
 *
 * - a leader stopping cleanly (agent shutdown, graceful demotion for a switchover) gives its lock away before the
 *   postmaster has exited only when a member that may promote has already received WAL up to the shutdown
 *   checkpoint (`is_failover_possible(cluster_lsn=checkpoint)`); otherwise the lock goes once PostgreSQL is down;
 * - before a graceful demotion stops PostgreSQL, the leader waits (at most twice `loop_wait`) until a member that may
 *   take over streams from it: PostgreSQL delivers the shutdown checkpoint only to WAL senders connected when the stop
 *   begins, so a successor whose stream is reconnecting (after a restart of the primary) would be promoted without it,
 *   fork its timeline before it and leave this node in need of pg_rewind (Patroni 4.1.4 has no such wait
 *   and leaves it to timing);
 * - a synchronous standby about to stop first asks the leader, through its member key (`nosync`), to take it out of
 *   `/sync` and synchronous_standby_names, and waits for that at most twice `loop_wait`, polling every 2 s.
 */
import type { Cluster } from '../model/cluster.js';
import { syncStateMatches } from '../model/cluster.js';
import type { Lsn } from '../model/lsn.js';
import type { LogLine } from './actions.js';
import { isFailoverPossible, isSyncMode, promotable, syncMatches } from './decide-helpers.js';
import type { HaSnapshot } from './snapshot.js';

/** Patroni's `time.sleep(1)` in `on_shutdown`: time for the replicas to receive the shutdown checkpoint. */
export const SHUTDOWN_CATCH_UP_MS = 1_000;

/** `polling_loop(..., interval=2)` of `while_not_sync_standby`. */
export const LEAVE_SYNC_POLL_MS = 2_000;

/** `polling_loop(timeout=loop_wait * 2)`: the leader notices the tag within one cycle; wait for two. */
export function leaveSyncTimeoutMs(loopWait: number): number {
  return loopWait * 2 * 1000;
}

export interface EarlyRelease {
  /** Give the lock away now, while the postmaster still runs (it waits for its WAL senders or its archiver). */
  readonly release: boolean;
  readonly logs: readonly LogLine[];
}

/**
 * `on_shutdown(checkpoint_location, prev_location)`: PostgreSQL's control file says `shut down` (the shutdown
 * checkpoint at `checkpoint` is written). `s.peers` holds the other members' answers to GET /patroni, fetched after
 * the one-second pause. A member that may promote, healthy, on the cluster's timeline and with a WAL position at or
 * past the checkpoint makes the early release safe; a member behind it would fork its timeline before our shutdown
 * checkpoint and leave this node in need of pg_rewind.
 */
export function releaseAtShutdownCheckpoint(s: HaSnapshot, c: Cluster, checkpoint: Lsn): EarlyRelease {
  const ctx = { s, c, pre: [], logs: [] as LogLine[] };
  const release = isFailoverPossible(ctx, c.members, true, { clusterLsn: checkpoint });
  return { release, logs: ctx.logs };
}

/** Patroni's `is_sync_standby`: `/sync` belongs to the current leader and names `me`. */
export function isSyncStandby(c: Cluster | undefined, me: string): boolean {
  const leader = c?.leader?.name;
  if (c === undefined || leader === undefined || leader === '') return false;
  const syncLeader = c.sync.leader;
  if (syncLeader === undefined || syncLeader.toLowerCase() !== leader.toLowerCase()) return false;
  return syncStateMatches(c.sync, me);
}

/**
 * `while_not_sync_standby`'s guard: the leader, a node outside synchronous mode and a node tagged `nosync` stop at
 * once; any other node publishes `nosync` and waits until it is no synchronous standby (or the DCS fails, or the
 * wait is over) before it stops.
 */
export function mustLeaveSyncFirst(o: {
  readonly holdsLock: boolean;
  readonly synchronousMode: boolean;
  readonly nosync: boolean;
}): boolean {
  return !o.holdsLock && o.synchronousMode && !o.nosync;
}

/** How often a demoting leader looks at pg_stat_replication for its successor's stream. */
export const SUCCESSOR_STREAM_POLL_MS = 500;

/**
 * Twice `loop_wait` (as the synchronous standby's wait), but at least one walreceiver reconnect
 * (`wal_retrieve_retry_interval`) and a loop: a successor whose stream broke just before (the primary restarted)
 * only tries again after that interval.
 */
export function successorStreamTimeoutMs(loopWait: number, walRetrieveRetryIntervalMs: number): number {
  return Math.max(loopWait * 2 * 1000, walRetrieveRetryIntervalMs + loopWait * 1000);
}

/**
 * Who may take over after our graceful demotion: the failover key's candidate when it names one, else every member
 * that may promote (in synchronous mode those in `/sync`), as the leader race will pick among them.
 */
export function demotionSuccessors(s: HaSnapshot, c: Cluster): string[] {
  const candidate = c.failover?.member;
  if (candidate !== undefined && candidate !== '' && candidate !== s.me.name) return [candidate];
  const ctx = { s, c, pre: [], logs: [] as LogLine[] };
  const members = promotable(ctx, c.members);
  return (isSyncMode(s) ? members.filter((m) => syncMatches(c, m.name)) : members).map((m) => m.name);
}

/** One of `successors` is among the `streaming` WAL senders' application names (member names, any case). */
export function successorStreaming(successors: readonly string[], streaming: readonly string[]): boolean {
  const live = new Set(streaming.map((n) => n.toLowerCase()));
  return successors.some((n) => live.has(n.toLowerCase()));
}
