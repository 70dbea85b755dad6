/**
 * Talking SQL to the local instance: a connection helper (node-postgres, loaded lazily) and the status queries the
 * agent needs every HA cycle. LSNs come back as bigint.
 */
import type { ClientConfig } from 'pg';
import { parseLsnText, type Lsn } from '../model/lsn.js';
import { errorText } from '../model/text.js';

type PgModule = typeof import('pg');

async function loadPg(): Promise<PgModule> {
  // Bundled as CommonJS the module may only have a default export; as ESM the named exports are there too.
  const mod = (await import('pg')) as PgModule & { readonly default?: PgModule };
  return mod.default ?? mod;
}

export interface ConnectOptions {
  /** A unix socket directory (starts with `/`) or a host name / IP (127.0.0.1). */
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string | undefined;
  /** `postgresql.database`, default `postgres`. */
  readonly database?: string;
  /** Default 3 s, as Patroni. */
  readonly connectTimeoutMs?: number;
  /** Server-side statement_timeout, default 2 s, as Patroni. 0 = none. */
  readonly statementTimeoutMs?: number;
  /**
   * Client-side bound of one query, default statement_timeout + 3 s (none when statement_timeout is 0). A server
   * that stopped answering (SIGSTOPped, a dead network path) never enforces its statement_timeout: without this the
   * HA loop would wait forever. A query past it fails and the connection is closed.
   */
  readonly queryTimeoutMs?: number;
  /** Default `pgwarden`. */
  readonly applicationName?: string;
}

export type Row = Readonly<Record<string, unknown>>;

/** One open connection. */
export interface PgSession {
  /** `options.timeoutMs` overrides the session's client-side query timeout (0: none, e.g. for CHECKPOINT). */
  query<R extends Row = Row>(
    sql: string,
    params?: readonly unknown[],
    options?: { readonly timeoutMs?: number },
  ): Promise<readonly R[]>;
  close(): Promise<void>;
}

/** Opens a connection; rejects with a message naming the address on failure. */
export async function connect(opts: ConnectOptions): Promise<PgSession> {
  const pg = await loadPg();
  const config: ClientConfig = {
    host: opts.host,
    port: opts.port,
    user: opts.user,
    database: opts.database ?? 'postgres',
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 3_000,
    application_name: opts.applicationName ?? 'pgwarden',
    ...(opts.password !== undefined ? { password: opts.password } : {}),
    ...((opts.statementTimeoutMs ?? 2_000) > 0
      ? { statement_timeout: opts.statementTimeoutMs ?? 2_000 }
      : {}),
  };
  const statementMs = opts.statementTimeoutMs ?? 2_000;
  const queryTimeoutMs = opts.queryTimeoutMs ?? (statementMs > 0 ? statementMs + 3_000 : 0);
  const client = new pg.Client(config);
  // An idle connection can fail later (server restart); without a listener that would crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    const where = opts.host.startsWith('/')
      ? `socket ${opts.host}/.s.PGSQL.${opts.port}`
      : `${opts.host}:${opts.port}`;
    await client.end().catch(() => undefined);
    throw new Error(`cannot connect to PostgreSQL at ${where} as ${opts.user}: ${errorText(e)}`, {
      cause: e,
    });
  }
  // One query at a time: a connection shared by the HA loop, long actions and REST requests must never be handed
  // a query while another is running (node-postgres would queue it, with a DeprecationWarning, and pg 9 refuses).
  let tail: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };
  /** Fails `pending` after `ms` and closes the connection (with a query active, pg destroys the socket). */
  const bounded = <T>(pending: Promise<T>, ms: number): Promise<T> => {
    if (ms <= 0) return pending;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`PostgreSQL did not answer a query within ${ms} ms; connection closed`));
        client.end().catch(() => undefined);
      }, ms);
      pending.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  };
  return {
    async query<R extends Row = Row>(
      sql: string,
      params: readonly unknown[] = [],
      options: { readonly timeoutMs?: number } = {},
    ): Promise<readonly R[]> {
      const ms = options.timeoutMs ?? queryTimeoutMs;
      const res = await serialized(() => bounded(client.query<R>(sql, [...params]), ms));
      return res.rows;
    },
    async close(): Promise<void> {
      await serialized(() => client.end());
    },
  };
}

/** Runs `fn` on a fresh connection and always closes it. */
export async function withConnection<T>(opts: ConnectOptions, fn: (s: PgSession) => Promise<T>): Promise<T> {
  const session = await connect(opts);
  try {
    return await fn(session);
  } finally {
    await session.close().catch(() => undefined);
  }
}

function lsnOf(value: unknown): Lsn | undefined {
  return typeof value === 'string' ? parseLsnText(value) : undefined;
}

function intOf(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return Number.parseInt(value, 10);
  return undefined;
}

