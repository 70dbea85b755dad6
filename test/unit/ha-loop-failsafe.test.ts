/**
 * Failsafe mode in the HA loop (src/ha/loop.ts, loop-actions.ts, loop-failsafe.ts) against an in-memory DCS, a fake
 * node and a scripted POST /failsafe: the `/failsafe` key written by the leader, the check of a primary cut off from
 * the DCS (stays primary while every member accepts, demotes otherwise), and a replica that a leader contacted.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryDcs, MemoryStore } from '../../src/dcs/memory/memory-dcs.js';
import { FAILSAFE_CONTINUE } from '../../src/ha/failsafe.js';
import { HaLoop, type FailsafeAnswer, type LocalNode, type ResolvedTarget } from '../../src/ha/loop.js';
import type { HaConfig, PostgresInfo, SelfInfo } from '../../src/ha/snapshot.js';
import type { Cluster } from '../../src/model/cluster.js';
import {
  SELF as BASE_SELF,
  FakeClock,
  ME,
  OPTIONS,
  PREFIX,
  REPLICA,
  SYSID,
} from '../helpers/ha-loop-fakes.js';

const T0 = Date.UTC(2026, 11, 7, 8, 0, 0);
const CONFIG = '{"ttl":30,"loop_wait":10,"retry_timeout":10,"failsafe_mode":true}';

const SELF: SelfInfo = { ...BASE_SELF, apiUrl: 'http://127.0.0.1:8009/patroni' };

/** Only what these tests reach; every call is recorded. */
class FakeNode implements LocalNode {
  readonly self = SELF;
  postgres: PostgresInfo = REPLICA;
  readonly calls: string[] = [];
  readonly started: (ResolvedTarget | undefined)[] = [];
  inspect = async (): Promise<PostgresInfo> => this.postgres;
  memberValue = async (): Promise<string> =>
    JSON.stringify({
      conn_url: 'postgres://127.0.0.1:5442/postgres',
      api_url: SELF.apiUrl,
      state: 'running',
      role: this.postgres.isPrimary ? 'primary' : 'replica',
    });
  leaderStatusValue = async (): Promise<string> => '{"optime":50331800}';
  shutdownStatusValue = (): string => '{}';
  dynamicConfigValue = (): string => CONFIG;
  localDynamicConfig = (): Record<string, unknown> => JSON.parse(CONFIG) as Record<string, unknown>;
  dynamicConfigChanged = (): void => undefined;
  bootstrap = async (): Promise<boolean> => true;
  postBootstrap = async (): Promise<boolean> => true;
  clone = async (): Promise<boolean> => true;
  start = async (_as: string, target: ResolvedTarget | undefined): Promise<boolean> => {
    this.calls.push('start');
    this.started.push(target);
    return true;
  };
  follow = async (target: ResolvedTarget | undefined): Promise<void> => {
    this.calls.push(`follow ${target?.name ?? '-'}`);
  };
  promote = async (): Promise<boolean> => {
    this.calls.push('promote');
    return true;
  };
  stop = async (mode: string): Promise<void> => {
    this.calls.push(`stop ${mode}`);
  };
  markDemoted = (): void => undefined;
  checkpoint = async (): Promise<void> => undefined;
  shutdownCheckpoint = async (): Promise<undefined> => undefined;
  crashRecovery = async (): Promise<boolean> => true;
  historyValue = async (): Promise<undefined> => undefined;
  readonly slotSyncs: { leader?: string; slots: Record<string, bigint>; copy: boolean | undefined }[] = [];
  syncSlots = async (cluster: Cluster, _config: HaConfig, copy?: boolean): Promise<void> => {
    this.slotSyncs.push({
      ...(cluster.leader ? { leader: cluster.leader.name } : {}),
      slots: { ...cluster.status.slots },
      copy,
    });
  };
  abandonBootstrap = async (): Promise<void> => undefined;
  rewind = async (): Promise<boolean> => true;
  reinitialize = async (): Promise<boolean> => true;
}

const member = (port: number, role: string): string =>
  JSON.stringify({
    conn_url: `postgres://127.0.0.1:${port}/postgres`,
    api_url: `http://127.0.0.1:${port + 2567}/patroni`,
    state: 'running',
    role,
    xlog_location: 50331800,
    timeline: 1,
  });

let store: MemoryStore;
let clock: FakeClock;
let node: FakeNode;
let logs: string[];
let posted: string[][];
let answers: (name: string) => FailsafeAnswer;
let loop: HaLoop;

