import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { healthCheck, parseIntWithUnit, type QueryParams } from '../../src/api/health.js';
import { statusFromJson, type AgentStatus, type StatusExtras } from '../../src/api/status.js';
import { clusterFromNodes } from '../../src/dcs/codec.js';
import type { Cluster, JsonObject } from '../../src/model/cluster.js';
import { fixturePath, loadDcsSnapshot, readFixture } from '../helpers/fixtures.js';

const AT = 1_795_316_131_000;
const extras = (leader: boolean): StatusExtras => ({
  at: AT,
  postmasterRunning: true,
  leaderLockUntil: leader ? AT + 30_000 : undefined,
  standbyCluster: false,
  nextRunAt: AT + 5_000,
  ttl: 30,
  maximumLagOnFailover: 1048576,
});

const SERVER_ROUTED = new Set(['/patroni', '/cluster', '/history', '/config', '/metrics', '/failsafe']);

interface Row {
  readonly capture: string;
  readonly role: 'leader' | 'replica';
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

const rows: Row[] = readdirSync(fixturePath('rest'))
  .sort()
  .flatMap((capture) =>
    readFixture('rest', capture, 'status-codes.tsv')
      .split('\n')
      .slice(1)
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const [role, , method, path, status] = l.split('\t');
        return {
          capture,
          role: role as Row['role'],
          method: method ?? '',
          path: path ?? '',
          status: Number(status),
        };
      }),
  );

const clusters = new Map<string, Cluster>();
function clusterOf(capture: string): Cluster {
  let c = clusters.get(capture);
  if (!c) {
    const snap = loadDcsSnapshot(capture);
    c = clusterFromNodes(snap.scope, snap.nodes);
    clusters.set(capture, c);
  }
  return c;
}

/** The node's status at the time of the request: the body it answered with, else its /patroni document. */
function statusFor(row: Row): AgentStatus {
  const name = row.path === '/' ? 'root' : row.path.slice(1);
  const file =
    row.method === 'GET' && readdirSync(fixturePath('rest', row.capture, row.role)).includes(`${name}.body`)
      ? `${name}.body`
      : 'patroni.body';
  const text = readFixture('rest', row.capture, row.role, file);
  const doc = JSON.parse(
    text.startsWith('{"state"') ? text : readFixture('rest', row.capture, row.role, 'patroni.body'),
  ) as JsonObject;
  return statusFromJson(doc, extras(row.role === 'leader'));
}

describe('health checks reproduce every captured status code', () => {
  const healthRows = rows.filter((r) => !(r.method === 'GET' && SERVER_ROUTED.has(r.path)));
  it('found the rows', () => expect(healthRows.length).toBeGreaterThan(100));
  it.each(healthRows.map((r) => [`${r.capture} ${r.role} ${r.method} ${r.path}`, r] as const))(
    '%s',
    (_n, row) => {
      const r = healthCheck(row.method, row.path, {}, statusFor(row), clusterOf(row.capture));
      expect(r.code).toBe(row.status);
      const statusOnly = row.method !== 'GET' || row.path === '/liveness' || row.path === '/readiness';
      expect(r.body).toBe(statusOnly ? 'none' : 'status');
    },
  );
});

// ---------------------------------------------------------------------------------------------------------------
// Rules of spec 4.4 on synthetic snapshots.

const etcd = clusterOf('etcd');
const optime = etcd.status.optime;
const primary = statusFromJson(
  JSON.parse(readFixture('rest', 'etcd', 'leader', 'patroni.body')) as JsonObject,
  extras(true),
);
const replicaDoc = JSON.parse(readFixture('rest', 'etcd', 'replica', 'patroni.body')) as JsonObject;
const replica = statusFromJson(replicaDoc, extras(false));

function behind(s: AgentStatus, bytes: bigint): AgentStatus {
  const pg = s.postgres!;
  if (pg.xlog.kind !== 'replica') throw new Error('not a replica');
  const at = optime - bytes;
  return { ...s, postgres: { ...pg, xlog: { ...pg.xlog, replayedLocation: at, receivedLocation: at } } };
}

