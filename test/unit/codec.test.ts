/**
 * The shared DCS parser (src/dcs/codec.ts) against the real Patroni 3.0.2 captures in test/fixtures and the
 * 4.x formats quoted in ../shared/patroni-protocol.md (1.2, 1.9, 4.5-4.6, 7); plus pyJson and the LSN helpers.
 *
 * Facts in CAPTURES are read by hand from the snapshot files, not derived from the loader, so a loader or parser
 * regression shows up as a mismatch.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  byCodePoint,
  clusterFromNodes,
  clustersFromNamespaceNodes,
  clustersOfScopes,
  parseConfig,
  parseFailover,
  parseHistory,
  parseMemberData,
  parseStatus,
  parseSyncState,
} from '../../src/dcs/codec.js';
import { clusterPrefix, type DcsNode } from '../../src/dcs/dcs.js';
import { clusterView } from '../../src/model/cluster-view.js';
import {
  clusterTimeline,
  EMPTY_STATUS,
  isFailoverEmpty,
  isPrimaryRole,
  isValidSysid,
  syncStateMatches,
  type Cluster,
  type HistoryLine,
  type SyncState,
} from '../../src/model/cluster.js';
import { formatLsn, lsnFromJson, parseLsnText } from '../../src/model/lsn.js';
import { pyJson } from '../../src/model/pyjson.js';
import {
  fixturePath,
  listDcsSnapshots,
  loadDcsSnapshot,
  readFixture,
  REPO_ROOT,
} from '../helpers/fixtures.js';

// ---------------------------------------------------------------------------------------------------------------
// helpers

function node(key: string, value: string, version = '1', extra: Partial<DcsNode> = {}): DcsNode {
  return { key, value, version, modifyVersion: extra.modifyVersion ?? version, ...extra };
}

const REASON = 'no recovery target specified';

function line(timeline: number, lsn: number, timestamp: string, newLeader: string): HistoryLine {
  return { timeline, lsn: BigInt(lsn), reason: REASON, timestamp, newLeader };
}

/** `[[tl, lsn, reason, ts, leader], ...]` as the DCS stores it, for comparing with the parsed lines. */
function historyArray(lines: readonly HistoryLine[]): unknown[] {
  return lines.map((l) => [l.timeline, l.lsn, l.reason, l.timestamp, l.newLeader]);
}

function hostPort(connUrl: string | undefined): { host: string; port: number } {
  const url = new URL(connUrl ?? 'invalid:');
  return { host: url.hostname, port: Number(url.port) };
}

// ---------------------------------------------------------------------------------------------------------------
// 1. every snapshot in fixtures/dcs

interface MemberFact {
  readonly name: string;
  readonly role: 'master' | 'replica';
  readonly version: string;
  readonly session: string;
  readonly port: number;
  readonly apiPort: number;
}

interface CaptureFacts {
  readonly backend: 'etcd3' | 'zookeeper';
  readonly sysid: string;
  readonly leader: { readonly name: string; readonly version: string; readonly session: string };
  readonly members: readonly MemberFact[];
  readonly xlog: bigint;
  readonly timeline: number;
  readonly status: { readonly optime: bigint };
  readonly history?: { readonly version: string; readonly lines: readonly HistoryLine[] };
  readonly failoverVersion?: string;
  readonly sync?: { readonly version: string; readonly leader: string; readonly members: readonly string[] };
  readonly config: {
    readonly version: string;
    readonly modifyVersion: string;
    readonly synchronousMode: boolean;
    /** Written by `patronictl edit-config` 3.0.2 with json.dumps' default `", "`/`": "` separators. */
    readonly spaced: boolean;
  };
}

const ETCD_LEASE = {
  aeb: '7150205484223978219', // 0x633aa20126385aeb
  aed: '7150205484223978221', // 0x633aa20126385aed
  aef: '7150205484223978223', // 0x633aa20126385aef
  bc1: '7150205484223978433', // 0x633aa20126385bc1
  be2: '7150205484223978466', // 0x633aa20126385be2
} as const;

const ZK_OWNER = {
  c: '72057618669830156', // 0x1000005bc2d000c
  d: '72057618669830157', // 0x1000005bc2d000d
  e: '72057618669830158', // 0x1000005bc2d000e
  x4a: '72057618669830218', // 0x1000005bc2d004a
  x54: '72057618669830228', // 0x1000005bc2d0054
  x57: '72057618669830231', // 0x1000005bc2d0057
} as const;

const ETCD_SYSID = '7710823096312519672';
const ZK_SYSID = '7710834803971429334';

const ETCD_HISTORY_3 = [
  line(1, 67554736, '2026-11-22T02:53:51.312726+00:00', 'pg3'),
  line(2, 67671016, '2026-11-22T02:54:25.836727+00:00', 'pg1'),
  line(3, 67776800, '2026-11-22T02:55:00.012728+00:00', 'pg2'),
];

const member = (
  name: string,
  role: MemberFact['role'],
  version: number | string,
  session: string,
): MemberFact => {
  const n = Number(name.slice(2));
  return { name, role, version: String(version), session, port: 15431 + n, apiPort: 18007 + n };
};

const CAPTURES: Record<string, CaptureFacts> = {
  'etcd-bootstrap': {
    backend: 'etcd3',
    sysid: ETCD_SYSID,
    leader: { name: 'pg2', version: '193', session: ETCD_LEASE.aed },
    members: [
      member('pg1', 'replica', 199, ETCD_LEASE.aef),
      member('pg2', 'master', 202, ETCD_LEASE.aed),
      member('pg3', 'replica', 200, ETCD_LEASE.aeb),
    ],
    xlog: 67108864n,
    timeline: 1,
    status: { optime: 67108864n },
    config: { version: '192', modifyVersion: '192', synchronousMode: false, spaced: false },
  },
  etcd: {
    backend: 'etcd3',
    sysid: ETCD_SYSID,
    leader: { name: 'pg2', version: '305', session: ETCD_LEASE.aed },
    members: [
      member('pg1', 'replica', 326, ETCD_LEASE.aef),
      member('pg2', 'master', 325, ETCD_LEASE.aed),
      member('pg3', 'replica', 327, ETCD_LEASE.aeb),
    ],
    xlog: 68062120n,
    timeline: 4,
    status: { optime: 68062120n },
    history: { version: '309', lines: ETCD_HISTORY_3 },
    failoverVersion: '306',
    config: { version: '192', modifyVersion: '192', synchronousMode: false, spaced: false },
  },
  'etcd-sync': {
    backend: 'etcd3',
    sysid: ETCD_SYSID,
    leader: { name: 'pg3', version: '394', session: ETCD_LEASE.bc1 },
    members: [
      member('pg1', 'replica', 431, ETCD_LEASE.aef),
      member('pg2', 'replica', 430, ETCD_LEASE.be2),
      member('pg3', 'master', 429, ETCD_LEASE.bc1),
    ],
    xlog: 68806336n,
    timeline: 7,
    status: { optime: 68806336n },
    history: {
      version: '397',
      lines: [
        ...ETCD_HISTORY_3,
        line(4, 68080584, '2026-11-22T02:56:11.568731+00:00', 'pg3'),
        line(5, 68359000, '2026-11-22T02:57:43.188733+00:00', 'pg2'),
        line(6, 68542936, '2026-11-22T02:59:04.816736+00:00', 'pg3'),
      ],
    },
    failoverVersion: '306',
    sync: { version: '428', leader: 'pg3', members: ['pg1'] },
    config: { version: '426', modifyVersion: '426', synchronousMode: true, spaced: true },
  },
  zookeeper: {
    backend: 'zookeeper',
    sysid: ZK_SYSID,
    leader: { name: 'pg1', version: '0', session: ZK_OWNER.c },
    members: [
      member('pg1', 'master', 4, ZK_OWNER.c),
      member('pg2', 'replica', 1, ZK_OWNER.d),
      member('pg3', 'replica', 1, ZK_OWNER.e),
    ],
    xlog: 67108960n,
    timeline: 1,
    status: { optime: 67108960n },
    config: { version: '0', modifyVersion: '138' /* mzxid 0x8a */, synchronousMode: false, spaced: false },
  },
  'zookeeper-after-failovers': {
    backend: 'zookeeper',
    sysid: ZK_SYSID,
    leader: { name: 'pg2', version: '0', session: ZK_OWNER.x4a },
    members: [
      member('pg1', 'replica', 1, ZK_OWNER.x57),
      member('pg2', 'master', 5, ZK_OWNER.x4a),
      member('pg3', 'replica', 6, ZK_OWNER.x54),
    ],
    xlog: 68275448n,
    timeline: 7,
    status: { optime: 68275448n },
    history: {
      version: '495', // mzxid 0x1ef: ZooKeeper history versions are the mzxid (spec 1.4)
      lines: [
        line(1, 67553096, '2026-11-22T03:39:02.244808+00:00', 'pg2'),
        line(2, 67667856, '2026-11-22T03:39:36.192809+00:00', 'pg3'),
        line(3, 67780968, '2026-11-22T03:40:20.440811+00:00', 'pg1'),
        line(4, 67849896, '2026-11-22T03:41:11.660812+00:00', 'pg3'),
        line(5, 68007640, '2026-11-22T03:42:29.640815+00:00', 'pg1'),
        line(6, 68154496, '2026-11-22T03:43:45.652817+00:00', 'pg2'),
      ],
    },
    failoverVersion: '5',
    config: { version: '0', modifyVersion: '138', synchronousMode: false, spaced: false },
  },
};

