/**
 * The typed output of one HA decision. `decide()` returns a `Decision`; the loop executes its actions in order.
 *
 * Execution contract (loop side):
 * - Actions run in array order.
 * - A *guard* action (`AcquireLock`, `RefreshLock`, `RaceInitialize`, `WriteSyncState`, `WatchdogActivate`,
 *   `FailsafeCheck`) reports
 *   success or a lost compare-and-set (or a watchdog that could not be activated). When it fails, the loop drops the remaining actions and executes the guard's `otherwise`
 *   decision instead; the cycle's message becomes `otherwise.message`.
 * - `ProbePeers` is always the only action: the loop probes the named members (GET /patroni, 2 s timeout, no
 *   retries, in parallel) and calls `decide()` again in the same cycle with `peers` filled in. Its message is not
 *   logged.
 * - An action with `async: true` is a long action: the loop starts it off the heartbeat path, records it as
 *   `pendingAsync` (`description` is Patroni's name for it) and continues; later cycles see it in the snapshot.
 * - A DCS error thrown by any action aborts the rest; the loop decides again with `dcsReachable: false`.
 * - `UpdateMemory` patches the state the loop carries between cycles (`HaSnapshot.memory`).
 * - The loop publishes the member key after every cycle whose DCS access succeeded (Patroni's `touch_member`); that
 *   is not an action.
 */
import type { AsyncKind, HaMemory } from './snapshot.js';

export interface Decision {
  readonly actions: readonly Action[];
  /** The one line Patroni logs for this cycle, without the `PAUSE: ` prefix (see `cycleLogLine`). */
  readonly message: string;
  /** Extra lines Patroni logs on the way (warnings and infos), in order. */
  readonly logs?: readonly LogLine[];
}

export interface LogLine {
  readonly level: 'info' | 'warning' | 'error';
  readonly text: string;
}

/** Where a replica streams from. */
export type FollowTarget =
  /** A known member (the leader, or the member named by our `replicatefrom` tag). */
  | { readonly kind: 'member'; readonly name: string; readonly connUrl?: string }
  /** Re-read the cluster and follow whoever holds the lock then (after losing a race). */
  | { readonly kind: 'lock-holder' }
  /** Nobody: run as a replica without primary_conninfo. */
  | { readonly kind: 'none' }
  /**
   * A standby cluster's remote primary (`standby_cluster` host/port, its slot and recovery settings), or its archive
   * alone when it names no host or port (Patroni's `get_remote_member`).
   */
  | { readonly kind: 'remote' };

/**
 * `demote-cluster`: a primary whose cluster became a standby cluster stops (fast) and starts again following the remote
 * primary (Patroni's `demote('demote-cluster')`): as the standby leader when it kept the lock, as a replica when it
 * gave the lock at the shutdown checkpoint to a member that had received it (not with archiving on).
 */
export type DemoteMode = 'graceful' | 'immediate' | 'immediate-nolock' | 'offline' | 'demote-cluster';

/** Create the leader key if absent (create-if-absent with our session/lease). Guard. */
export interface AcquireLock {
  readonly type: 'AcquireLock';
  readonly otherwise: Decision;
}

/** Refresh our leader key; with `writeStatus` also write `status` (optime, slots) and keep the watchdog alive. Guard. */
export interface RefreshLock {
  readonly type: 'RefreshLock';
  readonly writeStatus: boolean;
  readonly otherwise: Decision;
}

/**
 * Delete our leader key. `voluntarily` is Patroni's `release_leader_key_voluntarily` (also re-publishes the member
 * key); otherwise a plain delete (`_delete_leader`).
 */
export interface ReleaseLock {
  readonly type: 'ReleaseLock';
  readonly voluntarily: boolean;
}

/**
 * A start as primary failed while we held the lock (ha.py `post_recover`): the local role becomes `demoted` and the
 * on_role_change callback fires, before the lock is released.
 */
export interface MarkDemoted {
  readonly type: 'MarkDemoted';
}
/** `pg_ctl promote` (after the pre_promote script, then the on_role_change callback). */
export interface Promote {
  readonly type: 'Promote';
  readonly async: true;
  readonly kind: 'promote';
  readonly description: string;
}

/**
 * Stop a primary and bring it back as a replica (ha.py `demote`). After the stop the loop re-reads the cluster (except
 * in `offline` mode) and starts PostgreSQL following the lock holder.
 */
export interface Demote {
  readonly type: 'Demote';
  readonly mode: DemoteMode;
  readonly async: boolean;
  readonly kind: 'demote';
  readonly description: string;
}

/** Make primary_conninfo point at `target` (reload, or an async restart when a restart is needed). */
export interface FollowLeader {
  readonly type: 'FollowLeader';
  readonly target: FollowTarget;
  /** We hold the lock of a standby cluster: the role becomes `standby_leader` (on_role_change fires). */
  readonly standbyLeader?: true;
}

