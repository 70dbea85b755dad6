/**
 * pgwarden on the wire next to a real Patroni 4.1.4 node: the captures in test/fixtures/patroni-4.1.4 (a 3-node
 * etcd3 cluster of Patroni 4.1.4 agents on PostgreSQL 15: its member keys, `status` key, every REST endpoint of the
 * leader and of a streaming replica, patronictl 4.1.4's `list -f json`, and a paused replica whose postmaster was
 * killed) against what pgwarden builds from the same facts. Exact where the value is deterministic.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LeaderStatus } from '../../src/agent/leader-status.js';
import { memberValue, SPOKEN_PATRONI_VERSION, type MemberInput } from '../../src/agent/member.js';
import { healthCheck, type QueryParams } from '../../src/api/health.js';
import { statusFromJson, statusJson, type AgentStatus } from '../../src/api/status.js';
import { clusterFromNodes } from '../../src/dcs/codec.js';
import type { Cluster, JsonObject } from '../../src/model/cluster.js';
import { clusterView, clusterViewJson } from '../../src/model/cluster-view.js';
import { flavorFor, parseVersion } from '../../src/model/flavor.js';
import { gucFromBaseUnit } from '../../src/model/guc-values.js';
import { pyJson } from '../../src/model/pyjson.js';
import { callbackArgv } from '../../src/postgres/callbacks.js';
import { slotNameForMember } from '../../src/postgres/config-writer.js';
import { replicationStateOf, type InstanceStatus } from '../../src/postgres/queries.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

const DIR = `${REPO_ROOT}/test/fixtures/patroni-4.1.4`;
const load = <T>(file: string): T => JSON.parse(readFileSync(`${DIR}/${file}`, 'utf8')) as T;

interface Capture {
  readonly status: number;
  readonly content_type: string | null;
  readonly body: unknown;
}
type RestCapture = Record<string, Capture>;

const dcs = load<Record<string, string>>('dcs-etcd3.json');
const after = load<Record<string, string>>('dcs-etcd3-after-switchover-paused.json');
const PREFIX = '/service/lab/';

function clusterOf(keys: Record<string, string>): Cluster {
  return clusterFromNodes(
    'lab',
    Object.entries(keys).map(([k, value], i) => ({
      key: k.slice(PREFIX.length),
      value,
      version: String(i + 1),
      modifyVersion: String(i + 1),
    })),
  );
}

const member = (keys: Record<string, string>, name: string): JsonObject =>
  JSON.parse(keys[`${PREFIX}members/${name}`] ?? '{}') as JsonObject;

/** What pgwarden's touch_member is given for a member described by a captured key (addresses, WAL, state). */
function inputLike(m: JsonObject, role: string): MemberInput {
  const lsn = (k: string): bigint | undefined => (typeof m[k] === 'number' ? BigInt(m[k]) : undefined);
  const location = lsn('xlog_location');
  return {
    connUrl: String(m['conn_url']),
    apiUrl: String(m['api_url']),
    state: String(m['state']),
    role,
    tags: {},
    checkpointAfterPromotePending: false,
    pendingRestart: false,
    ...(location === undefined
      ? {}
      : {
          wal: {
            location,
            ...(typeof m['timeline'] === 'number' ? { timeline: m['timeline'] } : {}),
            ...(lsn('replay_lsn') === undefined ? {} : { replayLsn: lsn('replay_lsn') }),
            ...(lsn('receive_lsn') === undefined ? {} : { receiveLsn: lsn('receive_lsn') }),
            // As the agent derives it from pg_stat_get_wal_receiver().
            ...(role === 'replica'
              ? { replicationState: replicationStateOf(streamingStandby(lsn('replay_lsn') ?? 0n)) }
              : {}),
          },
        }),
    ...(m['pause'] === true ? { pause: true } : {}),
  };
}

function streamingStandby(lsn: bigint): InstanceStatus {
  return {
    inRecovery: true,
    timeline: 1,
    flushLsn: undefined,
    receiveLsn: lsn,
    replayLsn: lsn,
    replayPaused: false,
    receiverState: 'streaming',
    receiverSlotName: undefined,
    receiverConninfo: undefined,
    latestEndLsn: lsn,
    restoreCommand: undefined,
  };
}

