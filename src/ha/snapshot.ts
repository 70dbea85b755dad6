/**
 * The immutable input of one HA decision. The loop (src/ha/loop.ts) gathers it: it reads the DCS, asks the local
 * PostgreSQL, probes peers when `decide()` asks for it, and carries the little state Patroni keeps between cycles
 * (`memory`). Nothing here does I/O; time is `now`, taken from the loop's injected clock.
 */
import type { Cluster, JsonObject } from '../model/cluster.js';
import { parseIntLenient } from '../model/cluster.js';
import { parseGucInt } from '../model/guc-values.js';
import { isTree, parseBool } from '../model/python.js';
import type { Lsn } from '../model/lsn.js';
import { lsnFromJson } from '../model/lsn.js';
import { standbyClusterOf, type StandbyClusterConfig } from '../model/standby-cluster.js';

/** This node's tags, as configured locally (plus `nosync` while it asks to leave `/sync`). */
export interface MemberTags {
  readonly nofailover: boolean;
  /**
   * 4.x `failover_priority`; 1 unless configured. A value <= 0 means "never promote" through `nofailover`, which
   * is derived from it unless a `nofailover` tag is given (model/tags.ts).
   */
  readonly failoverPriority: number;
  readonly nosync: boolean;
  readonly clonefrom: boolean;
  readonly replicatefrom?: string;
  /** `nostream`: follow nobody (no primary_conninfo), WAL comes from restore_command only. */
  readonly nostream?: boolean;
}

export interface SelfInfo {
  readonly name: string;
  readonly tags: MemberTags;
  /** The local configuration has a `bootstrap` section (required to win the initialize race). */
  readonly hasBootstrapConfig: boolean;
  /** A `create_replica_methods` entry that needs no running leader (e.g. a backup restore) is configured. */
  readonly canCloneWithoutLeader: boolean;
  /** `use_pg_rewind` is on and pg_rewind is usable (binary present, wal_log_hints or data checksums). */
  readonly canRewind: boolean;
  /** Our REST API's api_url (`restapi.connect_address`), for the `/failsafe` key. */
  readonly apiUrl?: string;
}

export type SynchronousMode = 'off' | 'on' | 'quorum';

/**
 * The dynamic configuration as the HA core uses it (global_config.py), already parsed leniently. Seconds unless noted.
 */
export interface HaConfig {
  readonly ttl: number;
  readonly loopWait: number;
  readonly retryTimeout: number;
  /** Bytes. */
  readonly maximumLagOnFailover: Lsn;
  readonly primaryStartTimeout: number;
  readonly checkTimeline: boolean;
  readonly synchronousMode: SynchronousMode;
  readonly synchronousModeStrict: boolean;
  readonly failsafeMode: boolean;
  readonly paused: boolean;
  /**
   * `postgresql.parameters.wal_retrieve_retry_interval` in ms (PostgreSQL's default 5 s): how long a replica's
   * walreceiver waits before it reconnects, which bounds the wait for a successor's stream before a demotion.
   */
  readonly walRetrieveRetryIntervalMs: number;
  /**
   * `standby_cluster` (Patroni's `is_standby_cluster`): the lock holder is a standby leader replicating from this
   * remote primary or archive, never a primary. Undefined: a primary cluster.
   */
  readonly standby?: StandbyClusterConfig;
}

export const DEFAULT_HA_CONFIG: HaConfig = Object.freeze({
  ttl: 30,
  loopWait: 10,
  retryTimeout: 10,
  maximumLagOnFailover: 1048576n,
  primaryStartTimeout: 300,
  checkTimeline: false,
  synchronousMode: 'off',
  synchronousModeStrict: false,
  failsafeMode: false,
  paused: false,
  walRetrieveRetryIntervalMs: 5000,
});

export interface Timings {
  readonly ttl: number;
  readonly loopWait: number;
  readonly retryTimeout: number;
}

/**
 * The timings the loop runs with. Patroni 3.0.2, whose wire format pgwarden speaks, takes ttl, loop_wait and
 * retry_timeout as given (3.2+ floors ttl at 20), so short ttls such as 10 work as they do there. Kept from 3.2+
 * for safety only: a leader that cannot reach the DCS must give up before its lock expires, so
 * `loop_wait + 2 * retry_timeout <= ttl` is enforced by shortening loop_wait, then retry_timeout.
 */
