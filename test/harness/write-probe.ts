/**
 * The split-brain probe for DCS fault tests: every ~100 ms a round tries one real write (an INSERT into a probe
 * table, autocommit) on EVERY member directly, in parallel, with short connect, statement and client timeouts, and
 * records which members acknowledged it. A round in which two members acknowledge a write is a split brain.
 *
 * Also here: what a test needs to know when the leader last refreshed its lock before the DCS was cut off:
 * - `lastLockLogLine`: the time of the last `... the leader with the lock` line in an agent's log (pgwarden and
 *   Patroni write the same line, in Python logging's local `asctime`, after the refresh succeeded);
 * - `watchLeaseExpiry`: etcd's own view: a lower bound of the leader key's lease expiry, from polling the lease's
 *   remaining TTL (whole seconds, rounded down, so `sent + TTL` never overestimates the expiry).
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { etcdPost } from './etcd.js';

const HOST = '127.0.0.1';
const SUPERUSER = { user: 'postgres', password: 'zalando' };
const TABLE = 'pgwarden_write_probe';

export interface ProbeTarget {
  readonly name: string;
  readonly port: number;
}

export interface ProbeRound {
  /** Epoch ms when the round's attempts started and when the last one finished. */
  readonly start: number;
  readonly end: number;
  /** Members that acknowledged the write, with the acknowledgement time (epoch ms). */
  readonly accepted: readonly { readonly name: string; readonly at: number }[];
  /** Why the others refused, for diagnostics (first line of the error). */
  readonly refused: Readonly<Record<string, string>>;
}

export interface WriteProbe {
  rounds(): readonly ProbeRound[];
  /** Rounds in which more than one member acknowledged a write. */
  doubleRounds(): readonly ProbeRound[];
  /** The last acknowledged write of `name` (epoch ms), optionally only before `before`. */
  lastAccept(name: string, before?: number): number | undefined;
  /** The first acknowledged write of anyone after `after` (epoch ms). */
  firstAcceptAfter(after: number): { readonly name: string; readonly at: number } | undefined;
  /** Whether `name` acknowledged any write in rounds started within [from, to]. */
  acceptedBetween(name: string, from: number, to: number): boolean;
  /** Rounds from `from` on, one line each: `+1.23 s pg1` / `+1.33 s -`; for failure messages. */
  describe(from: number, last?: number): string;
  stop(): Promise<void>;
}

export interface WriteProbeOptions {
  /** Pause between rounds (default 100 ms). */
  readonly everyMs?: number;
  /** Connect, statement and client-side query timeout (default 1000 ms). */
  readonly timeoutMs?: number;
}

function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n', 1)[0] ?? text;
}

/**
 * A connected superuser client of the PostgreSQL at `port` on 127.0.0.1 (the harness's `postgres`/`zalando`), its
 * late errors swallowed (a killed server must not crash the test process); pushed to `track` before it connects, so
 * the caller's cleanup ends it even when the connect fails.
 */
export async function connectSuperuser(
  port: number,
  o: {
    readonly track?: pg.Client[];
    readonly connectTimeoutMs?: number;
    readonly statementTimeoutMs?: number;
  } = {},
): Promise<pg.Client> {
  const c = new pg.Client({
    host: HOST,
    port,
    ...SUPERUSER,
    database: 'postgres',
    connectionTimeoutMillis: o.connectTimeoutMs ?? 3000,
    ...(o.statementTimeoutMs === undefined ? {} : { statement_timeout: o.statementTimeoutMs }),
  });
  c.on('error', () => undefined);
  o.track?.push(c);
  await c.connect();
  return c;
}

/** Creates the probe table on the primary at `port` (replicas get it by streaming). */
export async function createProbeTable(port: number): Promise<void> {
  const c = await connectSuperuser(port, { connectTimeoutMs: 5000 });
  try {
    await c.query(
      `CREATE TABLE IF NOT EXISTS ${TABLE} (member text NOT NULL, at timestamptz NOT NULL DEFAULT now())`,
    );
  } finally {
    await c.end().catch(() => undefined);
  }
}

