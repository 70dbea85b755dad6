import type { Lsn } from './lsn.js';
import { parseBool } from './python.js';

/** A JSON object as read from the DCS, before or beside interpretation. */
export type JsonObject = Readonly<Record<string, unknown>>;

/** One member's self-description (`members/<name>`), interpreted leniently; `raw` keeps every field read. */
export interface MemberData {
  readonly raw: JsonObject;
  readonly connUrl?: string;
  readonly apiUrl?: string;
  /** PostgreSQL state; `unknown` when the member did not say. */
  readonly state: string;
  /** `master` (<= 3.x), `primary` (4.x), `replica`, `standby_leader`, `demoted`, `uninitialized`, ... */
  readonly role?: string;
  /** The Patroni (or pgwarden-as-Patroni) version the member runs. */
  readonly version?: string;
  readonly xlogLocation?: Lsn;
  readonly receiveLsn?: Lsn;
  readonly replayLsn?: Lsn;
  readonly replicationState?: string;
  readonly timeline?: number;
  readonly tags: JsonObject;
  readonly pendingRestart: boolean;
  readonly pendingRestartReason?: Readonly<
    Record<string, { readonly old_value: string; readonly new_value: string }>
  >;
  readonly scheduledRestart?: JsonObject;
  readonly pause: boolean;
  readonly checkpointAfterPromote?: boolean;
  readonly proxyUrl?: string;
}

export interface Member {
  readonly name: string;
  /** CAS token of the member key (etcd mod_revision, ZooKeeper version). */
  readonly version: string;
  /** Owner of the ephemeral key: etcd lease id or ZooKeeper ephemeralOwner, both as decimal strings. */
  readonly session?: string;
  readonly data: MemberData;
}

export interface Leader {
  readonly name: string;
  readonly version: string;
  readonly session?: string;
  /** The leader's member record; absent when the lock holder has no member key. */
  readonly member?: Member;
}

/** A switchover/failover request (`failover` key). Empty iff neither `leader` nor `member` is set. */
export interface Failover {
  readonly version: string;
  readonly leader?: string;
  /** The candidate: stored under `member` in the DCS. */
  readonly member?: string;
  /** ISO-8601 text as stored. */
  readonly scheduledAt?: string;
}

export interface SyncState {
  readonly version?: string;
  readonly leader?: string;
  /** Comma-joined names as stored, or undefined for `null`. */
  readonly syncStandby?: string;
  /** Parsed, trimmed names from `sync_standby`. */
  readonly members: readonly string[];
  /** 4.0+ quorum; only meaningful when `leader` is set. */
  readonly quorum?: number;
}

export interface ClusterStatus {
  readonly optime: Lsn;
  readonly slots: Readonly<Record<string, Lsn>>;
  readonly retainSlots: readonly string[];
}

/** `[parent_timeline, switch_lsn, reason, timestamp?, new_leader?]`; old writers left 3 or 4 elements. */
export interface HistoryLine {
  readonly timeline: number;
  readonly lsn: Lsn;
  readonly reason: string;
  readonly timestamp?: string;
  readonly newLeader?: string;
}

export interface TimelineHistory {
  readonly version: string;
  readonly raw: string;
  readonly lines: readonly HistoryLine[];
}

export interface ClusterConfig {
  readonly version: string;
  /** Change-detection version (ZooKeeper mzxid; etcd mod_revision). */
  readonly modifyVersion: string;
  readonly raw: string;
  /** The stored object, or `{}` when the value is not a JSON object. */
  readonly data: JsonObject;
  readonly valid: boolean;
}

export interface Cluster {
  readonly scope: string;
  /** `undefined`: no key (uninitialized); `''`: bootstrap in progress; else the system identifier. */
  readonly initialize?: string;
  readonly config?: ClusterConfig;
  readonly leader?: Leader;
  readonly status: ClusterStatus;
  /**
   * In the order the DCS lists them (etcd: by key; ZooKeeper: the server's child order), as Patroni keeps them:
   * patronictl's `dsn -r replica` and `version` follow this order; `/cluster` and `list` sort by name.
   */
  readonly members: readonly Member[];
  readonly failover?: Failover;
  readonly sync: SyncState;
  readonly history?: TimelineHistory;
  readonly failsafe?: Readonly<Record<string, string>>;
}

export const EMPTY_STATUS: ClusterStatus = Object.freeze({
  optime: 0n,
  slots: Object.freeze({}),
  retainSlots: [],
});
export const EMPTY_SYNC: SyncState = Object.freeze({ members: [] });

export function isFailoverEmpty(f: Failover | undefined): boolean {
  return !f || (!f.leader && !f.member);
}

/** The primary's role spelling differs by Patroni version; readers accept both. */
export function isPrimaryRole(role: string | undefined): boolean {
  return role === 'master' || role === 'primary';
}

/** Cluster timeline as readers derive it: last history line's parent + 1; `[]` is timeline 1; none is 0. */
export function clusterTimeline(cluster: Cluster): number {
  const h = cluster.history;
  if (!h) return 0;
  const last = h.lines[h.lines.length - 1];
  return last ? last.timeline + 1 : 1;
}

export function isValidSysid(value: string | undefined): value is string {
  return value !== undefined && value.length >= 10 && /^\d+$/.test(value);
}

/** Whether `name` is listed in the sync state (case-insensitive, trimmed, as Patroni matches). */
export function syncStateMatches(sync: SyncState, name: string): boolean {
  const n = name.trim().toLowerCase();
  return sync.members.some((m) => m.toLowerCase() === n);
}

export function isPaused(cluster: Cluster): boolean {
  return parseBool(cluster.config?.data['pause']) === true;
}

/** Patroni's lenient integer: numbers and numeric strings. */
export function parseIntLenient(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  if (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value)) return Number.parseInt(value, 10);
  return undefined;
}