/** Start the stopped PostgreSQL (after a crash): as a replica of `target`, or read-only with no upstream. */
export interface StartPostgres {
  readonly type: 'StartPostgres';
  readonly as: 'replica' | 'primary';
  readonly target: FollowTarget;
  /** Start as the standby leader of a standby cluster (role `standby_leader`). */
  readonly standbyLeader?: true;
  /** Seconds to wait for the start; undefined: do not wait. */
  readonly timeout?: number;
  readonly async: true;
  readonly kind: 'start';
  readonly description: string;
}

export interface StopPostgres {
  readonly type: 'StopPostgres';
  readonly mode: 'fast' | 'immediate';
}

/** Single-user-mode crash recovery so the data directory is shut down cleanly before a restart. */
export interface CrashRecovery {
  readonly type: 'CrashRecovery';
  readonly async: true;
  readonly kind: 'crash_recovery';
  readonly description: string;
}

/** Cancel the running long action. */
export interface CancelAsync {
  readonly type: 'CancelAsync';
  readonly kind: AsyncKind;
}

export interface ProbePeers {
  readonly type: 'ProbePeers';
  readonly members: readonly { readonly name: string; readonly apiUrl: string }[];
}

/** Write `{}` to the `failover` key: CAS on `version` when given, plain write otherwise. */
export interface ClearFailoverKey {
  readonly type: 'ClearFailoverKey';
  readonly version?: string;
}

/** Rewrite the `failover` key as `{"member": candidate, "scheduled_at": ...}` (CAS), used in pause after a lock win. */
export interface RewriteFailoverKey {
  readonly type: 'RewriteFailoverKey';
  readonly candidate: string;
  readonly scheduledAt?: string;
  readonly version: string;
}

/** Bring the `history` key up to date with the local timeline history (`update_cluster_history`). */
export interface WriteHistory {
  readonly type: 'WriteHistory';
}

/**
 * Maintain `synchronous_standby_names` and `/sync` (ha.py `process_sync_replication`); done by the loop's sync planner.
 */
export interface ProcessSyncReplication {
  readonly type: 'ProcessSyncReplication';
}

/**
 * CAS-write `/sync` = `{leader, sync_standby}` on `version`, or create it if absent when `version` is undefined
 * (before promoting in synchronous mode). Guard.
 */
export interface WriteSyncState {
  readonly type: 'WriteSyncState';
  readonly leader: string;
  readonly syncStandby: readonly string[];
  readonly version?: string;
  readonly otherwise: Decision;
}

export interface SetSynchronousStandbyNames {
  readonly type: 'SetSynchronousStandbyNames';
  readonly names: readonly string[];
  /** Quorum commit: `ANY num (names)` (`*` for no names and num >= 1; nothing for neither). */
  readonly num?: number;
}

/** The initialize race: create `initialize` = `""` if absent. Guard. */
export interface RaceInitialize {
  readonly type: 'RaceInitialize';
  readonly otherwise: Decision;
}

/** Write our system identifier to `initialize` (create when `createNew`, else overwrite). Result ignored. */
export interface WriteInitialize {
  readonly type: 'WriteInitialize';
  readonly createNew: boolean;
  readonly sysid: string;
}

/** Remove `initialize`, stop PostgreSQL, move the data directory aside and exit: a failed bootstrap (fatal). */
export interface CancelInitialization {
  readonly type: 'CancelInitialization';
}

/** Write our dynamic configuration to the `config` key (missing/empty config, or after bootstrap). */
export interface WriteConfig {
  readonly type: 'WriteConfig';
}

/** Plain put of the leader key (after bootstrap). */
export interface TakeLeader {
  readonly type: 'TakeLeader';
}

/**
 * initdb or the custom `bootstrap.method`, then start PostgreSQL. `standbyLeader`: a new standby cluster, cloned
 * from its remote primary with `standby_cluster.create_replica_methods` and started following it (Patroni's
 * `bootstrap_standby_leader`); post_bootstrap does not run.
 */
export interface Bootstrap {
  readonly type: 'Bootstrap';
  readonly standbyLeader?: true;
  readonly async: true;
  readonly kind: 'bootstrap';
  readonly description: string;
}

/** Run `bootstrap.post_bootstrap` and create the configured users. */
export interface PostBootstrap {
  readonly type: 'PostBootstrap';
  readonly async: true;
  readonly kind: 'post_bootstrap';
  readonly description: string;
}

/** Create a replica via `create_replica_methods` from `member` (undefined: a method that needs no leader). */
export interface CloneFrom {
  readonly type: 'CloneFrom';
  readonly member?: string;
  readonly async: true;
  readonly kind: 'clone';
  readonly description: string;
}

