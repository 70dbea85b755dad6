/**
 * Probes for measuring HA events the same way on Patroni and on pgwarden clusters:
 * - `crashHost`: kill -9 of an agent, its postmaster and the postmaster's children in one sweep (a host crash);
 * - `startWriter` / `checkWriter`: ../shared/reference/writer.py, the reference lab's probe (an INSERT every 50 ms
 *   through HAProxy; acknowledged ids missing on the final primary = loss; longest time without an ack = gap);
 * - `watchLeaderKey`: when the leader key of the moment is gone from etcd (the old lock's expiry or release);
 * - `watchWritable`: when a member first accepts a write (`txid_current()` needs a writable primary).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { etcdPost } from './etcd.js';
import { runCommand } from './patroni.js';
import { startProcess, waitFor, type Managed } from './process.js';

const REPO = resolve(import.meta.dirname, '..', '..');
export const WRITER_PY = resolve(REPO, '..', 'shared', 'reference', 'writer.py');
// Debian's interpreter, which has python3-psycopg2 (a python3 earlier on PATH may not).
const PYTHON = '/usr/bin/python3';
const HOST = '127.0.0.1';
const SUPERUSER = { user: 'postgres', password: 'zalando' };

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Direct children of `pid` (from /proc/<pid>/stat: the 4th field, after the parenthesised command). */
export function childPids(pid: number): number[] {
  const kids: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return kids;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const stat = readText(`/proc/${e}/stat`);
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) kids.push(Number(e));
  }
  return kids;
}

/** SIGKILL the agent, the postmaster of `dataDir` and the postmaster's children at once, as a crashed host. */
export function crashHost(agentPid: number, dataDir: string): readonly number[] {
  const postmaster = Number.parseInt(readText(join(dataDir, 'postmaster.pid')).split('\n', 1)[0] ?? '', 10);
  const victims = [agentPid];
  if (Number.isInteger(postmaster) && postmaster > 0) victims.push(postmaster, ...childPids(postmaster));
  for (const pid of victims) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  return victims;
}

function dsn(port: number): string {
  return `host=${HOST} port=${port} user=${SUPERUSER.user} password=${SUPERUSER.password} dbname=postgres`;
}

export interface Writer {
  readonly logFile: string;
  /** Acknowledged writes so far. */
  acked(): number;
  /** Acknowledged writes served by a server other than `port`, with the first one's end time (epoch s). */
  ackedElsewhere(port: number): { readonly count: number; readonly firstAt?: number };
  /** The last few attempts and the writer's own output, for failure messages. */
  diagnostics(): string;
  /** End time (epoch ms) of the last write acknowledged by the server on `port`. */
  lastAckOn(port: number): number | undefined;
  stop(): Promise<void>;
}

interface WriterRecord {
  readonly t: number;
  readonly te: number;
  readonly id: number;
  readonly s: string;
  readonly port?: number;
}

function writerRecords(file: string): WriterRecord[] {
  const out: WriterRecord[] = [];
  for (const line of readText(file).split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as WriterRecord);
    } catch {
      /* a line being written */
    }
  }
  return out;
}

