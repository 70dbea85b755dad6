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
import { expect, it } from 'vitest';
import { failsafeSuite } from '../helpers/failsafe-suite.js';
import { PATRONI4, PATRONICTL4, runCommand } from '../harness/patroni.js';
import { describeNeeding } from '../harness/requirements.js';

const PGWARDEN = 'pg2';
const TTL = 20;
const TEST_MS = 300_000;

describeNeeding(
  'postgres',
  'etcd',
  'patroni4',
  'patronictl4',
  'bundle',
  'root',
)('failsafe mode: Patroni 4.1.4 + pgwarden on etcd3', () => {
  const suite = failsafeSuite(
    'etcd3',
    {
      scope: 'mixedfs',
      nodes: 2,
      ttl: TTL,
      loopWait: 2,
      retryTimeout: 5,
      agentArgv: (node) => (node.name === PGWARDEN ? undefined : [PATRONI4, node.configFile]),
    },
    TEST_MS,
  );
  const { indexOf } = suite;
  const c = suite.cluster;

  /** The leader's `/failsafe` key names both members; then etcd frozen for 2 * ttl, the leader writable all along. */
  async function frozenEtcdKeepsLeader(leader: string): Promise<void> {
    const li = indexOf(leader);
    await suite.waitFailsafeKey(li, `GET /failsafe on ${leader} naming both members`);
    await suite.frozenDcsKeepsLeader(li, `${leader}, `);
    expect(await c().waitReady({ timeoutMs: 120_000 })).toBe(leader);
  }

  it('both kinds keep the other as leader while etcd is frozen', { timeout: 2 * TEST_MS }, async () => {
    const first = await c().waitReady({ timeoutMs: 150_000 });
    await suite.enableFailsafe(indexOf(first));
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