const q = (text: string): QueryParams => {
  const out: Record<string, string[]> = {};
  for (const [k, v] of new URLSearchParams(text)) (out[k] ??= []).push(v);
  return out;
};
const code = (
  path: string,
  s: AgentStatus,
  query = '',
  cluster: Cluster | null = etcd, // null: no DCS view (undefined would take the default)
  method = 'GET',
) => healthCheck(method, path, q(query), s, cluster ?? undefined).code;

describe('spec 4.4 observed table (3.0.2, node1 leader, node2 async replica)', () => {
  const withTag = (s: AgentStatus): AgentStatus => ({ ...s, tags: { mytag: 'hello' } });
  const cases: [string, string, number, number][] = [
    ['/', '', 200, 503],
    ['/primary', '', 200, 503],
    ['/master', '', 200, 503],
    ['/leader', '', 200, 503],
    ['/read-write', '', 200, 503],
    ['/standby-leader', '', 503, 503],
    ['/replica', '', 503, 200],
    ['/read-only', '', 200, 200],
    ['/sync', '', 503, 503],
    ['/synchronous', '', 503, 503],
    ['/async', '', 503, 200],
    ['/asynchronous', '', 503, 200],
    ['/read-only-sync', '', 200, 503],
    ['/health', '', 200, 200],
    ['/liveness', '', 200, 200],
    ['/readiness', '', 200, 200],
    ['/replica', 'lag=1MB', 503, 200],
    ['/replica', 'tag_mytag=hello', 503, 200],
    ['/replica', 'tag_mytag=bye', 503, 503],
    ['/replica', 'tag_nofailover=false', 503, 503],
    ['/foo', '', 503, 503],
  ];
  it.each(cases)('GET %s?%s -> %i / %i', (path, query, onLeader, onReplica) => {
    expect(code(path, withTag(primary), query)).toBe(onLeader);
    expect(code(path, withTag(replica), query)).toBe(onReplica);
  });
});

describe('routing by substring, in order', () => {
  it.each([
    ['/replicas', 503, 200],
    ['/x-leader', 200, 503],
    ['/leader/whatever', 200, 503],
    ['/standby_leader', 503, 503],
    ['/my-primary-check', 200, 503],
    ['/read-write-replica', 200, 503], // primary rule wins over replica
    ['/replica-read-only', 503, 200],
    ['/healthz', 200, 200],
    ['/read-only/anything', 200, 200],
    ['/read-only-synchronous', 200, 503],
    ['/quorum', 503, 503], // 3.0.2: no quorum rule
    ['/read-only-quorum', 200, 200], // 3.0.2: the read-only rule
    ['/sync/', 503, 503], // exact match only
    ['/patroni', 503, 503], // when reached as a health check (HEAD /patroni)
    ['/liveness', 503, 503],
  ] as const)('%s -> %i / %i', (path, onLeader, onReplica) => {
    expect(code(path, primary, '', etcd, 'HEAD')).toBe(onLeader);
    expect(code(path, replica, '', etcd, 'OPTIONS')).toBe(onReplica);
  });

  it('HEAD/OPTIONS answer status-only, GET with the document', () => {
    expect(healthCheck('HEAD', '/primary', {}, primary, etcd)).toMatchObject({ code: 200, body: 'none' });
    expect(healthCheck('OPTIONS', '/replica', {}, primary, etcd)).toMatchObject({ code: 503, body: 'none' });
    expect(healthCheck('GET', '/nonexist/abc', {}, primary, etcd)).toMatchObject({
      code: 503,
      body: 'status',
    });
    expect(healthCheck('GET', '/liveness/x', {}, primary, etcd)).toMatchObject({ code: 200, body: 'none' });
  });
});

