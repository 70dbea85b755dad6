/**
 * `GET /metrics` (api.py `do_GET_metrics`, Patroni 4.1.4): the status document of `GET /patroni` in Prometheus'
 * text exposition format, with Patroni's metric names, HELP and TYPE lines, order and `{scope,name}` labels. The
 * values are read from the document the way Patroni reads them from `get_postgresql_status()`: a key the document
 * does not carry (PostgreSQL stopped or not answering) counts as 0, and the streaming / archive-recovery pair is
 * written only when the document names a server version of 9.6 or newer.
 *
 * Pure: the document in, the body out.
 */
import { isPrimaryRoleName } from './status.js';

/** A status document as `statusJson` writes it (or as a Patroni node answers `GET /patroni`). */
export type StatusDocument = Readonly<Record<string, unknown>>;

/** The body's Content-Type, as Patroni writes it. */
export const METRICS_CONTENT_TYPE = 'text/plain';

/**
 * Patroni's `PostgresqlState` in the order of its numeric indexes (which Patroni never renumbers): the state text
 * as the document spells it, and the enum member's name as `patroni_postgres_state`'s `# Values:` line spells it.
 */
const POSTGRES_STATES: readonly (readonly [text: string, name: string])[] = [
  ['initializing new cluster', 'initdb'],
  ['initdb failed', 'initdb_failed'],
  ['running custom bootstrap script', 'custom_bootstrap'],
  ['custom bootstrap failed', 'custom_bootstrap_failed'],
  ['creating replica', 'creating_replica'],
  ['running', 'running'],
  ['starting', 'starting'],
  ['starting after custom bootstrap', 'bootstrap_starting'],
  ['start failed', 'start_failed'],
  ['restarting', 'restarting'],
  ['restart failed', 'restart_failed'],
  ['stopping', 'stopping'],
  ['stopped', 'stopped'],
  ['stop failed', 'stop_failed'],
  ['crashed', 'crashed'],
];

/** `patroni_postgres_state`'s value: the state's index, -1 for a state Patroni has no member for (`unknown`). */
export function postgresStateIndex(state: unknown): number {
  return POSTGRES_STATES.findIndex(([text]) => text === state);
}

/** `''.join(x.zfill(2) for x in version.split('.'))`: `4.1.4` => `040104`. */
export function paddedSemver(version: string): string {
  return version
    .split('.')
    .map((x) => x.padStart(2, '0'))
    .join('');
}

/** Python's `repr()` of a float in the range metrics use (epoch seconds): `1795316102.0`, `1795316102.353938`. */
export function pyFloat(x: number): string {
  return Number.isInteger(x) && Math.abs(x) < 1e16 ? `${x}.0` : String(x);
}

const DATETIME =
  /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:([+-])(\d{2}):(\d{2})(?::(\d{2}))?)?$/;

/**
 * `(datetime - epoch).total_seconds()` of a timestamp in Python `str(datetime)` form
 * (`2026-11-22 02:55:02.353938+00:00`): whole microseconds divided by 10**6, as `timedelta.total_seconds()`
 * computes it. Undefined when the text is no such timestamp.
 */
export function epochSeconds(text: string): number | undefined {
  const m = DATETIME.exec(text);
  if (!m) return undefined;
  const n = (i: number): number => Number(m[i] ?? 0);
  const utcMs = Date.UTC(n(1), n(2) - 1, n(3), n(4), n(5), n(6));
  const offsetSeconds = (m[8] === '-' ? -1 : 1) * (n(9) * 3600 + n(10) * 60 + n(11));
  const micros = (utcMs / 1000 - offsetSeconds) * 1_000_000 + Number((m[7] ?? '').padEnd(6, '0'));
  return micros / 1_000_000;
}

/** A document value as Python's `format()` writes it: integers plain, floats as `repr()`, booleans as 1/0. */
function numberText(v: unknown): string {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : pyFloat(v);
  return '0';
}

/** The seconds of a datetime value, 0 when there is none (Patroni: `... if value else 0`). */
function timestampText(v: unknown): string {
  const s = typeof v === 'string' ? epochSeconds(v) : undefined;
  return s === undefined ? '0' : pyFloat(s);
}

/** A label value in the exposition format (Patroni writes names unescaped; only `\`, `"` and newlines differ). */
const labelValue = (v: unknown): string =>
  (typeof v === 'string' ? v : '').replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

const flag = (b: boolean): string => (b ? '1' : '0');

