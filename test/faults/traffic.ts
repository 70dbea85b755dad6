/**
 * The fault suite's load and its two witnesses:
 * - the writer: an INSERT of a fresh id every 50 ms through HAProxy's read-write port; every acknowledged id is
 *   recorded with its time (a write that times out or fails is not acknowledged, whatever became of it);
 * - the split-brain probe: every ~100 ms one INSERT on EVERY member directly (its own address, not through
 *   HAProxy), in parallel; a round in which two members acknowledge is a moment with two writable members.
 * Neither sets statement_timeout: a cancelled wait for a synchronous standby returns success with a warning, which
 * would count a write the standby never confirmed. Timeouts are client-side; the connection is then dropped.
 */
import pg from 'pg';
import { SUPERUSER } from './cluster.js';

const ACKS = 'faults_acks';
const PROBE = 'faults_probe';

export interface Ack {
  readonly id: number;
  readonly at: number;
}

export interface ProbeRound {
  readonly start: number;
  readonly accepted: readonly { readonly name: string; readonly at: number }[];
}

function client(host: string, port: number, timeoutMs: number, app: string): pg.Client {
  const c = new pg.Client({
    host,
    port,
    ...SUPERUSER,
    database: 'postgres',
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    application_name: app,
  });
  c.on('error', () => undefined);
  return c;
}

export async function createTables(host: string, port: number): Promise<void> {
  const c = client(host, port, 5000, 'faults-setup');
  await c.connect();
  try {
    await c.query(`CREATE TABLE IF NOT EXISTS ${ACKS} (id bigint PRIMARY KEY, at timestamptz DEFAULT now())`);
    await c.query(`CREATE TABLE IF NOT EXISTS ${PROBE} (member text, at timestamptz DEFAULT now())`);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Ids of `faults_acks` on the server at host:port (the final primary). */
export async function storedIds(host: string, port: number): Promise<Set<number>> {
  const c = client(host, port, 10_000, 'faults-check');
  await c.connect();
  try {
    const r = await c.query<{ id: string }>(`SELECT id FROM ${ACKS}`);
    return new Set(r.rows.map((row) => Number(row.id)));
  } finally {
    await c.end().catch(() => undefined);
  }
}

export interface Loop<T> {
  records(): readonly T[];
  stop(): Promise<void>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function startWriter(rwPort: number): Loop<Ack> {
  const acks: Ack[] = [];
  let stopped = false;
  let c: pg.Client | undefined;
  let next = 1;
  const loop = (async (): Promise<void> => {
    while (!stopped) {
      const id = next++;
      try {
        if (!c) {
          c = client('127.0.0.1', rwPort, 2000, 'faults-writer');
          await c.connect();
        }
        await c.query(`INSERT INTO ${ACKS} (id) VALUES ($1)`, [id]);
        acks.push({ id, at: Date.now() });
      } catch {
        const dead = c;
        c = undefined;
        await dead?.end().catch(() => undefined);
      }
      await sleep(50);
    }
    await c?.end().catch(() => undefined);
  })();
  return {
    records: () => acks,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

export function startProbe(
  targets: readonly { readonly name: string; readonly ip: string }[],
): Loop<ProbeRound> {
  const rounds: ProbeRound[] = [];
  const clients = new Map<string, pg.Client>();
  let stopped = false;
  const drop = async (name: string): Promise<void> => {
    const c = clients.get(name);
    clients.delete(name);
    await c?.end().catch(() => undefined);
  };
  const attempt = async (t: { name: string; ip: string }): Promise<number | undefined> => {
    try {
      let c = clients.get(t.name);
      if (!c) {
        c = client(t.ip, 5432, 1000, 'faults-probe');
        clients.set(t.name, c);
        await c.connect();
      }
      await c.query(`INSERT INTO ${PROBE} (member) VALUES ($1)`, [t.name]);
      return Date.now();
    } catch (e) {
      // A read-only server answers 25006 and the session stays usable; anything else: reconnect.
      if ((e as { code?: unknown }).code !== '25006') await drop(t.name);
      return undefined;
    }
  };
  const loop = (async (): Promise<void> => {
    while (!stopped) {
      const start = Date.now();
      const results = await Promise.all(targets.map((t) => attempt(t)));
      const accepted = targets.flatMap((t, i) => {
        const at = results[i];
        return at === undefined ? [] : [{ name: t.name, at }];
      });
      rounds.push({ start, accepted });
      await sleep(100);
    }
    await Promise.all([...clients.keys()].map((n) => drop(n)));
  })();
  return {
    records: () => rounds,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
