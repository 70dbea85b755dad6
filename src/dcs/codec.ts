/**
 * Wire values <-> model. One parser (`clusterFromNodes`) builds the cluster view for every backend, as forgiving
 * as Patroni's readers (dcs/__init__.py): legacy formats are understood and garbage reads as "empty", never throws.
 */
import {
  EMPTY_STATUS,
  EMPTY_SYNC,
  type Cluster,
  type ClusterConfig,
  type ClusterStatus,
  type Failover,
  type HistoryLine,
  type Leader,
  type Member,
  type MemberData,
  type SyncState,
  type TimelineHistory,
} from '../model/cluster.js';
import { lsnFromJson, type Lsn } from '../model/lsn.js';
import { textOf } from '../model/text.js';
import { KEYS, type DcsNode } from './dcs.js';

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** A legacy Governor-style member value: `postgres://u:p@h:port/db?application_name=<api_url>`. */
function legacyMemberObject(value: string): Record<string, unknown> {
  try {
    const url = new URL(value);
    const apiUrl = url.searchParams.get('application_name') ?? undefined;
    url.search = '';
    return { conn_url: url.toString(), api_url: apiUrl };
  } catch {
    return {};
  }
}

export function parseMemberData(value: string): MemberData {
  let raw: Record<string, unknown>;
  if (value.startsWith('postgres')) raw = legacyMemberObject(value);
  else {
    const parsed = parseJson(value);
    raw = isObject(parsed) ? parsed : {};
  }
  const timeline = lsnFromJson(raw['timeline']);
  const tags = isObject(raw['tags']) ? raw['tags'] : {};
  const reason = isObject(raw['pending_restart_reason'])
    ? (raw['pending_restart_reason'] as MemberData['pendingRestartReason'])
    : undefined;
  const state = str(raw['state']);
  return {
    raw,
    // An empty conn_url counts as missing, as in Patroni.
    connUrl: str(raw['conn_url']) || connUrlFromKwargs(raw['conn_kwargs']),
    apiUrl: str(raw['api_url']),
    state: state === undefined || state === '' ? 'unknown' : state,
    role: str(raw['role']),
    version: str(raw['version']),
    xlogLocation: lsnFromJson(raw['xlog_location']),
    receiveLsn: lsnFromJson(raw['receive_lsn']),
    replayLsn: lsnFromJson(raw['replay_lsn']),
    replicationState: str(raw['replication_state']),
    timeline: timeline === undefined ? undefined : Number(timeline),
    tags,
    pendingRestart: raw['pending_restart'] === true,
    pendingRestartReason: reason,
    scheduledRestart: isObject(raw['scheduled_restart']) ? raw['scheduled_restart'] : undefined,
    pause: raw['pause'] === true,
    checkpointAfterPromote:
      typeof raw['checkpoint_after_promote'] === 'boolean' ? raw['checkpoint_after_promote'] : undefined,
    proxyUrl: str(raw['proxy_url']),
  };
}

function connUrlFromKwargs(kwargs: unknown): string | undefined {
  if (!isObject(kwargs) || typeof kwargs['host'] !== 'string') return undefined;
  const port = kwargs['port'] === undefined ? '' : `:${textOf(kwargs['port'])}`;
  const db = typeof kwargs['dbname'] === 'string' ? kwargs['dbname'] : 'postgres';
  const host = kwargs['host'].includes(':') ? `[${kwargs['host']}]` : kwargs['host'];
  return `postgres://${host}${port}/${db}`;
}

/** `{"leader":..,"member":..,"scheduled_at":..}` or legacy `leader:candidate`; garbage is empty. */
export function parseFailover(value: string, version: string): Failover {
  const parsed = parseJson(value);
  if (isObject(parsed)) {
    return {
      version,
      leader: str(parsed['leader']) || undefined,
      member: str(parsed['member']) || undefined,
      scheduledAt: str(parsed['scheduled_at']) || undefined,
    };
  }
  if (parsed === undefined && value.trim() !== '') {
    // Legacy text: `leader:candidate`, or a bare leader name.
    const [leader, member] = value.split(':', 2);
    return { version, leader: leader?.trim() || undefined, member: member?.trim() || undefined };
  }
  return { version };
}

export function parseSyncState(value: string | undefined, version?: string): SyncState {
  const parsed = value === undefined ? undefined : parseJson(value);
  if (!isObject(parsed) || !str(parsed['leader'])) return version ? { version, members: [] } : EMPTY_SYNC;
  const syncStandby = str(parsed['sync_standby']);
  const quorum = lsnFromJson(parsed['quorum']);
  // Patroni drops the whole state when quorum is present but not an integer.
  if (parsed['quorum'] !== undefined && parsed['quorum'] !== null && quorum === undefined) {
    return version ? { version, members: [] } : EMPTY_SYNC;
  }
  return {
    version,
    leader: str(parsed['leader']),
    syncStandby,
    members: syncStandby
      ? syncStandby
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
      : [],
    quorum: quorum === undefined ? undefined : Number(quorum),
  };
}

function lsnMap(value: unknown): Record<string, Lsn> {
  const v = typeof value === 'string' ? parseJson(value) : value;
  if (!isObject(v)) return {};
  const out: Record<string, Lsn> = {};
  for (const [k, x] of Object.entries(v)) {
    const lsn = lsnFromJson(x);
    if (lsn !== undefined) out[k] = lsn;
  }
  return out;
}

