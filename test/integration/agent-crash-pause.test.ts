/**
 * Patroni 4.1.4's handling of a crashed primary and of a shutdown in maintenance mode, against real PostgreSQL 15
 * and etcd, two pgwarden agents:
 * - kill -9 of the primary's postmaster while its agent runs and holds the lock: the agent starts PostgreSQL again
 *   as a primary ("starting primary after failure"): same timeline, still the leader, the replica streams again;
 * - SIGTERM of the leader's agent while the cluster is paused: PostgreSQL keeps running as a primary and the leader
 *   key stays; the agent started again carries on as the leader;
 * - kill -9 of the postmaster with `primary_start_timeout: 0`: the agent fails over instead (the replica takes the
 *   lock).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { etcdPost, startEtcd, type EtcdServer } from '../harness/etcd.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';

const TTL = 20;
const SCOPE = 'crashpause';

const describeWithNeeds = describeNeeding('etcd', 'bundle', 'root');

function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number.parseInt(
      readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n', 1)[0] ?? '',
      10,
    );
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describeWithNeeds('pgwarden agents: crashed primary and shutdown while paused (Patroni 4.1.4)', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  const indexOf = (name: string): number => c().nodes.findIndex((n) => n.name === name);
  const node = (i: number) => {
    const n = c().nodes[i];
    if (!n) throw new Error(`no node ${i}`);
    return n;
  };

  /** The leader key's value (the holder's name), read from etcd. */
  const leaderKey = async (): Promise<string | undefined> => {
    const key = Buffer.from(`/service/${SCOPE}/leader`).toString('base64');
    const r = await etcdPost(etcd?.endpoint ?? '', '/v3/kv/range', { key }, 3000);
    const kvs = r['kvs'] as { value?: string }[] | undefined;
    const v = kvs?.[0]?.value;
    return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
  };
  const patchConfig = async (i: number, body: unknown): Promise<void> => {
    const res = await fetch(`http://127.0.0.1:${node(i).restPort}/config`, {
      method: 'PATCH',
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    expect(res.status).toBe(200);
  };
  const sql = async (i: number, text: string): Promise<string> => {
    const r = await c().psql(i, text);
    if (r.code !== 0) throw new Error(`psql on ${node(i).name}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const isPrimaryRole = (role: string | undefined): boolean => role === 'master' || role === 'primary';
  const logOf = (i: number): string => readFileSync(node(i).logFile, 'utf8');
  /** A failed wait names what the agents logged last. */
  const withLogs = async <T>(p: Promise<T>): Promise<T> => {
    try {
      return await p;
    } catch (e) {
      const pglogs = c()
        .nodes.map((n) => {
          let text = '';
          try {
            text = readFileSync(join(n.dir, 'pglog', 'postgresql.log'), 'utf8')
              .split('\n')
              .slice(-15)
              .join('\n');
          } catch {
            text = '(no log)';
          }
          return `--- ${n.name} postgresql.log (last 15 lines)\n${text}`;
        })
        .join('\n');
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${c().logTails(40)}\n${pglogs}`);
    }
  };

  beforeAll(async () => {
    etcd = await startEtcd();
    cluster = await startAgentCluster({
      etcdEndpoint: etcd.endpoint,
      scope: SCOPE,
      nodes: 2,
      ttl: TTL,
      loopWait: 2,
      retryTimeout: 5,
    });
  }, 120_000);

  afterAll(async () => {
    try {
      await cluster?.stop();
    } finally {
      await etcd?.stop();
    }
  });

  it('a primary whose postmaster was killed -9 is started again as primary: same timeline, still leader', async () => {
    const leader = await c().waitReady({ timeoutMs: 90_000 });
    const li = indexOf(leader);
    const ri = 1 - li;
    await sql(li, 'CREATE TABLE crash (id int); INSERT INTO crash VALUES (1)');
    await waitFor(
      'row 1 on the replica',
      async () => (await sql(ri, 'SELECT count(*) FROM crash')) === '1',
      20_000,
    );
    const before = await c().status(li);
    expect(before?.timeline).toBeGreaterThan(0);
    const pid = postmasterPid(node(li).dataDir);
    if (pid === undefined) throw new Error('no postmaster.pid');
    const logBefore = logOf(li).length;

    process.kill(pid, 'SIGKILL');
    const t0 = Date.now();
    await withLogs(
      waitFor(
        `${leader} primary again after its postmaster was killed`,
        async () => {
          const now = postmasterPid(node(li).dataDir);
          if (now === undefined || now === pid) return false;
          const st = await c()
            .status(li)
            .catch(() => undefined);
          return isPrimaryRole(st?.role) && st?.state === 'running' ? st : false;
        },
        40_000,
      ),
    );
    console.log(
      `crashed primary running as primary again ${Date.now() - t0} ms after kill -9 of its postmaster`,
    );
    const after = await c().status(li);
    expect(after?.timeline).toBe(before?.timeline);
    expect(await leaderKey()).toBe(leader);
    expect(await sql(li, 'SELECT pg_is_in_recovery()')).toBe('f');
    const log = logOf(li).slice(logBefore);
    expect(log).toContain('starting primary after failure');
    expect(log).not.toContain('starting as readonly because i had the session lock');
    expect(log).not.toContain('promoted self to leader');

    // The replica streams from it again: a new row reaches it.
    await sql(li, 'INSERT INTO crash VALUES (2)');
    await waitFor(
      'row 2 on the replica',
      async () => (await sql(ri, 'SELECT count(*) FROM crash')) === '2',
      30_000,
    );
    expect(await c().waitReady({ timeoutMs: 30_000 })).toBe(leader);
  }, 180_000);

  it('SIGTERM of the leader agent while paused leaves PostgreSQL running and the leader key in place', async () => {
    const leader = await c().waitReady({ timeoutMs: 30_000 });
    const li = indexOf(leader);
    await patchConfig(li, { pause: true });
    await waitFor(
      `${leader} paused`,
      async () => (await c().rest(li, '/patroni')).body.includes('"pause": true'),
      15_000,
    );
    const pid = postmasterPid(node(li).dataDir);
    if (pid === undefined) throw new Error('no postmaster.pid');

    await c().terminate(li);
    expect(c().running(li)).toBe(false);
    expect(alive(pid)).toBe(true);
    expect(postmasterPid(node(li).dataDir)).toBe(pid);
    expect(await sql(li, 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await leaderKey()).toBe(leader);
    expect(logOf(li)).toContain('Leader key is not deleted and Postgresql is not stopped due paused state');

    // Started again, the agent finds its primary running and its key, and carries on as the leader.
    c().start(li);
    await waitFor(
      `${leader} leader again after its restart`,
      async () => {
        const st = await c()
          .status(li)
          .catch(() => undefined);
        return isPrimaryRole(st?.role) && (await leaderKey()) === leader;
      },
      30_000,
    );
    expect(postmasterPid(node(li).dataDir)).toBe(pid);
    await patchConfig(li, { pause: null });
    expect(await c().waitReady({ timeoutMs: 60_000 })).toBe(leader);
  }, 180_000);
  it('with primary_start_timeout 0 a crashed primary fails over to the healthy replica instead', async () => {
    const leader = await c().waitReady({ timeoutMs: 30_000 });
    const li = indexOf(leader);
    const ri = 1 - li;
    await patchConfig(li, { primary_start_timeout: 0 });
    // In the DCS now: the cycle that finds the crash reads it with the cluster (one snapshot).
    await waitFor(
      'primary_start_timeout 0 in the config',
      async () => (await c().rest(li, '/config')).body.includes('"primary_start_timeout": 0'),
      10_000,
    );
    const pid = postmasterPid(node(li).dataDir);
    if (pid === undefined) throw new Error('no postmaster.pid');
    const logBefore = logOf(li).length;

    process.kill(pid, 'SIGKILL');
    const t0 = Date.now();
    const other = node(ri).name;
    await waitFor(`${other} holds the leader key`, async () => (await leaderKey()) === other, 20_000);
    await waitFor(
      `${other} primary`,
      async () =>
        isPrimaryRole(
          (
            await c()
              .status(ri)
              .catch(() => undefined)
          )?.role,
        ),
      20_000,
    );
    console.log(
      `primary_start_timeout 0: ${other} primary ${Date.now() - t0} ms after kill -9 of ${leader}'s postmaster`,
    );
    const log = logOf(li).slice(logBefore);
    expect(log).toContain('Primary crashed. Failing over.');
    expect(log).not.toContain('starting primary after failure');

    // Last in this file: the former primary's rejoin (crash recovery, pg_rewind) is agent-rejoin.test.ts's subject.
  }, 120_000);
});