function strOf(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

async function one(s: PgSession, sql: string, params: readonly unknown[] = []): Promise<Row> {
  const rows = await s.query(sql, params);
  const row = rows[0];
  if (!row) throw new Error(`no row returned by: ${sql}`);
  return row;
}

export async function isInRecovery(s: PgSession): Promise<boolean> {
  return (await one(s, 'SELECT pg_catalog.pg_is_in_recovery() AS r'))['r'] === true;
}

export async function serverVersionNum(s: PgSession): Promise<number> {
  const v = intOf((await one(s, "SELECT pg_catalog.current_setting('server_version_num') AS v"))['v']);
  if (v === undefined) throw new Error('server_version_num is not a number');
  return v;
}

/** pg_postmaster_start_time() as PostgreSQL prints it (`2026-11-22 02:47:20.281062+00`). */
export async function postmasterStartTime(s: PgSession): Promise<string> {
  return String((await one(s, 'SELECT pg_catalog.pg_postmaster_start_time()::text AS t'))['t']);
}

export interface InstanceStatus {
  readonly inRecovery: boolean;
  /** Primary: from the current WAL file name. Replica: the WAL receiver's timeline, else the checkpoint's. */
  readonly timeline: number | undefined;
  /** Primary only: pg_current_wal_flush_lsn(). */
  readonly flushLsn: Lsn | undefined;
  /** Replica only. */
  readonly receiveLsn: Lsn | undefined;
  readonly replayLsn: Lsn | undefined;
  readonly replayPaused: boolean;
  /** Replica: WAL receiver status ("streaming", "startup"...), undefined when no receiver runs. */
  readonly receiverState: string | undefined;
  /** Replica: the slot and conninfo the WAL receiver uses. */
  readonly receiverSlotName: string | undefined;
  readonly receiverConninfo: string | undefined;
  /** Replica: the WAL receiver's latest_end_lsn (readiness and the health checks' leader optime, 4.1+). */
  readonly latestEndLsn: Lsn | undefined;
  /** The `restore_command` GUC (PostgreSQL 12+), undefined when empty or unknown. */
  readonly restoreCommand: string | undefined;
}

/**
 * Patroni's `replication_state_from_parameters` (4.x): `streaming` while the WAL receiver streams, else
 * `in archive recovery` when a restore_command is set; undefined on a primary.
 */
export function replicationStateOf(st: InstanceStatus): string | undefined {
  if (!st.inRecovery) return undefined;
  if (st.receiverState === 'streaming') return 'streaming';
  return st.restoreCommand ? 'in archive recovery' : undefined;
}

const STATUS_SQL = `
SELECT r.in_recovery,
       CASE WHEN r.in_recovery THEN NULL
            ELSE ('x' || pg_catalog.substr(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::int
       END AS primary_timeline,
       CASE WHEN r.in_recovery THEN NULL ELSE pg_catalog.pg_current_wal_flush_lsn()::text END AS flush_lsn,
       pg_catalog.pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_catalog.pg_last_wal_replay_lsn()::text AS replay_lsn,
       r.in_recovery AND pg_catalog.pg_is_wal_replay_paused() AS replay_paused,
       w.status AS receiver_state,
       CASE WHEN w.latest_end_lsn IS NULL THEN NULL ELSE w.received_tli END AS received_tli,
       w.slot_name AS receiver_slot,
       w.conninfo AS receiver_conninfo,
       w.latest_end_lsn::text AS latest_end_lsn,
       pg_catalog.current_setting('restore_command', true) AS restore_command,
       (SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()) AS checkpoint_timeline
  FROM (SELECT pg_catalog.pg_is_in_recovery() AS in_recovery) r
  LEFT JOIN pg_catalog.pg_stat_get_wal_receiver() w ON true`;

/** Role, timeline and WAL positions in one round trip. */
export async function instanceStatus(s: PgSession): Promise<InstanceStatus> {
  const row = await one(s, STATUS_SQL);
  const inRecovery = row['in_recovery'] === true;
  const timeline = inRecovery
    ? (intOf(row['received_tli']) ?? intOf(row['checkpoint_timeline']))
    : intOf(row['primary_timeline']);
  return {
    inRecovery,
    timeline,
    flushLsn: lsnOf(row['flush_lsn']),
    receiveLsn: lsnOf(row['receive_lsn']),
    replayLsn: lsnOf(row['replay_lsn']),
    replayPaused: row['replay_paused'] === true,
    receiverState: strOf(row['receiver_state']),
    receiverSlotName: strOf(row['receiver_slot']),
    receiverConninfo: strOf(row['receiver_conninfo']),
    latestEndLsn: lsnOf(row['latest_end_lsn']),
    restoreCommand: strOf(row['restore_command']) || undefined,
  };
}

/** The current timeline (see InstanceStatus.timeline). */
export async function timeline(s: PgSession): Promise<number | undefined> {
  return (await instanceStatus(s)).timeline;
}

/** The primary's flush LSN (undefined on a replica). */
export async function currentFlushLsn(s: PgSession): Promise<Lsn | undefined> {
  return (await instanceStatus(s)).flushLsn;
}

export interface ReplicationRow {
  readonly pid: number | undefined;
  readonly usename: string | undefined;
  readonly applicationName: string | undefined;
  readonly clientAddr: string | undefined;
  readonly state: string | undefined;
  readonly syncState: string | undefined;
  readonly syncPriority: number | undefined;
  readonly writeLsn: Lsn | undefined;
  readonly flushLsn: Lsn | undefined;
  readonly replayLsn: Lsn | undefined;
}

/** pg_stat_replication, ordered by application_name. */
export async function statReplication(s: PgSession): Promise<readonly ReplicationRow[]> {
  const rows = await s.query(
    `SELECT pid, usename::text AS usename, application_name, host(client_addr) AS client_addr, state, sync_state,
            sync_priority, write_lsn::text AS write_lsn, flush_lsn::text AS flush_lsn, replay_lsn::text AS replay_lsn
       FROM pg_catalog.pg_stat_replication ORDER BY application_name, pid`,
  );
  return rows.map((r) => ({
    pid: intOf(r['pid']),
    usename: strOf(r['usename']),
    applicationName: strOf(r['application_name']),
    clientAddr: strOf(r['client_addr']),
    state: strOf(r['state']),
    syncState: strOf(r['sync_state']),
    syncPriority: intOf(r['sync_priority']),
    writeLsn: lsnOf(r['write_lsn']),
    flushLsn: lsnOf(r['flush_lsn']),
    replayLsn: lsnOf(r['replay_lsn']),
  }));
}

export interface PendingRestartRow {
  readonly name: string;
  readonly setting: string | undefined;
  readonly unit: string | undefined;
}

/** Parameters changed in the config files that only take effect after a restart. */
export async function pendingRestart(s: PgSession): Promise<readonly PendingRestartRow[]> {
  const rows = await s.query(
    'SELECT name, setting, unit FROM pg_catalog.pg_settings WHERE pending_restart ORDER BY name',
  );
  return rows.map((r) => ({ name: String(r['name']), setting: strOf(r['setting']), unit: strOf(r['unit']) }));
}

/** `pg_settings` rows (name, setting, unit, vartype, context) for the given names, compared in lower case. */
export async function pgSettings(
  s: PgSession,
  names: readonly string[],
): Promise<
  readonly { name: string; setting: string; unit: string | null; vartype: string; context: string }[]
> {
  if (names.length === 0) return [];
  const rows = await s.query(
    'SELECT name, setting, unit, vartype, context FROM pg_catalog.pg_settings WHERE pg_catalog.lower(name) = ANY($1)',
    [names.map((n) => n.toLowerCase())],
  );
  return rows.map((r) => ({
    name: String(r['name']),
    setting: strOf(r['setting']) ?? '',
    unit: strOf(r['unit']) ?? null,
    vartype: strOf(r['vartype']) ?? '',
    context: strOf(r['context']) ?? '',
  }));
}

/** CHECKPOINT, without the session's statement timeout. */
export async function checkpoint(s: PgSession): Promise<void> {
  await s.query("SELECT pg_catalog.set_config('statement_timeout', '0', false)");
  try {
    await s.query('CHECKPOINT', [], { timeoutMs: 0 });
  } finally {
    await s.query('RESET statement_timeout');
  }
}

export interface SlotRow {
  readonly slotName: string;
  readonly slotType: string;
  readonly active: boolean;
  readonly restartLsn: Lsn | undefined;
}

export async function replicationSlots(s: PgSession): Promise<readonly SlotRow[]> {
  const rows = await s.query(
    `SELECT slot_name::text AS slot_name, slot_type, active, restart_lsn::text AS restart_lsn
       FROM pg_catalog.pg_replication_slots ORDER BY slot_name`,
  );
  return rows.map((r) => ({
    slotName: String(r['slot_name']),
    slotType: String(r['slot_type']),
    active: r['active'] === true,
    restartLsn: lsnOf(r['restart_lsn']),
  }));
}

/** Creates a physical slot unless one of that name exists; true when it was created now. */
export async function createPhysicalSlot(
  s: PgSession,
  name: string,
  immediatelyReserve = true,
): Promise<boolean> {
  const rows = await s.query(
    `SELECT pg_catalog.pg_create_physical_replication_slot($1, $2)
      WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1)`,
    [name, immediatelyReserve],
  );
  return rows.length === 1;
}

/** Drops a slot unless a walsender uses it. */
export async function dropSlot(
  s: PgSession,
  name: string,
): Promise<{ readonly existed: boolean; readonly active: boolean; readonly dropped: boolean }> {
  const rows = await s.query(
    `WITH slots AS (SELECT slot_name, active FROM pg_catalog.pg_replication_slots WHERE slot_name = $1),
          dropped AS (SELECT pg_catalog.pg_drop_replication_slot(slot_name), true AS dropped FROM slots WHERE NOT active)
     SELECT active, COALESCE(dropped, false) AS dropped FROM slots FULL OUTER JOIN dropped ON true`,
    [name],
  );
  const row = rows[0];
  if (!row) return { existed: false, active: false, dropped: false };
  return { existed: true, active: row['active'] === true, dropped: row['dropped'] === true };
}
