/**
 * pg_rewind support (rewind.py): whether the local data directory can be rewound (wal_log_hints or data checksums
 * per pg_controldata), whether it has diverged from the leader's timeline (IDENTIFY_SYSTEM and TIMELINE_HISTORY
 * over a replication connection, compared with the local timeline and LSN), where a shutdown checkpoint record
 * ends (pg_waldump), and running `pg_rewind -D <data_dir> --source-server <dsn>` with the rewind credentials.
 */
import type { ClientConfig } from 'pg';
import { join, resolve } from 'node:path';
import { parseLsnText, type Lsn } from '../model/lsn.js';
import { runPgTool, writePrivateFile, type PgBinariesConfig, type RunResult } from './binaries.js';
import { formatConninfo, renderPgpass } from './config-writer.js';
import { pgClientSsl } from './pg-ssl.js';

type PgModule = typeof import('pg');

async function loadPg(): Promise<PgModule> {
  const mod = (await import('pg')) as PgModule & { readonly default?: PgModule };
  return mod.default ?? mod;
}

/** Patroni's `configuration_allows_rewind`: `wal_log_hints` was on or the cluster has data checksums. */
export function configurationAllowsRewind(controldata: ReadonlyMap<string, string>): boolean {
  return (
    controldata.get('wal_log_hints setting') === 'on' ||
    (controldata.get('Data page checksum version') ?? '0') !== '0'
  );
}

export interface LocalPosition {
  /** The data directory was shut down as a replica (its position is the minimum recovery point). */
  readonly inRecovery: boolean;
  readonly timeline: number;
  readonly lsn: Lsn;
}

/**
 * The local timeline and LSN of a stopped instance from pg_controldata (Patroni's
 * `_get_local_timeline_lsn_from_controldata`); undefined when the directory was not shut down cleanly.
 */
export function localPositionFromControldata(data: ReadonlyMap<string, string>): LocalPosition | undefined {
  let state = data.get('Database cluster state');
  if (state === 'shut down in recovery' || state === 'in archive recovery') {
    const lsn = parseLsnText(data.get('Minimum recovery ending location') ?? '');
    const tli = Number.parseInt(data.get("Min recovery ending loc's timeline") ?? '', 10);
    if (lsn === undefined || !Number.isInteger(tli)) return undefined;
    if (lsn !== 0n && tli !== 0) return { inRecovery: true, timeline: tli, lsn };
    state = 'shut down'; // it was a primary when it stopped
  }
  if (state !== 'shut down') return undefined;
  const lsn = parseLsnText(data.get('Latest checkpoint location') ?? '');
  const tli = Number.parseInt(data.get("Latest checkpoint's TimeLineID") ?? '', 10);
  if (lsn === undefined || !Number.isInteger(tli)) return undefined;
  return { inRecovery: false, timeline: tli, lsn };
}

/** `<timeline>.history` text -> `[parent_tli, switch_lsn]` pairs. */
export function parseTimelineHistory(text: string): [number, Lsn][] {
  const out: [number, Lsn][] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const [tli, lsnText] = t.split(/\s+/);
    const n = Number.parseInt(tli ?? '', 10);
    const lsn = parseLsnText(lsnText ?? '');
    if (Number.isInteger(n) && lsn !== undefined) out.push([n, lsn]);
  }
  return out;
}

export interface PrimaryTimeline {
  readonly timeline: number;
  /** The primary's history file content; only read when the primary is on a later timeline than ours. */
  readonly history?: string;
}

/**
 * Patroni's `_check_timeline_and_lsn` decision: rewind when our timeline is ahead of the primary's, when our
 * timeline is not in the primary's history, or when we are past its switch point (a former primary whose shutdown
 * checkpoint is exactly the switch point needs no rewind: `checkpointEnd` tells where the record ends).
 */
export async function rewindNeeded(
  local: LocalPosition,
  primary: PrimaryTimeline,
  checkpointEnd: (timeline: number, lsn: Lsn) => Promise<Lsn | undefined>,
): Promise<boolean> {
  if (local.timeline > primary.timeline) return true;
  if (local.timeline === primary.timeline) return false;
  if (primary.timeline <= 1 || primary.history === undefined) return false;
  for (const [parent, switchpoint] of parseTimelineHistory(primary.history)) {
    if (parent === local.timeline) {
      if (local.inRecovery) return local.lsn > switchpoint;
      if (local.lsn >= switchpoint) return true;
      return switchpoint !== (await checkpointEnd(local.timeline, local.lsn));
    }
    if (parent > local.timeline) return true;
  }
  return true;
}

export interface ServerAddress {
  readonly host: string;
  readonly port: number;
}

export interface Credentials {
  readonly username: string;
  readonly password?: string | undefined;
  /** libpq keywords given with the user (sslmode, sslcert, sslkey, sslrootcert, ...). */
  readonly connectionParams?: Readonly<Record<string, string>>;
}

/** node-postgres options for `user` (its SSL keywords applied, src/postgres/pg-ssl.ts). */
function sslOf(user: Credentials, host: string): Pick<ClientConfig, 'ssl'> {
  const ssl = pgClientSsl(user.connectionParams, host);
  return ssl === undefined ? {} : { ssl };
}