beforeEach(() => {
  store = new MemoryStore();
  clock = new FakeClock(T0);
  node = new FakeNode();
  logs = [];
  posted = [];
  answers = (name) => ({ name, accepted: true });
  loop = new HaLoop({
    dcs: new MemoryDcs(store, OPTIONS, () => clock.monotonic()),
    node,
    probe: async () => new Map(),
    failsafe: async (members) => {
      posted.push(members.map((m) => `${m.name} ${m.apiUrl}`));
      return members.map((m) => answers(m.name));
    },
    clock,
    sync: { process: () => Promise.resolve(), setStandbyNames: () => Promise.resolve() },
    log: {
      info: (t) => logs.push(`INFO: ${t}`),
      warning: (t) => logs.push(`WARNING: ${t}`),
      error: (t) => logs.push(`ERROR: ${t}`),
    },
    onFatal: () => undefined,
  });
  store.put(`${PREFIX}initialize`, SYSID);
  store.put(`${PREFIX}config`, CONFIG);
  store.put(`${PREFIX}members/pg1`, member(5441, 'replica'));
  store.put(`${PREFIX}members/${ME}`, member(5442, 'primary'));
});

/** pg2 leads pg1; one healthy cycle writes the /failsafe key; then the DCS goes away and 15 s pass. */
async function leaderCutOff(): Promise<void> {
  store.put(`${PREFIX}leader`, ME);
  node.postgres = { ...REPLICA, isPrimary: true };
  expect((await loop.runCycle()).message).toBe(`no action. I am (${ME}), the leader with the lock`);
  store.reachable = false;
  clock.t += 15_000;
}