describe('replica rule', () => {
  it('lag filter compares the cluster optime with the replayed location', () => {
    const r = behind(replica, 2n * 1048576n);
    expect(code('/replica', r, 'lag=1MB')).toBe(503);
    expect(code('/replica', r, 'lag=2MB')).toBe(200);
    expect(code('/replica', r, 'lag=2097151')).toBe(503);
    expect(code('/replica', r, 'lag=2097152')).toBe(200);
    expect(code('/replica', r, 'lag=2048kB')).toBe(200);
    expect(code('/replica', r, 'lag=0x200000')).toBe(200);
    expect(code('/replica', r, 'lag=1GB')).toBe(200);
    expect(code('/replica', r, 'lag=junk')).toBe(200); // invalid => unlimited
    expect(code('/replica', r)).toBe(200);
    expect(code('/async', r, 'lag=1MB')).toBe(503);
    expect(code('/read-only', r, 'lag=1MB')).toBe(503);
  });

  it('without a cluster view there is no optime, so no lag', () => {
    expect(code('/replica', behind(replica, 10n ** 9n), 'lag=1MB', null)).toBe(200);
  });

  it('a 4.1 node also compares against the WAL receiver latest_end_lsn', () => {
    const r = behind({ ...replica, patroni: { ...replica.patroni, version: '4.1.4' } }, 0n);
    const withLatest: AgentStatus = {
      ...r,
      postgres: { ...r.postgres!, latestEndLsn: optime + 4n * 1048576n },
    };
    expect(code('/replica', withLatest, 'lag=1MB', null)).toBe(503);
    expect(code('/replica', withLatest, 'lag=4MB', null)).toBe(200);
  });

  it('noloadbalance (Python truthiness) and state/role', () => {
    expect(code('/replica', { ...replica, tags: { noloadbalance: true } })).toBe(503);
    expect(code('/replica', { ...replica, tags: { noloadbalance: 'false' } })).toBe(503);
    expect(code('/replica', { ...replica, tags: { noloadbalance: 0 } })).toBe(200);
    expect(code('/read-only', { ...replica, tags: { noloadbalance: true } })).toBe(503);
    expect(code('/read-only', { ...primary, tags: { noloadbalance: true } })).toBe(200);
    expect(code('/replica', { ...replica, state: 'starting' })).toBe(503);
    expect(code('/replica', { ...replica, role: 'standby_leader' })).toBe(503);
  });

  it('tag filters: str(value).lower(), missing tags fail, leader rules ignore them', () => {
    const tagged = { ...replica, tags: { nofailover: true, priority: 1.4, zone: 'East', n: 3, nil: null } };
    expect(code('/replica', tagged, 'tag_nofailover=true')).toBe(200);
    expect(code('/replica', tagged, 'tag_nofailover=True')).toBe(503);
    expect(code('/replica', tagged, 'tag_priority=1.4')).toBe(200);
    expect(code('/replica', tagged, 'tag_n=3')).toBe(200);
    expect(code('/replica', tagged, 'tag_zone=East')).toBe(200);
    expect(code('/replica', tagged, 'tag_zone=east')).toBe(503); // strings compared as they are
    expect(code('/replica', tagged, 'tag_nil=None')).toBe(503);
    expect(code('/replica', tagged, 'tag_zone=East&tag_other=1')).toBe(503);
    expect(code('/replica', tagged, 'tag_zone=East&lag=1GB&tag_n=3')).toBe(200);
    expect(code('/health', tagged, 'tag_zone=West')).toBe(503);
    expect(code('/read-only', tagged, 'tag_zone=West')).toBe(503);
    expect(code('/primary', { ...primary, tags: {} }, 'tag_zone=West')).toBe(200);
    expect(code('/leader', { ...primary, tags: {} }, 'tag_zone=West')).toBe(200);
    expect(code('/read-only', { ...primary, tags: {} }, 'tag_zone=West')).toBe(503);
  });

  it('falsy built-in tags are not published, so tag_nofailover=false is 503', () => {
    expect(code('/replica', { ...replica, tags: {} }, 'tag_nofailover=false')).toBe(503);
    expect(code('/replica', { ...replica, tags: { nofailover: false } }, 'tag_nofailover=false')).toBe(200);
  });

  it('?replication_state= is only honoured after 4.1.4', () => {
    const r = {
      ...replica,
      postgres: { ...replica.postgres!, replicationState: 'in archive recovery' },
    };
    expect(code('/replica', r, 'replication_state=streaming')).toBe(200);
    const dev = { ...r, patroni: { ...r.patroni, version: '4.2.0' } };
    expect(code('/replica', dev, 'replication_state=streaming')).toBe(503);
    expect(code('/replica', dev, 'replication_state=in archive recovery')).toBe(200);
  });
});