/** Creates the probe table and starts writer.py through `rwPort` for at most `maxSeconds`. */
export async function startWriter(rwPort: number, dir: string, maxSeconds: number): Promise<Writer> {
  const setup = await runCommand(PYTHON, [WRITER_PY, 'setup', '--dsn', dsn(rwPort)], { timeoutMs: 20_000 });
  if (setup.code !== 0) throw new Error(`writer.py setup failed: ${setup.stderr}${setup.stdout}`);
  const logFile = join(dir, 'writer.jsonl');
  const proc: Managed = startProcess(
    PYTHON,
    [WRITER_PY, 'write', '--dsn', dsn(rwPort), '--duration', String(maxSeconds), '--out', logFile],
    join(dir, 'writer.log'),
    { cwd: dir },
  );
  return {
    logFile,
    acked: () => writerRecords(logFile).filter((r) => r.s === 'ok').length,
    ackedElsewhere(port) {
      const ok = writerRecords(logFile).filter(
        (r) => r.s === 'ok' && r.port !== undefined && r.port !== port,
      );
      const first = ok[0];
      return { count: ok.length, ...(first ? { firstAt: first.te } : {}) };
    },
    diagnostics() {
      const recent = readText(logFile).trim().split('\n').slice(-3).join('\n');
      return `writer's last attempts:\n${recent || '(none)'}\nwriter.py output:\n${proc.log().slice(-2000)}`;
    },
    lastAckOn(port) {
      const ok = writerRecords(logFile).filter((r) => r.s === 'ok' && r.port === port);
      const last = ok[ok.length - 1];
      return last ? last.te * 1000 : undefined;
    },
    // SIGINT: Python stops between statements; every line written so far is complete (line-buffered).
    async stop() {
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        const exited = new Promise((r) => proc.child.once('exit', r));
        proc.child.kill('SIGINT');
        const timer = setTimeout(() => proc.signal('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

export interface WriterCheck {
  readonly attempts: number;
  readonly acked: number;
  readonly failed: number;
  readonly lost: number;
  readonly lost_ids: readonly number[];
  readonly max_gap_s: number;
  readonly first_ok_new_primary_s?: number;
  readonly gap_around_t0_s?: number;
  readonly acks_old_primary_after_t0?: number;
}

/** writer.py check against the final primary: loss, longest gap, first ack on the new primary after `t0Ms`. */
export async function checkWriter(
  w: Writer,
  finalPgPort: number,
  t0Ms: number,
  oldPgPort: number,
): Promise<WriterCheck> {
  const r = await runCommand(
    PYTHON,
    [
      WRITER_PY,
      'check',
      '--log',
      w.logFile,
      '--dsn',
      dsn(finalPgPort),
      '--t0',
      (t0Ms / 1000).toFixed(4),
      '--old-port',
      String(oldPgPort),
      '--json',
    ],
    { timeoutMs: 30_000 },
  );
  if (r.code !== 0) throw new Error(`writer.py check failed: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as WriterCheck;
}

/**
 * Polls a key through etcd's v3 JSON gateway; `goneAt` is the first poll that found the key of the first poll gone
 * (epoch ms): absent, or there again with another create_revision. A new leader can take the lock within
 * milliseconds of the old lease's expiry, so "absent" alone can fall between two polls; the poll interval bounds
 * how late `goneAt` can be, which only makes the "nobody writable before the old lock is gone" check stricter.
 */
export interface KeyWatch {
  goneAt(): number | undefined;
  stop(): Promise<void>;
}

/** The leader key's create_revision, or undefined when it is absent. */
async function keyCreateRevision(etcdEndpoint: string, key: string): Promise<string | undefined> {
  const range = await etcdPost(etcdEndpoint, '/v3/kv/range', { key: Buffer.from(key).toString('base64') });
  return ((range['kvs'] ?? []) as { create_revision?: string }[])[0]?.create_revision;
}

/** Starts watching the key as it is now (it must exist). */
export async function watchLeaderKey(etcdEndpoint: string, key: string, everyMs = 20): Promise<KeyWatch> {
  const watched = await keyCreateRevision(etcdEndpoint, key);
  if (watched === undefined) throw new Error(`${key} is not in etcd: no leader lock to watch`);
  let gone: number | undefined;
  let stopped = false;
  const loop = (async () => {
    while (!stopped && gone === undefined) {
      try {
        if ((await keyCreateRevision(etcdEndpoint, key)) !== watched) gone = Date.now();
      } catch {
        /* etcd busy: poll again */
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    goneAt: () => gone,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** Polls members' PostgreSQL over persistent connections; `first` is the first one seen taking a write. */
export interface WritableWatch {
  first(): { readonly port: number; readonly at: number } | undefined;
  stop(): Promise<void>;
}

export function watchWritable(ports: readonly number[], everyMs = 20): WritableWatch {
  let first: { port: number; at: number } | undefined;
  let stopped = false;
  const probe = async (port: number): Promise<void> => {
    let client: pg.Client | undefined;
    while (!stopped && first === undefined) {
      try {
        if (!client) {
          const c = new pg.Client({ host: HOST, port, ...SUPERUSER, database: 'postgres' });
          c.on('error', () => undefined);
          client = c;
          await c.connect();
        }
        // A replica refuses to assign a transaction id: success means this server takes writes.
        await client.query('SELECT txid_current()');
        first ??= { port, at: Date.now() };
      } catch (e) {
        if (!(e instanceof Error && /recovery/.test(e.message))) {
          await client?.end().catch(() => undefined);
          client = undefined;
        }
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
    await client?.end().catch(() => undefined);
  };
  const loops = ports.map((p) => probe(p));
  return {
    first: () => first,
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/** Waits until `writer` has at least `n` acknowledged writes. */
export async function waitForAcks(writer: Writer, n: number, timeoutMs = 30_000): Promise<void> {
  try {
    await waitFor(`${n} acknowledged writes through HAProxy`, () => writer.acked() >= n, timeoutMs, 100);
  } catch (e) {
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${writer.diagnostics()}`);
  }
}
