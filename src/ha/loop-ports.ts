/**
 * The ports of the HA loop: what it is given (the DCS, the local node, a peer prober, synchronous replication,
 * a clock and a logger), and the conn_url parser the node and the REST API share with it.
 */
import type { Dcs } from '../dcs/dcs.js';
import type { Cluster, Member } from '../model/cluster.js';
import type { Lsn } from '../model/lsn.js';
import type { DemoteMode, WatchdogTiming } from './actions.js';
export type { WatchdogTiming } from './actions.js';
import type { AsyncKind, HaConfig, PeerStatus, PostgresInfo, SelfInfo, WatchdogView } from './snapshot.js';

// ---------------------------------------------------------------------------------------------------------------
// Ports

export interface LoopClock {
  /** Epoch milliseconds: for what is shown or compared with dates (`scheduled_at`), never for a deadline. */
  now(): number;
  /** Milliseconds from an arbitrary origin that an NTP step does not move: every lock and cycle deadline. */
  monotonic(): number;
  sleep(ms: number): Promise<void>;
}

export const SYSTEM_CLOCK: LoopClock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
};

export interface LoopLogger {
  info(text: string): void;
  warning(text: string): void;
  error(text: string): void;
}

/** A member to stream from, resolved from its `conn_url`. */
export interface ResolvedTarget {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** A standby cluster's remote primary: `standby_cluster`'s slot and recovery settings apply. */
  readonly remote?: true;
}

/** How PostgreSQL starts: a primary, a replica, or the standby leader of a standby cluster. */
export type StartRole = 'replica' | 'primary' | 'standby_leader';

/** Cooperative cancellation of a long action (`CancelAsync`): checked by the node between steps. */
export interface TaskControl {
  readonly cancelled: () => boolean;
}

/** The local member: its PostgreSQL instance and what it publishes. Implemented by src/agent. */
export interface LocalNode {
  readonly self: SelfInfo;
  /** The state of the local instance now. `cluster` is the view of this cycle (undefined: DCS down). */
  /**
   * `standby`: this is a standby cluster, whose members check their timeline against the remote primary (`remote`;
   * undefined when `standby_cluster` names neither host nor port) instead of the lock holder.
   */
  inspect(
    cluster: Cluster | undefined,
    standby?: { readonly remote: ResolvedTarget | undefined },
  ): Promise<PostgresInfo>;
  /** The member key value (compact JSON), as Patroni's `touch_member` builds it. */
  memberValue(ctx: {
    readonly isLeader: boolean;
    readonly pendingAsync?: AsyncKind;
    readonly paused?: boolean;
    /** Publish the `nosync` tag whatever the configuration says (a sync standby about to stop). */
    readonly nosync?: boolean;
  }): Promise<string>;
  /** The `status` value of a leader cycle (optime, member slots); undefined while the optime is unknown. */
  leaderStatusValue(cluster: Cluster): Promise<string | undefined>;
  /** The `status` value after a clean shutdown whose checkpoint is `optime`. */
  shutdownStatusValue(optime: Lsn): string;
  /** The dynamic configuration to write to the `config` key (compact JSON). */
  dynamicConfigValue(): string;
  /** The dynamic configuration from the local file (bootstrap.dcs) used until the DCS has one. */
  localDynamicConfig(): Readonly<Record<string, unknown>>;
  /** A dynamic configuration was read from the DCS (the node keeps it for WriteConfig and parameters). */
  dynamicConfigChanged(data: Readonly<Record<string, unknown>>): void;

  bootstrap(task: TaskControl): Promise<boolean>;
  postBootstrap(task: TaskControl): Promise<boolean>;
  clone(from: Member | undefined, task: TaskControl): Promise<boolean>;
  start(
    as: StartRole,
    target: ResolvedTarget | undefined,
    timeoutSeconds: number | undefined,
    task: TaskControl,
  ): Promise<boolean>;
  /**
   * Point primary_conninfo at `target` (undefined: no upstream); reload or restart as needed. `standbyLeader`: the
   * role becomes `standby_leader` (on_role_change fires when it changes).
   */
  follow(target: ResolvedTarget | undefined, standbyLeader?: boolean): Promise<void>;
  /** A new standby cluster: clone the remote primary (`standby_cluster.create_replica_methods`) and follow it. */
  bootstrapStandbyLeader?(remote: ResolvedTarget | undefined, task: TaskControl): Promise<boolean>;
  /**
   * `demote-cluster` with `archive_mode` on: hand the WAL segment of the shutdown checkpoint to archive_command, so
   * that the cluster it will follow can replay up to it (Patroni's `archive_shutdown_checkpoint_wal`).
   */
  archiveShutdownCheckpoint?(): Promise<void>;
  /**
   * `archive_mode` is on and `archive_command` set (Patroni's `get_archive_command`): a `demote-cluster` then keeps
   * the lock through the stop, to archive the shutdown checkpoint's segment first.
   */
  archivesShutdownCheckpoint?(): boolean;
  /**
   * pre_promote, the other members' slots (`cluster`), then `pg_ctl promote`; `'pre_promote_failed'` when the
   * pre_promote script refused. `confirmLock` is awaited right before `pg_ctl promote`: false (the lock could not be
   * confirmed, e.g. lost while pre_promote ran) aborts the promotion.
   */
  promote(
    task: TaskControl,
    cluster: Cluster | undefined,
    confirmLock: () => Promise<boolean>,
  ): Promise<boolean | 'pre_promote_failed'>;
  /**
   * `demote`: the stop is part of a demotion in that mode (the role becomes `demoted`, for callbacks). `onShutdown`
   * (a fast stop): called with the shutdown checkpoint once the control file says `shut down` while the postmaster
   * still runs (Patroni's `on_shutdown`); the stop resolves after it and the postmaster's exit.
   */
  stop(
    mode: 'fast' | 'immediate',
    demote?: DemoteMode,
    onShutdown?: (checkpoint: Lsn) => Promise<void>,
  ): Promise<void>;
  /** A start as primary failed while we held the lock: the role becomes `demoted`, on_role_change fires. */
  markDemoted(): void;
  /** Application names of the WAL senders streaming now (pg_stat_replication); absent: unknown (no wait). */
  streamingReplicas?(): Promise<readonly string[]>;
  /** CHECKPOINT before a graceful demote; the shutdown checkpoint LSN is read after the stop. */
  checkpoint(): Promise<void>;
  /** pg_controldata's latest checkpoint location (after a stop). */
  shutdownCheckpoint(): Promise<Lsn | undefined>;
  crashRecovery(task: TaskControl): Promise<boolean>;
  /** The `history` value to write (compact JSON), or undefined when the key is up to date. */
  historyValue(cluster: Cluster): Promise<string | undefined>;
  /**
   * Slot housekeeping on a running member (src/postgres/slots-sync.ts): member, permanent and ignored slots.
   * `copy` false: no logical slot is copied from the primary (the DCS is down or failsafe mode is active).
   */
  syncSlots(cluster: Cluster, config: HaConfig, copy?: boolean): Promise<void>;
  /** Stop PostgreSQL and move the data directory aside after a failed bootstrap. */
  abandonBootstrap(): Promise<void>;
  /** pg_rewind from the leader `leader` (rewind.py); PostgreSQL is left stopped. False when it did not happen. */
  /** pg_rewind from the leader's member, or from a standby cluster's remote primary (a `ResolvedTarget`). */
  rewind(leader: Member | ResolvedTarget, task: TaskControl): Promise<boolean>;
  /** Stop immediately, empty the data directory and clone anew from `from`. */
  reinitialize(from: Member, task: TaskControl): Promise<boolean>;
  /** After each cycle: apply a changed dynamic or local configuration to PostgreSQL (Patroni's reload_config). */
  applyConfiguration?(): Promise<void>;
}

