/**
 * What the agent knows about itself at one moment, and the status document (api.py `get_postgresql_status`) built from
 * it: the body of `GET /patroni` and of every health-check GET. Peers decide leader races from this document, so its
 * field set and order follow the Patroni version the agent speaks.
 *
 * Pure: no I/O, no clock. The snapshot carries the moment it describes (`at`).
 */
import type { JsonObject } from '../model/cluster.js';
import { NEWEST_PATRONI, parseVersion, versionAtLeast, type VersionTuple } from '../model/flavor.js';
import type { Lsn } from '../model/lsn.js';

/** How a primary's role is spelt on the wire: `master` up to Patroni 3.x, `primary` from 4.0. */
export type PrimaryRoleSpelling = 'master' | 'primary';

/** One row of `pg_stat_replication` as Patroni reports it under `replication`. */
export interface WalSender {
  readonly usename: string | null;
  readonly application_name: string;
  readonly client_addr: string | null;
  readonly state: string;
  readonly sync_state: string;
  readonly sync_priority: number;
}

/** A primary's WAL position: the flush LSN. */
export interface PrimaryXlog {
  readonly kind: 'primary';
  readonly location: Lsn;
}

/** A standby's WAL positions. */
export interface ReplicaXlog {
  readonly kind: 'replica';
  readonly receivedLocation: Lsn;
  readonly replayedLocation: Lsn;
  /** `pg_last_xact_replay_timestamp()` already in Python `str()` form, or null. */
  readonly replayedTimestamp: string | null;
  readonly paused: boolean;
}

/** What the status query returned; absent when PostgreSQL could not be queried. */
export interface PostgresSnapshot {
  /** Python `str(datetime)` form: `2026-11-22 02:53:53.338253+00:00`. */
  readonly postmasterStartTime: string;
  /** e.g. 150018. */
  readonly serverVersion: number;
  readonly xlog: PrimaryXlog | ReplicaXlog;
  /** Current timeline (primary) or the cached one (replica); null when unknown. */
  readonly timeline: number | null;
  /** `streaming` / `in archive recovery` (3.0.4+, replicas only). */
  readonly replicationState?: string;
  readonly replication: readonly WalSender[];
  /** Internal (4.1+): the WAL receiver's latest end LSN; never sent. */
  readonly latestEndLsn?: Lsn;
}

export interface PatroniIdentity {
  /** The Patroni version this agent reports (and imitates). */
  readonly version: string;
  readonly scope: string;
  readonly name: string;
}

export interface AgentStatus {
  /** The moment this snapshot describes, epoch milliseconds. */
  readonly at: number;

  /** PostgreSQL state: `running`, `starting`, `stopped`, ... (`unknown` if running but the query failed). */
  readonly state: string;
  /**
   * The role as reported: `primary` (spelt per the wire flavour), `replica`, `standby_leader` when PostgreSQL
   * answered; the agent's own role (`demoted`, `uninitialized`, ...) when it did not. `master` is accepted too.
   */
  readonly role: string;
  /** Whether the postmaster process is alive (Patroni's `postgresql.is_running()`); used by `/liveness`. */
  readonly postmasterRunning: boolean;
  readonly postgres?: PostgresSnapshot;

  /** Listed in `/sync` while synchronous mode is on (non-quorum). */
  readonly syncStandby: boolean;
  /** Listed in `/sync` while quorum mode is on (4.0+). */
  readonly quorumStandby: boolean;

  readonly pause: boolean;
  /** No leader in the cached cluster view, or no view at all. */
  readonly clusterUnlocked: boolean;
  readonly failsafeModeIsActive: boolean;
  /** Epoch seconds of the last successful DCS read. */
  readonly dcsLastSeen: number;

  /** Effective tags as published in the member key: falsy built-in tags already dropped. */
  readonly tags: JsonObject;
  readonly sysid?: string;
  readonly pendingRestart: boolean;
  readonly pendingRestartReason?: Readonly<
    Record<string, { readonly old_value: string; readonly new_value: string }>
  >;
  readonly patroni: PatroniIdentity;
  /** `{"schedule": "<ISO>", ...filters}` without `postmaster_start_time`. */
  readonly scheduledRestart?: JsonObject;
  readonly watchdogFailed: boolean;
  readonly loggerQueueSize?: number;
  readonly loggerRecordsLost?: number;

