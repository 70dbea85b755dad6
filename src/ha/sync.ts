/**
 * Synchronous replication bookkeeping (postgresql/sync.py), the pure part: which replicas to make synchronous, the
 * `synchronous_standby_names` (SSN) text, and the order of the steps that keep Patroni's invariant
 * "a node is listed in `/sync` only while PostgreSQL really replicates to it synchronously":
 *
 * - growing the set: SSN first, `/sync` (CAS on its version) only once PostgreSQL reports the new standby `sync`
 *   and caught up with the primary's flush position at the moment SSN changed;
 * - shrinking the set: `/sync` first, then SSN.
 *
 * Behaviour follows Patroni 3.0.2 (`SyncHandler.current_state`, `set_synchronous_standby_names`,
 * `Ha.process_sync_replication`), with 4.1.4's `sync_priority` tag ordering the candidates. The I/O around it lives
 * in src/agent/sync-replication.ts.
 */
import type { Member } from '../model/cluster.js';
import { parseIntLenient } from '../model/cluster.js';
import { parseBool } from '../model/python.js';
import { tagNoFailover, tagNoSync, tagSyncPriority } from '../model/tags.js';
import type { Lsn } from '../model/lsn.js';
import { lsnFromJson } from '../model/lsn.js';

// ---------------------------------------------------------------------------------------------------------------
// settings

export interface SyncSettings {
  /** synchronous_mode is true or `quorum` (Patroni's `is_synchronous_mode`). */
  readonly enabled: boolean;
  /** synchronous_mode is `quorum` (Patroni 4.0+ quorum commit). */
  readonly quorum: boolean;
  readonly strict: boolean;
  /** `synchronous_node_count` (default 1). */
  readonly nodeCount: number;
  /** `maximum_lag_on_syncnode` in bytes; <= 0 (default -1): never swap a lagging sync standby. */
  readonly maxLagOnSyncnode: bigint;
}

/** Patroni's `is_quorum_commit_mode`: the text of synchronous_mode is `quorum` (any case). */
export function isQuorumSetting(value: unknown): boolean {
  return typeof value === 'string' && value.trim().toLowerCase() === 'quorum';
}