describe('leader lock, standby cluster, pause without DCS', () => {
  it('the lock counts only until it expires', () => {
    expect(code('/primary', { ...primary, leaderLockUntil: AT + 1 })).toBe(200);
    expect(code('/primary', { ...primary, leaderLockUntil: AT })).toBe(503);
    expect(code('/leader', { ...primary, leaderLockUntil: undefined })).toBe(503);
    expect(code('/read-only', { ...primary, leaderLockUntil: undefined })).toBe(503);
  });

  it('standby leader', () => {
    const sl: AgentStatus = {
      ...replica,
      role: 'standby_leader',
      standbyCluster: true,
      leaderLockUntil: AT + 1000,
    };
    expect(code('/standby-leader', sl)).toBe(200);
    expect(code('/standby_leader', sl)).toBe(200);
    expect(code('/leader', sl)).toBe(200);
    expect(code('/primary', sl)).toBe(503);
    expect(code('/replica', sl)).toBe(503);
    expect(code('/read-only', sl)).toBe(200);
    expect(code('/read-only-sync', sl)).toBe(200);
    // a replica-role lock holder in a standby cluster is also the standby leader; replica code forced to 503
    const asReplica = { ...sl, role: 'replica' };
    expect(code('/standby-leader', asReplica)).toBe(200);
    expect(code('/replica', asReplica)).toBe(503);
  });

  it('paused and no DCS view: role alone decides', () => {
    const p = { ...primary, pause: true, leaderLockUntil: undefined };
    expect(code('/primary', p, '', null)).toBe(200);
    expect(code('/leader', p, '', null)).toBe(200);
    expect(code('/standby-leader', p, '', null)).toBe(503);
    expect(code('/primary', p, '', etcd)).toBe(503);
    expect(code('/primary', { ...primary, leaderLockUntil: undefined }, '', null)).toBe(503);
    const sl = { ...replica, role: 'standby_leader', pause: true };
    expect(code('/standby-leader', sl, '', null)).toBe(200);
    expect(code('/leader', sl, '', null)).toBe(200);
    expect(code('/primary', sl, '', null)).toBe(503);
  });
});

describe('sync / async / quorum', () => {
  const sync = { ...replica, syncStandby: true };
  it('needs the DCS view', () => {
    expect(code('/sync', sync)).toBe(200);
    expect(code('/synchronous', sync)).toBe(200);
    expect(code('/sync', sync, '', null)).toBe(503);
    expect(code('/async', replica, '', null)).toBe(503);
    expect(code('/async', sync)).toBe(503);
    expect(code('/read-only-sync', sync)).toBe(200);
    expect(code('/read-only-sync', replica)).toBe(503);
    expect(code('/read-only-sync', primary, '', null)).toBe(503);
  });

  it('4.0+ quorum rules', () => {
    const v4 = (s: AgentStatus): AgentStatus => ({ ...s, patroni: { ...s.patroni, version: '4.1.4' } });
    const quorum = v4({ ...replica, quorumStandby: true });
    expect(code('/quorum', quorum)).toBe(200);
    expect(code('/read-only-quorum', quorum)).toBe(200);
    expect(code('/read-only-quorum', v4(primary))).toBe(200);
    expect(code('/read-only-quorum', v4(replica))).toBe(503);
    expect(code('/async', quorum)).toBe(503);
    expect(code('/sync', quorum)).toBe(503);
    expect(code('/quorum', v4(replica))).toBe(503);
  });
});

