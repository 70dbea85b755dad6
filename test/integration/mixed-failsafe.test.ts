/**
 * DCS failsafe mode in a mixed cluster on etcd3: one Patroni 4.1.4 agent and one pgwarden agent (PostgreSQL 15),
 * ttl 20 / loop_wait 2 / retry_timeout 5, `failsafe_mode: true` set with PATCH /config. With etcd frozen (SIGSTOP) for
 * twice the ttl, the primary keeps accepting writes (every polled round must write) because the other member,
 * of the other kind, accepts its POST /failsafe; after etcd is back, the same leader with a streaming replica. Done
 * with each kind as the leader (patronictl 4.1.4 switches over in between), so both directions of POST /failsafe
 * are exercised: pgwarden's request to Patroni's handler, and Patroni's request to pgwarden's.
 *
 * Needs: root, PostgreSQL 15, etcd, the shared/ checkout beside the repository (Patroni 4.1.4) and a built pgwarden.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { PATRONI4, PATRONICTL4, runCommand } from '../harness/patroni.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';

const PGWARDEN = 'pg2';
const TTL = 20;
const TEST_MS = 300_000;

/** A JSON object's entries, sorted, as text ('' when not an object). */
function sorted(text: string): string {
  try {
    return JSON.stringify(Object.entries(JSON.parse(text) as Record<string, unknown>).sort());
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
)('failsafe mode: Patroni 4.1.4 + pgwarden on etcd3', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  const e = (): EtcdServer => {
    if (!etcd) throw new Error('no etcd');
    return etcd;
  };
  const indexOf = (name: string): number => c().nodes.findIndex((n) => n.name === name);
  const writes = async (i: number): Promise<boolean> =>
    (await c().psql(i, 'INSERT INTO failsafe_probe VALUES (now())')).code === 0;

  beforeAll(async () => {
    etcd = await startEtcd();
    cluster = await startAgentCluster({
      etcdEndpoint: etcd.endpoint,
      scope: 'mixedfs',
      nodes: 2,
      ttl: TTL,
      loopWait: 2,
      retryTimeout: 5,
      agentArgv: (node) => (node.name === PGWARDEN ? undefined : [PATRONI4, node.configFile]),
    });
  }, TEST_MS);

  afterAll(async () => {
    try {
      etcd?.signal('SIGCONT');
      await cluster?.stop();
    } finally {
      await etcd?.stop();
    }
  }, TEST_MS);

  /** The leader's `/failsafe` key names both members; then etcd frozen for 2 * ttl, the leader writable all along. */
  async function frozenEtcdKeepsLeader(leader: string): Promise<void> {
    const li = indexOf(leader);
    const other = 1 - li;
    const expected = Object.fromEntries(
      c().nodes.map((n) => [n.name, `http://127.0.0.1:${n.restPort}/patroni`]),
    );
    await waitFor(
      `GET /failsafe on ${leader} naming both members`,
      async () => sorted((await c().rest(li, '/failsafe')).body) === sorted(JSON.stringify(expected)),
      30_000,
      250,
    );
    e().signal('SIGSTOP');
    const cutAt = Date.now();
    try {
      let rounds = 0;
      let sawActive = false;
      while (Date.now() - cutAt < 2 * TTL * 1000) {
        expect(
          await writes(li),
          `${leader}, round ${rounds} at ${Date.now() - cutAt} ms\n${c().logTails(20)}`,
        ).toBe(true);
        expect(await writes(other)).toBe(false);
        const st = (await c().rest(li, '/patroni')).body;
        if (st.includes('"failsafe_mode_is_active": true')) sawActive = true;
        rounds++;
      }
      expect(sawActive, c().logTails(20)).toBe(true);
      expect(rounds).toBeGreaterThan(10);
    } finally {
      e().signal('SIGCONT');
    }
    expect(await c().waitReady({ timeoutMs: 120_000 })).toBe(leader);
  }

  it('both kinds keep the other as leader while etcd is frozen', { timeout: 2 * TEST_MS }, async () => {
    const first = await c().waitReady({ timeoutMs: 150_000 });
    const res = await fetch(`http://127.0.0.1:${c().nodes[indexOf(first)]?.restPort}/config`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ failsafe_mode: true }),
    });
    expect(res.status, await res.text()).toBe(200);
    const created = await c().psql(indexOf(first), 'CREATE TABLE failsafe_probe (at timestamptz)');
    expect(created.code, created.stderr).toBe(0);
    await frozenEtcdKeepsLeader(first);

    const second = first === PGWARDEN ? 'pg1' : PGWARDEN;
    const r = await runCommand(
      PATRONICTL4,
      [
        '-c',
        c().nodes[0]?.configFile ?? '',
        'switchover',
        c().scope,
        '--leader',
        first,
        '--candidate',
        second,
        '--force',
      ],
      { timeoutMs: 60_000 },
    );
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(await c().waitReady({ timeoutMs: 120_000 })).toBe(second);
    await frozenEtcdKeepsLeader(second);
  });
});