/**
 * Run pg_rewind against the leader `member` (ha.py `_handle_rewind_or_reinitialize`); PostgreSQL stays stopped, the
 * next cycle starts it.
 */
/** The name a standby cluster's remote primary goes by (Patroni's `RemoteMember`, `remote_member:<uuid>` there). */
export const REMOTE_MEMBER = 'remote_member';

export interface Rewind {
  readonly type: 'Rewind';
  readonly member: string;
  /** A standby cluster: rewind from the remote primary of `standby_cluster` (`member` is `REMOTE_MEMBER`). */
  readonly remote?: true;
  readonly async: true;
  readonly kind: 'rewind';
  readonly description: string;
}

/**
 * Stop immediately, empty the data directory and clone anew from `member` (diverged timelines, ha.py
 * `_handle_rewind_or_reinitialize`).
 */
export interface Reinitialize {
  readonly type: 'Reinitialize';
  readonly member: string;
  readonly async: true;
  readonly kind: 'reinitialize';
  readonly description: string;
}

/** Sleep before continuing (Patroni's short waits: 2 s to let someone take the lock, a scheduled switchover). */
export interface Wait {
  readonly type: 'Wait';
  readonly ms: number;
}

/** Stop the agent with an exit code (fatal configuration problems such as a system ID mismatch). */
export interface Exit {
  readonly type: 'Exit';
  readonly code: number;
  readonly reason: string;
}

/** Open the watchdog and set its timeout (Patroni's `Watchdog.activate`, src/ha/watchdog.ts). Guard. */
export interface WatchdogActivate {
  readonly type: 'WatchdogActivate';
  readonly timing: WatchdogTiming;
  readonly otherwise: Decision;
}

/** Seconds: the watchdog timeout Patroni computes from ttl and safety_margin, and the timings it comes from. */
export interface WatchdogTiming {
  readonly timeout: number;
  readonly ttl: number;
  readonly loopWait: number;
}

/** Ping the armed watchdog; a changed `timeout` is set right after the ping (Patroni's `keepalive`). */
export interface WatchdogKeepalive {
  readonly type: 'WatchdogKeepalive';
  readonly timing: WatchdogTiming;
}

/** Magic close (`V`), then close: the watchdog stops counting (Patroni's `disable`). */
export interface WatchdogDisable {
  readonly type: 'WatchdogDisable';
}

/**
 * Failsafe mode with the DCS out of reach (Patroni's `check_failsafe_topology`): POST /failsafe to each member (2 s
 * timeout, in parallel); success when every one answers 200 `Accepted` (none: a one-node cluster). On success the
 * loop counts the lock as held for another ttl (`set_is_leader(True)`) and failsafe mode as active; the DCS is not
 * touched. Guard.
 */
export interface FailsafeCheck {
  readonly type: 'FailsafeCheck';
  readonly members: readonly { readonly name: string; readonly apiUrl: string }[];
  readonly otherwise: Decision;
}

/** Write the `/failsafe` key (name -> api_url), right after a lock refresh (Patroni's `write_failsafe`). */
export interface WriteFailsafe {
  readonly type: 'WriteFailsafe';
  readonly topology: Readonly<Record<string, string>>;
}

export interface UpdateMemory {
  readonly type: 'UpdateMemory';
  readonly patch: Partial<HaMemory>;
}

export type Action =
  | AcquireLock
  | RefreshLock
  | ReleaseLock
  | MarkDemoted
  | Promote
  | Demote
  | FollowLeader
  | StartPostgres
  | StopPostgres
  | CrashRecovery
  | CancelAsync
  | ProbePeers
  | ClearFailoverKey
  | RewriteFailoverKey
  | WriteHistory
  | ProcessSyncReplication
  | WriteSyncState
  | SetSynchronousStandbyNames
  | RaceInitialize
  | WriteInitialize
  | CancelInitialization
  | WriteConfig
  | TakeLeader
  | Bootstrap
  | PostBootstrap
  | CloneFrom
  | Rewind
  | Reinitialize
  | Wait
  | Exit
  | UpdateMemory
  | WatchdogActivate
  | WatchdogKeepalive
  | WatchdogDisable
  | FailsafeCheck
  | WriteFailsafe;

export type GuardAction =
  AcquireLock | RefreshLock | WriteSyncState | RaceInitialize | WatchdogActivate | FailsafeCheck;
export type AsyncAction = Extract<Action, { readonly async: true }>;

export function isGuard(a: Action): a is GuardAction {
  return 'otherwise' in a;
}

export function isAsync(a: Action): a is AsyncAction {
  return 'async' in a && a.async;
}

export type ActionOf<T extends Action['type']> = Extract<Action, { readonly type: T }>;