/** The sync settings of a dynamic configuration. */
export function syncSettingsFromDynamic(data: Readonly<Record<string, unknown>> | undefined): SyncSettings {
  const d = data ?? {};
  const count = parseIntLenient(d['synchronous_node_count']);
  const lag = lsnFromJson(d['maximum_lag_on_syncnode']);
  const quorum = isQuorumSetting(d['synchronous_mode']);
  return {
    enabled: quorum || parseBool(d['synchronous_mode']) === true,
    quorum,
    strict: parseBool(d['synchronous_mode_strict']) === true,
    nodeCount: count !== undefined && count >= 1 ? count : 1,
    maxLagOnSyncnode: lag === undefined || lag <= 0n ? -1n : lag,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// synchronous_standby_names: format and parse

const PLAIN_NAME = /^[A-Za-z_][A-Za-z_0-9$]*$/;

/** Patroni's simplified `quote_ident`: plain identifiers as is, anything else double-quoted. */
export function quoteSyncName(name: string): string {
  return PLAIN_NAME.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/**
 * The SSN value for `names` in Patroni's format: undefined (parameter removed) for none, `*` as is, one name
 * alone, several as `N (a,b)` (PostgreSQL >= 9.6; older versions take only the first name). Names keep the given
 * order (Patroni passes the picked order).
 */
export function formatSynchronousStandbyNames(
  names: readonly string[],
  majorVersion: number,
): string | undefined {
  if (names.length === 0) return undefined;
  if (names.length === 1 && names[0] === '*') return '*';
  const quoted = names.map(quoteSyncName);
  if (majorVersion >= 90600 && quoted.length > 1) return `${quoted.length} (${quoted.join(',')})`;
  return quoted[0];
}

/**
 * The SSN value in quorum commit mode (Patroni 4.1.4's `set_synchronous_standby_names` with a number): names sorted,
 * `ANY num (a,b)` (PostgreSQL >= 10; 9.6 takes `num (a,b)`), `*` standing for "any standby" when no name is given
 * but num >= 1, undefined (parameter removed) for neither. Before 9.6 only the first name.
 */
export function formatQuorumStandbyNames(
  names: readonly string[],
  num: number,
  majorVersion: number,
): string | undefined {
  const star = names.includes('*') || (num >= 1 && names.length === 0);
  const list = star ? ['*'] : [...names].sort(byCodePoint).map(quoteSyncName);
  if (list.length === 0) return undefined;
  if (majorVersion > 0 && majorVersion < 90600) return list[0];
  const prefix = majorVersion === 0 || majorVersion >= 100000 ? 'ANY ' : '';
  return `${prefix}${num} (${list.join(',')})`;
}

const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export interface ParsedStandbyNames {
  readonly type: 'off' | 'priority' | 'quorum';
  readonly num: number;
  /** Lower-cased member names (PostgreSQL and Patroni compare them case-insensitively). */
  readonly members: ReadonlySet<string>;
  readonly hasStar: boolean;
}

export const EMPTY_STANDBY_NAMES: ParsedStandbyNames = Object.freeze({
  type: 'off',
  num: 0,
  members: new Set<string>(),
  hasStar: false,
});

type Token = { readonly kind: string; readonly text: string };

const TOKEN_RE =
  /\s*(?:(?<first>[fF][iI][rR][sS][tT])(?![A-Za-z_0-9$])|(?<any>[aA][nN][yY])(?![A-Za-z_0-9$])|(?<ident>[A-Za-z_][A-Za-z_0-9$]*)|(?<dquot>"(?:[^"]|"")*")|(?<star>\*)|(?<num>\d+)|(?<comma>,)|(?<open>\()|(?<close>\))|(?<junk>\S))/y;

/** Parses an SSN value like Patroni's `parse_sync_standby_names`; throws on text PostgreSQL would not take. */
export function parseSynchronousStandbyNames(value: string): ParsedStandbyNames {
  const tokens: Token[] = [];
  TOKEN_RE.lastIndex = 0;
  while (TOKEN_RE.lastIndex < value.length) {
    const m = TOKEN_RE.exec(value);
    if (!m?.groups) break;
    const kind = Object.entries(m.groups).find(([, v]) => v !== undefined)?.[0];
    if (kind === undefined) break;
    tokens.push({ kind, text: m.groups[kind] ?? '' });
  }
  if (tokens.length === 0) return EMPTY_STANDBY_NAMES;
  const kinds = tokens.map((t) => t.kind);
  const last = kinds[kinds.length - 1];
  let type: 'priority' | 'quorum' = 'priority';
  let num = 1;
  let list = tokens;
  if (kinds[0] === 'any' && kinds[1] === 'num' && kinds[2] === 'open' && last === 'close') {
    type = 'quorum';
    num = Number(tokens[1]?.text);
    list = tokens.slice(3, -1);
  } else if (kinds[0] === 'first' && kinds[1] === 'num' && kinds[2] === 'open' && last === 'close') {
    num = Number(tokens[1]?.text);
    list = tokens.slice(3, -1);
  } else if (kinds[0] === 'num' && kinds[1] === 'open' && last === 'close') {
    num = Number(tokens[0]?.text);
    list = tokens.slice(2, -1);
  }
  const members = new Set<string>();
  let hasStar = false;
  list.forEach((t, i) => {
    if (i % 2 === 1) {
      if (i === list.length - 1 || t.kind !== 'comma') {
        throw new Error(`Unparseable synchronous_standby_names value ${JSON.stringify(value)}`);
      }
      return;
    }
    if (t.kind === 'ident' || t.kind === 'first' || t.kind === 'any') members.add(t.text.toLowerCase());
    else if (t.kind === 'star') {
      members.add('*');
      hasStar = true;
    } else if (t.kind === 'dquot') members.add(t.text.slice(1, -1).replace(/""/g, '"').toLowerCase());
    else throw new Error(`Unparseable synchronous_standby_names value ${JSON.stringify(value)}`);
  });
  if (list.length === 0)
    throw new Error(`Unparseable synchronous_standby_names value ${JSON.stringify(value)}`);
  return { type, num, members, hasStar };
}

// ---------------------------------------------------------------------------------------------------------------
// choosing the synchronous standbys (Patroni's SyncHandler.current_state)

/** One pg_stat_replication row, with the LSN column chosen by synchronous_commit. */
export interface ReplicationInfo {
  readonly pid: number;
  readonly applicationName: string;
  /** `async` | `potential` | `sync` | `quorum`. */
  readonly syncState: string;
  readonly lsn: Lsn | undefined;
}

/** The LSN column Patroni sorts by: replay for remote_apply, write for remote_write, flush otherwise. */
export function lsnColumnFor(synchronousCommit: string | undefined): 'replay' | 'write' | 'flush' {
  if (synchronousCommit === 'remote_apply') return 'replay';
  if (synchronousCommit === 'remote_write') return 'write';
  return 'flush';
}

export interface CurrentStateInput {
  readonly members: readonly Member[];
  readonly replication: readonly ReplicationInfo[];
  /** Names in `/sync` now (any case). */
  readonly syncKeyMembers: readonly string[];
  /** The SSN PostgreSQL runs with, parsed. */
  readonly standbyNames: ParsedStandbyNames;
  /** Lower-cased names already verified to have caught up, with the walsender pid that did (Patroni's cache). */
  readonly readyReplicas: ReadonlyMap<string, number>;
  /** The primary's flush LSN when SSN last changed: newly listed standbys must reach it. */
  readonly primaryFlushLsn: Lsn;
  /** The primary's current WAL position (used as the reference with fewer than two candidates). */
  readonly lastOperation: Lsn;
  readonly nodeCount: number;
  readonly maxLagOnSyncnode: bigint;
  readonly majorVersion: number;
}

export interface CurrentState {
  /** The members that should be synchronous (at most nodeCount), best first. */
  readonly candidates: readonly string[];
  /** The candidates that really are synchronous now and may be listed in `/sync`. */
  readonly syncNodes: readonly string[];
  /** The updated cache of verified replicas. */
  readonly readyReplicas: ReadonlyMap<string, number>;
}

/** A member may be a synchronous standby: running per its member key, without the `nosync` tag. */
export function syncEligible(m: Member): boolean {
  return m.data.state === 'running' && !tagNoSync(m.data.tags);
}

interface SyncReplica {
  readonly pid: number;
  readonly name: string;
  readonly syncState: string;
  readonly lsn: Lsn;
  readonly nofailover: boolean;
  readonly syncPriority: number;
}

/** `_ReplicaList`'s order: (sync_priority, sync_state, lsn) descending, ties kept in pg_stat_replication order. */
export function compareSyncReplicas(
  a: Pick<SyncReplica, 'syncPriority' | 'syncState' | 'lsn'>,
  b: Pick<SyncReplica, 'syncPriority' | 'syncState' | 'lsn'>,
): number {
  if (a.syncPriority !== b.syncPriority) return b.syncPriority - a.syncPriority;
  if (a.syncState !== b.syncState) return a.syncState < b.syncState ? 1 : -1;
  return a.lsn === b.lsn ? 0 : a.lsn < b.lsn ? 1 : -1;
}

/**
 * Patroni's `_ReplicaList`: the streaming rows of running members eligible for sync, sorted by
 * `compareSyncReplicas`, members without `nofailover` first (stable); `maxLsn` is the most advanced of them (the
 * last operation when there is one replica or none).
 */
function replicaList(input: CurrentStateInput): {
  readonly byName: ReadonlyMap<string, Member>;
  readonly ordered: readonly SyncReplica[];
  readonly maxLsn: Lsn;
} {
  const byName = new Map(input.members.map((m) => [m.name.toLowerCase(), m]));
  const replicas: SyncReplica[] = [];
  for (const r of input.replication) {
    const m = byName.get(r.applicationName.toLowerCase());
    if (r.lsn === undefined || !m || !syncEligible(m)) continue;
    replicas.push({
      pid: r.pid,
      name: m.name,
      syncState: r.syncState,
      lsn: r.lsn,
      nofailover: tagNoFailover(m.data.tags),
      syncPriority: tagSyncPriority(m.data.tags),
    });
  }
  replicas.sort(compareSyncReplicas);
  const maxLsn =
    replicas.length > 1 ? replicas.reduce((a, r) => (r.lsn > a ? r.lsn : a), 0n) : input.lastOperation;
  const ordered = [...replicas.filter((r) => !r.nofailover), ...replicas.filter((r) => r.nofailover)];
  return { byName, ordered, maxLsn };
}

/**
 * Picks the synchronous standbys as Patroni 4.1.4 (`_ReplicaList`, `SyncHandler.current_state`): streaming rows of
 * running members without `nosync`, sorted by (sync_priority, sync_state, lsn) descending (a higher `sync_priority`
 * tag first, then sync > potential > async, then the most advanced), members without `nofailover` first (stable),
 * skipping members lagging more than maximum_lag_on_syncnode, up to synchronous_node_count (1 before 9.6).
 */
export function currentState(input: CurrentStateInput): CurrentState {
  const { ordered, maxLsn } = replicaList(input);
  const count = input.majorVersion > 0 && input.majorVersion < 90600 ? 1 : Math.max(1, input.nodeCount);
  const inSyncKey = new Set(input.syncKeyMembers.map((n) => n.toLowerCase()));
  const ready = new Map(input.readyReplicas);
  const candidates: string[] = [];
  const syncNodes: string[] = [];
  for (const r of ordered) {
    const key = r.name.toLowerCase();
    if (
      !ready.has(key) &&
      input.standbyNames.members.has(key) &&
      (inSyncKey.has(key) || (r.syncState === 'sync' && r.lsn >= input.primaryFlushLsn))
    ) {
      ready.set(key, r.pid);
    }
    if (input.maxLagOnSyncnode <= 0n || maxLsn - r.lsn <= input.maxLagOnSyncnode) {
      candidates.push(r.name);
      if (r.syncState === 'sync' && ready.has(key)) syncNodes.push(r.name);
    }
    if (candidates.length >= count) break;
  }
  return { candidates, syncNodes, readyReplicas: ready };
}

export interface QuorumState {
  /** The number in the SSN PostgreSQL runs with (0 for none). */
  readonly numsync: number;
  /** The names in it, in member spelling (none for `*`). */
  readonly sync: readonly string[];
  /** Active standbys known to have caught up since they were listed. */
  readonly syncConfirmed: readonly string[];
  /** The eligible streaming standbys: the wanted synchronous set. */
  readonly active: readonly string[];
  readonly readyReplicas: ReadonlyMap<string, number>;
}

/**
 * Patroni 4.1.4's `SyncHandler.current_state` in quorum commit mode: every eligible streaming standby is active
 * (nofailover ones only while fewer than synchronous_node_count are), and a listed standby counts as confirmed once
 * PostgreSQL reports it `quorum` (`sync`/`potential` before 10) at or past the primary's flush LSN of the moment the
 * SSN changed: `/sync` cannot vouch for it, as the voters are written once any one of them caught up.
 */
export function quorumCurrentState(input: CurrentStateInput): QuorumState {
  const { byName, ordered, maxLsn } = replicaList(input);
  const count = input.majorVersion > 0 && input.majorVersion < 90600 ? 1 : input.nodeCount;
  const supportsQuorum = input.majorVersion === 0 || input.majorVersion >= 100000;
  const ready = new Map(input.readyReplicas);
  const active: string[] = [];
  const confirmed: string[] = [];
  for (const r of ordered) {
    const key = r.name.toLowerCase();
    if (
      !ready.has(key) &&
      input.standbyNames.members.has(key) &&
      r.lsn >= input.primaryFlushLsn &&
      (r.syncState === 'quorum' ||
        (!supportsQuorum && (r.syncState === 'sync' || r.syncState === 'potential')))
    ) {
      ready.set(key, r.pid);
    }
    if (input.maxLagOnSyncnode > 0n && maxLsn - r.lsn > input.maxLagOnSyncnode) continue;
    if (r.nofailover && active.length >= count) continue;
    if (ready.has(key)) confirmed.push(r.name);
    active.push(r.name);
  }
  const names = input.standbyNames;
  const sync = names.hasStar ? [] : [...names.members].map((n) => byName.get(n)?.name ?? n);
  return { numsync: names.num, sync, syncConfirmed: confirmed, active, readyReplicas: ready };
}

/**
 * After SSN changed in PostgreSQL: verified replicas no longer listed are forgotten (Patroni's
 * `_handle_synchronous_standby_names_change`); the caller also memorizes the primary's flush LSN.
 */
export function pruneReadyReplicas(
  ready: ReadonlyMap<string, number>,
  names: ParsedStandbyNames,
): ReadonlyMap<string, number> {
  return new Map([...ready].filter(([name]) => names.members.has(name)));
}

// ---------------------------------------------------------------------------------------------------------------
// the order of steps (Patroni's process_sync_replication)

const sameSet = (a: readonly string[], b: readonly string[]): boolean => {
  const x = new Set(a.map((n) => n.toLowerCase()));
  const y = new Set(b.map((n) => n.toLowerCase()));
  return x.size === y.size && [...x].every((n) => y.has(n));
};

export type SyncPlan =
  /** `/sync` already lists exactly the picked standbys: nothing to do. */
  | { readonly kind: 'keep' }
  | {
      readonly kind: 'change';
      /**
       * First step, when defined: CAS-write `/sync` with only the standbys both listed now and confirmed
       * synchronous (a shrink; empty = `null`). Losing the CAS ends the cycle's sync processing.
       */
      readonly shrinkTo?: readonly string[];
      /** What `/sync` lists after the shrink (or now, without one). */
      readonly syncCommon: readonly string[];
      /** Then set SSN to these names (`['*']` in strict mode without candidates). */
      readonly standbyNames: readonly string[];
      /** Log "No standbys available!" (strict mode without candidates). */
      readonly noStandbys: boolean;
      /** Wait (poll with a deadline) for PostgreSQL to report the new standbys synchronous before the grow. */
      readonly waitForSync: boolean;
    };

export interface PlanInput {
  /** `/sync` members now (empty when the key is empty). */
  readonly current: readonly string[];
  readonly picked: readonly string[];
  /** Picked members confirmed synchronous now. */
  readonly allowPromote: readonly string[];
  readonly strict: boolean;
}

/** Phase one: what to change, in which order. */
export function planSyncReplication(input: PlanInput): SyncPlan {
  const { current, picked, allowPromote, strict } = input;
  if (sameSet(picked, current)) return { kind: 'keep' };
  const allow = new Set(allowPromote.map((n) => n.toLowerCase()));
  const syncCommon = current.filter((n) => allow.has(n.toLowerCase()));
  const shrink = !sameSet(syncCommon, current);
  const noStandbys = strict && picked.length === 0;
  const standbyNames = noStandbys ? ['*'] : picked;
  const waitForSync =
    standbyNames.length > 0 &&
    standbyNames[0] !== '*' &&
    !sameSet(allowPromote, standbyNames) &&
    allowPromote.length === 0;
  return {
    kind: 'change',
    ...(shrink ? { shrinkTo: syncCommon } : {}),
    syncCommon,
    standbyNames,
    noStandbys,
    waitForSync,
  };
}

/**
 * Phase two: the names to write to `/sync` once PostgreSQL runs with the new SSN (the confirmed standbys), or
 * undefined when `/sync` must stay as it is.
 */
export function growSyncKey(
  syncCommon: readonly string[],
  allowPromote: readonly string[],
): readonly string[] | undefined {
  if (allowPromote.length === 0 || sameSet(allowPromote, syncCommon)) return undefined;
  return allowPromote;
}

/**
 * The `/sync` value Patroni 4.1.4 writes (`AbstractDCS.sync_state`): `{"leader":..,"quorum":n,"sync_standby":"a,b"|null}`,
 * names sorted, `quorum` 0 outside quorum commit. A 3.0.2 node ignores `quorum`.
 */
export function syncStateValue(
  leader: string,
  standbys: readonly string[],
  quorum = 0,
): {
  readonly leader: string;
  readonly quorum: number;
  readonly sync_standby: string | null;
} {
  return { leader, quorum, sync_standby: standbys.length > 0 ? [...standbys].sort().join(',') : null };
}

/** The `synchronous_standby_names` a node configures when it (re)starts: Patroni's get_server_parameters rule. */
export function startupStandbyNames(
  settings: Pick<SyncSettings, 'enabled' | 'strict'>,
  managed: string | undefined,
): { readonly set: string } | { readonly remove: true } | undefined {
  if (!settings.enabled) return undefined;
  if (managed !== undefined) return { set: managed };
  return settings.strict ? { set: '*' } : { remove: true };
}