export function startWriteProbe(
  targets: readonly ProbeTarget[],
  options: WriteProbeOptions = {},
): WriteProbe {
  const everyMs = options.everyMs ?? 100;
  const timeoutMs = options.timeoutMs ?? 1000;
  const rounds: ProbeRound[] = [];
  const clients = new Map<string, pg.Client>();
  let stopped = false;

  const drop = async (name: string): Promise<void> => {
    const c = clients.get(name);
    clients.delete(name);
    await c?.end().catch(() => undefined);
  };

  /** One write on one member: the acknowledgement time, or the reason it was refused. */
  const attempt = async (t: ProbeTarget): Promise<number | string> => {
    try {
      let c = clients.get(t.name);
      if (!c) {
        const fresh = new pg.Client({
          host: HOST,
          port: t.port,
          ...SUPERUSER,
          database: 'postgres',
          connectionTimeoutMillis: timeoutMs,
          statement_timeout: timeoutMs,
          query_timeout: timeoutMs + 500,
          application_name: 'write-probe',
        });
        fresh.on('error', () => undefined);
        clients.set(t.name, fresh);
        c = fresh;
        await c.connect();
      }
      await c.query(`INSERT INTO ${TABLE} (member) VALUES ($1)`, [t.name]);
      return Date.now();
    } catch (e) {
      // A read-only server answers with an SQL error and the session stays usable; anything else: reconnect.
      const sqlState = (e as { code?: unknown }).code;
      if (sqlState !== '25006') await drop(t.name);
      return firstLine(e);
    }
  };

  const loop = (async (): Promise<void> => {
    while (!stopped) {
      const start = Date.now();
      const results = await Promise.all(targets.map((t) => attempt(t)));
      const accepted: { name: string; at: number }[] = [];
      const refused: Record<string, string> = {};
      targets.forEach((t, i) => {
        const r = results[i];
        if (typeof r === 'number') accepted.push({ name: t.name, at: r });
        else refused[t.name] = r ?? 'no result';
      });
      rounds.push({ start, end: Date.now(), accepted, refused });
      await new Promise((r) => setTimeout(r, everyMs));
    }
    await Promise.all([...clients.keys()].map((n) => drop(n)));
  })();

  return {
    rounds: () => rounds,
    doubleRounds: () => rounds.filter((r) => r.accepted.length > 1),
    lastAccept(name, before = Number.POSITIVE_INFINITY) {
      let last: number | undefined;
      for (const r of rounds) for (const a of r.accepted) if (a.name === name && a.at < before) last = a.at;
      return last;
    },
    firstAcceptAfter(after) {
      for (const r of rounds) for (const a of r.accepted) if (a.at > after) return a;
      return undefined;
    },
    acceptedBetween(name, from, to) {
      return rounds.some((r) => r.start >= from && r.start <= to && r.accepted.some((a) => a.name === name));
    },
    describe(from, last = 400) {
      const lines = rounds
        .filter((r) => r.end >= from)
        .map((r) => {
          const who = r.accepted.map((a) => a.name).join('+') || '-';
          const why = Object.entries(r.refused)
            .map(([n, e]) => `${n}: ${e.slice(0, 60)}`)
            .join('; ');
          return `${((r.start - from) / 1000).toFixed(2).padStart(7)} s  ${who.padEnd(8)} ${why}`;
        });
      return lines.slice(-last).join('\n');
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** `2026-12-02 04:06:12,123` (Python's asctime, local time) -> epoch ms. */
export function parseAsctime(text: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}),(\d{3})/.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s, ms] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return new Date(y, mo - 1, d, h, mi, s, ms).getTime();
}

/**
 * The time of the last line in `logFile` before `before` (epoch ms) saying the member refreshed its lock as the
 * leader: `no action. I am (<name>), the leader with the lock` or `updated leader lock during ...`.
 */
export function lastLockLogLine(logFile: string, before: number): number | undefined {
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return undefined;
  }
  let last: number | undefined;
  for (const line of text.split('\n')) {
    if (!/the leader with the lock|updated leader lock during|promoted self to leader/.test(line)) continue;
    const t = parseAsctime(line);
    if (t !== undefined && t < before) last = t;
  }
  return last;
}

export interface LeaseWatch {
  /** Lower bound (epoch ms) of the leader key's lease expiry, from the polls so far; undefined before one. */
  expiryLowerBound(): number | undefined;
  /** The lease id seen. */
  lease(): string | undefined;
  stop(): Promise<void>;
}

/** Polls the leader key's lease remaining TTL through etcd's v3 JSON gateway every `everyMs`. */
export function watchLeaseExpiry(etcdEndpoint: string, key: string, everyMs = 100): LeaseWatch {
  let stopped = false;
  let bound: number | undefined;
  let lease: string | undefined;
  const post = (path: string, body: unknown): Promise<Record<string, unknown>> =>
    etcdPost(etcdEndpoint, path, body);
  const loop = (async (): Promise<void> => {
    while (!stopped) {
      try {
        const range = await post('/v3/kv/range', { key: Buffer.from(key).toString('base64') });
        const kvs = (range['kvs'] ?? []) as { lease?: string }[];
        const id = kvs[0]?.lease;
        if (id && id !== '0') {
          const sent = Date.now();
          const ttl = Number((await post('/v3/lease/timetolive', { ID: id }))['TTL']);
          // A lease that changed (a new leader) starts a new bound; remaining seconds are rounded down.
          if (id !== lease) bound = undefined;
          lease = id;
          if (Number.isFinite(ttl) && ttl > 0) bound = Math.max(bound ?? 0, sent + ttl * 1000);
        }
      } catch {
        /* etcd away: keep what we know */
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    expiryLowerBound: () => bound,
    lease: () => lease,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
