/**
 * A mixed cluster of two Patroni 4.1.4 agents and one pgwarden agent (PostgreSQL 15), on etcd v3 and on ZooKeeper:
 * it bootstraps (either kind may win), switches over to pgwarden and back with patronictl 4.1.4, and in every
 * state patronictl 4.1.4's `list -f json` shows the pgwarden member with the same fields and values as a 4.1.4
 * member in the same role and state. On etcd the raw member keys and the `status` key are compared too (field
 * sets equal; the values that do not move equal). `GET /metrics` of the pgwarden member, as a replica and as the
 * primary, has the 4.1.4 member's Content-Type, comment lines (HELP, TYPE, the state legend), metric names in the
 * same order with the same label keys, and the same role and state values.
 *
 * Needs: root, PostgreSQL 15, etcd, ZooKeeper, the shared/ checkout beside the repository (Patroni 4.1.4 on
 * Debian's python3) and a built pgwarden.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { etcdPost, startEtcd } from '../harness/etcd.js';
import { PATRONI4, PATRONICTL4, runCommand } from '../harness/patroni.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding, type Need } from '../harness/requirements.js';
import { startZooKeeper } from '../harness/zookeeper.js';

type Row = Record<string, unknown>;
type Dcs = 'etcd3' | 'zookeeper';

const PGWARDEN = 'pg3';
const TEST_MS = 240_000;

/** The values of a `list -f json` row that must be equal between two members in the same role and state. */
function comparable(row: Row | undefined): Row {
  const { Member: _m, Host: _h, ...rest } = row ?? {};
  return rest;
}

interface Metrics {
  readonly contentType: string | null;
  /** Comment lines as written; sample lines as `name{label keys}`. */
  readonly shape: readonly string[];
  readonly values: ReadonlyMap<string, string>;
  readonly labels: ReadonlyMap<string, Row>;
}

async function metricsOf(port: number): Promise<Metrics> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (r.status !== 200) throw new Error(`GET /metrics: ${r.status}`);
  const text = await r.text();
  const shape: string[] = [];
  const values = new Map<string, string>();
  const labels = new Map<string, Row>();
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) {
      shape.push(line);
      continue;
    }
    const [, name = '', body = '', value = ''] = m;
    const pairs = [...body.matchAll(/(\w+)="([^"]*)"/g)].map(([, k = '', v = '']) => [k, v] as const);
    shape.push(`${name}{${pairs.map(([k]) => k).join(',')}}`);
    values.set(name, value);
    labels.set(name, Object.fromEntries(pairs));
  }
  return { contentType: r.headers.get('content-type'), shape, values, labels };
}

/** The metrics whose values depend only on a member's role and state, not on its position or clock. */
const ROLE_METRICS = [
  'patroni_version',
  'patroni_postgres_running',
  'patroni_primary',
  'patroni_standby_leader',
  'patroni_replica',
  'patroni_sync_standby',
  'patroni_quorum_standby',
  'patroni_xlog_paused',
  'patroni_postgres_streaming',
  'patroni_postgres_in_archive_recovery',
  'patroni_postgres_server_version',
  'patroni_cluster_unlocked',
  'patroni_failsafe_mode_is_active',
  'patroni_pending_restart',
  'patroni_is_paused',
  'patroni_postgres_state',
];
const roleValues = (m: Metrics): Row => Object.fromEntries(ROLE_METRICS.map((n) => [n, m.values.get(n)]));

/** pgwarden's metrics against a 4.1.4 member's in the same role: same format, labels and role values. */
function expectSameMetrics(mine: Metrics, theirs: Metrics, name: string, scope: string): void {
  expect(mine.contentType).toBe(theirs.contentType);
  expect(mine.shape).toEqual(theirs.shape);
  expect(roleValues(mine)).toEqual(roleValues(theirs));
  for (const labels of mine.labels.values()) expect(labels).toEqual({ scope, name });
  const count = (m: Metrics): number => m.shape.filter((l) => l.startsWith('# TYPE ')).length;
  console.info(`GET /metrics: pgwarden ${name} ${count(mine)} metrics, Patroni 4.1.4 ${count(theirs)}`);
}

/** The member-key fields whose values do not depend on the member itself (addresses differ). */
function keyShape(value: string | undefined): Row {
  const { conn_url: _c, api_url: _a, ...rest } = JSON.parse(value ?? '{}') as Row;
  return rest;
}