export function effectiveTimings(t: Timings): Timings {
  let loopWait = Math.max(Math.trunc(t.loopWait), 1);
  let retryTimeout = Math.max(Math.trunc(t.retryTimeout), 1);
  const ttl = Math.max(Math.trunc(t.ttl), 3);
  if (1 + 2 * retryTimeout > ttl) {
    loopWait = 1;
    retryTimeout = Math.floor((ttl - 1) / 2);
  } else if (loopWait + 2 * retryTimeout > ttl) {
    loopWait = ttl - 2 * retryTimeout;
  }
  return { ttl, loopWait, retryTimeout };
}

function parseSyncMode(value: unknown): SynchronousMode {
  if (typeof value === 'string' && value.trim().toLowerCase() === 'quorum') return 'quorum';
  return parseBool(value) === true ? 'on' : 'off';
}

/** Builds the HA view of a dynamic configuration object (the `config` key's data), with Patroni's defaults. */
export function haConfigFromDynamic(data: JsonObject): HaConfig {
  const int = (key: string, fallback: number): number => parseIntLenient(data[key]) ?? fallback;
  const timings = effectiveTimings({
    ttl: int('ttl', DEFAULT_HA_CONFIG.ttl),
    loopWait: int('loop_wait', DEFAULT_HA_CONFIG.loopWait),
    retryTimeout: int('retry_timeout', DEFAULT_HA_CONFIG.retryTimeout),
  });
  const startTimeout = data['primary_start_timeout'] ?? data['master_start_timeout'];
  const standby = standbyClusterOf(data);
  return {
    ...timings,
    maximumLagOnFailover:
      lsnFromJson(data['maximum_lag_on_failover']) ?? DEFAULT_HA_CONFIG.maximumLagOnFailover,
    primaryStartTimeout: parseIntLenient(startTimeout) ?? DEFAULT_HA_CONFIG.primaryStartTimeout,
    checkTimeline: parseBool(data['check_timeline']) === true,
    // Synchronous replication is ignored in a standby cluster (Patroni's `is_synchronous_mode`).
    synchronousMode: standby ? 'off' : parseSyncMode(data['synchronous_mode']),
    synchronousModeStrict: parseBool(data['synchronous_mode_strict']) === true,
    failsafeMode: parseBool(data['failsafe_mode']) === true,
    paused: parseBool(data['pause']) === true,
    walRetrieveRetryIntervalMs: walRetrieveRetryIntervalMs(data),
    ...(standby ? { standby } : {}),
  };
}

function walRetrieveRetryIntervalMs(data: JsonObject): number {
  const pg = data['postgresql'];
  const params = isTree(pg) ? pg['parameters'] : undefined;
  const value = isTree(params) ? params['wal_retrieve_retry_interval'] : undefined;
  const ms = value === undefined || value === null ? undefined : parseGucInt(value, 'ms');
  return ms !== undefined && ms > 0 ? ms : DEFAULT_HA_CONFIG.walRetrieveRetryIntervalMs;
}

/** PostgreSQL states as Patroni names them (postgresql/misc.py `PostgresqlState`). */
import type { PostgresInfo } from '../model/postgres-info.js';
export type { ControlDataState, PostgresInfo, PostgresState } from '../model/postgres-info.js';

export interface LockInfo {
  /** The loop's belief from the last successful read or refresh (Patroni's `is_leader()`); used when the DCS is down. */
  readonly heldByMe: boolean;
  /**
   * `now`-frame ms from which the lock counts (its lease's last refresh, sent before the answer), measured on a
   * monotonic clock by the loop; undefined when never in this process.
   */
  readonly lastRefreshOk?: number;
  /** `now`-frame ms at which the lock expires unless refreshed (lastRefreshOk + the lifetime the DCS enforces). */
  readonly expiresAt?: number;
}

/** One peer's `GET /patroni`, distilled like Patroni's `_MemberStatus`. */
export interface PeerStatus {
  readonly reachable: boolean;
  readonly isPrimary: boolean;
  readonly walPosition: Lsn;
  readonly timeline: number;
  readonly nofailover: boolean;
  readonly failoverPriority: number;
  readonly watchdogFailed: boolean;
}

/** Long actions the loop runs off the heartbeat path. */
export type AsyncKind =
  | 'promote'
  | 'demote'
  | 'restart'
  | 'start'
  | 'bootstrap'
  | 'post_bootstrap'
  | 'clone'
  | 'crash_recovery'
  | 'rewind'
  | 'reinitialize';

export interface PendingAsync {
  readonly kind: AsyncKind;
  /** Patroni's name for it, used in messages such as `updated leader lock during <description>`. */
  readonly description: string;
  /** `now`-clock ms when it started. */
  readonly startedAt: number;
}

