/**
 * The health-check decision (api.py `do_GET*`): which status code a GET/HEAD/OPTIONS on a path answers, given what
 * the agent knows and its cached DCS view. Pure; the server turns the result into bytes.
 *
 * Routing mirrors Patroni: `/liveness` and `/readiness` (first path segment, GET only) have their own rules and
 * answer status-only; every other GET is a health check answering with the status document; HEAD and OPTIONS are
 * the same checks answering status-only. The server routes `/patroni`, `/cluster`, ... before asking here.
 */
import type { Cluster } from '../model/cluster.js';
import { parseGucInt } from '../model/guc-values.js';
import { versionAtLeast } from '../model/flavor.js';
import { pyStr } from '../model/python.js';
import { tagNoLoadBalance } from '../model/tags.js';
import { holdsLeaderLock, isPrimaryRoleName, spokenVersion, type AgentStatus } from './status.js';

/** `parse_qs` output: every non-blank value of each key, in order. */
export type QueryParams = Readonly<Record<string, readonly string[]>>;

export type HealthCode = 200 | 503;

export interface HealthResult {
  readonly code: HealthCode;
  /** `status`: body is the status document (GET); `none`: bare status line (HEAD, OPTIONS, liveness, readiness). */
  readonly body: 'status' | 'none';
  /** Which rule decided, for logs and tests. */
  readonly rule: string;
}

const RULES_WITHOUT_TAGS = new Set(['standby_leader', 'leader', 'primary']);

/** First path segment, as Patroni's router sees it (`/patroni/x` -> `patroni`, `/` -> ``). */
export function firstSegment(path: string): string {
  return path.replace(/^\/+/, '').split('/')[0] ?? '';
}

/**
 * Decides a generic or liveness/readiness check. `path` is the URL path without the query; `cluster` is the cached
 * DCS view, undefined when the DCS is unreachable or the view expired.
 */
export function healthCheck(
  method: string,
  path: string,
  query: QueryParams,
  status: AgentStatus,
  cluster?: Cluster,
): HealthResult {
  if (method === 'GET') {
    const seg = firstSegment(path);
    if (seg === 'liveness') return { code: liveness(status), body: 'none', rule: 'liveness' };
    if (seg === 'readiness')
      return { code: readiness(query, status, cluster), body: 'none', rule: 'readiness' };
  }
  const { code, rule } = genericCheck(path, query, status, cluster);
  return { code, body: method === 'GET' ? 'status' : 'none', rule };
}

function first(query: QueryParams, key: string): string | undefined {
  return query[key]?.[0];
}

/** The status optime the node compares itself against: the cluster's, or (4.1+) the WAL receiver's if later. */
function leaderOptime(status: AgentStatus, cluster: Cluster | undefined): bigint {
  const optime = cluster?.status.optime ?? 0n;
  const latest = status.postgres?.latestEndLsn ?? 0n;
  return latest > optime ? latest : optime;
}

function replayed(status: AgentStatus): bigint {
  const x = status.postgres?.xlog;
  return x?.kind === 'replica' ? x.replayedLocation : 0n;
}

/** api.py's `?tag_x=` comparison: a string tag as it is, any other value as `str(value).lower()`. */
function tagQueryText(v: unknown): string {
  return typeof v === 'string' ? v : pyStr(v).toLowerCase();
}

