/**
 * Clean stops of pgwarden agents (real PostgreSQL and etcd3), as Patroni 4.1.4 does them:
 * 1. A switchover right after the primary restarted (the replicas' streams are reconnecting): the candidate is
 *    promoted only once it has the old primary's shutdown checkpoint, so the new timeline forks at or after that
 *    checkpoint and the old primary rejoins as a replica without pg_rewind.
 * 2. synchronous_mode (strict) on three members: SIGTERM to the synchronous standby while a writer commits on the
 *    primary. The standby first asks to leave `/sync` (Patroni's `while_not_sync_standby`), so the longest commit
 *    stall stays short (printed; without it the primary waits for its next cycle to replace the standby).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { connectSuperuser } from '../harness/write-probe.js';
import { stopSyncStandby } from '../harness/sync-standby-stop.js';
import { parseLsnText } from '../../src/model/lsn.js';

const HOST = '127.0.0.1';
const LOOP_WAIT = 3;

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'bundle', 'root');

describeWithNeeds('clean stops of pgwarden agents', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  const clients: pg.Client[] = [];

  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  const idx = (name: string): number => c().nodes.findIndex((n) => n.name === name);
  const nodeOf = (name: string): AgentCluster['nodes'][number] => {
    const n = c().nodes[idx(name)];
    if (!n) throw new Error(`no node ${name}`);
    return n;
  };
  const post = async (
    name: string,
    path: string,
    body: unknown,
  ): Promise<{ status: number; text: string }> => {
    const r = await fetch(`http://${HOST}:${nodeOf(name).restPort}${path}`, {
      method: path === '/config' ? 'PATCH' : 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    return { status: r.status, text: await r.text() };
  };
  const client = (name: string): Promise<pg.Client> =>
    connectSuperuser(nodeOf(name).pgPort, { track: clients });
  const log = (name: string): string => readFileSync(nodeOf(name).logFile, 'utf8');
  const streamingFrom = async (leader: string, replica: string): Promise<boolean> => {
    const r = await c().psql(
      idx(leader),
      `SELECT count(*) FROM pg_stat_replication WHERE application_name = '${replica}' AND state = 'streaming'`,
    );
    return r.stdout.trim() === '1';
  };

  beforeAll(async () => {
    etcd = await startEtcd();
    cluster = await startAgentCluster({
      etcdEndpoint: etcd.endpoint,
      ttl: 20,
      loopWait: LOOP_WAIT,
      retryTimeout: 5,
    });
    await cluster.waitReady({ timeoutMs: 120_000 });
  }, 150_000);

  afterAll(async () => {
    await Promise.all(clients.map((cl) => cl.end().catch(() => undefined)));
    try {
      await cluster?.stop();
    } finally {
      await etcd?.stop();
    }
  }, 60_000);

  it('switchover while the candidate reconnects after a restart: the old primary rejoins without pg_rewind', async () => {
    const leader = await c().waitReady({ timeoutMs: 60_000 });
    const candidate =
      c()
        .nodes.map((n) => n.name)
        .find((n) => n !== leader) ?? '';
    const w = await client(leader);
    await w.query('CREATE TABLE IF NOT EXISTS t (id int)');
    await w.query('INSERT INTO t SELECT generate_series(1, 1000)');
    await w.end();
    // The restart drops every replica's stream: each reconnects after wal_retrieve_retry_interval (5 s).
    const restart = await post(leader, '/restart', {});
    expect(restart.status, restart.text).toBe(200);
    const logMark = log(leader).length;
    const sw = await post(leader, '/switchover', { leader, candidate });
    expect(sw.status, sw.text).toBe(200);

    await waitFor(
      `${candidate} primary and ${leader} streaming from it`,
      async () => (await c().primaries()).join() === candidate && (await streamingFrom(candidate, leader)),
      90_000,
      500,
    );
    const after = log(leader).slice(logMark);
    const m = /demoted: shutdown checkpoint at ([0-9A-F]+\/[0-9A-F]+)/.exec(after);
    expect(m, after).not.toBeNull();
    const checkpoint = parseLsnText(m?.[1] ?? '') ?? 0n;
    // The new timeline's history: its last line is `<parent tli>\t<switchpoint>\t<reason>`.
    const walDir = join(nodeOf(candidate).dataDir, 'pg_wal');
    const history = readdirSync(walDir)
      .filter((f) => f.endsWith('.history'))
      .sort()
      .at(-1);
    expect(history).toBeDefined();
    const lines = readFileSync(join(walDir, history ?? ''), 'utf8')
      .trim()
      .split('\n');
    const switchpoint = parseLsnText(lines.at(-1)?.split('\t')[1] ?? '') ?? 0n;
    console.log(
      `switchover ${leader} -> ${candidate}: shutdown checkpoint ${m?.[1]}, new timeline forks at ${lines.at(-1)?.split('\t')[1]}`,
    );
    expect(switchpoint > checkpoint, after.slice(-6000)).toBe(true);
    expect(after).not.toMatch(/pg_rewind/);
    await c().waitReady({ timeoutMs: 60_000 });
  }, 180_000);

  it('SIGTERM of the synchronous standby (strict) while a writer commits: it leaves /sync first', async () => {
    const { longest } = await stopSyncStandby(c(), 'pgwarden', client);
    // Without leaving /sync first the primary's commits wait until its next cycle finds the standby gone: measured
    // 1.0 s and 1.8 s with loop_wait 3 (two runs of this test with the wait disabled), against 26-55 ms with it.
    expect(longest).toBeLessThan(750);
  }, 240_000);
});