  // Inputs of the health decisions that are not part of the document.
  /** Epoch ms until which this node holds the leader lock (Patroni's `ha.is_leader()`); absent if it does not. */
  readonly leaderLockUntil?: number;
  /** This cluster replicates from another one (`standby_cluster` configured). */
  readonly standbyCluster: boolean;
  /** Scheduled start of the next HA cycle, epoch ms. */
  readonly nextRunAt: number;
  /** Effective `ttl`, seconds. */
  readonly ttl: number;
  /** Effective `maximum_lag_on_failover`, bytes (readiness default limit, 4.1+). */
  readonly maximumLagOnFailover: number;
}

export interface StatusJsonOptions {
  /** The Patroni version whose document shape to write; defaults to `status.patroni.version`. */
  readonly speaks?: VersionTuple;
  /** Defaults to `master` when speaking 3.x and older, `primary` from 4.0. */
  readonly primaryRole?: PrimaryRoleSpelling;
}

/** The version the status speaks: its reported Patroni version, or the newest known. */
export function spokenVersion(status: AgentStatus): VersionTuple {
  return parseVersion(status.patroni.version) ?? NEWEST_PATRONI;
}

export function defaultPrimaryRole(version: VersionTuple): PrimaryRoleSpelling {
  return versionAtLeast(version, [4, 0, 0]) ? 'primary' : 'master';
}

export function isPrimaryRoleName(role: string | undefined): boolean {
  return role === 'primary' || role === 'master';
}

/** Whether the node holds the leader lock at the snapshot's moment. */
export function holdsLeaderLock(status: AgentStatus): boolean {
  return status.leaderLockUntil !== undefined && status.leaderLockUntil > status.at;
}

/**
 * The status document as an ordered plain object, ready for `pyJson`. Field set and order are those Patroni
 * writes for the spoken version (3.0.2: `pause` after `watchdog_failed`; newer: right after `replication`).
 */
export function statusJson(status: AgentStatus, options: StatusJsonOptions = {}): Record<string, unknown> {
  const v = options.speaks ?? spokenVersion(status);
  const primaryRole = options.primaryRole ?? defaultPrimaryRole(v);
  const newLayout = versionAtLeast(v, [3, 1, 0]);
  const out: Record<string, unknown> = { state: status.state };
  const role = isPrimaryRoleName(status.role) ? primaryRole : status.role;
  const pg = status.postgres;
  if (pg) {
    out['postmaster_start_time'] = pg.postmasterStartTime;
    out['role'] = role;
    out['server_version'] = pg.serverVersion;
    out['xlog'] =
      pg.xlog.kind === 'primary'
        ? { location: pg.xlog.location }
        : {
            received_location: pg.xlog.receivedLocation,
            replayed_location: pg.xlog.replayedLocation,
            replayed_timestamp: pg.xlog.replayedTimestamp,
            paused: pg.xlog.paused,
          };
    if (status.syncStandby && role === 'replica') out['sync_standby'] = true;
    if (status.quorumStandby && role === 'replica' && versionAtLeast(v, [4, 0, 0]))
      out['quorum_standby'] = true;
    out['timeline'] = pg.timeline;
    if (pg.replicationState !== undefined && versionAtLeast(v, [3, 0, 4]))
      out['replication_state'] = pg.replicationState;
    if (pg.replication.length > 0) out['replication'] = pg.replication;
  } else {
    out['role'] = role;
  }
  if (newLayout && status.pause) out['pause'] = true;
  if (status.clusterUnlocked) out['cluster_unlocked'] = true;
  if (status.failsafeModeIsActive) out['failsafe_mode_is_active'] = true;
  out['dcs_last_seen'] = status.dcsLastSeen;
  if (Object.keys(status.tags).length > 0) out['tags'] = status.tags;
  if (status.sysid) out['database_system_identifier'] = status.sysid;
  if (status.pendingRestart) {
    out['pending_restart'] = true;
    if (status.pendingRestartReason && versionAtLeast(v, [3, 3, 0]))
      out['pending_restart_reason'] = status.pendingRestartReason;
  }
  out['patroni'] = versionAtLeast(v, [3, 2, 0])
    ? { version: status.patroni.version, scope: status.patroni.scope, name: status.patroni.name }
    : { version: status.patroni.version, scope: status.patroni.scope };
  if (status.scheduledRestart) out['scheduled_restart'] = status.scheduledRestart;
  if (status.watchdogFailed) out['watchdog_failed'] = true;
  if (!newLayout && status.pause) out['pause'] = true;
  if (status.loggerQueueSize !== undefined) {
    out['logger_queue_size'] = status.loggerQueueSize;
    if (status.loggerRecordsLost) out['logger_records_lost'] = status.loggerRecordsLost;
  }
  return out;
}