describe('member key: byte-identical to Patroni 4.1.4 for the same facts', () => {
  it('speaks version 4.1.4, which patronictl 4.1.4 reads as a 4.1 member (LSN columns, replication_state)', () => {
    expect(SPOKEN_PATRONI_VERSION).toBe(String(member(dcs, 'pg1')['version']));
    const fl = flavorFor(parseVersion(SPOKEN_PATRONI_VERSION) ?? [0, 0, 0]);
    expect(fl).toMatchObject({ lsnColumns: true, replicationStateAsState: true, scopeInClusterJson: true });
  });

  it('leader (internal role master is published as primary)', () => {
    expect(memberValue(inputLike(member(dcs, 'pg1'), 'master'))).toBe(dcs[`${PREFIX}members/pg1`]);
  });

  it('streaming replica: receive_lsn, replay_lsn, replication_state', () => {
    for (const name of ['pg2', 'pg3'])
      expect(memberValue(inputLike(member(dcs, name), 'replica'))).toBe(dcs[`${PREFIX}members/${name}`]);
  });

  it('after a switchover, paused: the new leader and the old one as a replica', () => {
    expect(memberValue(inputLike(member(after, 'pg2'), 'primary'))).toBe(after[`${PREFIX}members/pg2`]);
    expect(memberValue(inputLike(member(after, 'pg1'), 'replica'))).toBe(after[`${PREFIX}members/pg1`]);
  });

  it('paused, postmaster killed: stopped, no WAL fields, pause', () => {
    const cap = load<{ member_key: string }>('paused-killed-replica.json');
    expect(memberValue(inputLike(JSON.parse(cap.member_key) as JsonObject, 'replica'))).toBe(cap.member_key);
  });

  it('a restart pending publishes pending_restart with its reason (4.x)', () => {
    const v = JSON.parse(
      memberValue({
        ...inputLike(member(dcs, 'pg1'), 'master'),
        pendingRestart: true,
        pendingRestartReason: { max_connections: { old_value: '50', new_value: '101' } },
      }),
    ) as JsonObject;
    expect(Object.keys(v)).toEqual([
      'conn_url',
      'api_url',
      'state',
      'role',
      'version',
      'pending_restart',
      'pending_restart_reason',
      'xlog_location',
      'timeline',
    ]);
  });
});

describe('status key: optime, member slots and retain_slots as Patroni 4.1.4 writes them', () => {
  const input = (keys: Record<string, string>, self: string, optime: bigint, slots: [string, bigint][]) => ({
    optime,
    ownSlot: slotNameForMember(self),
    positions: Object.fromEntries(slots),
    permanentPhysical: new Set<string>(),
    memberSlotsTtl: 1800,
    cluster: clusterOf(keys),
    self,
    slotName: slotNameForMember,
    now: 1_796_328_715,
    canAdvanceSlots: true,
  });

  it('fresh cluster', () => {
    const s = new LeaderStatus();
    const v = s.value(
      input(dcs, 'pg1', 67108960n, [
        ['pg2', 67108960n],
        ['pg3', 67108960n],
      ]),
    );
    expect(v).toBe(dcs[`${PREFIX}status`]);
  });

  it('after a switchover (slots in pg_replication_slots order, our own last)', () => {
    const v = new LeaderStatus().value(
      input(after, 'pg2', 67109536n, [
        ['pg1', 67109536n],
        ['pg3', 67109536n],
      ]),
    );
    expect(v).toBe(after[`${PREFIX}status`]);
  });

  it('a clean shutdown keeps the last slots; a member slot is retained member_slots_ttl after it went', () => {
    const s = new LeaderStatus();
    const i = input(dcs, 'pg1', 100n, [
      ['pg2', 90n],
      ['pg3', 80n],
    ]);
    s.value(i);
    expect(JSON.parse(s.shutdownValue(120n))).toEqual({
      optime: 120,
      slots: { pg2: 90, pg3: 80, pg1: 100 },
      retain_slots: ['pg1', 'pg2', 'pg3'],
    });
    const gone = { ...i, positions: { pg2: 90n } };
    const retained = (now: number): unknown =>
      (JSON.parse(s.value({ ...gone, now })) as JsonObject)['retain_slots'];
    expect(retained(i.now + 10)).toEqual(['pg1', 'pg2', 'pg3']);
    expect(retained(i.now + 1800)).toEqual(['pg1', 'pg2']);
  });

  it('permanent physical slots are published but never retained; member_slots_ttl sets the retention', () => {
    const s = new LeaderStatus();
    const i = {
      ...input(dcs, 'pg1', 100n, [
        ['pg2', 90n],
        ['keep', 70n],
      ]),
      permanentPhysical: new Set(['keep']),
      memberSlotsTtl: 60,
    };
    expect(JSON.parse(s.value(i))).toEqual({
      optime: 100,
      slots: { pg2: 90, keep: 70, pg1: 100 },
      retain_slots: ['pg1', 'pg2'],
    });
    const gone = { ...i, positions: { keep: 70n } };
    expect((JSON.parse(s.value({ ...gone, now: i.now + 59 })) as JsonObject)['retain_slots']).toEqual([
      'pg1',
      'pg2',
    ]);
    expect((JSON.parse(s.value({ ...gone, now: i.now + 60 })) as JsonObject)['retain_slots']).toEqual([
      'pg1',
    ]);
  });

  it('before PostgreSQL 11: optime only', () => {
    expect(new LeaderStatus().value({ ...input(dcs, 'pg1', 5n, []), canAdvanceSlots: false })).toBe(
      '{"optime":5}',
    );
  });
});

