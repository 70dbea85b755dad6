/**
 * The set-up and the checks the failsafe-mode integration tests share (agent-failsafe, mixed-failsafe): one DCS
 * server (etcd or ZooKeeper) and an agent cluster, registered as beforeAll/afterAll (the DCS thawed before the
 * clean-up, so that a test failing with it frozen does not leave it stopped); PATCH /config `failsafe_mode: true`,
 * the wait for the leader's `/failsafe` key, an INSERT probe, and the freeze for 2 * ttl during which the leader
 * must write in every polled round; and the whole pgwarden failsafe scenario, for etcd and ZooKeeper.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster, type AgentClusterOptions } from '../harness/agents.js';
import { startEtcd } from '../harness/etcd.js';
import { waitFor } from '../harness/process.js';
import { startZooKeeper } from '../harness/zookeeper.js';

/** The DCS server as these tests use it: SIGSTOP/SIGCONT. */
interface FrozenDcs {
  readonly endpoint: string;
  signal(sig: NodeJS.Signals): void;
  stop(): Promise<void>;
}

export interface FailsafeSuite {
  readonly cluster: () => AgentCluster;
  /** Signals the DCS server (SIGSTOP freezes it, SIGCONT thaws it). */
  readonly dcsSignal: (sig: NodeJS.Signals) => void;
  readonly indexOf: (name: string) => number;
  /** One INSERT into failsafe_probe on member `i`; true when it committed. */
  readonly writes: (i: number) => Promise<boolean>;
  /** GET `path` on member `i` as a JSON object (undefined when the body is not one). */
  readonly statusJson: (i: number, path: string) => Promise<Record<string, unknown> | undefined>;
  /** PATCH /config `failsafe_mode: true` on member `i` (with `authorization` when given); asserts 200. */
  readonly enableFailsafe: (i: number, authorization?: string) => Promise<void>;
  /**
   * Waits until GET /failsafe on member `i` names every member with its REST API URL, then until every member has
   * read the DCS since (`dcs_last_seen` in GET /patroni): a member that has not seen `failsafe_mode` yet answers the
   * leader's POST /failsafe with 502, as Patroni does, and the leader demotes at the cut.
   */
  readonly waitFailsafeKey: (i: number, what: string) => Promise<void>;
  /**
   * Freezes the DCS for 2 * ttl: every round `leader` must write and no other member may; the leader must report
   * `failsafe_mode_is_active` at least once, in more than 10 rounds. `whileFrozen` runs after the rounds, before
   * the DCS is thawed.
   */
  readonly frozenDcsKeepsLeader: (
    leader: number,
    label: string,
    whileFrozen?: () => Promise<void>,
  ) => Promise<void>;
}

/** A JSON object's entries, sorted, as text ('' when not an object). */
function sorted(text: string): string {
  try {
    return JSON.stringify(Object.entries(JSON.parse(text) as Record<string, unknown>).sort());
  } catch {
    return '';
  }
}