describe('health, liveness, readiness', () => {
  it('health is PostgreSQL running', () => {
    expect(code('/health', { ...replica, state: 'starting' })).toBe(503);
    expect(code('/health', { ...primary, leaderLockUntil: undefined }, '', null)).toBe(200);
  });

  it('liveness: ttl on a running primary, 2*ttl elsewhere, always while paused', () => {
    const late = (s: AgentStatus, ms: number): AgentStatus => ({ ...s, nextRunAt: AT - ms });
    expect(code('/liveness', late(primary, 29_999))).toBe(200);
    expect(code('/liveness', late(primary, 30_000))).toBe(503);
    expect(code('/liveness', { ...late(primary, 30_000), postmasterRunning: false })).toBe(200);
    expect(code('/liveness', late(replica, 59_999))).toBe(200);
    expect(code('/liveness', late(replica, 60_000))).toBe(503);
    expect(code('/liveness', { ...late(primary, 600_000), pause: true })).toBe(200);
  });

  it('readiness up to 4.0: leader, or running with a DCS view', () => {
    expect(code('/readiness', primary, '', null)).toBe(200);
    expect(code('/readiness', replica, '', null)).toBe(503);
    expect(code('/readiness', { ...replica, state: 'starting' })).toBe(503);
    expect(code('/readiness', behind(replica, 10n ** 9n))).toBe(200);
  });

  it('readiness 4.1+: streaming, DCS or failsafe, lag within limit', () => {
    const r41: AgentStatus = {
      ...replica,
      patroni: { ...replica.patroni, version: '4.1.4' },
      postgres: { ...replica.postgres!, replicationState: 'streaming' },
    };
    expect(code('/readiness', r41)).toBe(200);
    expect(code('/readiness', { ...r41, postgres: { ...r41.postgres!, replicationState: undefined } })).toBe(
      503,
    );
    expect(code('/readiness', r41, '', null)).toBe(503);
    expect(code('/readiness', { ...r41, failsafeModeIsActive: true }, '', null)).toBe(200);
    const lagging = behind(r41, 2n * 1048576n);
    expect(code('/readiness', lagging)).toBe(503); // maximum_lag_on_failover 1 MB
    expect(code('/readiness', lagging, 'lag=2MB')).toBe(200);
    expect(code('/readiness', { ...lagging, maximumLagOnFailover: 4 * 1048576 })).toBe(200);
    const pg = lagging.postgres!;
    const writeOk: AgentStatus =
      pg.xlog.kind === 'replica'
        ? { ...lagging, postgres: { ...pg, xlog: { ...pg.xlog, receivedLocation: optime } } }
        : lagging;
    expect(code('/readiness', writeOk, 'mode=write')).toBe(200);
    expect(code('/readiness', writeOk)).toBe(503);
  });
});

describe('parse_int with units (base unit B)', () => {
  it.each([
    ['1048576', 1048576n],
    [' 1048576 ', 1048576n],
    ['1024kB', 1048576n],
    ['10MB', 10485760n],
    ['10 MB', 10485760n],
    ['1GB', 1073741824n],
    ['1TB', 1099511627776n],
    ['1.5MB', 1572864n],
    ['0x10', 16n],
    ['010', 8n],
    ['-1', -1n],
    ['+5B', 5n],
    ['1e3', 1000n],
    ['.5kB', 512n],
    ['2.5', 2n],
    ['3.5', 4n],
    ['1mb', undefined],
    ['MB', undefined],
    ['08', undefined],
    ['10 parsecs', undefined],
  ] as const)('%j -> %s', (text, expected) => {
    expect(parseIntWithUnit(text, 'B')).toBe(expected);
  });

  it('other base units', () => {
    expect(parseIntWithUnit('1MB', 'kB')).toBe(1024n);
    expect(parseIntWithUnit('1000 ms', 's')).toBe(1n);
    expect(parseIntWithUnit('4097.5kB', 'kB')).toBe(4098n);
    expect(parseIntWithUnit('4097.4kB', 'kB')).toBe(4097n);
    expect(parseIntWithUnit('2min', 's')).toBe(120n);
  });
});