/** The leader's and the replica's status as pgwarden's REST API builds it from the same PostgreSQL facts. */
function agentStatus(cap: RestCapture, leader: boolean): AgentStatus {
  const doc = cap['/patroni']?.body as JsonObject;
  const at = 1_796_328_715_000;
  const s = statusFromJson(doc, {
    at,
    postmasterRunning: true,
    ...(leader ? { leaderLockUntil: at + 30_000 } : {}),
    standbyCluster: false,
    nextRunAt: at + 5_000,
    ttl: 30,
    maximumLagOnFailover: 1048576,
  });
  return {
    ...s,
    role: leader ? 'master' : 'replica',
    patroni: { ...s.patroni, version: SPOKEN_PATRONI_VERSION },
    ...(s.postgres && !leader ? { postgres: { ...s.postgres, latestEndLsn: 67108960n } } : {}),
  };
}

function queryOf(path: string): { path: string; query: QueryParams } {
  const u = new URL(path, 'http://x');
  const query: Record<string, string[]> = {};
  for (const [k, v] of u.searchParams) (query[k] ??= []).push(v);
  return { path: u.pathname, query };
}

/** A status document with `dcs_last_seen` (the moment of the last DCS read) set aside: key order kept. */
function moving(doc: Readonly<Record<string, unknown>>): string {
  return pyJson({ ...doc, dcs_last_seen: 'moves' });
}

const SERVER_ROUTED = new Set(['/patroni', '/cluster', '/history', '/config', '/failsafe']);

describe.each([
  ['leader', 'rest-leader.json', true],
  ['replica', 'rest-replica.json', false],
] as const)('REST of the %s: status codes and bodies of Patroni 4.1.4', (_role, file, leader) => {
  const cap = load<RestCapture>(file);
  const status = agentStatus(cap, leader);
  const cluster = clusterOf(dcs);

  it('GET /patroni: the same document (field order included)', () => {
    expect(pyJson(statusJson(status))).toBe(pyJson(cap['/patroni']?.body));
  });

  it('GET /cluster: the same view', () => {
    const view = clusterViewJson(clusterView(cluster, flavorFor(parseVersion(SPOKEN_PATRONI_VERSION)!)));
    expect(pyJson(view)).toBe(pyJson(cap['/cluster']?.body));
  });

  const health = Object.entries(cap).filter(([p]) => !SERVER_ROUTED.has(queryOf(p).path));
  it('captured every health endpoint the brief names', () => {
    const paths = new Set(health.map(([p]) => queryOf(p).path));
    for (const p of ['/primary', '/replica', '/read-only', '/health', '/liveness', '/readiness', '/quorum'])
      expect(paths).toContain(p);
    for (const p of ['/read-only-quorum', '/sync', '/async', '/standby-leader', '/asynchronous'])
      expect(paths).toContain(p);
  });

  it.each(health)('GET %s', (p, want) => {
    const { path, query } = queryOf(p);
    const r = healthCheck('GET', path, query, status, cluster);
    expect(r.code).toBe(want.status);
    if (r.body === 'status') expect(moving(statusJson(status))).toEqual(moving(want.body as JsonObject));
    else expect(want.body).toBe('');
  });
});

describe('patronictl 4.1.4 list -f json and callbacks', () => {
  it('the list captured next to the member keys: replicas are streaming with LSN columns', () => {
    const rows = load<JsonObject[]>('ctl-list.json');
    expect(rows.map((r) => [r['Member'], r['Role'], r['State']])).toEqual([
      ['pg1', 'Leader', 'running'],
      ['pg2', 'Replica', 'streaming'],
      ['pg3', 'Replica', 'streaming'],
    ]);
    const view = clusterView(clusterOf(dcs), flavorFor(parseVersion(SPOKEN_PATRONI_VERSION)!));
    expect(view.members.map((m) => m.state)).toEqual(['running', 'streaming', 'streaming']);
  });

  it('on_role_change gets the 4.x role name', () => {
    expect(callbackArgv('cb.sh', 'on_role_change', 'promoted', 'batman').slice(-2)).toEqual([
      'primary',
      'batman',
    ]);
  });
});

describe('pending_restart_reason values as Patroni 4.1.4 converts them', () => {
  it.each([
    ['4096', 'integer', '8kB', '32MB'],
    ['6144', 'integer', '8kB', '48MB'],
    ['1025', 'integer', 'kB', '1025kB'],
    ['50', 'integer', null, '50'],
    ['4', 'integer', '256MB', '1GB'],
    ['60', 'integer', 's', '1min'],
    ['on', 'bool', null, 'on'],
    ['0', 'integer', 'kB', '0'],
  ] as const)('%s (%s, %s) -> %s', (value, vartype, unit, want) => {
    expect(gucFromBaseUnit(value, vartype, unit)).toBe(want);
  });
});
