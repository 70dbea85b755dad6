/**
 * The SQL behind replication slot management (src/postgres/slots-sync.ts): reading pg_replication_slots as
 * Patroni's SlotsHandler does, creating and advancing slots, and reading the state files of logical slots from the
 * primary so that a replica can hold copies of them (PostgreSQL before 16 cannot create a logical slot on a
 * standby).
 */
import type { ClientConfig } from 'pg';
import { formatLsn, parseLsnText, type Lsn } from '../model/lsn.js';
import type { ExistingSlot } from '../model/slot-plan.js';
import { walFileSegment, type LocalWal } from '../model/slot-readiness.js';
import { pgClientSsl } from './pg-ssl.js';
import type { PgSession } from './queries.js';

type PgModule = typeof import('pg');

async function loadPg(): Promise<PgModule> {
  const mod = (await import('pg')) as PgModule & { readonly default?: PgModule };
  return mod.default ?? mod;
}

const lsnOf = (v: unknown): Lsn | undefined => (typeof v === 'string' ? parseLsnText(v) : undefined);
const textOf = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
const xidOf = (v: unknown): number | undefined => {
  const t = textOf(v);
  return t !== undefined && /^\d+$/.test(t) ? Number(t) : undefined;
};

/** The slots Patroni manages: temporary slots and (PostgreSQL 17+) failover slots are left out. */
export async function managedSlots(s: PgSession, majorVersion: number): Promise<ExistingSlot[]> {
  const where = ['NOT temporary', ...(majorVersion >= 170000 ? ['NOT failover'] : [])].join(' AND ');
  const wal = majorVersion >= 130000 ? ', wal_status' : '';
  const rows = await s.query(
    `SELECT slot_name::text AS slot_name, slot_type, plugin::text AS plugin, database::text AS database, active,
            xmin::text AS xmin, catalog_xmin::text AS catalog_xmin, restart_lsn::text AS restart_lsn,
            confirmed_flush_lsn::text AS confirmed_flush_lsn${wal}
       FROM pg_catalog.pg_replication_slots WHERE ${where} ORDER BY slot_name`,
  );
  return rows.map((r) => ({
    name: String(r['slot_name']),
    type: String(r['slot_type']),
    plugin: textOf(r['plugin']),
    database: textOf(r['database']),
    active: r['active'] === true,
    xmin: textOf(r['xmin']),
    restartLsn: lsnOf(r['restart_lsn']),
    confirmedFlushLsn: lsnOf(r['confirmed_flush_lsn']),
    catalogXmin: xidOf(r['catalog_xmin']),
    walStatus: textOf(r['wal_status']),
  }));
}

/** Creates a physical slot reserving WAL at once, unless a physical slot of that name exists. */
export async function createReservedPhysicalSlot(s: PgSession, name: string): Promise<void> {
  await s.query(
    `SELECT pg_catalog.pg_create_physical_replication_slot($1, true)
      WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_type = 'physical' AND slot_name = $1)`,
    [name],
  );
}

/** Creates a logical slot (run in its database), unless a logical slot of that name exists. */
export async function createLogicalSlot(s: PgSession, name: string, plugin: string): Promise<void> {
  await s.query(
    `SELECT pg_catalog.pg_create_logical_replication_slot($1, $2)
      WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_type = 'logical' AND slot_name = $1)`,
    [name, plugin],
  );
}

/** pg_replication_slot_advance (a logical slot's in its database). */
export async function advanceSlot(s: PgSession, name: string, lsn: Lsn): Promise<void> {
  await s.query('SELECT pg_catalog.pg_replication_slot_advance($1, $2::pg_lsn)', [name, formatLsn(lsn)]);
}

/** SQLSTATEs of an advance that can never succeed: the WAL is gone (58P01) or the slot invalidated (55000). */
export function advanceNeedsCopy(e: unknown): boolean {
  const code =
    (e as { code?: unknown } | null)?.code ?? (e as { cause?: { code?: unknown } } | null)?.cause?.code;
  return code === '58P01' || code === '55000';
}