describe('failsafe mode in the HA loop', () => {
  it('the leader writes the /failsafe key after its lock refresh, once', async () => {
    store.put(`${PREFIX}leader`, ME);
    node.postgres = { ...REPLICA, isPrimary: true };
    await loop.runCycle();
    const topology = { pg1: 'http://127.0.0.1:8008/patroni', pg2: 'http://127.0.0.1:8009/patroni' };
    expect(JSON.parse(store.get(`${PREFIX}failsafe`)?.value ?? 'null')).toEqual(topology);
    expect(loop.failsafeTopology).toEqual(topology);
    const revision = store.get(`${PREFIX}failsafe`)?.modRevision;
    clock.t += 10_000;
    await loop.runCycle();
    expect(store.get(`${PREFIX}failsafe`)?.modRevision).toBe(revision);
  });

  it('cut off from the DCS: stays primary while every member accepts, the lock counted for another ttl', async () => {
    await leaderCutOff();
    const r = await loop.runCycle();
    expect(r).toEqual({ message: FAILSAFE_CONTINUE, dcsOk: false });
    expect(posted).toEqual([['pg1 http://127.0.0.1:8008/patroni']]);
    expect(node.calls).not.toContain('stop fast');
    expect(loop.failsafeIsActive()).toBe(true);
    expect(loop.isLeader()).toBe(true);
    expect(loop.leaderLockUntil()).toBe(T0 + 15_000 + 30_000);

    // Far past the original lock's expiry, still every member accepts: still primary.
    clock.t += 40_000;
    expect((await loop.runCycle()).message).toBe(FAILSAFE_CONTINUE);
    expect(node.calls).not.toContain('stop fast');

    // The DCS is back: a leader cycle with the DCS ends failsafe mode.
    store.reachable = true;
    clock.t += 5_000;
    await loop.runCycle();
    expect(loop.failsafeIsActive()).toBe(false);
  });

  it('cut off from the DCS: a member that does not accept demotes the primary (offline)', async () => {
    await leaderCutOff();
    answers = (name) => ({ name, accepted: false });
    const r = await loop.runCycle();
    expect(r).toEqual({
      message: 'demoting self because DCS is not accessible and I was a leader',
      dcsOk: false,
    });
    await loop.waitForTask();
    expect(node.calls).toEqual(['stop fast', 'start']);
    expect(node.started).toEqual([undefined]);
    expect(loop.failsafeIsActive()).toBe(false);
    expect(loop.isLeader()).toBe(false);
  });

  it('a caller that throws counts as a refusal', async () => {
    await leaderCutOff();
    answers = () => {
      throw new Error('boom');
    };
    expect((await loop.runCycle()).message).toBe(
      'demoting self because DCS is not accessible and I was a leader',
    );
    expect(logs).toContain('WARNING: failsafe check failed: boom');
  });

  it('without a /failsafe key naming it, the primary demotes without asking anyone', async () => {
    store.put(`${PREFIX}leader`, ME);
    store.put(`${PREFIX}config`, '{"ttl":30,"loop_wait":10,"retry_timeout":10}');
    node.postgres = { ...REPLICA, isPrimary: true };
    await loop.runCycle();
    expect(store.get(`${PREFIX}failsafe`)).toBeUndefined();
    store.reachable = false;
    clock.t += 15_000;
    expect((await loop.runCycle()).message).toBe(
      'demoting self because DCS is not accessible and I was a leader',
    );
    expect(posted).toEqual([]);
  });

  it('a replica contacted by the leader follows it in an unlocked cluster for ttl, then races', async () => {
    store.put(`${PREFIX}members/${ME}`, member(5442, 'replica'));
    store.put(`${PREFIX}members/pg1`, member(5441, 'primary'));
    const lsn = loop.failsafeContactedBy({
      name: 'pg1',
      apiUrl: 'http://127.0.0.1:8008/patroni',
      connUrl: 'postgres://127.0.0.1:5441/postgres',
    });
    expect(lsn).toBeUndefined(); // PostgreSQL not inspected yet
    expect(loop.failsafeIsActive()).toBe(true);
    const r = await loop.runCycle();
    expect(r.message).toBe(`no action. I am (${ME}), a secondary, and following a leader (pg1)`);
    expect(store.get(`${PREFIX}leader`)).toBeUndefined();
    expect(loop.failsafeContactedBy({ name: 'pg1' })).toBe(50331800n);

    clock.t += 31_000;
    expect(loop.failsafeIsActive()).toBe(false);
    await loop.runCycle();
    // No contact for ttl: the unlocked cluster is raced for (pg1 gave no answer to the probe).
    expect(store.get(`${PREFIX}leader`)?.value).toBe(ME);
  });

  it('a replica cut off from the DCS advances its slots to the positions the leader sent, copying none', async () => {
    store.put(`${PREFIX}members/${ME}`, member(5442, 'replica'));
    store.put(`${PREFIX}members/pg1`, member(5441, 'primary'));
    store.put(`${PREFIX}leader`, 'pg1');
    store.put(`${PREFIX}status`, '{"optime":50331800,"slots":{"dcs_slot_0":50331700}}');
    await loop.runCycle();
    expect(node.slotSyncs).toEqual([{ leader: 'pg1', slots: { dcs_slot_0: 50331700n }, copy: true }]);

    store.reachable = false;
    clock.t += 10_000;
    // Not contacted (yet): housekeeping with the last known cluster, no copy.
    expect((await loop.runCycle()).message).toBe('DCS is not accessible');
    expect(node.slotSyncs[1]).toEqual({ leader: 'pg1', slots: { dcs_slot_0: 50331700n }, copy: false });

    const slots = { dcs_slot_0: 50332000n, dcs_slot_1: 50331900n, pg1: 50332100n };
    loop.failsafeContactedBy({ name: 'pg1', apiUrl: 'http://127.0.0.1:8008/patroni', slots });
    clock.t += 10_000;
    await loop.runCycle();
    expect(node.slotSyncs[2]).toEqual({ leader: 'pg1', slots, copy: false });

    // The DCS is back while the contact is younger than ttl: the leader's positions still, and no copy.
    store.reachable = true;
    clock.t += 5_000;
    await loop.runCycle();
    expect(node.slotSyncs[3]).toEqual({ leader: 'pg1', slots, copy: false });
  });

  it('a primary whose check passed syncs its slots with the positions the members sent back', async () => {
    await leaderCutOff();
    answers = (name) => ({ name, accepted: true, lsn: 50331000n });
    expect((await loop.runCycle()).message).toBe(FAILSAFE_CONTINUE);
    expect(node.slotSyncs.at(-1)).toEqual({ leader: ME, slots: { pg1: 50331000n }, copy: false });

    // A refusal: demoted, and no slot housekeeping as a primary.
    const before = node.slotSyncs.length;
    answers = (name) => ({ name, accepted: false });
    clock.t += 10_000;
    await loop.runCycle();
    expect(node.slotSyncs).toHaveLength(before);
  });

  it('failsafe mode off: a replica cut off from the DCS leaves its slots alone', async () => {
    const off = '{"ttl":30,"loop_wait":10,"retry_timeout":10}';
    store.put(`${PREFIX}config`, off);
    node.localDynamicConfig = (): Record<string, unknown> => JSON.parse(off) as Record<string, unknown>;
    store.put(`${PREFIX}members/${ME}`, member(5442, 'replica'));
    store.put(`${PREFIX}members/pg1`, member(5441, 'primary'));
    store.put(`${PREFIX}leader`, 'pg1');
    await loop.runCycle();
    expect(node.slotSyncs).toHaveLength(1);
    store.reachable = false;
    clock.t += 10_000;
    expect((await loop.runCycle()).message).toBe('DCS is not accessible');
    expect(node.slotSyncs).toHaveLength(1);
  });
});
