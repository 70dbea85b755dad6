/**
 * Quorum commit (`synchronous_mode: quorum`, synchronous_node_count 1) in a mixed cluster: two Patroni 4.1.4 agents
 * (pg1, pg2) and one pgwarden agent (pg3) on etcd3, real PostgreSQL 15. The safety rule: a failover never loses a
 * commit the old primary acknowledged, whichever implementation leads or promotes.
 *
 * 1. A Patroni 4.1.4 leader counts the pgwarden replica in the quorum: `/sync` {quorum 1, both replicas} and
 *    synchronous_standby_names `ANY 1 (a,b)` as Patroni writes them; `pgwarden list` shows the replicas as
 *    `Quorum Standby`, row for row as patronictl 4.1.4 does; pgwarden's GET /quorum answers 200.
 * 2. The Patroni replica's walreceiver is frozen, a writer commits (acknowledged by pgwarden alone) and the Patroni
 *    leader host crashes (kill -9): pgwarden, the quorum member holding every acknowledged commit, promotes with
 *    the Patroni replica's vote; nothing acknowledged is lost. The old leader comes back as a replica.
 * 3. With the pgwarden leader, its `/sync` key has the fields and values Patroni writes and its
 *    synchronous_standby_names is `ANY 1 (pg1,pg2)`; the Patroni 4.1.4 replicas accept it (GET /quorum 200,
 *    `quorum_standby` in GET /patroni, patronictl 4.1.4 shows `Quorum Standby`, no error in their logs since
 *    pgwarden promoted).
 * 4. maximum_lag_on_syncnode set through pgwarden's PATCH /config; Patroni replica B's walreceiver frozen while a
 *    writer commits: the pgwarden leader takes B out of the quorum (`/sync` quorum 0 of A, `ANY 1 (A)`) as Patroni
 *    would. A frozen whole, the pgwarden leader host crashes: B, outside the quorum with no voter to vouch for it,
 *    never promotes; once A is thawed, A (Patroni) promotes and has every acknowledged commit.
 *
 * Needs: root, PostgreSQL 15, etcd, the shared/ checkout beside the repository (Patroni 4.1.4 on Debian's python3)
 * and a built pgwarden.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { etcdPost, startEtcd, type EtcdServer } from '../harness/etcd.js';
import { childPids, crashHost } from '../harness/ha-probe.js';
import { PATRONI4, PATRONICTL4, runCommand } from '../harness/patroni.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { connectSuperuser } from '../harness/write-probe.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const HOST = '127.0.0.1';
const PGWARDEN = 'pg3';
const TTL = 20;
const LOOP_WAIT = 2;

type Row = Record<string, unknown>;

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

describeNeeding(
  'postgres',
  'etcd',
  'patroni4',
  'patronictl4',
  'bundle',
  'root',
)('quorum commit: 2 Patroni 4.1.4 + 1 pgwarden on etcd3', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  const clients: pg.Client[] = [];
  /** Every process this test stopped with SIGSTOP: continued in afterAll whatever happens. */
  const frozen = new Set<number>();

  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  const idx = (name: string): number => c().nodes.findIndex((n) => n.name === name);
  const node = (name: string): AgentCluster['nodes'][number] => {
    const n = c().nodes[idx(name)];
    if (!n) throw new Error(`no node ${name}`);
    return n;
  };
  /** The raw value of `/service/<scope>/<key>` in etcd. */
  const rawKey = async (key: string): Promise<string | undefined> => {
    const r = await etcdPost(etcd?.endpoint ?? '', '/v3/kv/range', {
      key: Buffer.from(`/service/${c().scope}/${key}`).toString('base64'),
    });
    const kv = ((r['kvs'] ?? []) as { value?: string }[])[0];
    return kv ? Buffer.from(kv.value ?? '', 'base64').toString() : undefined;
  };
  const syncKey = async (): Promise<Row> => JSON.parse((await rawKey('sync')) ?? '{}') as Row;
  const ssn = async (name: string): Promise<string> =>
    (await c().psql(idx(name), 'SHOW synchronous_standby_names')).stdout.trim();
  const roles = (stdout: string): Row =>
    Object.fromEntries((JSON.parse(stdout) as Row[]).map((r) => [String(r['Member']), r['Role']]));
  const pgwardenList = async (): Promise<Row> => {
    const r = await runCommand(
      process.execPath,
      [join(ROOT, 'bin', 'run.js'), '-d', `etcd3://${etcd?.endpoint ?? ''}`, 'list', c().scope, '-f', 'json'],
      { timeoutMs: 30_000 },
    );
    if (r.code !== 0) throw new Error(`pgwarden list: ${r.stderr}`);
    return roles(r.stdout);
  };
  const patronictlList = async (): Promise<Row> => {
    const r = await runCommand(PATRONICTL4, ['-c', node('pg1').configFile, 'list', '-f', 'json'], {
      timeoutMs: 60_000,
    });
    if (r.code !== 0) throw new Error(`patronictl list: ${r.stderr}`);
    return roles(r.stdout);
  };
  const restCodes = async (path: string): Promise<Row> =>
    Object.fromEntries(
      await Promise.all(c().nodes.map(async (n, i) => [n.name, (await c().rest(i, path)).status] as const)),
    );
  const postmaster = (name: string): number => {
    const pid = Number.parseInt(
      readText(join(node(name).dataDir, 'postmaster.pid')).split('\n', 1)[0] ?? '',
      10,
    );
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no postmaster for ${name}`);
    return pid;
  };
  const walreceiver = (name: string): number[] =>
    childPids(postmaster(name)).filter((pid) => readText(`/proc/${pid}/cmdline`).includes('walreceiver'));
  const signal = (pids: readonly number[], sig: 'SIGSTOP' | 'SIGCONT'): void => {
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
        if (sig === 'SIGSTOP') frozen.add(pid);
        else frozen.delete(pid);
      } catch {
        frozen.delete(pid);
      }
    }
  };
  const client = (name: string): Promise<pg.Client> =>
    connectSuperuser(node(name).pgPort, { track: clients });
  const onePrimary = async (what: string, timeoutMs: number): Promise<string> =>
    waitFor(
      what,
      async () => {
        const ps = await c().primaries();
        return ps.length === 1 ? (ps[0] ?? false) : false;
      },
      timeoutMs,
      200,
    ).catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${c().logTails(25)}`);
    });

  /** Waits for /sync and synchronous_standby_names of a quorum of 1 among every replica of `leader`. */
  const quorumOf = async (leader: string): Promise<{ replicas: string[]; sync: Row }> => {
    const replicas = c()
      .nodes.map((n) => n.name)
      .filter((n) => n !== leader)
      .sort();
    const want = `ANY 1 (${replicas.join(',')})`;
    let last = '';
    const sync = await waitFor(
      `/sync {leader ${leader}, quorum 1, ${replicas.join(',')}} and synchronous_standby_names ${want}`,
      async () => {
        const s = await syncKey();
        const names = await ssn(leader);
        last = `/sync ${JSON.stringify(s)}, synchronous_standby_names '${names}'`;
        const members = (typeof s['sync_standby'] === 'string' ? s['sync_standby'] : '')
          .split(',')
          .sort()
          .join(',');
        return s['leader'] === leader && s['quorum'] === 1 && members === replicas.join(',') && names === want
          ? s
          : false;
      },
      60_000,
      300,
    ).catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)} (last: ${last})\n${c().logTails(25)}`);
    });
    return { replicas, sync };
  };

  /**
   * A writer on `leader` committing with synchronous_commit on until its connection dies; `acked` holds every id
   * the primary acknowledged.
   */
  const startWriter = async (
    leader: string,
    table: string,
  ): Promise<{ acked: number[]; done: Promise<void> }> => {
    const w = await client(leader);
    await w.query(`CREATE TABLE ${table} (id int PRIMARY KEY)`);
    await w.query('SET synchronous_commit = on');
    const acked: number[] = [];
    const done = (async (): Promise<void> => {
      for (let id = 1; ; id++) {
        try {
          await w.query(`INSERT INTO ${table} VALUES ($1)`, [id]);
          acked.push(id);
        } catch {
          return; // the primary is gone
        }
      }
    })();
    await waitFor(`100 acknowledged writes on ${leader}`, () => acked.length >= 100, 30_000, 50);
    return { acked, done };
  };
  const crash = async (name: string, writer: { done: Promise<void> }): Promise<void> => {
    const pid = c().pid(idx(name));
    if (pid === undefined) throw new Error(`agent of ${name} not running`);
    crashHost(pid, node(name).dataDir);
    await waitFor(`the agent of ${name} to die`, () => !c().running(idx(name)), 5000, 50);
    let guard: NodeJS.Timeout | undefined;
    await Promise.race([writer.done, new Promise<void>((r) => (guard = setTimeout(r, 15_000)))]);
    clearTimeout(guard);
  };
  const lostOn = async (name: string, table: string, acked: readonly number[]): Promise<number[]> => {
    const r = await client(name);
    const present = new Set((await r.query<{ id: number }>(`SELECT id FROM ${table}`)).rows.map((x) => x.id));
    return acked.filter((id) => !present.has(id));
  };

  beforeAll(async () => {
    etcd = await startEtcd();
    cluster = await startAgentCluster({
      etcdEndpoint: etcd.endpoint,
      scope: 'mixedq',
      ttl: TTL,
      loopWait: LOOP_WAIT,
      retryTimeout: 5,
      bootstrapDcsExtra: 'synchronous_mode: quorum\nsynchronous_node_count: 1',
      agentArgv: (n) => (n.name === PGWARDEN ? undefined : [PATRONI4, n.configFile]),
    });
  }, 150_000);

  afterAll(async () => {
    signal([...frozen], 'SIGCONT');
    await Promise.all(clients.map((cl) => cl.end().catch(() => undefined)));
    try {
      await cluster?.stop();
    } finally {
      await etcd?.stop();
    }
  }, 90_000);

  let patroniLeader = '';
  /** Length of each Patroni agent's log when pgwarden promoted. */
  const logMark = new Map<string, number>();

  it('a Patroni 4.1.4 leader counts the pgwarden replica in its quorum; pgwarden list shows Quorum Standby', async () => {
    let leader = await c().waitReady({ timeoutMs: 120_000 });
    if (leader === PGWARDEN) {
      const r = await runCommand(
        PATRONICTL4,
        [
          '-c',
          node('pg1').configFile,
          'switchover',
          c().scope,
          '--leader',
          PGWARDEN,
          '--candidate',
          'pg1',
          '--force',
        ],
        { timeoutMs: 60_000 },
      );
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      leader = await onePrimary('pg1 as the primary', 60_000);
      expect(leader).toBe('pg1');
    }
    patroniLeader = leader;
    const { replicas, sync } = await quorumOf(leader);
    expect(replicas).toContain(PGWARDEN);
    expect(Object.keys(sync).sort()).toEqual(['leader', 'quorum', 'sync_standby']);
    // Both replicas stream and are quorum standbys on the primary (a replica may still be reconnecting).
    const repl = async (): Promise<string> =>
      (
        await c().psql(
          idx(leader),
          "SELECT application_name || ':' || sync_state FROM pg_stat_replication ORDER BY 1",
        )
      ).stdout.trim();
    const wantRepl = replicas.map((n) => `${n}:quorum`).join('\n');
    await waitFor(
      'both replicas quorum standbys in pg_stat_replication',
      async () => (await repl()) === wantRepl,
      30_000,
      300,
    ).catch(() => undefined);
    expect(await repl()).toBe(wantRepl);
    await waitFor(
      'GET /quorum 200 on both replicas',
      async () => {
        const codes = await restCodes('/quorum');
        return replicas.every((n) => codes[n] === 200);
      },
      20_000,
    );
    expect(await restCodes('/quorum')).toEqual(
      Object.fromEntries(c().nodes.map((n) => [n.name, n.name === leader ? 503 : 200])),
    );
    const want = Object.fromEntries(
      c().nodes.map((n) => [n.name, n.name === leader ? 'Leader' : 'Quorum Standby']),
    );
    expect(await patronictlList()).toEqual(want);
    expect(await pgwardenList()).toEqual(want);
  }, 240_000);

  it('kill -9 of the Patroni leader: the pgwarden quorum member promotes, no acknowledged write is lost', async () => {
    const other = c()
      .nodes.map((n) => n.name)
      .find((n) => n !== patroniLeader && n !== PGWARDEN);
    if (!other) throw new Error('no second Patroni member');
    // The Patroni replica stops receiving WAL: from now on only pgwarden acknowledges commits.
    const wr = walreceiver(other);
    expect(wr.length).toBe(1);
    signal(wr, 'SIGSTOP');
    const writer = await startWriter(patroniLeader, 'acked_a');
    const t0 = Date.now();
    await crash(patroniLeader, writer);
    const ackedAtCrash = [...writer.acked];
    const promoted = await onePrimary('a new primary', 60_000);
    expect(promoted).toBe(PGWARDEN);
    const lost = await lostOn(PGWARDEN, 'acked_a', ackedAtCrash);
    console.info(
      `Patroni leader ${patroniLeader} crashed with ${ackedAtCrash.length} acknowledged writes: ${PGWARDEN} promoted after ${Date.now() - t0} ms, lost ${lost.length}`,
    );
    expect(lost).toEqual([]);
    for (const n of ['pg1', 'pg2']) logMark.set(n, readText(node(n).logFile).length);
    signal(wr, 'SIGCONT');
    // The old leader comes back (as a replica of pgwarden).
    c().start(idx(patroniLeader));
    expect(await c().waitReady({ timeoutMs: 120_000 })).toBe(PGWARDEN);
  }, 240_000);

  it("with the pgwarden leader, the Patroni 4.1.4 replicas accept pgwarden's /sync", async () => {
    const { replicas, sync } = await quorumOf(PGWARDEN);
    expect(replicas).toEqual(['pg1', 'pg2']);
    // Patroni writes {leader, sync_standby, quorum}: same fields, a comma list of names.
    expect(sync).toEqual({ leader: PGWARDEN, sync_standby: 'pg1,pg2', quorum: 1 });
    await waitFor(
      'GET /quorum 200 on both Patroni replicas',
      async () => {
        const codes = await restCodes('/quorum');
        return codes['pg1'] === 200 && codes['pg2'] === 200;
      },
      20_000,
    );
    expect(await restCodes('/quorum')).toEqual({ pg1: 200, pg2: 200, [PGWARDEN]: 503 });
    expect(await restCodes('/read-only-quorum')).toEqual({ pg1: 200, pg2: 200, [PGWARDEN]: 200 });
    for (const n of ['pg1', 'pg2']) {
      const st = JSON.parse((await c().rest(idx(n), '/patroni')).body) as Row;
      expect(st['quorum_standby'], n).toBe(true);
    }
    const want = { pg1: 'Quorum Standby', pg2: 'Quorum Standby', [PGWARDEN]: 'Leader' };
    expect(await patronictlList()).toEqual(want);
    expect(await pgwardenList()).toEqual(want);
    // Under the pgwarden leader (since its promotion) the Patroni agents logged no error or traceback.
    for (const n of ['pg1', 'pg2']) {
      const lines = readText(node(n).logFile)
        .slice(logMark.get(n) ?? 0)
        .split('\n')
        .filter((l) => /Traceback|ERROR|CRITICAL|Exception/.test(l));
      expect(lines, `${n}: Patroni 4.1.4 errors under the pgwarden leader`).toEqual([]);
    }
  }, 120_000);

  it('kill -9 of the pgwarden leader: the member outside the quorum never promotes; the Patroni quorum member does, losing nothing', async () => {
    const [a, b] = ['pg1', 'pg2'];
    // maximum_lag_on_syncnode 64 kB (set through pgwarden's PATCH /config): a replica lagging more leaves the quorum.
    // maximum_lag_on_failover 64 MB: the lagging member is kept out by the quorum rule alone, not by its lag.
    const patch = await fetch(`http://${HOST}:${node(PGWARDEN).restPort}/config`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ maximum_lag_on_syncnode: 65536, maximum_lag_on_failover: 67108864 }),
      signal: AbortSignal.timeout(10_000),
    });
    expect(patch.status).toBe(200);
    const wr = walreceiver(b);
    expect(wr.length).toBe(1);
    signal(wr, 'SIGSTOP');
    const writer = await startWriter(PGWARDEN, 'acked_b');
    // About 1 MB of WAL that B does not receive: pgwarden takes it out of the quorum as Patroni would.
    const filler = await client(PGWARDEN);
    await filler.query(
      'CREATE TABLE filler AS SELECT g, repeat($1, 100) AS t FROM generate_series(1, 8000) g',
      ['x'],
    );
    let last = '';
    await waitFor(
      `/sync {leader ${PGWARDEN}, quorum 0, ${a}} and synchronous_standby_names ANY 1 (${a})`,
      async () => {
        const s = await syncKey();
        const names = await ssn(PGWARDEN);
        last = `/sync ${JSON.stringify(s)}, synchronous_standby_names '${names}'`;
        return (
          s['leader'] === PGWARDEN && s['quorum'] === 0 && s['sync_standby'] === a && names === `ANY 1 (${a})`
        );
      },
      30_000,
      300,
    ).catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)} (last: ${last})\n${c().logTails(25)}`);
    });
    const wantCodes = { [a]: 200, [b]: 503, [PGWARDEN]: 503 };
    await waitFor(
      `GET /quorum 200 on ${a} only`,
      async () => JSON.stringify(await restCodes('/quorum')) === JSON.stringify(wantCodes),
      20_000,
      300,
    ).catch(() => undefined);
    expect(await restCodes('/quorum')).toEqual(wantCodes);
    expect(await patronictlList()).toEqual({ [a]: 'Quorum Standby', [b]: 'Replica', [PGWARDEN]: 'Leader' });
    const bRows = async (): Promise<number> =>
      Number(
        (await c().psql(idx(b), "SELECT count(*) FROM pg_class WHERE relname = 'acked_b'")).stdout.trim(),
      ) === 0
        ? 0
        : Number((await c().psql(idx(b), 'SELECT count(*) FROM acked_b')).stdout.trim() || '0');
    expect(await bRows()).toBeLessThan(writer.acked.length);
    // A frozen whole (agent, postmaster, backends): nobody acknowledges any more; then the leader host crashes.
    const aAgent = c().pid(idx(a));
    if (aAgent === undefined) throw new Error(`agent of ${a} not running`);
    const aPids = [aAgent, ...childPids(aAgent), postmaster(a), ...childPids(postmaster(a))];
    signal(aPids, 'SIGSTOP');
    const t0 = Date.now();
    await crash(PGWARDEN, writer);
    const ackedAtCrash = [...writer.acked];
    // The leader key expires after ttl; B races every loop_wait: it must stay a replica throughout.
    const watchUntil = t0 + (TTL + 4 * LOOP_WAIT) * 1000;
    while (Date.now() < watchUntil) {
      expect(await c().primaries()).toEqual([]);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(await rawKey('leader')).toBeUndefined();
    console.info(
      `pgwarden leader crashed with ${ackedAtCrash.length} acknowledged writes, ${a} frozen: ${b} (${await bRows()} rows) did not promote in ${Date.now() - t0} ms`,
    );
    signal(aPids, 'SIGCONT');
    const promoted = await onePrimary('a new primary', 60_000);
    expect(promoted).toBe(a);
    const lost = await lostOn(a, 'acked_b', ackedAtCrash);
    console.info(
      `${a} promoted ${Date.now() - t0} ms after the crash, lost ${lost.length} of ${ackedAtCrash.length}`,
    );
    expect(lost).toEqual([]);
    signal(wr, 'SIGCONT');
    await waitFor(`/sync naming ${a}`, async () => (await syncKey())['leader'] === a, 30_000, 300);
  }, 240_000);
});