for (const dcs of ['etcd3', 'zookeeper'] as const satisfies readonly Dcs[]) {
  const needs: Need[] = ['postgres', dcs === 'etcd3' ? 'etcd' : 'zookeeper', 'patroni4', 'patronictl4'];
  describeNeeding(
    ...needs,
    'bundle',
    'root',
  )(`2 Patroni 4.1.4 + 1 pgwarden on ${dcs}`, () => {
    let server: { endpoint: string; stop(): Promise<void> } | undefined;
    let cluster: AgentCluster | undefined;
    const c = (): AgentCluster => {
      if (!cluster) throw new Error('no cluster');
      return cluster;
    };
    const ctl = (args: readonly string[]): ReturnType<typeof runCommand> =>
      runCommand(PATRONICTL4, ['-c', c().nodes[0]?.configFile ?? '', ...args], { timeoutMs: 60_000 });
    const list = async (): Promise<Map<string, Row>> => {
      const r = await ctl(['list', '-f', 'json']);
      if (r.code !== 0) throw new Error(`patronictl list: ${r.stderr}`);
      return new Map((JSON.parse(r.stdout) as Row[]).map((row) => [String(row['Member']), row]));
    };
    /** Raw values under the cluster's prefix (etcd only). */
    const keys = async (): Promise<Map<string, string>> => {
      const b64 = (t: string): string => Buffer.from(t).toString('base64');
      const prefix = `/service/${c().scope}/`;
      const r = await etcdPost(server?.endpoint ?? '', '/v3/kv/range', {
        key: b64(prefix),
        range_end: b64(prefix.slice(0, -1) + '0'),
      });
      const kvs = (r['kvs'] ?? []) as { key: string; value?: string }[];
      return new Map(
        kvs.map((kv) => [
          Buffer.from(kv.key, 'base64').toString().slice(prefix.length),
          Buffer.from(kv.value ?? '', 'base64').toString(),
        ]),
      );
    };
    const portOf = (name: string): number => c().nodes.find((n) => n.name === name)?.restPort ?? 0;
    /** Polls until the two members' role values agree (a replica's streaming state settles), then returns both. */
    const metricsAlike = async (mine: string, theirs: string): Promise<[Metrics, Metrics]> => {
      const both = async (): Promise<[Metrics, Metrics]> =>
        Promise.all([metricsOf(portOf(mine)), metricsOf(portOf(theirs))]);
      return waitFor(
        `GET /metrics of ${mine} and ${theirs} alike`,
        async () => {
          const [a, b] = await both();
          return JSON.stringify(roleValues(a)) === JSON.stringify(roleValues(b)) ? ([a, b] as const) : false;
        },
        30_000,
        500,
      ).then(
        ([a, b]) => [a, b],
        async () => both(),
      );
    };
    const switchover = async (leader: string, candidate: string): Promise<void> => {
      const r = await ctl(['switchover', c().scope, '--leader', leader, '--candidate', candidate, '--force']);
      expect(r.code, `${r.stdout}\n${r.stderr}\n${c().logTails()}`).toBe(0);
      await c().waitReady({ timeoutMs: 120_000 });
      expect(await c().primaries()).toEqual([candidate]);
    };
    /** Polls until patronictl shows `a` and `b` alike (lags and LSNs move while WAL is written). */
    const sameRows = async (a: string, b: string): Promise<Map<string, Row>> => {
      let last = new Map<string, Row>();
      try {
        return await waitFor(
          `patronictl 4.1.4 to show ${a} and ${b} alike`,
          async () => {
            last = await list();
            return JSON.stringify(comparable(last.get(a))) === JSON.stringify(comparable(last.get(b)))
              ? last
              : false;
          },
          30_000,
          500,
        );
      } catch {
        expect(comparable(last.get(a)), `${a} vs ${b}`).toEqual(comparable(last.get(b)));
        throw new Error('unreachable');
      }
    };

    beforeAll(async () => {
      server = dcs === 'etcd3' ? await startEtcd() : await startZooKeeper();
      cluster = await startAgentCluster({
        dcs,
        etcdEndpoint: server.endpoint,
        scope: 'mixed',
        ttl: 20,
        loopWait: 2,
        retryTimeout: 5,
        agentArgv: (node) => (node.name === PGWARDEN ? undefined : [PATRONI4, node.configFile]),
      });
    }, TEST_MS);

    afterAll(async () => {
      try {
        await cluster?.stop();
      } finally {
        await server?.stop();
      }
    }, TEST_MS);

    it('bootstraps; a pgwarden replica looks like a 4.1.4 replica', { timeout: TEST_MS }, async () => {
      let leader = await c().waitReady({ timeoutMs: 150_000 });
      if (leader === PGWARDEN) {
        await switchover(PGWARDEN, 'pg1');
        leader = 'pg1';
      }
      const other = leader === 'pg1' ? 'pg2' : 'pg1';
      const rows = await sameRows(PGWARDEN, other);
      expect(rows.get(PGWARDEN)).toMatchObject({ Role: 'Replica', State: 'streaming' });
      expect(Object.keys(rows.get(PGWARDEN) ?? {}).sort()).toEqual(Object.keys(rows.get(other) ?? {}).sort());
      const [mine, theirs] = await metricsAlike(PGWARDEN, other);
      expectSameMetrics(mine, theirs, PGWARDEN, c().scope);
      expect(mine.values.get('patroni_replica')).toBe('1');
      expect(mine.values.get('patroni_postgres_streaming')).toBe('1');
      expect(Number(mine.values.get('patroni_xlog_received_location'))).toBeGreaterThan(0);
      expect(mine.values.get('patroni_postgres_timeline')).toBe(
        theirs.values.get('patroni_postgres_timeline'),
      );
      if (dcs !== 'etcd3') return;
      const kv = await waitFor(
        'member keys alike',
        async () => {
          const k = await keys();
          return JSON.stringify(keyShape(k.get(`members/${PGWARDEN}`))) ===
            JSON.stringify(keyShape(k.get(`members/${other}`)))
            ? k
            : false;
        },
        30_000,
        500,
      ).catch(async () => keys());
      expect(keyShape(kv.get(`members/${PGWARDEN}`))).toEqual(keyShape(kv.get(`members/${other}`)));
      expect(keyShape(kv.get(`members/${PGWARDEN}`))).toMatchObject({
        role: 'replica',
        state: 'running',
        version: '4.1.4',
        replication_state: 'streaming',
      });
    });

    it(
      'switches over to pgwarden: its leader row, member and status keys look like 4.1.4',
      {
        timeout: TEST_MS,
      },
      async () => {
        const before = dcs === 'etcd3' ? await keys() : undefined;
        const oldLeader = (await c().primaries())[0] ?? '';
        const before4 = (await list()).get(oldLeader);
        const theirMetrics = await metricsOf(portOf(oldLeader));
        await switchover(oldLeader, PGWARDEN);
        const myMetrics = await metricsOf(portOf(PGWARDEN));
        expectSameMetrics(myMetrics, theirMetrics, PGWARDEN, c().scope);
        expect(myMetrics.values.get('patroni_primary')).toBe('1');
        expect(Number(myMetrics.values.get('patroni_xlog_location'))).toBeGreaterThan(
          Number(theirMetrics.values.get('patroni_xlog_location')),
        );
        expect(Number(myMetrics.values.get('patroni_postgres_timeline'))).toBe(
          Number(theirMetrics.values.get('patroni_postgres_timeline')) + 1,
        );
        const rows = await list();
        expect(Object.keys(rows.get(PGWARDEN) ?? {}).sort()).toEqual(Object.keys(before4 ?? {}).sort());
        expect(rows.get(PGWARDEN)).toMatchObject({ Role: 'Leader', State: 'running' });
        // The Patroni replicas stream from pgwarden and show as 4.1.4 replicas do.
        await sameRows('pg1', 'pg2');
        expect(rows.get('pg1')).toMatchObject({ Role: 'Replica' });
        if (!before) return;
        const kv = await waitFor(
          'the status key written by pgwarden with every member slot',
          async () => {
            const k = await keys();
            const st = JSON.parse(k.get('status') ?? '{}') as Row;
            return Array.isArray(st['retain_slots']) && st['retain_slots'].length === 3 ? k : false;
          },
          30_000,
          500,
        );
        const mine = JSON.parse(kv.get('status') ?? '{}') as Row;
        const theirs = JSON.parse(before.get('status') ?? '{}') as Row;
        expect(Object.keys(mine)).toEqual(Object.keys(theirs));
        expect(Object.keys(mine['slots'] as Row).sort()).toEqual(Object.keys(theirs['slots'] as Row).sort());
        expect(mine['retain_slots']).toEqual(['pg1', 'pg2', 'pg3']);
        expect(Object.keys(keyShape(kv.get(`members/${PGWARDEN}`))).sort()).toEqual(
          Object.keys(keyShape(before.get(`members/${oldLeader}`))).sort(),
        );
        expect(keyShape(kv.get(`members/${PGWARDEN}`))).toMatchObject({ role: 'primary', version: '4.1.4' });
        const history = JSON.parse(kv.get('history') ?? '[]') as unknown[][];
        expect(history.at(-1)?.[4]).toBe(PGWARDEN);
      },
    );

    it('switches back to a Patroni 4.1.4 member', { timeout: TEST_MS }, async () => {
      await switchover(PGWARDEN, 'pg2');
      const rows = await sameRows(PGWARDEN, 'pg1');
      expect(rows.get(PGWARDEN)).toMatchObject({ Role: 'Replica', State: 'streaming' });
    });
  });
}