/** `{"optime":N,"slots":{..},"retain_slots":[..]}`; a bare integer is a legacy optime; garbage is empty. */
export function parseStatus(value: string | undefined): ClusterStatus {
  if (value === undefined) return EMPTY_STATUS;
  const parsed = parseJson(value);
  // A bare JSON integer is a legacy optime; a JSON string is not.
  if (typeof parsed === 'number') return { optime: lsnFromJson(parsed) ?? 0n, slots: {}, retainSlots: [] };
  if (!isObject(parsed)) return EMPTY_STATUS;
  const retain =
    typeof parsed['retain_slots'] === 'string' ? parseJson(parsed['retain_slots']) : parsed['retain_slots'];
  return {
    optime: lsnFromJson(parsed['optime']) ?? 0n,
    slots: lsnMap(parsed['slots']),
    retainSlots: Array.isArray(retain) ? retain.filter((s): s is string => typeof s === 'string') : [],
  };
}

export function parseHistory(value: string, version: string): TimelineHistory {
  const parsed = parseJson(value);
  const lines: HistoryLine[] = [];
  if (Array.isArray(parsed)) {
    for (const line of parsed) {
      if (!Array.isArray(line) || line.length < 3) continue;
      const tl = lsnFromJson(line[0]);
      const lsn = lsnFromJson(line[1]);
      if (tl === undefined || lsn === undefined) continue;
      lines.push({
        timeline: Number(tl),
        lsn,
        reason: textOf(line[2]),
        timestamp: line[3] === undefined || line[3] === null ? undefined : textOf(line[3]),
        newLeader: line[4] === undefined || line[4] === null ? undefined : textOf(line[4]),
      });
    }
  }
  return { version, raw: value, lines };
}

export function parseConfig(node: DcsNode): ClusterConfig {
  const parsed = parseJson(node.value);
  const valid = isObject(parsed);
  // An invalid value keeps its CAS version (so edit-config can overwrite it); only the change marker is zeroed.
  return {
    version: node.version,
    modifyVersion: valid ? node.modifyVersion : '0',
    raw: node.value,
    data: valid ? parsed : {},
    valid,
  };
}

function parseFailsafe(value: string | undefined): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  const parsed = parseJson(value);
  if (!isObject(parsed)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** Builds the cluster view from every key under the cluster prefix (keys relative to it). */
export function clusterFromNodes(scope: string, nodes: readonly DcsNode[]): Cluster {
  const byKey = new Map(nodes.map((n) => [n.key, n]));
  const members: Member[] = nodes
    .filter((n) => n.key.startsWith(KEYS.members) && n.key.length > KEYS.members.length)
    .filter((n) => !n.key.slice(KEYS.members.length).includes('/'))
    .map((n) => ({
      name: n.key.slice(KEYS.members.length),
      version: n.version,
      session: n.session,
      data: parseMemberData(n.value),
    }));

  const leaderNode = byKey.get(KEYS.leader);
  let leader: Leader | undefined;
  if (leaderNode && leaderNode.value !== '') {
    leader = {
      name: leaderNode.value,
      version: leaderNode.version,
      session: leaderNode.session,
      member: members.find((m) => m.name === leaderNode.value),
    };
  }

  const statusNode = byKey.get(KEYS.status);
  const status = statusNode
    ? parseStatus(statusNode.value)
    : parseStatus(byKey.get(KEYS.leaderOptime)?.value);
  const configNode = byKey.get(KEYS.config);
  const failoverNode = byKey.get(KEYS.failover);
  const historyNode = byKey.get(KEYS.history);
  const syncNode = byKey.get(KEYS.sync);

  return {
    scope,
    initialize: byKey.get(KEYS.initialize)?.value,
    config: configNode ? parseConfig(configNode) : undefined,
    leader,
    status,
    members,
    failover: failoverNode ? parseFailover(failoverNode.value, failoverNode.version) : undefined,
    sync: syncNode ? parseSyncState(syncNode.value, syncNode.version) : EMPTY_SYNC,
    history: historyNode ? parseHistory(historyNode.value, historyNode.modifyVersion) : undefined,
    failsafe: parseFailsafe(byKey.get(KEYS.failsafe)?.value),
  };
}

/**
 * Every cluster of a namespace from the keys under the namespace prefix (keys relative to it: `<scope>/<key>`),
 * one per scope holding at least one key, in scope order (code points, as Python sorts). Keys directly under the
 * namespace, with no scope, belong to no cluster.
 */
export function clustersFromNamespaceNodes(nodes: readonly DcsNode[]): Cluster[] {
  const byScope = new Map<string, DcsNode[]>();
  for (const n of nodes) {
    const slash = n.key.indexOf('/');
    if (slash <= 0 || slash === n.key.length - 1) continue;
    const scope = n.key.slice(0, slash);
    let list = byScope.get(scope);
    if (list === undefined) byScope.set(scope, (list = []));
    list.push({ ...n, key: n.key.slice(slash + 1) });
  }
  return clustersOfScopes([...byScope]);
}

/**
 * The clusters of a namespace read scope by scope (`[scope, its nodes with keys relative to it]`), in name order;
 * a scope without keys is no cluster. Reading a scope at a time lets its nodes go as soon as its cluster is made.
 */
export function clustersOfScopes(scopes: Iterable<readonly [string, readonly DcsNode[]]>): Cluster[] {
  const clusters: Cluster[] = [];
  for (const [scope, nodes] of scopes) if (nodes.length > 0) clusters.push(clusterFromNodes(scope, nodes));
  return clusters.sort((a, b) => byCodePoint(a.scope, b.scope));
}

/**
 * Python's string order (by code point), not UTF-16 code units nor the locale's. The two orders differ only where
 * the first differing units are both at or above U+D800: a surrogate (part of a code point above U+FFFF) then
 * sorts after U+E000..U+FFFF.
 */
export function byCodePoint(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}