const record = (v: unknown): Readonly<Record<string, unknown>> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** The body of `GET /metrics` for a status document (Patroni 4.1.4's set, order and wording). */
export function metricsText(doc: StatusDocument): string {
  const patroni = record(doc['patroni']);
  const xlog = record(doc['xlog']);
  const labels = `{scope="${labelValue(patroni['scope'])}",name="${labelValue(patroni['name'])}"}`;
  const lines: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, value: string): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}${labels} ${value}`);
  };
  const role = doc['role'];
  const xlogValue = (key: string): string => (key in xlog ? numberText(xlog[key]) : '0');
  const serverVersion = typeof doc['server_version'] === 'number' ? doc['server_version'] : 0;
  const version = typeof patroni['version'] === 'string' ? patroni['version'] : '';

  metric('patroni_version', 'gauge', 'Patroni semver without periods.', paddedSemver(version));
  metric(
    'patroni_postgres_running',
    'gauge',
    'Value is 1 if Postgres is running, 0 otherwise.',
    flag(doc['state'] === 'running'),
  );
  metric(
    'patroni_postmaster_start_time',
    'gauge',
    'Epoch seconds since Postgres started.',
    timestampText(doc['postmaster_start_time']),
  );
  metric(
    'patroni_primary',
    'gauge',
    'Value is 1 if this node is the leader, 0 otherwise.',
    flag(typeof role === 'string' && isPrimaryRoleName(role)),
  );
  metric(
    'patroni_xlog_location',
    'counter',
    'Current location of the Postgres transaction log, 0 if this node is not the leader.',
    xlogValue('location'),
  );
  metric(
    'patroni_standby_leader',
    'gauge',
    'Value is 1 if this node is the standby_leader, 0 otherwise.',
    flag(role === 'standby_leader'),
  );
  metric(
    'patroni_replica',
    'gauge',
    'Value is 1 if this node is a replica, 0 otherwise.',
    flag(role === 'replica'),
  );
  metric(
    'patroni_sync_standby',
    'gauge',
    'Value is 1 if this node is a sync standby, 0 otherwise.',
    flag(doc['sync_standby'] === true),
  );
  metric(
    'patroni_quorum_standby',
    'gauge',
    'Value is 1 if this node is a quorum standby, 0 otherwise.',
    flag(doc['quorum_standby'] === true),
  );
  metric(
    'patroni_xlog_received_location',
    'counter',
    'Current location of the received Postgres transaction log, 0 if this node is not a replica.',
    xlogValue('received_location'),
  );
  metric(
    'patroni_xlog_replayed_location',
    'counter',
    'Current location of the replayed Postgres transaction log, 0 if this node is not a replica.',
    xlogValue('replayed_location'),
  );
  metric(
    'patroni_xlog_replayed_timestamp',
    'gauge',
    'Current timestamp of the replayed Postgres transaction log, 0 if null.',
    timestampText(xlog['replayed_timestamp']),
  );
  metric(
    'patroni_xlog_paused',
    'gauge',
    'Value is 1 if the Postgres xlog is paused, 0 otherwise.',
    flag(xlog['paused'] === true),
  );
  if (serverVersion >= 90600) {
    metric(
      'patroni_postgres_streaming',
      'gauge',
      'Value is 1 if Postgres is streaming, 0 otherwise.',
      flag(doc['replication_state'] === 'streaming'),
    );
    metric(
      'patroni_postgres_in_archive_recovery',
      'gauge',
      'Value is 1 if Postgres is replicating from archive, 0 otherwise.',
      flag(doc['replication_state'] === 'in archive recovery'),
    );
  }
  clusterMetrics(doc, metric);
  lines.push(
    '# HELP patroni_postgres_state Numeric representation of Postgres state.',
    `# Values: ${POSTGRES_STATES.map(([, name], i) => `${i}=${name}`).join(', ')}`,
    '# TYPE patroni_postgres_state gauge',
    `patroni_postgres_state${labels} ${postgresStateIndex(doc['state'])}`,
  );
  return lines.join('\n') + '\n';
}

type MetricWriter = (name: string, type: 'gauge' | 'counter', help: string, value: string) => void;

/** From `patroni_postgres_server_version` to `patroni_is_paused`. */
function clusterMetrics(doc: StatusDocument, metric: MetricWriter): void {
  metric(
    'patroni_postgres_server_version',
    'gauge',
    'Version of Postgres (if running), 0 otherwise.',
    numberText(doc['server_version']),
  );
  metric(
    'patroni_cluster_unlocked',
    'gauge',
    'Value is 1 if the cluster is unlocked, 0 if locked.',
    flag(doc['cluster_unlocked'] === true),
  );
  metric(
    'patroni_failsafe_mode_is_active',
    'gauge',
    'Value is 1 if failsafe mode is active, 0 if inactive.',
    flag(doc['failsafe_mode_is_active'] === true),
  );
  metric(
    'patroni_postgres_timeline',
    'gauge',
    'Postgres timeline of this node (if running), 0 otherwise.',
    numberText(doc['timeline']),
  );
  metric(
    'patroni_dcs_last_seen',
    'gauge',
    'Epoch timestamp when DCS was last contacted successfully by Patroni.',
    numberText(doc['dcs_last_seen']),
  );
  metric(
    'patroni_pending_restart',
    'gauge',
    'Value is 1 if the node needs a restart, 0 otherwise.',
    flag(doc['pending_restart'] === true),
  );
  metric(
    'patroni_is_paused',
    'gauge',
    'Value is 1 if auto failover is disabled, 0 otherwise.',
    flag(doc['pause'] === true),
  );
}