function genericCheck(
  rawPath: string,
  query: QueryParams,
  status: AgentStatus,
  cluster: Cluster | undefined,
): { code: HealthCode; rule: string } {
  const v = spokenVersion(status);
  const v4 = versionAtLeast(v, [4, 0, 0]);
  const path = rawPath === '/' ? '/primary' : rawPath;
  const role = status.role;
  const running = status.state === 'running';

  const lagLimit = parseIntWithUnit(first(query, 'lag'), 'B');
  const optime = leaderOptime(status, cluster);
  const isLagging = optime > 0n && lagLimit !== undefined && optime > replayed(status) + lagLimit;
  // `?replication_state=` is only honoured after 4.1.4 (Patroni's development branch).
  const stateOk =
    !versionAtLeast(v, [4, 1, 5]) ||
    first(query, 'replication_state') === undefined ||
    status.postgres?.replicationState === first(query, 'replication_state');
  let replicaCode: HealthCode =
    !tagNoLoadBalance(status.tags) && !isLagging && role === 'replica' && running && stateOk ? 200 : 503;

  let leaderCode: HealthCode;
  let primaryCode: HealthCode;
  let standbyLeaderCode: HealthCode;
  if (!cluster && status.pause) {
    leaderCode = isPrimaryRoleName(role) || role === 'standby_leader' ? 200 : 503;
    primaryCode = isPrimaryRoleName(role) ? 200 : 503;
    standbyLeaderCode = role === 'standby_leader' ? 200 : 503;
  } else if (holdsLeaderLock(status)) {
    leaderCode = 200;
    if (status.standbyCluster) {
      primaryCode = replicaCode = 503;
      standbyLeaderCode = role === 'replica' || role === 'standby_leader' ? 200 : 503;
    } else {
      primaryCode = 200;
      standbyLeaderCode = 503;
    }
  } else {
    leaderCode = primaryCode = standbyLeaderCode = 503;
  }
  const leaderish = primaryCode === 200 || standbyLeaderCode === 200;

  let code: HealthCode = 503;
  let rule = 'none';
  if (path.includes('standby_leader') || path.includes('standby-leader')) {
    [code, rule] = [standbyLeaderCode, 'standby_leader'];
  } else if (path.includes('leader')) {
    [code, rule] = [leaderCode, 'leader'];
  } else if (path.includes('master') || path.includes('primary') || path.includes('read-write')) {
    [code, rule] = [primaryCode, 'primary'];
  } else if (path.includes('replica')) {
    [code, rule] = [replicaCode, 'replica'];
  } else if (path.includes('read-only') && !path.includes('sync') && !(v4 && path.includes('quorum'))) {
    [code, rule] = [leaderish ? 200 : replicaCode, 'read-only'];
  } else if (path.includes('health')) {
    [code, rule] = [running ? 200 : 503, 'health'];
  } else if (cluster) {
    const s = status.syncStandby;
    const q = v4 && status.quorumStandby;
    if ((path === '/sync' || path === '/synchronous') && s) [code, rule] = [replicaCode, 'sync'];
    else if (v4 && path === '/quorum' && q) [code, rule] = [replicaCode, 'quorum'];
    else if ((path === '/async' || path === '/asynchronous') && !s && !q)
      [code, rule] = [replicaCode, 'async'];
    else if (v4 && path === '/read-only-quorum') {
      rule = 'read-only-quorum';
      if (leaderish) code = 200;
      else if (q) code = replicaCode;
    } else if (path === '/read-only-sync' || path === '/read-only-synchronous') {
      rule = 'read-only-sync';
      if (leaderish) code = 200;
      else if (s) code = replicaCode;
    }
  }

  if (code === 200 && !RULES_WITHOUT_TAGS.has(rule)) {
    for (const [key, values] of Object.entries(query)) {
      if (!key.startsWith('tag_')) continue;
      const own = status.tags[key.slice(4)];
      if (own === undefined || own === null || tagQueryText(own) !== values[0]) {
        code = 503;
        break;
      }
    }
  }
  return { code, rule };
}

/** 200 while paused, or while the next HA cycle is overdue by less than ttl (running primary) / 2*ttl (others). */
function liveness(status: AgentStatus): HealthCode {
  if (status.pause) return 200;
  const primary = isPrimaryRoleName(status.role) && status.postmasterRunning;
  const threshold = status.ttl * (primary ? 1 : 2) * 1000;
  return status.nextRunAt + threshold > status.at ? 200 : 503;
}

function readiness(query: QueryParams, status: AgentStatus, cluster: Cluster | undefined): HealthCode {
  if (holdsLeaderLock(status)) return 200;
  if (status.state !== 'running') return 503;
  if (!versionAtLeast(spokenVersion(status), [4, 1, 0])) return cluster ? 200 : 503;
  const pg = status.postgres;
  if (pg?.replicationState !== 'streaming') return 503;
  const latest = pg.latestEndLsn ?? 0n;
  if (!cluster && latest === 0n) return status.failsafeModeIsActive ? 200 : 503;
  const optime = leaderOptime(status, cluster);
  const x = pg.xlog;
  const position =
    x.kind === 'replica' ? (first(query, 'mode') === 'write' ? x.receivedLocation : x.replayedLocation) : 0n;
  const limit = parseIntWithUnit(first(query, 'lag'), 'B') ?? BigInt(status.maximumLagOnFailover);
  return optime - position > limit ? 503 : 200;
}

/** Patroni's `parse_int(value, base_unit)` for the health checks' `?lag=` (`1MB`, `16kB`, `1048576`). */
export function parseIntWithUnit(value: string | undefined, baseUnit: string): bigint | undefined {
  if (value === undefined) return undefined;
  const n = parseGucInt(value, baseUnit);
  return n === undefined || !Number.isFinite(n) ? undefined : BigInt(n);
}