export function failsafeSuite(
  dcs: 'etcd3' | 'zookeeper',
  options: Omit<AgentClusterOptions, 'etcdEndpoint' | 'dcs'> & { readonly ttl: number },
  hookTimeoutMs: number,
): FailsafeSuite {
  let server: FrozenDcs | undefined;
  let agents: AgentCluster | undefined;
  const cluster = (): AgentCluster => {
    if (!agents) throw new Error('no cluster (see beforeAll)');
    return agents;
  };
  const dcsSignal = (sig: NodeJS.Signals): void => {
    if (!server) throw new Error('no DCS server (see beforeAll)');
    server.signal(sig);
  };

  beforeAll(async () => {
    server = dcs === 'zookeeper' ? await startZooKeeper() : await startEtcd();
    agents = await startAgentCluster({ ...options, dcs, etcdEndpoint: server.endpoint });
  }, hookTimeoutMs);

  afterAll(async () => {
    try {
      server?.signal('SIGCONT');
      await agents?.stop();
    } finally {
      await server?.stop();
    }
  }, hookTimeoutMs);

  const writes = async (i: number): Promise<boolean> =>
    (await cluster().psql(i, 'INSERT INTO failsafe_probe VALUES (now())')).code === 0;

  const statusJson = async (i: number, path: string): Promise<Record<string, unknown> | undefined> => {
    const r = await cluster().rest(i, path);
    try {
      return JSON.parse(r.body) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };

  return {
    cluster,
    dcsSignal,
    indexOf: (name) => cluster().nodes.findIndex((n) => n.name === name),
    writes,
    statusJson,
    enableFailsafe: async (i, authorization) => {
      const res = await fetch(`http://127.0.0.1:${cluster().nodes[i]?.restPort}/config`, {
        method: 'PATCH',
        headers: { ...(authorization ? { authorization } : {}), 'content-type': 'application/json' },
        body: JSON.stringify({ failsafe_mode: true }),
      });
      expect(res.status, await res.text()).toBe(200);
    },
    waitFailsafeKey: async (i, what) => {
      const expected = Object.fromEntries(
        cluster().nodes.map((n) => [n.name, `http://127.0.0.1:${n.restPort}/patroni`]),
      );
      await waitFor(
        what,
        async () => sorted((await cluster().rest(i, '/failsafe')).body) === sorted(JSON.stringify(expected)),
        30_000,
        250,
      );
      // dcs_last_seen is whole seconds: a value above `since` was read after this point.
      const since = Math.floor(Date.now() / 1000);
      const nodes = cluster().nodes.map((_, n) => n);
      await waitFor(
        `every member read the DCS after the /failsafe key (dcs_last_seen > ${since})`,
        async () => {
          const seen = await Promise.all(
            nodes.map(async (n) => (await statusJson(n, '/patroni'))?.['dcs_last_seen']),
          );
          return seen.every((v) => typeof v === 'number' && v > since);
        },
        60_000,
        250,
      );
    },
    frozenDcsKeepsLeader: async (leader, label, whileFrozen) => {
      const others = cluster()
        .nodes.map((_, i) => i)
        .filter((i) => i !== leader);
      dcsSignal('SIGSTOP');
      const cutAt = Date.now();
      try {
        let rounds = 0;
        let sawActive = false;
        while (Date.now() - cutAt < 2 * options.ttl * 1000) {
          expect(
            await writes(leader),
            `${label}round ${rounds} at ${Date.now() - cutAt} ms\n${cluster().logTails(20)}`,
          ).toBe(true);
          for (const i of others) expect(await writes(i)).toBe(false);
          const doc = await statusJson(leader, '/patroni');
          if (doc?.['failsafe_mode_is_active'] === true) sawActive = true;
          rounds++;
        }
        expect(sawActive, cluster().logTails(20)).toBe(true);
        expect(rounds).toBeGreaterThan(10);
        await whileFrozen?.();
      } finally {
        dcsSignal('SIGCONT');
      }
    },
  };
}

const TTL = 20;
const AUTH = { username: 'admin', password: 'fs-secret' } as const;
const BASIC = `Basic ${Buffer.from(`${AUTH.username}:${AUTH.password}`).toString('base64')}`;

/**
 * The failsafe scenario of three pgwarden agents (restapi authentication on, ttl 20 / loop_wait 2 / retry_timeout 5)
 * on `dcs`, as the body of a describe: PATCH /config `failsafe_mode: true` and the `/failsafe` key; the DCS frozen for
 * 2 * ttl with the primary writable all along and the replicas replicas; then frozen again with one replica killed,
 * the primary refusing writes within a deadline (Patroni's demote('offline')) and nobody accepting any.
 */
export function failsafeScenario(dcs: 'etcd3' | 'zookeeper', scope: string): void {
  const name = dcs === 'zookeeper' ? 'ZooKeeper' : 'etcd';
  const suite = failsafeSuite(
    dcs,
    { scope, ttl: TTL, loopWait: 2, retryTimeout: 5, restapiAuth: AUTH },
    180_000,
  );
  const { indexOf, writes, statusJson } = suite;
  const c = suite.cluster;

  let leader = '';

  it('PATCH /config failsafe_mode: the leader writes the /failsafe key naming every member', async () => {
    leader = await c().waitReady({ timeoutMs: 120_000 });
    const li = indexOf(leader);
    await suite.enableFailsafe(li, BASIC);
    await suite.waitFailsafeKey(li, 'GET /failsafe naming every member');
    const r = await c().psql(li, 'CREATE TABLE failsafe_probe (at timestamptz)');
    expect(r.code, r.stderr).toBe(0);
  }, 180_000);

  it(`${name} frozen past ttl: the primary stays writable while every member answers, replicas stay replicas`, async () => {
    const li = indexOf(leader);
    const replicas = c()
      .nodes.map((_, i) => i)
      .filter((i) => i !== li);
    // Every round for 2 * ttl must write on the primary; the replicas must keep answering as replicas.
    await suite.frozenDcsKeepsLeader(li, '', async () => {
      for (const i of replicas) expect((await c().status(i))?.role).toBe('replica');
    });
    expect(await c().waitReady({ timeoutMs: 120_000 })).toBe(leader);
    expect(await writes(li)).toBe(true);
  }, 240_000);

  it(`${name} frozen and one replica killed: the primary stops accepting writes, nobody accepts any`, async () => {
    const li = indexOf(leader);
    const victim = c().nodes.findIndex((_, i) => i !== li);
    const other = c().nodes.findIndex((_, i) => i !== li && i !== victim);
    suite.dcsSignal('SIGSTOP');
    const cutAt = Date.now();
    let refusedAfterMs = 0;
    try {
      // First the check passes (every member answers), then a member goes away.
      await waitFor(
        'failsafe mode active on the primary',
        async () => (await statusJson(li, '/patroni'))?.['failsafe_mode_is_active'] === true,
        60_000,
        500,
      );
      await c().kill9(victim);
      const killedAt = Date.now();
      await waitFor('the primary refusing writes', async () => !(await writes(li)), 60_000, 250);
      refusedAfterMs = Date.now() - killedAt;
      // Demoted offline, as Patroni: PostgreSQL back up read-only, and the other replica still read-only.
      await waitFor(
        'the old primary running read-only',
        async () => (await c().psql(li, 'SELECT pg_is_in_recovery()')).stdout.includes('t'),
        60_000,
        500,
      );
      expect(await writes(other)).toBe(false);
      console.log(
        `failsafe: writes refused ${(refusedAfterMs / 1000).toFixed(1)} s after the replica was killed ` +
          `(${((killedAt - cutAt) / 1000).toFixed(1)} s after the cut)`,
      );
    } finally {
      suite.dcsSignal('SIGCONT');
    }
    // The loop's next cycles see the DCS again; with the killed member back, one leader with streaming replicas.
    c().start(victim);
    await c().waitReady({ timeoutMs: 180_000 });
    expect(refusedAfterMs).toBeLessThan(60_000);
  }, 360_000);
}