const CAPTURE_NAMES = Object.keys(CAPTURES).sort();

function loadCapture(name: string): { cluster: Cluster; nodes: DcsNode[]; facts: CaptureFacts } {
  const snap = loadDcsSnapshot(`${name}.txt`);
  const facts = CAPTURES[name];
  if (!facts) throw new Error(`no facts for capture ${name}`);
  return { cluster: clusterFromNodes(snap.scope, snap.nodes), nodes: snap.nodes, facts };
}

describe('fixture loader', () => {
  it('finds every snapshot, and every snapshot has hand-read facts in this file', () => {
    expect(
      listDcsSnapshots()
        .map((f) => f.replace(/\.txt$/, ''))
        .sort(),
    ).toEqual(CAPTURE_NAMES);
  });

  it('resolves fixtures inside the repository', () => {
    expect(fixturePath('dcs', 'etcd.txt')).toBe(join(REPO_ROOT, 'test/fixtures/patroni-3.0.2/dcs/etcd.txt'));
    expect(readFixture('dcs', 'etcd.txt')).toMatch(/^# etcd snapshot/);
  });

  it.each(CAPTURE_NAMES)('%s: keys are relative to /service/lab/ and versions follow spec 1.4', (name) => {
    const snap = loadDcsSnapshot(name);
    const facts = CAPTURES[name];
    expect(snap.backend).toBe(facts?.backend);
    expect(snap.namespace).toBe('service');
    expect(snap.scope).toBe('lab');
    expect(clusterPrefix(snap.namespace, snap.scope)).toBe('/service/lab/');
    for (const n of snap.nodes) {
      expect(n.key).not.toMatch(/^\/|^service|^lab\//);
      expect(n.version).toMatch(/^\d+$/);
      expect(n.modifyVersion).toMatch(/^\d+$/);
      if (n.session !== undefined) expect(n.session).toMatch(/^\d+$/);
      if (snap.backend === 'etcd3') expect(n.modifyVersion).toBe(n.version);
    }
    const leader = snap.nodes.find((n) => n.key === 'leader');
    expect(leader?.session).toBe(facts?.leader.session);
  });

  it('keeps the exact bytes etcd stored (spaced JSON from patronictl 3.0.2 edit-config, compact from the agent)', () => {
    const sync = loadDcsSnapshot('etcd-sync.txt').nodes;
    expect(sync.find((n) => n.key === 'config')?.value).toMatch(/^\{"ttl": 30, "loop_wait": 10, /);
    expect(sync.find((n) => n.key === 'sync')?.value).toBe('{"leader":"pg3","sync_standby":"pg1"}');
    expect(sync.find((n) => n.key === 'failover')?.value).toBe('{}');
    expect(sync.find((n) => n.key === 'initialize')?.value).toBe(ETCD_SYSID);
    expect(sync.find((n) => n.key === 'leader')?.value).toBe('pg3');
  });

  it('rebuilds ZooKeeper values compactly and matches dataLength (persistent znodes have no session)', () => {
    const zk = loadDcsSnapshot('zookeeper.txt').nodes;
    expect(zk.find((n) => n.key === 'status')?.value).toBe('{"optime":67108960}');
    expect(zk.find((n) => n.key === 'members/pg1')?.value).toHaveLength(183);
    expect(zk.find((n) => n.key === 'config')?.value).toHaveLength(350);
    expect(zk.find((n) => n.key === 'config')?.session).toBeUndefined();
    // The persistent `members` parent znode is handed over too: the parser must not take it for a member.
    expect(zk.find((n) => n.key === 'members')?.value).toBe('');
  });
});

describe.each(CAPTURE_NAMES)('clusterFromNodes on the %s capture', (name) => {
  const { cluster, nodes, facts } = loadCapture(name);

  it('reads the scope and the initialize sysid', () => {
    expect(cluster.scope).toBe('lab');
    expect(cluster.initialize).toBe(facts.sysid);
    expect(isValidSysid(cluster.initialize)).toBe(true);
  });

  it('reads the leader lock and links it to its member', () => {
    expect(cluster.leader?.name).toBe(facts.leader.name);
    expect(cluster.leader?.version).toBe(facts.leader.version);
    expect(cluster.leader?.session).toBe(facts.leader.session);
    expect(cluster.leader?.member?.name).toBe(facts.leader.name);
    expect(cluster.leader?.member?.session).toBe(cluster.leader?.session);
    expect(isPrimaryRole(cluster.leader?.member?.data.role)).toBe(true);
  });

  it('reads the members, sorted by name, with versions, sessions and data', () => {
    expect(cluster.members.map((m) => m.name)).toEqual(facts.members.map((m) => m.name));
    for (const [i, m] of cluster.members.entries()) {
      const f = facts.members[i];
      if (!f) throw new Error(`unexpected member ${m.name}`);
      expect(m.version, `${m.name} version`).toBe(f.version);
      expect(m.session, `${m.name} session`).toBe(f.session);
      expect(m.data.role).toBe(f.role);
      expect(m.data.state).toBe('running');
      expect(m.data.version).toBe('3.0.2');
      expect(m.data.connUrl).toBe(`postgres://127.0.0.1:${f.port}/postgres`);
      expect(m.data.apiUrl).toBe(`http://127.0.0.1:${f.apiPort}/patroni`);
      expect(typeof m.data.xlogLocation).toBe('bigint');
      expect(m.data.xlogLocation).toBe(facts.xlog);
      expect(m.data.timeline).toBe(facts.timeline);
      expect(m.data.tags).toEqual({});
      expect(m.data.pendingRestart).toBe(false);
      expect(m.data.pause).toBe(false);
      expect(m.data.receiveLsn).toBeUndefined();
      expect(m.data.replicationState).toBeUndefined();
    }
  });

  it('reads the status optime as a bigint', () => {
    expect(cluster.status.optime).toBe(facts.status.optime);
    expect(cluster.status.slots).toEqual({});
    expect(cluster.status.retainSlots).toEqual([]);
  });

  it('reads the history and derives the cluster timeline from it', () => {
    if (!facts.history) {
      expect(cluster.history).toBeUndefined();
      expect(clusterTimeline(cluster)).toBe(0);
      return;
    }
    expect(cluster.history?.version).toBe(facts.history.version);
    expect(cluster.history?.lines).toEqual(facts.history.lines);
    expect(cluster.history?.raw).toBe(nodes.find((n) => n.key === 'history')?.value);
    expect(clusterTimeline(cluster)).toBe(facts.timeline);
  });

  it('reads the failover key `{}` as an empty request', () => {
    if (facts.failoverVersion === undefined) {
      expect(cluster.failover).toBeUndefined();
    } else {
      expect(cluster.failover).toEqual({ version: facts.failoverVersion });
    }
    expect(isFailoverEmpty(cluster.failover)).toBe(true);
  });

  it('reads the sync state', () => {
    if (!facts.sync) {
      expect(cluster.sync.leader).toBeUndefined();
      expect(cluster.sync.members).toEqual([]);
      return;
    }
    expect(cluster.sync.version).toBe(facts.sync.version);
    expect(cluster.sync.leader).toBe(facts.sync.leader);
    expect(cluster.sync.members).toEqual(facts.sync.members);
    expect(cluster.sync.quorum).toBeUndefined();
    for (const m of facts.sync.members) expect(syncStateMatches(cluster.sync, m.toUpperCase())).toBe(true);
    expect(syncStateMatches(cluster.sync, facts.sync.leader)).toBe(false);
  });

  it('reads the dynamic config with its versions', () => {
    const config = cluster.config;
    expect(config?.valid).toBe(true);
    expect(config?.version).toBe(facts.config.version);
    expect(config?.modifyVersion).toBe(facts.config.modifyVersion);
    expect(config?.raw).toBe(nodes.find((n) => n.key === 'config')?.value);
    expect(config?.data).toMatchObject({
      ttl: 30,
      loop_wait: 10,
      retry_timeout: 10,
      maximum_lag_on_failover: 1048576,
      synchronous_mode: facts.config.synchronousMode,
      postgresql: {
        use_pg_rewind: true,
        use_slots: true,
        parameters: { max_connections: 50, shared_buffers: '32MB', wal_keep_size: '128MB' },
      },
    });
    // The stored text is exactly what Python's json.dumps wrote: compact from the agent, spaced from edit-config.
    expect(config?.raw).toBe(pyJson(config?.data, !facts.config.spaced));
  });

  it('has no failsafe key', () => {
    expect(cluster.failsafe).toBeUndefined();
  });

  it('stores every JSON value as Python json.dumps wrote it (pyJson reproduces the stored bytes)', () => {
    for (const n of nodes) {
      if (!/^[[{]/.test(n.value) || (n.key === 'config' && facts.config.spaced)) continue;
      expect(pyJson(JSON.parse(n.value), true), n.key).toBe(n.value);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 1b. cross-checks against the REST bodies and patronictl output captured at the same moment

interface RestMember {
  name: string;
  role: string;
  state: string;
  api_url: string;
  host: string;
  port: number;
  timeline: number;
  lag?: number;
}

interface RestPatroni {
  role: string;
  xlog: { location: number };
  timeline: number;
  database_system_identifier: string;
  patroni: { version: string; scope: string };
}

const readJson = <T>(...parts: string[]): T => JSON.parse(readFixture(...parts)) as T;

/** The `patronictl list -f json` rows of 3.0.2 (spec 5.5): built from the parsed cluster. */
function patronictlListRows(cluster: Cluster): Record<string, unknown>[] {
  return cluster.members.map((m) => {
    const isLeader = m.name === cluster.leader?.name;
    const role = isLeader ? 'Leader' : syncStateMatches(cluster.sync, m.name) ? 'Sync Standby' : 'Replica';
    const { host, port } = hostPort(m.data.connUrl);
    const xlog = m.data.xlogLocation;
    const lag =
      xlog === undefined ? 'unknown' : cluster.status.optime > xlog ? cluster.status.optime - xlog : 0n;
    return {
      Cluster: cluster.scope,
      Member: m.name,
      Host: `${host}:${port}`,
      Role: role,
      State: m.data.state,
      TL: m.data.timeline,
      'Lag in MB': isLeader ? undefined : typeof lag === 'bigint' ? Math.round(Number(lag) / 1048576) : lag,
    };
  });
}

describe.each(CAPTURE_NAMES)('the %s capture agrees with REST and patronictl captured alongside', (name) => {
  const { cluster } = loadCapture(name);

  it('GET /cluster (leader): same members, leader, sync standby, hosts, timelines and lag', () => {
    const body = readJson<{ members: RestMember[] }>('rest', name, 'leader', 'cluster.body');
    expect(body.members.map((m) => m.name)).toEqual(cluster.members.map((m) => m.name));
    expect(body.members.filter((m) => m.role === 'leader').map((m) => m.name)).toEqual([
      cluster.leader?.name,
    ]);
    for (const rest of body.members) {
      const m = cluster.members.find((x) => x.name === rest.name);
      expect(m?.data.apiUrl).toBe(rest.api_url);
      expect(hostPort(m?.data.connUrl)).toEqual({ host: rest.host, port: rest.port });
      expect(m?.data.timeline).toBe(rest.timeline);
      expect(m?.data.state).toBe(rest.state);
      expect(rest.role === 'sync_standby', `${rest.name} sync_standby`).toBe(
        syncStateMatches(cluster.sync, rest.name),
      );
      if (rest.role !== 'leader') {
        expect(BigInt(rest.lag ?? -1)).toBe(cluster.status.optime - (m?.data.xlogLocation ?? 0n));
      }
    }
  });

  it('GET /patroni (leader): same sysid, LSN and timeline', () => {
    const body = readJson<RestPatroni>('rest', name, 'leader', 'patroni.body');
    expect(body.database_system_identifier).toBe(cluster.initialize);
    expect(body.role).toBe(cluster.leader?.member?.data.role);
    expect(BigInt(body.xlog.location)).toBe(cluster.leader?.member?.data.xlogLocation);
    expect(BigInt(body.xlog.location)).toBe(cluster.status.optime);
    expect(body.timeline).toBe(cluster.leader?.member?.data.timeline);
    expect(body.patroni.scope).toBe(cluster.scope);
  });

  it('GET /history and GET /config are the DCS values re-serialised by json.dumps', () => {
    const history = readFixture('rest', name, 'leader', 'history.body');
    expect(history).toBe(cluster.history ? pyJson(historyArray(cluster.history.lines)) : '[]');
    expect(readFixture('rest', name, 'leader', 'config.body')).toBe(pyJson(cluster.config?.data));
  });

  it('patronictl list -f json: pyJson reproduces the observed line from the parsed cluster', () => {
    const observed = readFixture('ctl', name, 'list-json.txt').split('\n')[1];
    expect(pyJson(patronictlListRows(cluster))).toBe(observed);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 2. forgiving parsing rules (spec 1.2, 1.9)

describe('parseMemberData', () => {
  it('reads a legacy Governor-style URL: conn_url without the query, api_url from application_name', () => {
    const d = parseMemberData(
      'postgres://replicator:secret@10.0.0.1:5432/postgres?application_name=http://10.0.0.1:8008/patroni',
    );
    expect(d.connUrl).toBe('postgres://replicator:secret@10.0.0.1:5432/postgres');
    expect(d.apiUrl).toBe('http://10.0.0.1:8008/patroni');
    expect(d.state).toBe('unknown');
    expect(d.role).toBeUndefined();
    expect(d.xlogLocation).toBeUndefined();
    expect(d.raw).toMatchObject({ conn_url: d.connUrl, api_url: d.apiUrl });
  });

  it.each([
    [
      'percent-encoded application_name',
      'postgres://u:p@db1:5433/postgres?application_name=http%3A%2F%2Fdb1%3A8008%2Fpatroni',
      'postgres://u:p@db1:5433/postgres',
      'http://db1:8008/patroni',
    ],
    ['no query', 'postgres://u:p@db1:5433/postgres', 'postgres://u:p@db1:5433/postgres', undefined],
    [
      'postgresql:// scheme (startswith "postgres")',
      'postgresql://u@db1:5433/postgres?application_name=https://db1:8008/patroni',
      'postgresql://u@db1:5433/postgres',
      'https://db1:8008/patroni',
    ],
    [
      'other query parameters',
      'postgres://u:p@db1:5433/postgres?sslmode=require&application_name=http://db1:8008/patroni',
      'postgres://u:p@db1:5433/postgres',
      'http://db1:8008/patroni',
    ],
  ])('legacy URL with %s', (_label, value, connUrl, apiUrl) => {
    const d = parseMemberData(value);
    expect(d.connUrl).toBe(connUrl);
    expect(d.apiUrl).toBe(apiUrl);
    expect(d.state).toBe('unknown');
  });

  it.each(['[]', '"text"', '42', 'null', 'true', '{', '', 'not json', '[{"state":"running"}]'])(
    'non-object member value %j reads as {} with state unknown',
    (value) => {
      const d = parseMemberData(value);
      expect(d.raw).toEqual({});
      expect(d.state).toBe('unknown');
      expect(d.connUrl).toBeUndefined();
      expect(d.apiUrl).toBeUndefined();
      expect(d.role).toBeUndefined();
      expect(d.tags).toEqual({});
      expect(d.pendingRestart).toBe(false);
      expect(d.pause).toBe(false);
    },
  );

  it('reads a missing state as unknown', () => {
    expect(parseMemberData('{"role":"replica"}').state).toBe('unknown');
    expect(parseMemberData('{"state":"starting"}').state).toBe('starting');
  });

  it('reads the observed 3.0.2 leader member value', () => {
    const d = parseMemberData(
      '{"conn_url":"postgres://127.0.0.1:5432/postgres","api_url":"http://127.0.0.1:8008/patroni","state":"running","role":"master","version":"3.0.2","tags":{"mytag":"hello"},"xlog_location":67108960,"timeline":1}',
    );
    expect(d).toMatchObject({
      connUrl: 'postgres://127.0.0.1:5432/postgres',
      apiUrl: 'http://127.0.0.1:8008/patroni',
      state: 'running',
      role: 'master',
      version: '3.0.2',
      tags: { mytag: 'hello' },
      xlogLocation: 67108960n,
      timeline: 1,
      pendingRestart: false,
    });
    expect(d.checkpointAfterPromote).toBeUndefined();
    expect(isPrimaryRole(d.role)).toBe(true);
  });

  it('reads the observed 3.0.2 demoted leader right after a switchover', () => {
    const d = parseMemberData(
      '{"conn_url":"postgres://127.0.0.1:5432/postgres","api_url":"http://127.0.0.1:8008/patroni","state":"stopped","role":"demoted","version":"3.0.2","tags":{"mytag":"hello"},"pending_restart":true}',
    );
    expect(d.state).toBe('stopped');
    expect(d.role).toBe('demoted');
    expect(isPrimaryRole(d.role)).toBe(false);
    expect(d.pendingRestart).toBe(true);
    expect(d.xlogLocation).toBeUndefined();
    expect(d.timeline).toBeUndefined();
  });

  it('reads LSNs and timelines given as numeric strings, ignores garbage ones', () => {
    const d = parseMemberData(
      '{"xlog_location":"67108960","timeline":"3","receive_lsn":"0/4000060","replay_lsn":{}}',
    );
    expect(d.xlogLocation).toBe(67108960n);
    expect(d.timeline).toBe(3);
    expect(d.receiveLsn).toBeUndefined();
    expect(d.replayLsn).toBeUndefined();
  });

  it('ignores non-object tags and flags that are not literally true', () => {
    const d = parseMemberData(
      '{"tags":["nofailover"],"pending_restart":"yes","pause":1,"checkpoint_after_promote":"no"}',
    );
    expect(d.tags).toEqual({});
    expect(d.pendingRestart).toBe(false);
    expect(d.pause).toBe(false);
    expect(d.checkpointAfterPromote).toBeUndefined();
  });

  it('keeps every field in raw', () => {
    const d = parseMemberData('{"state":"running","future_field":{"x":1}}');
    expect(d.raw).toEqual({ state: 'running', future_field: { x: 1 } });
  });

  describe('conn_kwargs instead of conn_url (Kubernetes / remote members)', () => {
    it('derives a connection URL from host and port', () => {
      const d = parseMemberData(
        '{"conn_kwargs":{"host":"10.0.0.5","port":5433},"api_url":"http://10.0.0.5:8008/patroni"}',
      );
      expect(hostPort(d.connUrl)).toEqual({ host: '10.0.0.5', port: 5433 });
      expect(d.apiUrl).toBe('http://10.0.0.5:8008/patroni');
    });

    it('a port given as a string works too', () => {
      expect(hostPort(parseMemberData('{"conn_kwargs":{"host":"db","port":"6432"}}').connUrl)).toEqual({
        host: 'db',
        port: 6432,
      });
    });

    it('a missing port means 5432 (Patroni: uri("postgresql", (host, port or 5432)))', () => {
      const url = parseMemberData('{"conn_kwargs":{"host":"db"}}').connUrl;
      expect(url).toBeDefined();
      expect(new URL(url ?? '').hostname).toBe('db');
      expect(['', '5432']).toContain(new URL(url ?? '').port);
    });

    it('conn_url wins over conn_kwargs', () => {
      const d = parseMemberData('{"conn_url":"postgres://a:1/postgres","conn_kwargs":{"host":"b","port":2}}');
      expect(d.connUrl).toBe('postgres://a:1/postgres');
    });

    it('no usable host: no connection URL', () => {
      expect(parseMemberData('{"conn_kwargs":{"port":5432}}').connUrl).toBeUndefined();
      expect(parseMemberData('{"conn_kwargs":"host=db"}').connUrl).toBeUndefined();
    });

    it('an IPv6 host is bracketed, as Patroni uri() does', () => {
      const url = parseMemberData('{"conn_kwargs":{"host":"fd00::5","port":5432}}').connUrl ?? '';
      let parsed: { host: string; port: number } | string;
      try {
        parsed = hostPort(url);
      } catch {
        parsed = `unparseable URL ${JSON.stringify(url)}`;
      }
      expect(
        parsed,
        `BUG codec.ts connUrlFromKwargs: IPv6 host must be written as [fd00::5] (got ${JSON.stringify(url)})`,
      ).toEqual({ host: '[fd00::5]', port: 5432 });
    });

    it('an empty conn_url falls back to conn_kwargs (Patroni: `if conn_url:` is falsy for "")', () => {
      const d = parseMemberData('{"conn_url":"","conn_kwargs":{"host":"db","port":5433}}');
      expect(
        d.connUrl,
        'BUG codec.ts parseMemberData: `str(conn_url) ?? kwargs` keeps "" instead of falling back to conn_kwargs',
      ).toBeTruthy();
      expect(hostPort(d.connUrl)).toEqual({ host: 'db', port: 5433 });
    });
  });
});

describe('parseFailover', () => {
  it.each([
    ['{}', {}],
    [
      '{"leader":"node2","member":"node3","scheduled_at":"2026-11-22T03:49:00+00:00"}',
      { leader: 'node2', member: 'node3', scheduledAt: '2026-11-22T03:49:00+00:00' },
    ],
    ['{"leader": "node1", "member": "node2"}', { leader: 'node1', member: 'node2' }],
    ['{"member":"node3"}', { member: 'node3' }],
    ['{"leader":"node1"}', { leader: 'node1' }],
    ['{"leader":"","member":"","scheduled_at":""}', {}],
    ['{"leader":1,"member":null}', {}],
    ['node1:node2', { leader: 'node1', member: 'node2' }],
    [' node1 : node2 ', { leader: 'node1', member: 'node2' }],
    ['node1:', { leader: 'node1' }],
    [':node2', { member: 'node2' }],
    ['node1:node2:extra', { leader: 'node1', member: 'node2' }],
    ['', {}],
    ['[]', {}],
    ['"node1:node2"', {}],
    ['42', {}],
    ['null', {}],
    ['[1,2]', {}],
  ])('%j', (value, expected) => {
    const f = parseFailover(value, '7');
    expect({ leader: f.leader, member: f.member, scheduledAt: f.scheduledAt }).toEqual({
      leader: undefined,
      member: undefined,
      scheduledAt: undefined,
      ...expected,
    });
    expect(f.version).toBe('7');
    expect(isFailoverEmpty(f)).toBe(!('leader' in expected) && !('member' in expected));
  });

  it('non-JSON text without a colon is a legacy leader-only value (Patroni Failover.from_node)', () => {
    // Patroni: json.loads raises ValueError -> t = value.split(':') -> Failover(leader=t[0], candidate=None).
    // Spec 1.9 words it as "garbage => empty"; real Patroni wins (design.md), so the leader should be kept.
    const f = parseFailover('node1', '3');
    expect(f.leader, 'BUG? codec.ts parseFailover: Patroni reads non-JSON "node1" as leader=node1').toBe(
      'node1',
    );
    expect(f.member).toBeUndefined();
  });
});

describe('parseSyncState and syncStateMatches', () => {
  it.each([
    ['', {}],
    ['{', {}],
    ['[]', {}],
    ['null', {}],
    ['"pg1"', {}],
    ['{}', {}],
    ['{"leader":"","sync_standby":"pg1"}', {}],
    ['{"leader":null,"sync_standby":"pg1","quorum":1}', {}],
    ['{"sync_standby":"pg1"}', {}],
    ['{"leader":"pg3","sync_standby":null}', { leader: 'pg3', members: [] }],
    ['{"leader":"pg3"}', { leader: 'pg3', members: [] }],
    ['{"leader":"pg3","sync_standby":"pg1"}', { leader: 'pg3', syncStandby: 'pg1', members: ['pg1'] }],
    [
      '{"leader":"node1","quorum":0,"sync_standby":"node3"}',
      { leader: 'node1', syncStandby: 'node3', members: ['node3'], quorum: 0 },
    ],
    [
      '{"leader":"node1","quorum":1,"sync_standby":"node2,node3"}',
      { leader: 'node1', syncStandby: 'node2,node3', members: ['node2', 'node3'], quorum: 1 },
    ],
    [
      '{"leader":"n1","sync_standby":" node2 , Node3 ,, "}',
      { leader: 'n1', syncStandby: ' node2 , Node3 ,, ', members: ['node2', 'Node3'] },
    ],
    [
      '{"leader":"n1","quorum":"2","sync_standby":"a,b,c"}',
      { leader: 'n1', syncStandby: 'a,b,c', members: ['a', 'b', 'c'], quorum: 2 },
    ],
  ])('%j', (value, expected: Partial<SyncState>) => {
    const s = parseSyncState(value, '12');
    expect(s.version).toBe('12');
    expect({ leader: s.leader, syncStandby: s.syncStandby, members: s.members, quorum: s.quorum }).toEqual({
      leader: undefined,
      syncStandby: undefined,
      members: [],
      quorum: undefined,
      ...expected,
    });
  });

  it('no key at all is the empty state without a version', () => {
    const s = parseSyncState(undefined);
    expect(s.version).toBeUndefined();
    expect(s.leader).toBeUndefined();
    expect(s.members).toEqual([]);
  });

  const sync = parseSyncState('{"leader":"Node1","sync_standby":"node2, Node3"}', '1');
  it.each([
    ['node2', true],
    ['NODE2', true],
    ['node3', true],
    ['nOdE3', true],
    [' node3 ', true],
    ['node', false],
    ['node23', false],
    ['', false],
    ['node1', false], // the leader is not a sync standby
  ])('matches(%j) is %s (case-insensitive, trimmed)', (name, expected) => {
    expect(syncStateMatches(sync, name)).toBe(expected);
  });

  it('an empty state matches nobody, even with a sync_standby', () => {
    expect(syncStateMatches(parseSyncState('{"leader":"","sync_standby":"pg1"}', '1'), 'pg1')).toBe(false);
    expect(syncStateMatches(parseSyncState(undefined), 'pg1')).toBe(false);
  });
});

describe('parseStatus', () => {
  it.each<[string, string | undefined, bigint, Record<string, bigint>, string[]]>([
    ['missing', undefined, 0n, {}, []],
    ['3.0.2 object', '{"optime":67108960}', 67108960n, {}, []],
    ['legacy bare integer', '67108960', 67108960n, {}, []],
    [
      'newest object with slots and retain_slots',
      '{"optime":67394080,"slots":{"node1":67394080,"node3":67394080,"node2":67394080},"retain_slots":["node1","node2","node3"]}',
      67394080n,
      { node1: 67394080n, node3: 67394080n, node2: 67394080n },
      ['node1', 'node2', 'node3'],
    ],
    [
      'slots and retain_slots as JSON-in-a-string',
      '{"optime":5,"slots":"{\\"logical_a\\":4,\\"pg2\\":3}","retain_slots":"[\\"pg2\\",\\"pg3\\"]"}',
      5n,
      { logical_a: 4n, pg2: 3n },
      ['pg2', 'pg3'],
    ],
    ['optime as a numeric string', '{"optime":"123"}', 123n, {}, []],
    ['garbage text', 'garbage', 0n, {}, []],
    ['empty text', '', 0n, {}, []],
    ['JSON array', '[67108960]', 0n, {}, []],
    ['null', 'null', 0n, {}, []],
    ['object without optime', '{"slots":{"a":1}}', 0n, { a: 1n }, []],
    ['garbage optime', '{"optime":"x","slots":"not json","retain_slots":"nope"}', 0n, {}, []],
    [
      'slots and retain_slots of the wrong type',
      '{"optime":9,"slots":[1],"retain_slots":{"a":1}}',
      9n,
      {},
      [],
    ],
    ['non-integer slot values dropped', '{"optime":9,"slots":{"a":"x","b":7}}', 9n, { b: 7n }, []],
  ])('%s', (_label, value, optime, slots, retain) => {
    const s = parseStatus(value);
    expect(s.optime).toBe(optime);
    expect(typeof s.optime).toBe('bigint');
    expect(s.slots).toEqual(slots);
    expect(s.retainSlots).toEqual(retain);
  });

  it('missing status falls back to the legacy optime/leader key', () => {
    const c = clusterFromNodes('c', [node('optime/leader', '67108960')]);
    expect(c.status.optime).toBe(67108960n);
  });

  it('status wins over optime/leader, even when it is garbage (the key exists)', () => {
    expect(
      clusterFromNodes('c', [node('status', '{"optime":200}'), node('optime/leader', '100')]).status.optime,
    ).toBe(200n);
    expect(
      clusterFromNodes('c', [node('status', 'garbage'), node('optime/leader', '100')]).status.optime,
    ).toBe(0n);
  });

  it('neither key: the empty status', () => {
    expect(clusterFromNodes('c', []).status).toEqual(EMPTY_STATUS);
  });
});

describe('parseHistory', () => {
  it('reads 5-element lines (observed after three promotions)', () => {
    const value =
      '[[1,67393352,"no recovery target specified","2026-11-22T02:49:18.292718+00:00","node2"],[2,117440672,"no recovery target specified","2026-11-22T02:50:20.016720+00:00","node2"],[3,117440952,"no recovery target specified","2026-11-22T02:51:41.450911+00:00","node1"]]';
    const h = parseHistory(value, '40');
    expect(h.version).toBe('40');
    expect(h.raw).toBe(value);
    expect(h.lines).toEqual([
      line(1, 67393352, '2026-11-22T02:49:18.292718+00:00', 'node2'),
      line(2, 117440672, '2026-11-22T02:50:20.016720+00:00', 'node2'),
      line(3, 117440952, '2026-11-22T02:51:41.450911+00:00', 'node1'),
    ]);
    expect(clusterTimeline(clusterFromNodes('c', [node('history', value)]))).toBe(4);
  });

  it('reads 3- and 4-element lines written by old versions', () => {
    const h = parseHistory(
      '[[1,100,"no recovery target specified"],[2,200,"no recovery target specified","2016-01-01T00:00:00+00:00"],[3,300,"r","t","n"]]',
      '1',
    );
    expect(h.lines).toEqual([
      { timeline: 1, lsn: 100n, reason: REASON, timestamp: undefined, newLeader: undefined },
      {
        timeline: 2,
        lsn: 200n,
        reason: REASON,
        timestamp: '2016-01-01T00:00:00+00:00',
        newLeader: undefined,
      },
      { timeline: 3, lsn: 300n, reason: 'r', timestamp: 't', newLeader: 'n' },
    ]);
    expect(typeof h.lines[0]?.lsn).toBe('bigint');
  });

  it('`[]` has no lines: cluster timeline 1', () => {
    const h = parseHistory('[]', '2');
    expect(h.lines).toEqual([]);
    expect(clusterTimeline(clusterFromNodes('c', [node('history', '[]')]))).toBe(1);
  });

  it.each(['{}', '"[[1,2,\\"r\\"]]"', 'garbage', 'null', '42', ''])('non-list %j has no lines', (value) => {
    const h = parseHistory(value, '3');
    expect(h.lines).toEqual([]);
    expect(h.raw).toBe(value);
    expect(h.version).toBe('3');
  });

  it('skips malformed lines without throwing', () => {
    const h = parseHistory('[[1,100,"r"],"junk",[2],[3,"x","r"],null,[4,400,"r"]]', '1');
    expect(h.lines.map((l) => l.timeline)).toEqual([1, 4]);
  });

  it('no history key: timeline 0', () => {
    expect(clusterTimeline(clusterFromNodes('c', []))).toBe(0);
  });

  it('uses the modify version of the history key (ZooKeeper mzxid)', () => {
    const c = clusterFromNodes('c', [node('history', '[]', '5', { modifyVersion: '495' })]);
    expect(c.history?.version).toBe('495');
  });
});

describe('parseConfig', () => {
  it('reads a JSON object with its CAS and modify versions (observed bootstrap config)', () => {
    const value =
      '{"ttl":30,"loop_wait":10,"retry_timeout":10,"maximum_lag_on_failover":1048576,"postgresql":{"use_pg_rewind":true,"use_slots":true,"parameters":{"wal_level":"replica","hot_standby":"on","max_wal_senders":10,"max_replication_slots":10,"wal_log_hints":"on"}}}';
    const c = parseConfig(node('config', value, '0', { modifyVersion: '138' }));
    expect(c).toMatchObject({ valid: true, version: '0', modifyVersion: '138', raw: value });
    expect(c.data).toEqual(JSON.parse(value));
  });

  it.each(['[]', '"ttl"', '42', 'null', 'garbage', '', '{"ttl":'])(
    'non-object %j: invalid, data {}, modify version 0',
    (value) => {
      const c = parseConfig(node('config', value, '17', { modifyVersion: '18' }));
      expect(c.valid).toBe(false);
      expect(c.data).toEqual({});
      expect(c.modifyVersion).toBe('0');
      expect(c.raw).toBe(value);
    },
  );

  it('non-object: the CAS version is kept, only modify_version becomes 0 (Patroni ClusterConfig.from_node)', () => {
    // Patroni: `except ...: data = {}; modify_version = 0; return ClusterConfig(version, data, ...)`. Dropping the
    // CAS version too would make a CAS write (edit-config) over an invalid config fail forever.
    const c = parseConfig(node('config', 'garbage', '17', { modifyVersion: '18' }));
    expect(
      c.version,
      'BUG codec.ts parseConfig: invalid config must keep version=node.version (spec 1.2.2)',
    ).toBe('17');
  });
});

describe('clusterFromNodes structure rules (spec 1.9)', () => {
  it('members are keys exactly one level under members/; deeper keys and the parent are ignored', () => {
    const c = clusterFromNodes('c', [
      node('members', ''),
      node('members/', '{"state":"running"}'),
      node('members/pg1', '{"state":"running"}'),
      node('members/pg1/extra', '{"state":"running"}'),
      node('members/x/y', '{"state":"running"}'),
      node('membersx', '{"state":"running"}'),
    ]);
    expect(c.members.map((m) => m.name)).toEqual(['pg1']);
  });

  it('keeps members in DCS order with version and session; the /cluster view sorts them by name', () => {
    const c = clusterFromNodes('c', [
      node('members/pg3', '{}', '3', { session: '33' }),
      node('members/pg1', '{}', '1', { session: '11' }),
      node('members/pg2', '{}', '2'),
    ]);
    // Patroni keeps the DCS order (patronictl's `dsn -r replica` and `version` follow it).
    expect(c.members.map((m) => [m.name, m.version, m.session])).toEqual([
      ['pg3', '3', '33'],
      ['pg1', '1', '11'],
      ['pg2', '2', undefined],
    ]);
    expect(clusterView(c).members.map((m) => m.name)).toEqual(['pg1', 'pg2', 'pg3']);
  });

  it('a leader without a member key is still the leader, without member data', () => {
    const c = clusterFromNodes('c', [
      node('leader', 'ghost', '9', { session: '77' }),
      node('members/pg1', '{}'),
    ]);
    expect(c.leader).toMatchObject({ name: 'ghost', version: '9', session: '77' });
    expect(c.leader?.member).toBeUndefined();
  });

  it('an empty leader value means no leader (unlocked)', () => {
    expect(clusterFromNodes('c', [node('leader', ''), node('members/pg1', '{}')]).leader).toBeUndefined();
  });

  it('no keys at all: an uninitialized, empty cluster', () => {
    const c = clusterFromNodes('c', []);
    expect(c).toMatchObject({ scope: 'c', members: [], status: EMPTY_STATUS });
    expect(c.initialize).toBeUndefined();
    expect(c.leader).toBeUndefined();
    expect(c.config).toBeUndefined();
    expect(c.failover).toBeUndefined();
    expect(c.history).toBeUndefined();
    expect(c.failsafe).toBeUndefined();
    expect(c.sync.members).toEqual([]);
    expect(c.sync.version).toBeUndefined();
  });

  it('an empty initialize value is "initializing", not absent', () => {
    const c = clusterFromNodes('c', [node('initialize', '')]);
    expect(c.initialize).toBe('');
    expect(isValidSysid(c.initialize)).toBe(false);
  });

  it('an emptied sync key ({} as ZooKeeper writes it) keeps its version for CAS', () => {
    const c = clusterFromNodes('c', [node('sync', '{}', '8')]);
    expect(c.sync.version).toBe('8');
    expect(c.sync.leader).toBeUndefined();
    expect(c.sync.members).toEqual([]);
  });

  it('failover key: version from the node, legacy text understood', () => {
    const c = clusterFromNodes('c', [node('failover', 'pg1:pg2', '4')]);
    expect(c.failover).toEqual({ version: '4', leader: 'pg1', member: 'pg2' });
  });

  it.each([
    ['garbage', 'garbage'],
    ['a list', '["node1"]'],
    ['a string', '"node1"'],
    ['truncated JSON', '{"node1":'],
    ['null', 'null'],
  ])('failsafe that is %s reads as absent', (_label, value) => {
    expect(clusterFromNodes('c', [node('failsafe', value)]).failsafe).toBeUndefined();
  });

  it('failsafe: the observed object, non-string values dropped', () => {
    const observed = '{"node1":"http://127.0.0.1:8008/patroni","node3":"http://127.0.0.1:8010/patroni"}';
    expect(clusterFromNodes('c', [node('failsafe', observed)]).failsafe).toEqual({
      node1: 'http://127.0.0.1:8008/patroni',
      node3: 'http://127.0.0.1:8010/patroni',
    });
    expect(clusterFromNodes('c', [node('failsafe', '{"a":"u","b":1}')]).failsafe).toEqual({ a: 'u' });
    expect(clusterFromNodes('c', [node('failsafe', '{}')]).failsafe).toEqual({});
  });

  it('an invalid config key is present but invalid', () => {
    const c = clusterFromNodes('c', [node('config', '[]', '3')]);
    expect(c.config?.valid).toBe(false);
    expect(c.config?.data).toEqual({});
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 3. Patroni 4.x formats, exact strings observed in the spec (1.2.3-1.2.8)

describe('Patroni 4.x values', () => {
  const REPLICA_41 =
    '{"conn_url":"postgres://127.0.0.1:5444/postgres","api_url":"http://127.0.0.1:8020/patroni","state":"running","role":"replica","version":"4.1.4","tags":{"nofailover":false,"mytag":"hello","failover_priority":2},"xlog_location":67108960,"replay_lsn":67108960,"receive_lsn":67108960,"replication_state":"streaming","timeline":1}';
  const PRIMARY_41 =
    '{"conn_url":"postgres://127.0.0.1:5442/postgres","api_url":"http://127.0.0.1:8018/patroni","state":"running","role":"primary","version":"4.1.4","tags":{"mytag":"hello"},"xlog_location":67108960,"timeline":1}';
  const RESTARTING_41 =
    '{"conn_url":"postgres://127.0.0.1:5443/postgres","api_url":"http://127.0.0.1:8019/patroni","state":"running","role":"replica","version":"4.1.4","pending_restart":true,"pending_restart_reason":{"max_connections":{"old_value":"100","new_value":"120"}},"scheduled_restart":{"postgres_version":"16.1","schedule":"2026-11-22T04:48:00+00:00","postmaster_start_time":"2026-11-22 02:47:20.281062+00:00"},"timeline":1}';
  const STATUS_NEWEST =
    '{"optime":67394080,"slots":{"node1":67394080,"node3":67394080,"node2":67394080},"retain_slots":["node1","node2","node3"]}';
  const SYNC_QUORUM = '{"leader":"node1","quorum":1,"sync_standby":"node2,node3"}';

  it('a 4.1 replica: receive_lsn, replay_lsn, replication_state, tags', () => {
    const d = parseMemberData(REPLICA_41);
    expect(d).toMatchObject({
      state: 'running',
      role: 'replica',
      version: '4.1.4',
      xlogLocation: 67108960n,
      receiveLsn: 67108960n,
      replayLsn: 67108960n,
      replicationState: 'streaming',
      timeline: 1,
      tags: { nofailover: false, mytag: 'hello', failover_priority: 2 },
    });
    expect(typeof d.receiveLsn).toBe('bigint');
    expect(formatLsn(d.replayLsn ?? -1n)).toBe('0/4000060');
  });

  it('a 4.x primary says role primary; readers treat it like master', () => {
    const d = parseMemberData(PRIMARY_41);
    expect(d.role).toBe('primary');
    expect(isPrimaryRole(d.role)).toBe(true);
    expect(isPrimaryRole('master')).toBe(true);
    expect(isPrimaryRole('replica')).toBe(false);
    expect(isPrimaryRole('standby_leader')).toBe(false);
    expect(isPrimaryRole(undefined)).toBe(false);
  });

  it('pending_restart_reason and scheduled_restart objects are kept as stored', () => {
    const d = parseMemberData(RESTARTING_41);
    expect(d.pendingRestart).toBe(true);
    expect(d.pendingRestartReason).toEqual({ max_connections: { old_value: '100', new_value: '120' } });
    expect(d.scheduledRestart).toEqual({
      postgres_version: '16.1',
      schedule: '2026-11-22T04:48:00+00:00',
      postmaster_start_time: '2026-11-22 02:47:20.281062+00:00',
    });
    expect(d.xlogLocation).toBeUndefined();
  });

  it('non-object pending_restart_reason / scheduled_restart are ignored', () => {
    const d = parseMemberData(
      '{"pending_restart":true,"pending_restart_reason":"x","scheduled_restart":[1]}',
    );
    expect(d.pendingRestart).toBe(true);
    expect(d.pendingRestartReason).toBeUndefined();
    expect(d.scheduledRestart).toBeUndefined();
  });

  it('checkpoint_after_promote false and proxy_url', () => {
    const d = parseMemberData(
      '{"state":"running","role":"primary","checkpoint_after_promote":false,"proxy_url":"postgres://10.0.0.9:6432/postgres"}',
    );
    expect(d.checkpointAfterPromote).toBe(false);
    expect(d.proxyUrl).toBe('postgres://10.0.0.9:6432/postgres');
  });

  it('a 4.x cluster: quorum sync, status with member slots, history, scheduled switchover, failsafe', () => {
    const c = clusterFromNodes('demo4', [
      node('initialize', '7710823709639820511', '2'),
      node('leader', 'node1', '50', { session: '7587457812543387000' }),
      node('members/node3', REPLICA_41.replace(/5444/g, '5445'), '61', { session: '3' }),
      node('members/node2', RESTARTING_41, '60', { session: '2' }),
      node('members/node1', PRIMARY_41, '59', { session: '7587457812543387000' }),
      node('status', STATUS_NEWEST, '70'),
      node('sync', SYNC_QUORUM, '55'),
      node(
        'history',
        '[[1,67393352,"no recovery target specified","2026-11-22T02:49:18.292718+00:00","node2"],[2,117440672,"no recovery target specified","2026-11-22T02:50:20.016720+00:00","node2"],[3,117440952,"no recovery target specified","2026-11-22T02:51:41.450911+00:00","node1"]]',
        '45',
      ),
      node(
        'failover',
        '{"leader":"node2","member":"node3","scheduled_at":"2026-11-22T03:49:00+00:00"}',
        '66',
      ),
      node(
        'failsafe',
        '{"node1":"http://127.0.0.1:8008/patroni","node3":"http://127.0.0.1:8010/patroni"}',
        '67',
      ),
    ]);
    expect(c.members.map((m) => m.name)).toEqual(['node3', 'node2', 'node1']);
    expect(c.leader?.member?.data.role).toBe('primary');
    expect(c.status).toEqual({
      optime: 67394080n,
      slots: { node1: 67394080n, node3: 67394080n, node2: 67394080n },
      retainSlots: ['node1', 'node2', 'node3'],
    });
    expect(c.sync).toEqual({
      version: '55',
      leader: 'node1',
      syncStandby: 'node2,node3',
      members: ['node2', 'node3'],
      quorum: 1,
    });
    expect(syncStateMatches(c.sync, 'NODE3')).toBe(true);
    expect(clusterTimeline(c)).toBe(4);
    expect(c.failover).toEqual({
      version: '66',
      leader: 'node2',
      member: 'node3',
      scheduledAt: '2026-11-22T03:49:00+00:00',
    });
    expect(isFailoverEmpty(c.failover)).toBe(false);
    expect(c.failsafe).toEqual({
      node1: 'http://127.0.0.1:8008/patroni',
      node3: 'http://127.0.0.1:8010/patroni',
    });
    expect(c.members.find((m) => m.name === 'node3')?.data.connUrl).toBe(
      'postgres://127.0.0.1:5445/postgres',
    );
  });

  it('4.0 sync with quorum 0 (the non-quorum form writes the field too)', () => {
    const s = parseSyncState('{"leader":"node1","quorum":0,"sync_standby":"node3"}', '9');
    expect(s.quorum).toBe(0);
    expect(s.members).toEqual(['node3']);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 4. pyJson (Python json.dumps formatting)

describe('pyJson', () => {
  it.each<[string, unknown, string, string]>([
    ['object and list spacing', { a: 1, b: [1, 2] }, '{"a": 1, "b": [1, 2]}', '{"a":1,"b":[1,2]}'],
    [
      'nested',
      { a: { b: { c: [true, false, null] } }, d: [] },
      '{"a": {"b": {"c": [true, false, null]}}, "d": []}',
      '{"a":{"b":{"c":[true,false,null]}},"d":[]}',
    ],
    ['empty containers', { o: {}, l: [] }, '{"o": {}, "l": []}', '{"o":{},"l":[]}'],
    ['bigint as a plain integer', { optime: 68062120n }, '{"optime": 68062120}', '{"optime":68062120}'],
    ['bigint beyond 2^53', [18446744073709551615n], '[18446744073709551615]', '[18446744073709551615]'],
    ['undefined object values dropped', { a: undefined, b: 1, c: undefined }, '{"b": 1}', '{"b":1}'],
    ['undefined in a list is null', [1, undefined], '[1, null]', '[1,null]'],
    ['numbers', [0, -1, 1.5, 1048576], '[0, -1, 1.5, 1048576]', '[0,-1,1.5,1048576]'],
    [
      'NaN and infinities (allow_nan)',
      [NaN, Infinity, -Infinity],
      '[NaN, Infinity, -Infinity]',
      '[NaN,Infinity,-Infinity]',
    ],
    ['string escapes', ['a"b\\c\n\t/'], '["a\\"b\\\\c\\n\\t/"]', '["a\\"b\\\\c\\n\\t/"]'],
    ['control characters', ['\u0001\u001f'], '["\\u0001\\u001f"]', '["\\u0001\\u001f"]'],
    ['top-level scalars', 'x', '"x"', '"x"'],
  ])('%s', (_label, value, spaced, compact) => {
    expect(pyJson(value)).toBe(spaced);
    expect(pyJson(value, true)).toBe(compact);
  });

  it.each([
    ['é', '"\\u00e9"'],
    ['€', '"\\u20ac"'],
    ['\u007f', '"\\u007f"'],
    ['\u2028', '"\\u2028"'],
    ['😀', '"\\ud83d\\ude00"'],
    ['Zürich-1', '"Z\\u00fcrich-1"'],
  ])('non-ASCII %j is escaped like ensure_ascii', (s, expected) => {
    expect(pyJson(s)).toBe(expected);
  });

  it('escapes non-ASCII keys too', () => {
    expect(pyJson({ nœud: 'ß' })).toBe('{"n\\u0153ud": "\\u00df"}');
  });

  it('keeps insertion order of keys', () => {
    expect(pyJson({ z: 1, a: 2, m: 3 })).toBe('{"z": 1, "a": 2, "m": 3}');
  });

  it('reproduces the observed 3.0.2 patronictl list -f json line for the etcd capture', () => {
    const rows = [
      {
        Cluster: 'lab',
        Member: 'pg1',
        Host: '127.0.0.1:15432',
        Role: 'Replica',
        State: 'running',
        TL: 4,
        'Lag in MB': 0,
      },
      { Cluster: 'lab', Member: 'pg2', Host: '127.0.0.1:15433', Role: 'Leader', State: 'running', TL: 4 },
      {
        Cluster: 'lab',
        Member: 'pg3',
        Host: '127.0.0.1:15434',
        Role: 'Replica',
        State: 'running',
        TL: 4,
        'Lag in MB': 0,
      },
    ];
    const observed = readFixture('ctl', 'etcd', 'list-json.txt').split('\n')[1];
    expect(observed).toMatch(/^\[\{"Cluster": "lab"/);
    expect(pyJson(rows)).toBe(observed);
  });

  it('reproduces the observed 3.0.2 GET /patroni body quoted in spec 4.5', () => {
    const body =
      '{"state": "running", "postmaster_start_time": "2026-11-22 02:47:03.023174+00:00", "role": "master", "server_version": 150018, "xlog": {"location": 67108960}, "timeline": 1, "replication": [{"usename": "replicator", "application_name": "node3", "client_addr": "127.0.0.1", "state": "streaming", "sync_state": "async", "sync_priority": 0}, {"usename": "replicator", "application_name": "node2", "client_addr": "127.0.0.1", "state": "streaming", "sync_state": "async", "sync_priority": 0}], "dcs_last_seen": 1795315664, "tags": {"mytag": "hello"}, "database_system_identifier": "7710821883631976027", "patroni": {"version": "3.0.2", "scope": "demo"}}';
    expect(pyJson(JSON.parse(body))).toBe(body);
  });

  const restJsonBodies: string[] = [];
  for (const capture of CAPTURE_NAMES) {
    for (const role of ['leader', 'replica']) {
      for (const f of readdirSync(fixturePath('rest', capture, role))
        .filter((x) => x.endsWith('.body'))
        .sort()) {
        const text = readFixture('rest', capture, role, f);
        if (/^[[{]/.test(text)) restJsonBodies.push(`${capture}/${role}/${f}`);
      }
    }
  }

  it('finds the captured REST JSON bodies', () => {
    expect(restJsonBodies.length).toBeGreaterThan(100);
  });

  it.each(restJsonBodies)('re-serialises the captured REST body %s byte for byte', (rel) => {
    const text = readFixture('rest', ...rel.split('/'));
    expect(pyJson(JSON.parse(text))).toBe(text);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 5. LSN helpers

describe('LSN', () => {
  it.each<[bigint, string]>([
    [0n, '0/0'],
    [67108960n, '0/4000060'],
    [67108864n, '0/4000000'],
    [0xffffffffn, '0/FFFFFFFF'],
    [0x100000000n, '1/0'],
    [0x16b374d848n, '16/B374D848'],
    [0xffffffffffffffffn, 'FFFFFFFF/FFFFFFFF'],
  ])('formatLsn(%s) = %s and back', (lsn, text) => {
    expect(formatLsn(lsn)).toBe(text);
    expect(parseLsnText(text)).toBe(lsn);
    expect(parseLsnText(formatLsn(lsn))).toBe(lsn);
  });

  it.each<[string, bigint]>([
    ['16/b374d848', 0x16b374d848n],
    [' 0/4000060 ', 67108960n],
    ['00000000/04000060', 67108960n],
  ])('parseLsnText(%j) accepts lower case, padding and surrounding blanks', (text, lsn) => {
    expect(parseLsnText(text)).toBe(lsn);
  });

  it.each([
    '',
    '0',
    '0/',
    '/0',
    '0/1/2',
    'G/0',
    '0/G',
    '123456789/0',
    '0/123456789',
    '-1/0',
    '0x1/0',
    '1 /0',
    '67108960',
  ])('parseLsnText(%j) is not an LSN', (text) => {
    expect(parseLsnText(text)).toBeUndefined();
  });

  it.each<[unknown, bigint | undefined]>([
    [67108960, 67108960n],
    [0, 0n],
    [1.9, 1n],
    [-5, -5n],
    ['67108960', 67108960n],
    [' 42 ', 42n],
    ['18446744073709551615', 18446744073709551615n],
    [18446744073709551615n, 18446744073709551615n],
    ['0/4000060', undefined],
    ['', undefined],
    ['1e3', undefined],
    ['12abc', undefined],
    [NaN, undefined],
    [Infinity, undefined],
    [null, undefined],
    [undefined, undefined],
    [true, undefined],
    [{}, undefined],
    [[1], undefined],
  ])('lsnFromJson(%s) = %s', (value, expected) => {
    expect(lsnFromJson(value)).toBe(expected);
  });
});

describe('byCodePoint (Python string order)', () => {
  /** The definition: compare code point by code point. */
  const reference = (a: string, b: string): number => {
    const x = [...a].map((c) => c.codePointAt(0)!);
    const y = [...b].map((c) => c.codePointAt(0)!);
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return x.length - y.length;
  };
  it('orders as code points do, astral characters after U+E000..U+FFFF (4,000 generated pairs)', () => {
    const alphabet = [
      'a',
      'b',
      '-',
      'Z',
      '\u00e9',
      '\ud7ff',
      '\ue000',
      '\uffff',
      '\u{1f418}',
      '\u{10000}',
      '\u{10ffff}',
    ];
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const text = (): string => Array.from({ length: rnd(5) }, () => alphabet[rnd(alphabet.length)]).join('');
    for (let k = 0; k < 4000; k++) {
      const a = text();
      const b = rnd(4) === 0 ? a + text() : text();
      expect(Math.sign(byCodePoint(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(
        Math.sign(reference(a, b)),
      );
    }
  });
});

describe('clustersOfScopes', () => {
  const node = (key: string, value: string): DcsNode => ({ key, value, version: '1', modifyVersion: '1' });
  it('makes the clusters clustersFromNamespaceNodes makes, in name order, leaving out scopes without keys', () => {
    const scopes: [string, DcsNode[]][] = [
      ['b', [node('leader', 'b1'), node('members/b1', '{"role":"primary"}')]],
      ['\u{1f418}', [node('initialize', '1')]],
      ['empty', []],
      ['\uffff', [node('initialize', '2')]],
      ['a', [node('config', '{"ttl":30}')]],
    ];
    const all = scopes.flatMap(([scope, nodes]) => nodes.map((n) => ({ ...n, key: `${scope}/${n.key}` })));
    const clusters = clustersOfScopes(scopes);
    expect(clusters.map((c) => c.scope)).toEqual(['a', 'b', '\uffff', '\u{1f418}']);
    expect(clusters).toEqual(clustersFromNamespaceNodes(all));
  });
});