export type PeerProber = (
  members: readonly { readonly name: string; readonly apiUrl: string }[],
) => Promise<ReadonlyMap<string, PeerStatus>>;

/** One member's answer to POST /failsafe: `accepted` only for 200 `Accepted`; `lsn` from its `lsn` header. */
export interface FailsafeAnswer {
  readonly name: string;
  readonly accepted: boolean;
  readonly lsn?: bigint;
}

/** POST /failsafe to each member in parallel, with a timeout (src/agent/failsafe.ts). Never rejects per member. */
export type FailsafeCaller = (
  members: readonly { readonly name: string; readonly apiUrl: string }[],
) => Promise<readonly FailsafeAnswer[]>;

/**
 * Synchronous replication bookkeeping on the leader (ha.py `process_sync_replication`); src/agent/sync-replication.ts
 * implements it.
 */
export interface SyncReplicationPort {
  /** Maintain synchronous_standby_names and `/sync` for this cycle (or remove them when the mode is off). */
  process(cluster: Cluster, config: HaConfig): Promise<void>;
  /**
   * Set synchronous_standby_names to `names` (`['*']`: any standby; none: the mode's default); with `num`, quorum
   * commit's `ANY num (names)`. Called before a promotion and on demotion, so it also restarts quorum commit's
   * pause after a promotion.
   */
  setStandbyNames(names: readonly string[], num?: number): Promise<void>;
}

/**
 * The watchdog device (src/agent/watchdog/): Patroni's `Watchdog` facade. The decision says when (src/ha/watchdog.ts);
 * the port says whether it worked and logs Patroni's lines.
 */
export interface WatchdogPort {
  /** The state `decide()` sees this cycle (checks that the configured device is usable). */
  view(): WatchdogView;
  /** Open and set `timeout`; false when a `required` watchdog could not be armed safely (Patroni's `activate`). */
  activate(timing: WatchdogTiming): Promise<boolean>;
  /** Ping if armed, then apply a changed timeout; `lockLeftMs`: how long the just refreshed lock still lives. */
  keepalive(timing: WatchdogTiming, lockLeftMs: number | undefined): Promise<void>;
  /** Magic close if armed. */
  disable(): Promise<void>;
}

export interface LoopDeps {
  readonly dcs: Dcs;
  readonly node: LocalNode;
  /** Synchronous mode: synchronous_standby_names and `/sync` (src/agent/sync-replication.ts). */
  readonly sync: SyncReplicationPort;
  readonly probe: PeerProber;
  /** Failsafe mode's POST /failsafe to the other members; without it a check with members fails. */
  readonly failsafe?: FailsafeCaller;
  readonly clock?: LoopClock;
  readonly log: LoopLogger;
  /** A fatal decision (`Exit`, failed bootstrap): the agent shuts down with this code. */
  readonly onFatal: (code: number, reason: string) => void;
  /** The watchdog; without it nothing is armed (tests, and `watchdog.mode: off` gets a port that arms nothing). */
  readonly watchdog?: WatchdogPort;
}

export interface CycleResult {
  readonly message: string;
  readonly dcsOk: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** `postgres://host:port/db` -> host and port; undefined when it cannot be parsed. */
export function parseConnUrl(connUrl: string | undefined): { host: string; port: number } | undefined {
  if (!connUrl) return undefined;
  try {
    const u = new URL(connUrl);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = u.port === '' ? 5432 : Number(u.port);
    if (host === '' || !Number.isInteger(port)) return undefined;
    return { host, port };
  } catch {
    return undefined;
  }
}