/** The health inputs a status document does not carry. */
export type StatusExtras = Pick<
  AgentStatus,
  | 'at'
  | 'postmasterRunning'
  | 'leaderLockUntil'
  | 'standbyCluster'
  | 'nextRunAt'
  | 'ttl'
  | 'maximumLagOnFailover'
>;

const asBigint = (v: unknown): bigint =>
  typeof v === 'bigint' ? v : typeof v === 'number' ? BigInt(Math.trunc(v)) : 0n;
const asText = (v: unknown, fallback: string): string =>
  typeof v === 'string' ? v : typeof v === 'number' ? String(v) : fallback;
const asRecord = (v: unknown): JsonObject | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as JsonObject) : undefined;

/**
 * Reads a status document (a peer's `GET /patroni` reply, or a captured one) back into an `AgentStatus`: the
 * inverse of `statusJson` for every field the document carries; health-only inputs come from `extras`.
 */
export function statusFromJson(doc: JsonObject, extras: StatusExtras): AgentStatus {
  const xlog = asRecord(doc['xlog']);
  const patroni = asRecord(doc['patroni']) ?? {};
  let postgres: PostgresSnapshot | undefined;
  if (xlog) {
    postgres = {
      postmasterStartTime: asText(doc['postmaster_start_time'], ''),
      serverVersion: Number(doc['server_version'] ?? 0),
      xlog:
        'location' in xlog
          ? { kind: 'primary', location: asBigint(xlog['location']) }
          : {
              kind: 'replica',
              receivedLocation: asBigint(xlog['received_location']),
              replayedLocation: asBigint(xlog['replayed_location']),
              replayedTimestamp:
                typeof xlog['replayed_timestamp'] === 'string' ? xlog['replayed_timestamp'] : null,
              paused: xlog['paused'] === true,
            },
      timeline: typeof doc['timeline'] === 'number' ? doc['timeline'] : null,
      replicationState: typeof doc['replication_state'] === 'string' ? doc['replication_state'] : undefined,
      replication: Array.isArray(doc['replication']) ? (doc['replication'] as WalSender[]) : [],
    };
  }
  return {
    ...extras,
    state: asText(doc['state'], 'unknown'),
    role: asText(doc['role'], ''),
    postgres,
    syncStandby: doc['sync_standby'] === true,
    quorumStandby: doc['quorum_standby'] === true,
    pause: doc['pause'] === true,
    clusterUnlocked: doc['cluster_unlocked'] === true,
    failsafeModeIsActive: doc['failsafe_mode_is_active'] === true,
    dcsLastSeen: Number(doc['dcs_last_seen'] ?? 0),
    tags: asRecord(doc['tags']) ?? {},
    sysid:
      typeof doc['database_system_identifier'] === 'string' ? doc['database_system_identifier'] : undefined,
    pendingRestart: doc['pending_restart'] === true,
    pendingRestartReason: asRecord(doc['pending_restart_reason']) as AgentStatus['pendingRestartReason'],
    patroni: {
      version: asText(patroni['version'], ''),
      scope: asText(patroni['scope'], ''),
      name: asText(patroni['name'], ''),
    },
    scheduledRestart: asRecord(doc['scheduled_restart']),
    watchdogFailed: doc['watchdog_failed'] === true,
    loggerQueueSize: typeof doc['logger_queue_size'] === 'number' ? doc['logger_queue_size'] : undefined,
    loggerRecordsLost:
      typeof doc['logger_records_lost'] === 'number' ? doc['logger_records_lost'] : undefined,
  };
}