/**
 * The local pg_wal: the segment size and the lowest segment number present (any timeline); undefined when it holds
 * no segment. Needs the superuser (pg_ls_waldir).
 */
export async function localWal(s: PgSession): Promise<LocalWal | undefined> {
  const rows = await s.query(
    `SELECT (SELECT setting FROM pg_catalog.pg_settings WHERE name = 'wal_segment_size') AS segment_size,
            (SELECT '00000000' || pg_catalog.min(pg_catalog.substr(name, 9, 16))
               FROM pg_catalog.pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$') AS oldest`,
  );
  const size = textOf(rows[0]?.['segment_size']);
  const oldest = textOf(rows[0]?.['oldest']);
  if (size === undefined || !/^\d+$/.test(size) || oldest === undefined) return undefined;
  const segmentSize = BigInt(size);
  const oldestSegment = walFileSegment(oldest, segmentSize);
  return oldestSegment === undefined ? undefined : { segmentSize, oldestSegment };
}

export interface PrimarySlotFile {
  readonly name: string;
  readonly type: string;
  readonly database: string;
  readonly plugin: string | undefined;
  /** The slot's `pg_replslot/<name>/state` file. */
  readonly state: Buffer;
}

export interface PrimaryAddress {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string | undefined;
  readonly database: string;
  readonly connectionParams?: Readonly<Record<string, string>>;
}

/** A short connection to the primary (as the rewind user or superuser), closed after `fn`. */
async function withPrimary<T>(
  at: PrimaryAddress,
  fn: (client: import('pg').Client) => Promise<T>,
): Promise<T> {
  const pg = await loadPg();
  const ssl = pgClientSsl(at.connectionParams);
  const config: ClientConfig = {
    host: at.host,
    port: at.port,
    user: at.user,
    database: at.database,
    connectionTimeoutMillis: 3_000,
    statement_timeout: 10_000,
    application_name: 'Patroni',
    ...(at.password !== undefined ? { password: at.password } : {}),
    ...(ssl ? { ssl } : {}),
  };
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The state files of the named slots on the primary (nothing when it is in recovery), read with pg_read_binary_file. */
export async function primarySlotFiles(
  at: PrimaryAddress,
  names: readonly string[],
  majorVersion: number,
): Promise<PrimarySlotFile[]> {
  return withPrimary(at, async (client) => {
    const failover = majorVersion >= 170000 ? ' NOT failover AND' : '';
    const res = await client.query<Record<string, unknown>>(
      `SELECT slot_name::text AS slot_name, slot_type, datname::text AS datname, plugin::text AS plugin,
              pg_catalog.pg_read_binary_file('pg_replslot/' || slot_name || '/state') AS state
         FROM pg_catalog.pg_get_replication_slots() JOIN pg_catalog.pg_database ON datoid = oid
        WHERE${failover} NOT pg_catalog.pg_is_in_recovery() AND slot_name = ANY($1)`,
      [names],
    );
    return res.rows.map((r) => ({
      name: String(r['slot_name']),
      type: String(r['slot_type']),
      database: String(r['datname']),
      plugin: textOf(r['plugin']),
      state: r['state'] as Buffer,
    }));
  });
}

/**
 * Patroni's readiness query on the primary: the catalog_xmin of the named slots (undefined when null), nothing when
 * the server is in recovery.
 */
export async function primarySlotXmins(
  at: PrimaryAddress,
  names: readonly string[],
): Promise<Map<string, number | undefined>> {
  return withPrimary(at, async (client) => {
    const res = await client.query<Record<string, unknown>>(
      `SELECT slot_name::text AS slot_name, catalog_xmin::text AS catalog_xmin
         FROM pg_catalog.pg_get_replication_slots()
        WHERE NOT pg_catalog.pg_is_in_recovery() AND slot_name = ANY($1)`,
      [names],
    );
    return new Map(res.rows.map((r) => [String(r['slot_name']), xidOf(r['catalog_xmin'])]));
  });
}