/** State Patroni keeps between cycles; the loop stores what the previous decision's actions reported. */
export interface HaMemory {
  /** A restart after a crash (or a restart request) was started; the next idle cycle checks it came up. */
  readonly recovering: boolean;
  /** Single-user crash recovery ran since the last successful start. */
  readonly crashRecoveryExecuted: boolean;
  /** `now`-clock ms the single-user crash recovery started. */
  readonly crashRecoveryStartedAt?: number;
  /** We won the initialize race and are bootstrapping a new cluster. */
  readonly bootstrapping: boolean;
  /** Whether the bootstrap's async part finished: undefined while unknown, false when it failed. */
  readonly bootstrapResult?: boolean;
  /** The pre_promote script of the last promote failed (the loop reports it once, then clears it). */
  readonly prePromoteFailed: boolean;
  /** `now`-clock ms when we released the lock after a failed pre_promote script (race backoff for ttl). */
  readonly releasedLeaderKeyAt?: number;
  /** Per-start override of primary_start_timeout (a restart request with `timeout`), seconds. */
  readonly startTimeout?: number;
  /** PostgreSQL has been seen running in this process (Patroni's `cb_called`: on_start fired). */
  readonly onStartCalled: boolean;
  /** pg_rewind succeeded and PostgreSQL has not been started since (Patroni's `_rewind.executed`, not failed). */
  readonly rewindSucceeded?: boolean;
}

export const INITIAL_MEMORY: HaMemory = Object.freeze({
  recovering: false,
  crashRecoveryExecuted: false,
  bootstrapping: false,
  prePromoteFailed: false,
  onStartCalled: false,
});

export type WatchdogMode = 'off' | 'automatic' | 'required';

/** The watchdog as the loop sees it at the start of a cycle (src/ha/watchdog.ts decides with it). */
export interface WatchdogView {
  readonly mode: WatchdogMode;
  /** The device is open and armed (Patroni's `is_running`). */
  readonly running: boolean;
  /**
   * The configured device can be used: it exists and is writable, and no activation failed since the configuration
   * last changed (Patroni's `impl.is_healthy`, false once it fell back to its null device).
   */
  readonly deviceUsable: boolean;
  /** `watchdog.safety_margin`, seconds; -1: half the ttl. */
  readonly safetyMargin: number;
}

/** The leader that POSTed /failsafe to this node within ttl (Patroni's `Failsafe.leader`). */
export interface FailsafeLeader {
  readonly name: string;
  readonly apiUrl?: string;
  readonly connUrl?: string;
  /** The leader's slot positions from the POST body (`slots`); absent when it sent none. */
  readonly slots?: Readonly<Record<string, Lsn>>;
}

/** What the loop knows of failsafe mode at the start of a cycle (src/ha/failsafe.ts). */
export interface FailsafeView {
  /**
   * Patroni's `dcs.failsafe`: the `/failsafe` topology last read from the DCS or written by this node; kept while
   * the DCS cannot be read. Undefined when unknown or not a JSON object.
   */
  readonly topology?: Readonly<Record<string, string>>;
  /** Present while a leader's POST /failsafe is younger than ttl (replicas only). */
  readonly leader?: FailsafeLeader;
}

export interface HaSnapshot {
  /** Milliseconds from the loop's injected clock (epoch based, so `scheduled_at` compares with it). */
  readonly now: number;
  readonly me: SelfInfo;
  /** Effective dynamic configuration (from the DCS when valid, else the last known one). */
  readonly config: HaConfig;
  /** Undefined when the DCS could not be read this cycle. */
  readonly cluster: Cluster | undefined;
  readonly dcsReachable: boolean;
  /** The last cluster view that had a leader (Patroni's `old_cluster`): its members join the leader race. */
  readonly lastLockedCluster?: Cluster;
  readonly postgres: PostgresInfo;
  readonly lock: LockInfo;
  /** Results of `GET /patroni` on other members, present only after the loop executed a `ProbePeers` action. */
  readonly peers?: ReadonlyMap<string, PeerStatus>;
  readonly pendingAsync?: PendingAsync;
  readonly memory: HaMemory;
  /** Absent when the loop has no watchdog port (tests): nothing is armed, pinged or checked. */
  readonly watchdog?: WatchdogView;
  /** Failsafe mode's state (src/ha/failsafe.ts); absent: nothing known. */
  readonly failsafe?: FailsafeView;
}