/** IDENTIFY_SYSTEM and (when the primary is ahead of `localTimeline`) TIMELINE_HISTORY over a replication connection. */
export async function primaryTimeline(
  server: ServerAddress,
  replication: Credentials,
  localTimeline: number,
  database = 'postgres',
): Promise<PrimaryTimeline> {
  const pg = await loadPg();
  const config: ClientConfig & { readonly replication: string } = {
    host: server.host,
    port: server.port,
    user: replication.username,
    database,
    connectionTimeoutMillis: 3_000,
    application_name: 'Patroni',
    replication: 'true',
    ...(replication.password !== undefined ? { password: replication.password } : {}),
    ...sslOf(replication, server.host),
  };
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  await client.connect();
  try {
    const ident = await client.query<{ readonly timeline?: unknown }>('IDENTIFY_SYSTEM');
    const tli = Number(ident.rows[0]?.timeline);
    if (!Number.isInteger(tli) || tli <= 0) throw new Error('IDENTIFY_SYSTEM returned no timeline');
    if (tli <= localTimeline || tli <= 1) return { timeline: tli };
    const hist = await client.query<{ readonly content?: unknown }>(`TIMELINE_HISTORY ${tli}`);
    const content = hist.rows[0]?.content;
    const history = Buffer.isBuffer(content)
      ? content.toString('utf8')
      : typeof content === 'string'
        ? content
        : '';
    return { timeline: tli, history };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Runs one query on the primary with a short connect and statement timeout (`statementTimeoutMs`, 0: none, as
 * Patroni's CHECKPOINT on a remote primary); rejects on failure.
 */
export async function queryPrimary(
  server: ServerAddress,
  user: Credentials,
  sql: string,
  database = 'postgres',
  statementTimeoutMs = 2_000,
): Promise<unknown> {
  const pg = await loadPg();
  const client = new pg.Client({
    host: server.host,
    port: server.port,
    user: user.username,
    database,
    connectionTimeoutMillis: 3_000,
    statement_timeout: statementTimeoutMs,
    application_name: 'Patroni',
    ...(user.password !== undefined ? { password: user.password } : {}),
    ...sslOf(user, server.host),
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const res = await client.query<Record<string, unknown>>(sql);
    const row = res.rows[0];
    return row ? Object.values(row)[0] : undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The leader is a primary (Patroni's `check_leader_is_not_in_recovery`). */
export async function leaderIsPrimary(
  server: ServerAddress,
  user: Credentials,
  database?: string,
): Promise<boolean> {
  return (await queryPrimary(server, user, 'SELECT pg_catalog.pg_is_in_recovery()', database)) === false;
}

/**
 * Where the checkpoint record at `lsn` ends (Patroni's `_get_checkpoint_end`): pg_waldump reads two records and
 * fails on the second; its error names the LSN of the record after the checkpoint. Undefined when unknown.
 */
export async function checkpointEnd(
  bins: PgBinariesConfig,
  dataDir: string,
  timeline: number,
  lsn: Lsn,
): Promise<Lsn | undefined> {
  const fmt = (v: Lsn): string =>
    `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;
  let result: RunResult;
  try {
    result = await runPgTool(
      bins,
      'pg_waldump',
      ['-t', String(timeline), '-s', fmt(lsn), '-n', '2', '-p', join(resolve(dataDir), 'pg_wal')],
      { timeoutMs: 30_000, okExitCodes: [0, 1], env: { LANG: 'C', LC_ALL: 'C' } },
    );
  } catch {
    return undefined;
  }
  const pattern = `error in WAL record at ${fmt(lsn)}: invalid record length at `;
  const i = result.stderr.indexOf(pattern);
  if (i < 0) return undefined;
  const start = i + pattern.length;
  const end = result.stderr.indexOf(': wanted ', start);
  return end < 0 ? undefined : parseLsnText(result.stderr.slice(start, end));
}

export interface PgRewindOptions {
  readonly bins: PgBinariesConfig;
  readonly dataDir: string;
  readonly source: ServerAddress;
  /** The rewind user (superuser when no rewind user is configured). */
  readonly user: Credentials;
  readonly database: string;
  /** Written with the rewind credentials when there is a password (as Patroni's `write_pgpass`). */
  readonly pgpassPath: string;
  /** Default 1 h. */
  readonly timeoutMs?: number;
}

/** The `--source-server` connection string Patroni builds (`format_dsn`), with `target_session_attrs`. */
export function rewindDsn(o: Pick<PgRewindOptions, 'source' | 'user' | 'database'>): string {
  return formatConninfo({
    // The user's libpq keywords (sslmode, sslcert, ...), as Patroni's format_dsn of `conn_kwargs(auth)`.
    ...o.user.connectionParams,
    dbname: o.database,
    user: o.user.username,
    host: o.source.host,
    port: o.source.port,
    target_session_attrs: 'read-write',
  });
}

/** `pg_rewind -D <data_dir> --source-server <dsn>`; rejects (PgCommandError) on a non-zero exit. */
export async function pgRewind(o: PgRewindOptions): Promise<RunResult> {
  const env: Record<string, string> = { LANG: 'C', LC_ALL: 'C', PGOPTIONS: '-c statement_timeout=0' };
  if (o.user.password !== undefined) {
    writePrivateFile(
      o.pgpassPath,
      renderPgpass({
        host: o.source.host,
        port: o.source.port,
        user: o.user.username,
        password: o.user.password,
      }) + '\n',
      o.bins.runAs,
    );
    env['PGPASSFILE'] = resolve(o.pgpassPath);
  }
  return runPgTool(o.bins, 'pg_rewind', ['-D', resolve(o.dataDir), '--source-server', rewindDsn(o)], {
    timeoutMs: o.timeoutMs ?? 3_600_000,
    env,
  });
}
