/**
 * The HA loop's executor (src/ha/loop.ts) against the contract in src/ha/actions.ts: an in-memory DCS, a fake local
 * node that records what it is asked, a scripted peer prober and a hand-moved clock. Each test builds a DCS state
 * and a local PostgreSQL state from which the real `decide()` produces the actions under test.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DcsError } from '../../src/dcs/dcs.js';
import { MemoryDcs, MemoryStore } from '../../src/dcs/memory/memory-dcs.js';
import {
  DEMOTE_LOCK_WAIT_MS,
  HaLoop,
  type LocalNode,
  type PeerProber,
  type ResolvedTarget,
  type StartRole,
  type TaskControl,
  type WatchdogPort,
  type WatchdogTiming,
} from '../../src/ha/loop.js';
import type {
  AsyncKind,
  HaConfig,
  PeerStatus,
  PostgresInfo,
  SelfInfo,
  WatchdogView,
} from '../../src/ha/snapshot.js';
import type { Cluster, Member } from '../../src/model/cluster.js';
import type { Lsn } from '../../src/model/lsn.js';
import { FakeClock, ME, OPTIONS, PREFIX, REPLICA, SELF, SYSID } from '../helpers/ha-loop-fakes.js';

const T0 = Date.UTC(2026, 10, 22, 3, 0, 0);

const PRIMARY: PostgresInfo = { ...REPLICA, isPrimary: true };

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A local node whose PostgreSQL is whatever `postgres` says; every call is recorded. */
class FakeNode implements LocalNode {
  readonly self = SELF;
  postgres: PostgresInfo = REPLICA;
  readonly calls: string[] = [];
  readonly followed: (ResolvedTarget | undefined)[] = [];
  readonly followedAsStandbyLeader: boolean[] = [];
  readonly started: { as: StartRole; target: ResolvedTarget | undefined }[] = [];
  readonly memberContexts: { isLeader: boolean; pendingAsync?: AsyncKind }[] = [];
  promoteResult: Promise<boolean | 'pre_promote_failed'> = Promise.resolve(true);

  async inspect(_cluster: Cluster | undefined): Promise<PostgresInfo> {
    this.calls.push('inspect');
    return this.postgres;
  }
  async memberValue(ctx: { readonly isLeader: boolean; readonly pendingAsync?: AsyncKind }): Promise<string> {
    this.memberContexts.push({
      isLeader: ctx.isLeader,
      ...(ctx.pendingAsync ? { pendingAsync: ctx.pendingAsync } : {}),
    });
    return JSON.stringify({
      conn_url: 'postgres://127.0.0.1:5442/postgres',
      api_url: 'http://127.0.0.1:8009/patroni',
      state: this.postgres.state,
      role: this.postgres.isPrimary ? 'master' : 'replica',
      ...(ctx.pendingAsync ? { pending: ctx.pendingAsync } : {}),
    });
  }
  async leaderStatusValue(): Promise<string | undefined> {
    this.calls.push('leaderStatusValue');
    return '{"optime":50331800}';
  }
  shutdownStatusValue(optime: Lsn): string {
    return `{"optime":${optime}}`;
  }
  dynamicConfigValue(): string {
    return '{"ttl":30,"loop_wait":10,"retry_timeout":10}';
  }
  localDynamicConfig(): Readonly<Record<string, unknown>> {
    return { ttl: 30, loop_wait: 10, retry_timeout: 10 };
  }
  dynamicConfigChanged(_data: Readonly<Record<string, unknown>>): void {
    return;
  }
  async bootstrap(_task: TaskControl): Promise<boolean> {
    this.calls.push('bootstrap');
    return true;
  }
  async postBootstrap(_task: TaskControl): Promise<boolean> {
    this.calls.push('postBootstrap');
    return true;
  }
  async clone(_from: Member | undefined, _task: TaskControl): Promise<boolean> {
    this.calls.push('clone');
    return true;
  }
  async start(
    as: StartRole,
    target: ResolvedTarget | undefined,
    _timeoutSeconds: number | undefined,
    _task: TaskControl,
  ): Promise<boolean> {
    this.calls.push(`start ${as}`);
    this.started.push({ as, target });
    return true;
  }
  async follow(target: ResolvedTarget | undefined, standbyLeader = false): Promise<void> {
    this.calls.push('follow');
    this.followed.push(target);
    this.followedAsStandbyLeader.push(standbyLeader);
  }
  /** Runs while pre_promote would (before the lock is confirmed); tests move the clock or the DCS here. */
  prePromote: () => Promise<void> = () => Promise.resolve();
  async promote(
    _task: TaskControl,
    _cluster: Cluster | undefined,
    confirmLock: () => Promise<boolean>,
  ): Promise<boolean | 'pre_promote_failed'> {
    this.calls.push('promote');
    await this.prePromote();
    const result = await this.promoteResult;
    if (result !== true) return result;
    if (!(await confirmLock())) return false;
    this.calls.push('pg_ctl promote');
    return true;
  }
  /** When set, a fast stop given `onShutdown` reports this shutdown checkpoint (the control file says `shut down`). */
  shutdownAt: Lsn | undefined;
  archiving = false;
  async stop(
    mode: 'fast' | 'immediate',
    _demote?: string,
    onShutdown?: (checkpoint: Lsn) => Promise<void>,
  ): Promise<void> {
    this.calls.push(`stop ${mode}${onShutdown ? ' (on_shutdown)' : ''}`);
    if (onShutdown && mode === 'fast' && this.shutdownAt !== undefined) await onShutdown(this.shutdownAt);
  }
  archivesShutdownCheckpoint(): boolean {
    return this.archiving;
  }
  async archiveShutdownCheckpoint(): Promise<void> {
    this.calls.push(this.archiving ? 'archive shutdown checkpoint' : 'not archiving');
  }
  async checkpoint(): Promise<void> {
    this.calls.push('checkpoint');
  }
  async shutdownCheckpoint(): Promise<Lsn | undefined> {
    return undefined;
  }
  markDemoted(): void {
    this.calls.push('markDemoted');
  }
  async crashRecovery(_task: TaskControl): Promise<boolean> {
    this.calls.push('crashRecovery');
    return true;
  }
  async historyValue(_cluster: Cluster): Promise<string | undefined> {
    this.calls.push('historyValue');
    return undefined;
  }
  async syncSlots(_cluster: Cluster, _config: HaConfig): Promise<void> {
    this.calls.push('syncSlots');
  }
  async abandonBootstrap(): Promise<void> {
    this.calls.push('abandonBootstrap');
  }
  readonly rewoundFrom: (Member | ResolvedTarget)[] = [];
  async rewind(leader: Member | ResolvedTarget, _task: TaskControl): Promise<boolean> {
    this.calls.push('rewind');
    this.rewoundFrom.push(leader);
    return true;
  }
  async reinitialize(_from: Member, _task: TaskControl): Promise<boolean> {
    this.calls.push('reinitialize');
    return true;
  }
}

/** A MemoryDcs whose calls can be intercepted by name before they reach the store. */
class HookedDcs extends MemoryDcs {
  readonly hooks = new Map<string, () => void | Promise<void>>();
  /** When set, what leaseRefreshedAt() reports instead of the store's session refresh. */
  leaseAt?: number;
  /** When set, what lockLifetime() reports (seconds) instead of the ttl. */
  lifetime?: number;
  private async run(name: string): Promise<void> {
    await this.hooks.get(name)?.();
  }
  override async attemptToAcquireLeader(): Promise<boolean> {
    await this.run('attemptToAcquireLeader');
    return super.attemptToAcquireLeader();
  }
  override async getCluster(): Promise<Cluster> {
    await this.run('getCluster');
    return super.getCluster();
  }
  override async updateLeader(cluster: Cluster): Promise<boolean> {
    await this.run('updateLeader');
    return super.updateLeader(cluster);
  }
  override async touchMember(value: string): Promise<boolean> {
    await this.run('touchMember');
    return super.touchMember(value);
  }
  override async writeStatus(value: string): Promise<boolean> {
    await this.run('writeStatus');
    return super.writeStatus(value);
  }
  override leaseRefreshedAt(): number | undefined {
    return this.leaseAt ?? super.leaseRefreshedAt();
  }
  override lockLifetime(): number {
    return this.lifetime ?? super.lockLifetime();
  }
}

function memberJson(name: string, port: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    conn_url: `postgres://127.0.0.1:${port}/postgres`,
    state: 'running',
    role: 'replica',
    version: '3.0.2',
    xlog_location: 50331800,
    timeline: 1,
    ...extra,
  });
}

let store: MemoryStore;
let dcs: HookedDcs;
let node: FakeNode;
let clock: FakeClock;
let logs: string[];
let probes: { name: string; apiUrl: string }[][];
let peers: ReadonlyMap<string, PeerStatus>;
let fatal: { code: number; reason: string }[];
let loop: HaLoop;
let promotion: Deferred<boolean>;

const probe: PeerProber = async (members) => {
  probes.push(members.map((m) => ({ ...m })));
  return peers;
};

function seedCluster(leader: string | undefined, members: Readonly<Record<string, string>>): void {
  store.put(`${PREFIX}initialize`, SYSID);
  store.put(`${PREFIX}config`, '{"ttl":30,"loop_wait":10,"retry_timeout":10}');
  if (leader) store.put(`${PREFIX}leader`, leader);
  for (const [name, value] of Object.entries(members)) store.put(`${PREFIX}members/${name}`, value);
}

function revision(key: string): number | undefined {
  return store.get(`${PREFIX}${key}`)?.modRevision;
}

beforeEach(() => {
  store = new MemoryStore();
  clock = new FakeClock(T0);
  dcs = new HookedDcs(store, OPTIONS, () => clock.monotonic());
  node = new FakeNode();
  logs = [];
  probes = [];
  peers = new Map();
  fatal = [];
  promotion = deferred<boolean>();
  loop = new HaLoop({
    dcs,
    node,
    probe,
    clock,
    // Synchronous mode has its own tests below and in sync-replication's.
    sync: { process: () => Promise.resolve(), setStandbyNames: () => Promise.resolve() },
    log: {
      info: (t) => logs.push(`INFO: ${t}`),
      warning: (t) => logs.push(`WARNING: ${t}`),
      error: (t) => logs.push(`ERROR: ${t}`),
    },
    onFatal: (code, reason) => fatal.push({ code, reason }),
  });
});

afterEach(async () => {
  promotion.resolve(false);
  await loop.waitForTask();
  for (const [k] of store.list('')) store.delete(k);
});

describe('HaLoop executor', () => {
  it('runs the otherwise decision of a guard that loses: AcquireLock against a lock taken meanwhile', async () => {
    // No leader, and pg1 (no REST API, so nothing to probe) is the only other member: we race for the lock...
    seedCluster(undefined, { pg1: memberJson('pg1', 5441), [ME]: memberJson(ME, 5442) });
    // ...and pg1 takes it between our read and our attempt.
    dcs.hooks.set('attemptToAcquireLeader', () => {
      store.put(`${PREFIX}leader`, 'pg1');
    });

    const result = await loop.runCycle();

    expect(result).toEqual({
      message: 'following new leader after trying and failing to obtain lock',
      dcsOk: true,
    });
    expect(probes).toEqual([]);
    // The otherwise branch follows whoever holds the lock now (re-read), and nothing of the winning branch ran.
    expect(node.followed).toEqual([{ name: 'pg1', host: '127.0.0.1', port: 5441 }]);
    expect(node.calls).not.toContain('promote');
    expect(store.get(`${PREFIX}leader`)?.value).toBe('pg1');
    expect(loop.isLeader()).toBe(false);
    expect(logs).toContain('INFO: following new leader after trying and failing to obtain lock');
  });

  it('ProbePeers: probes the members and decides again in the same cycle with the peers filled in', async () => {
    seedCluster(undefined, {
      pg1: memberJson('pg1', 5441, { api_url: 'http://127.0.0.1:8008/patroni', role: 'master' }),
      [ME]: memberJson(ME, 5442, { api_url: 'http://127.0.0.1:8009/patroni' }),
    });
    // pg1 answers as a live primary: we are not the healthiest node and must not race.
    peers = new Map([
      [
        'pg1',
        {
          reachable: true,
          isPrimary: true,
          walPosition: 0n,
          timeline: 1,
          nofailover: false,
          failoverPriority: 1,
          watchdogFailed: false,
        },
      ],
    ]);

    const result = await loop.runCycle();

    expect(probes).toEqual([[{ name: 'pg1', apiUrl: 'http://127.0.0.1:8008/patroni' }]]);
    expect(result.message).toBe('following a different leader because i am not the healthiest node');
    expect(logs).toContain('WARNING: Primary (pg1) is still alive');
    expect(logs.some((l) => l.includes('probing members'))).toBe(false);
    expect(store.get(`${PREFIX}leader`)).toBeUndefined();
    expect(node.calls).toContain('follow');
  });

  it('ProbePeers with every peer unreachable: the second decision takes the lock and promotes', async () => {
    seedCluster(undefined, {
      pg1: memberJson('pg1', 5441, { api_url: 'http://127.0.0.1:8008/patroni' }),
      [ME]: memberJson(ME, 5442, { api_url: 'http://127.0.0.1:8009/patroni' }),
    });
    const result = await loop.runCycle();
    expect(probes).toHaveLength(1);
    expect(result.message).toBe('promoted self to leader by acquiring session lock');
    expect(store.get(`${PREFIX}leader`)?.value).toBe(ME);
    await loop.waitForTask();
    expect(node.calls).toContain('promote');
  });

  it('a failed pre_promote script: the next cycle releases the lock and the race backs off for ttl', async () => {
    seedCluster(undefined, {
      pg1: memberJson('pg1', 5441, { api_url: 'http://127.0.0.1:8008/patroni' }),
      [ME]: memberJson(ME, 5442, { api_url: 'http://127.0.0.1:8009/patroni' }),
    });
    node.promoteResult = Promise.resolve('pre_promote_failed');
    expect((await loop.runCycle()).message).toBe('promoted self to leader by acquiring session lock');
    await loop.waitForTask();
    expect(loop.haMemory.prePromoteFailed).toBe(true);
    expect((await loop.runCycle()).message).toBe('Promotion cancelled because the pre-promote script failed');
    expect(store.get(`${PREFIX}leader`)).toBeUndefined();
    expect(loop.haMemory.prePromoteFailed).toBe(false);
    expect(loop.haMemory.releasedLeaderKeyAt).toBeDefined();
    const third = await loop.runCycle();
    expect(third.message).not.toContain('acquiring session lock');
    expect(store.get(`${PREFIX}leader`)).toBeUndefined();
    expect(logs.some((l) => l.includes('backoff: skip leader race after pre_promote script failure'))).toBe(
      true,
    );
  });

  it('a DCS error mid-cycle aborts the remaining actions and decides again with dcsReachable false', async () => {
    seedCluster(ME, { pg1: memberJson('pg1', 5441), [ME]: memberJson(ME, 5442, { role: 'master' }) });
    node.postgres = PRIMARY;
    // A healthy leader cycle first: [RefreshLock(writeStatus), ProcessSyncReplication, WriteHistory] all run.
    expect((await loop.runCycle()).message).toBe(`no action. I am (${ME}), the leader with the lock`);
    expect(node.calls.filter((c) => c === 'historyValue')).toHaveLength(1);
    node.calls.length = 0;
    node.memberContexts.length = 0;

    // Next cycle the lock refresh works, then the DCS goes away while the status is written.
    clock.t += 5_000;
    dcs.hooks.set('writeStatus', () => {
      store.reachable = false;
      throw new DcsError('memory DCS is unreachable');
    });
    const memberRevision = revision(`members/${ME}`);

    const result = await loop.runCycle();

    // decide() again with dcsReachable false: a primary whose lock was refreshed within retry_timeout waits.
    expect(result).toEqual({ message: 'DCS is not accessible', dcsOk: false });
    expect(node.calls).not.toContain('historyValue');
    expect(logs).toContain('ERROR: Error communicating with DCS: memory DCS is unreachable');
    // No member key update after a cycle whose DCS access failed.
    expect(node.memberContexts).toEqual([]);
    expect(revision(`members/${ME}`)).toBe(memberRevision);

    // The next cycle cannot read the DCS either; past retry_timeout since the last refresh the primary demotes.
    clock.t += 11_000;
    node.calls.length = 0;
    const next = await loop.runCycle();
    expect(next).toEqual({
      message: 'demoting self because DCS is not accessible and I was a leader',
      dcsOk: false,
    });
    await loop.waitForTask();
    // Patroni's demote('offline'): a fast stop, then PostgreSQL back up read-only, following nobody.
    expect(node.calls).toEqual(['inspect', 'stop fast', 'start replica']);
    expect(node.started).toEqual([{ as: 'replica', target: undefined }]);
    expect(loop.isLeader()).toBe(false);
  });

  describe('leader cut off from the DCS', () => {
    /** A healthy leader cycle at T0 (lock refreshed), then the clock moves `ms` on. */
    async function leaderAtT0ThenWait(ms: number): Promise<void> {
      seedCluster(ME, { pg1: memberJson('pg1', 5441), [ME]: memberJson(ME, 5442, { role: 'master' }) });
      node.postgres = PRIMARY;
      expect((await loop.runCycle()).message).toBe(`no action. I am (${ME}), the leader with the lock`);
      expect(loop.leaderLockUntil()).toBe(T0 + 30_000);
      node.calls.length = 0;
      clock.t += ms;
    }

    /** Makes a DCS call hang for `ms` (the clock moves on) and then fail, as a frozen etcd does. */
    function hangThenFail(call: string, ms: number): void {
      dcs.hooks.set(call, () => {
        clock.t += ms;
        store.reachable = false;
        throw new DcsError('no etcd3 at 127.0.0.1:2379: timed out after 10000 ms');
      });
    }

    it('the decision time is taken after the DCS read: a read that hung past retry_timeout demotes at once', async () => {
      await leaderAtT0ThenWait(3_000);
      // loop_wait later the read hangs for retry_timeout (10 s): 13 s since the refresh, past the 10 s grace.
      hangThenFail('getCluster', 10_000);
      const r = await loop.runCycle();
      expect(r).toEqual({
        message: 'demoting self because DCS is not accessible and I was a leader',
        dcsOk: false,
      });
      await loop.waitForTask();
      expect(node.calls).toEqual(['inspect', 'stop fast', 'start replica']);
    });

    it('after a mid-cycle DCS error it decides again with the current time, not the stale snapshot', async () => {
      await leaderAtT0ThenWait(3_000);
      // The read works (at T0+3 s), then the lock refresh hangs 10 s and fails: at T0+13 s the grace is over.
      hangThenFail('updateLeader', 10_000);
      const r = await loop.runCycle();
      expect(r).toEqual({
        message: 'demoting self because DCS is not accessible and I was a leader',
        dcsOk: false,
      });
      expect(logs).toContain(
        'ERROR: Error communicating with DCS: no etcd3 at 127.0.0.1:2379: timed out after 10000 ms',
      );
      await loop.waitForTask();
      expect(node.started).toEqual([{ as: 'replica', target: undefined }]);
    });

    it('the DCS lost while the member key is written (after the refresh): decides at once, not a cycle later', async () => {
      await leaderAtT0ThenWait(2_000);
      // The lock refresh at T0+2 s works; the member key write then hangs for retry_timeout and fails.
      hangThenFail('touchMember', 10_000);
      const r = await loop.runCycle();
      expect(r).toEqual({ message: `no action. I am (${ME}), the leader with the lock`, dcsOk: false });
      expect(logs).toContain('INFO: demoting self because DCS is not accessible and I was a leader');
      await loop.waitForTask();
      expect(node.started).toEqual([{ as: 'replica', target: undefined }]);
    });

    it('the member key write fails soon after the refresh: within the grace nothing more happens', async () => {
      await leaderAtT0ThenWait(2_000);
      dcs.hooks.set('touchMember', () => {
        store.reachable = false;
        throw new DcsError('etcdserver: server stopped');
      });
      const r = await loop.runCycle();
      expect(r.dcsOk).toBe(false);
      expect(logs).not.toContain('INFO: DCS is not accessible');
      await loop.waitForTask();
      expect(node.calls).not.toContain('stop fast');
    });

    it('counts the lock from the moment the refresh was sent, not answered', async () => {
      await leaderAtT0ThenWait(5_000);
      // etcd answers the keepalive 4 s after it was sent (busy disk): the lease was renewed somewhere in between.
      dcs.hooks.set('updateLeader', () => {
        clock.t += 4_000;
      });
      expect((await loop.runCycle()).message).toBe(`no action. I am (${ME}), the leader with the lock`);
      expect(loop.leaderLockUntil()).toBe(T0 + 5_000 + 30_000);
    });

    it('counts the lock from the last refresh of the lease it rides on when that is older than the request', async () => {
      await leaderAtT0ThenWait(5_000);
      // The DCS client kept using a lease it last refreshed 10 s before this request (etcd3 reuses one for ttl/3).
      dcs.leaseAt = clock.monotonic() - 10_000;
      expect((await loop.runCycle()).message).toBe(`no action. I am (${ME}), the leader with the lock`);
      expect(loop.leaderLockUntil()).toBe(T0 + 5_000 - 10_000 + 30_000);
    });

    it('lives as long as the DCS says (a negotiated session timeout), not the configured ttl', async () => {
      dcs.lifetime = 4;
      seedCluster(ME, { pg1: memberJson('pg1', 5441), [ME]: memberJson(ME, 5442, { role: 'master' }) });
      node.postgres = PRIMARY;
      expect((await loop.runCycle()).message).toBe(`no action. I am (${ME}), the leader with the lock`);
      expect(loop.leaderLockUntil()).toBe(T0 + 4_000);
      // A DCS error 1 s later: within retry_timeout of the refresh, but the lock expires in 3 s: demote now.
      clock.t += 1_000;
      hangThenFail('getCluster', 0);
      expect((await loop.runCycle()).message).toBe(
        'demoting self because DCS is not accessible and I was a leader',
      );
      await loop.waitForTask();
      expect(node.calls).toContain('stop fast');
    });

    it('an NTP step back of the wall clock does not lengthen the lock', async () => {
      await leaderAtT0ThenWait(0);
      clock.stepWall(-60_000);
      clock.t += 31_000;
      expect(loop.isLeader()).toBe(false);
      expect(loop.leaderLockUntil()).toBeUndefined();
    });

    it('an NTP step back does not stretch the grace of a leader cut off from the DCS', async () => {
      await leaderAtT0ThenWait(0);
      clock.stepWall(-60_000);
      // 15 s after the refresh (45 s "before" it on the stepped wall clock) the read fails: past the 10 s grace.
      clock.t += 15_000;
      hangThenFail('getCluster', 0);
      expect((await loop.runCycle()).message).toBe(
        'demoting self because DCS is not accessible and I was a leader',
      );
    });

    it('all DCS calls of a cycle share one retry_timeout: a refresh hanging after a slow read is abandoned', async () => {
      await leaderAtT0ThenWait(3_000);
      // The read takes 9.95 s of the 10 s budget; the lock refresh then hangs (etcd frozen, no answer ever).
      dcs.hooks.set('getCluster', () => {
        clock.t += 9_950;
      });
      dcs.hooks.set('updateLeader', () => new Promise<void>(() => undefined));
      const started = performance.now();
      const r = await loop.runCycle();
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(r).toEqual({
        message: 'demoting self because DCS is not accessible and I was a leader',
        dcsOk: false,
      });
      expect(logs.some((l) => l.includes("updateLeader abandoned: this cycle's DCS calls took"))).toBe(true);
      await loop.waitForTask();
      expect(node.calls).toContain('stop fast');
    }, 5_000);

    it('once the DCS is back with our lock still there, the read-only former primary promotes again', async () => {
      await leaderAtT0ThenWait(3_000);
      hangThenFail('getCluster', 10_000);
      await loop.runCycle();
      await loop.waitForTask();
      expect(node.started).toEqual([{ as: 'replica', target: undefined }]);
      // PostgreSQL now runs read-only; etcd comes back (restarted with its leases): the leader key is still ours.
      node.postgres = REPLICA;
      dcs.hooks.delete('getCluster');
      store.reachable = true;
      clock.t += 2_000;
      node.calls.length = 0;
      const back = await loop.runCycle();
      expect(back).toEqual({
        message: 'promoted self to leader because I had the session lock',
        dcsOk: true,
      });
      expect(loop.isLeader()).toBe(true);
      await loop.waitForTask();
      expect(node.calls).toContain('promote');
    });

    it('once the DCS is back and another member holds the lock, the former primary follows it', async () => {
      await leaderAtT0ThenWait(3_000);
      hangThenFail('getCluster', 10_000);
      await loop.runCycle();
      await loop.waitForTask();
      node.postgres = REPLICA;
      dcs.hooks.delete('getCluster');
      store.reachable = true;
      store.put(`${PREFIX}leader`, 'pg1');
      store.put(`${PREFIX}members/pg1`, memberJson('pg1', 5441, { role: 'master' }));
      clock.t += 2_000;
      const back = await loop.runCycle();
      expect(back).toEqual({
        message: `no action. I am (${ME}), a secondary, and following a leader (pg1)`,
        dcsOk: true,
      });
      expect(node.followed.at(-1)).toEqual({ name: 'pg1', host: '127.0.0.1', port: 5441 });
      expect(loop.isLeader()).toBe(false);
    });
  });

  describe('the lock is confirmed right before pg_ctl promote', () => {
    async function promoteWhile(duringPrePromote: () => void): Promise<void> {
      seedCluster(ME, { pg1: memberJson('pg1', 5441), [ME]: memberJson(ME, 5442) });
      node.prePromote = async () => duringPrePromote();
      expect((await loop.runCycle()).message).toBe('promoted self to leader because I had the session lock');
      await loop.waitForTask();
    }

    it('promotes when the lock is still ours after pre_promote', async () => {
      await promoteWhile(() => {
        clock.t += 20_000;
      });
      expect(node.calls).toContain('pg_ctl promote');
      expect(loop.leaderLockUntil()).toBe(clock.t + 30_000);
    });

    it('does not promote when another member took the lock while pre_promote ran', async () => {
      await promoteWhile(() => {
        clock.t += 31_000;
        store.put(`${PREFIX}leader`, 'pg1');
      });
      expect(node.calls).toContain('promote');
      expect(node.calls).not.toContain('pg_ctl promote');
      expect(loop.isLeader()).toBe(false);
      expect(logs).toContain('WARNING: lost the leader lock before pg_ctl promote: not promoting');
    });

    it('does not promote when the DCS cannot confirm the lock', async () => {
      await promoteWhile(() => {
        store.reachable = false;
      });
      expect(node.calls).not.toContain('pg_ctl promote');
      expect(
        logs.some((l) => l.startsWith('WARNING: cannot confirm the leader lock before pg_ctl promote')),
      ).toBe(true);
    });
  });

  it('an async action (Promote) does not block the next cycle from refreshing the lock', async () => {
    seedCluster(ME, { pg1: memberJson('pg1', 5441), [ME]: memberJson(ME, 5442) });
    node.promoteResult = promotion.promise;

    const first = await loop.runCycle();
    expect(first.message).toBe('promoted self to leader because I had the session lock');
    expect(loop.pendingAsync).toMatchObject({ kind: 'promote', description: 'promote', startedAt: T0 });
    // The member key published at the end of the cycle says a promote is running.
    expect(node.memberContexts.at(-1)).toEqual({ isLeader: true, pendingAsync: 'promote' });

    clock.t += 10_000;
    const second = await loop.runCycle();
    expect(second).toEqual({ message: 'updated leader lock during promote', dcsOk: true });
    expect(loop.leaderLockUntil()).toBe(clock.t + 30_000);
    expect(loop.pendingAsync?.kind).toBe('promote');
    expect(node.calls.filter((c) => c === 'promote')).toHaveLength(1);

    promotion.resolve(true);
    await loop.waitForTask();
    expect(loop.pendingAsync).toBeUndefined();
  });

  it('a crashed primary holding the lock starts as primary; a failed start is marked demoted, then the lock goes', async () => {
    seedCluster(ME, { pg1: memberJson('pg1', 5441), [ME]: memberJson(ME, 5442, { role: 'master' }) });
    node.postgres = {
      ...REPLICA,
      state: 'crashed',
      isRunning: false,
      wasPrimary: true,
      recoveryConfExists: false,
      controlState: 'in production',
    };
    expect((await loop.runCycle()).message).toBe('starting primary after failure');
    await loop.waitForTask();
    expect(node.started.at(-1)).toEqual({ as: 'primary', target: undefined });
    expect(loop.haMemory.recovering).toBe(true);

    node.postgres = { ...node.postgres, state: 'start failed', controlState: 'shut down' };
    expect((await loop.runCycle()).message).toBe(
      'removed leader key after trying and failing to start postgres',
    );
    expect(node.calls.filter((c) => c === 'markDemoted')).toHaveLength(1);
    expect(store.get(`${PREFIX}leader`)).toBeUndefined();
  });

  describe('after a demotion PostgreSQL starts at once as a replica of the lock holder (ha.py demote)', () => {
    const rewinding = (): void => {
      (node as { self: SelfInfo }).self = { ...SELF, canRewind: true };
    };

    it('a primary without the lock (immediate-nolock): stopped, then started following the leader, pg_rewind usable or not', async () => {
      rewinding();
      seedCluster('pg1', { pg1: memberJson('pg1', 5441, { role: 'primary' }), [ME]: memberJson(ME, 5442) });
      node.postgres = PRIMARY;
      expect((await loop.runCycle()).message).toBe(
        'demoting self because I do not have the lock and I was a leader',
      );
      await loop.waitForTask();
      expect(node.calls).toContain('stop immediate');
      // Started with primary_conninfo: a diverged timeline is found by the running replica's check afterwards.
      expect(node.started).toEqual([
        { as: 'replica', target: { name: 'pg1', host: '127.0.0.1', port: 5441 } },
      ]);
    });

    it('a crashed primary with primary_start_timeout 0 releases the lock, waits, then follows the new leader', async () => {
      rewinding();
      seedCluster(ME, {
        pg1: memberJson('pg1', 5441, { api_url: 'http://127.0.0.1:8008/patroni' }),
        [ME]: memberJson(ME, 5442, { role: 'primary' }),
      });
      store.put(`${PREFIX}config`, '{"ttl":30,"loop_wait":10,"retry_timeout":10,"primary_start_timeout":0}');
      node.postgres = {
        ...REPLICA,
        state: 'crashed',
        isRunning: false,
        wasPrimary: true,
        recoveryConfExists: false,
        controlState: 'in production',
      };
      peers = new Map([
        [
          'pg1',
          {
            reachable: true,
            isPrimary: false,
            walPosition: 50331800n,
            timeline: 1,
            nofailover: false,
            failoverPriority: 1,
            watchdogFailed: false,
          },
        ],
      ]);
      // pg1 takes the released lock while the demotion waits for it.
      const sleeps: number[] = [];
      clock.sleep = async (ms: number): Promise<void> => {
        sleeps.push(ms);
        if (ms === DEMOTE_LOCK_WAIT_MS) store.put(`${PREFIX}leader`, 'pg1');
      };
      expect((await loop.runCycle()).message).toBe('stopped PostgreSQL to fail over after a crash');
      expect(logs).toContain('INFO: Primary crashed. Failing over.');
      await loop.waitForTask();
      expect(sleeps).toContain(DEMOTE_LOCK_WAIT_MS);
      expect(node.calls).not.toContain('crashRecovery');
      expect(node.started).toEqual([
        { as: 'replica', target: { name: 'pg1', host: '127.0.0.1', port: 5441 } },
      ]);
    });
  });

  it('a successful pg_rewind is remembered until PostgreSQL runs again (a paused cluster starts the rewound member)', async () => {
    seedCluster('pg1', { pg1: memberJson('pg1', 5441, { role: 'primary' }), [ME]: memberJson(ME, 5442) });
    node.postgres = {
      ...REPLICA,
      state: 'stopped',
      isRunning: false,
      controlState: 'shut down',
      diverged: { leader: 'pg1', remedy: 'rewind' },
    };
    expect((await loop.runCycle()).message).toBe('running pg_rewind from pg1');
    await loop.waitForTask();
    expect(node.calls).toContain('rewind');
    expect(loop.haMemory.rewindSucceeded).toBe(true);
    store.put(`${PREFIX}config`, '{"ttl":30,"loop_wait":10,"retry_timeout":10,"pause":true}');
    node.postgres = { ...node.postgres, diverged: undefined, controlState: 'shut down in recovery' };
    expect((await loop.runCycle()).message).toBe('starting as a secondary');
    await loop.waitForTask();
    node.postgres = REPLICA;
    await loop.runCycle();
    expect(loop.haMemory.rewindSucceeded).toBe(false);
  });

  it('publishes the member key after a cycle whose DCS access succeeded, not after one that failed', async () => {
    seedCluster('pg1', {
      pg1: memberJson('pg1', 5441, { role: 'master' }),
    });
    const first = await loop.runCycle();
    expect(first).toEqual({
      message: `no action. I am (${ME}), a secondary, and following a leader (pg1)`,
      dcsOk: true,
    });
    const key = store.get(`${PREFIX}members/${ME}`);
    expect(key?.value).toBe(await node.memberValue({ isLeader: false }));
    expect(key?.session).toBeDefined();
    expect(node.memberContexts[0]).toEqual({ isLeader: false });

    const published = node.memberContexts.length;
    const rev = revision(`members/${ME}`);
    store.reachable = false;
    clock.t += 10_000;
    expect(await loop.runCycle()).toEqual({ message: 'DCS is not accessible', dcsOk: false });
    expect(node.memberContexts).toHaveLength(published);
    store.reachable = true;
    expect(revision(`members/${ME}`)).toBe(rev);
    expect(fatal).toEqual([]);
  });

  it('applies the configuration after each cycle, before the member key is published; a failure is logged', async () => {
    seedCluster('pg1', { pg1: memberJson('pg1', 5441, { role: 'master' }) });
    const order: string[] = [];
    let fail = false;
    const withApply = Object.assign(node, {
      applyConfiguration: async (): Promise<void> => {
        order.push(`apply after ${node.memberContexts.length} member keys`);
        if (fail) throw new Error('pg_settings query failed');
      },
    });
    expect(withApply.applyConfiguration).toBeDefined();
    // The first cycle publishes the missing member key before deciding, and again at its end.
    await loop.runCycle();
    expect(order).toEqual(['apply after 1 member keys']);
    expect(node.memberContexts).toHaveLength(2);
    fail = true;
    clock.t += 10_000;
    const r = await loop.runCycle();
    expect(r.dcsOk).toBe(true);
    expect(order).toEqual(['apply after 1 member keys', 'apply after 2 member keys']);
    expect(node.memberContexts).toHaveLength(3);
    expect(logs).toContain(
      'WARNING: applying the configuration to PostgreSQL failed: pg_settings query failed',
    );
  });
});

describe('HaLoop and synchronous mode (the sync port)', () => {
  function syncLoop(): { loop: HaLoop; calls: string[] } {
    const calls: string[] = [];
    const l = new HaLoop({
      dcs,
      node,
      probe,
      clock,
      sync: {
        process: (c, config) => {
          calls.push(`process(leader=${c.leader?.name ?? '-'}, mode=${config.synchronousMode})`);
          return Promise.resolve();
        },
        setStandbyNames: (names) => {
          calls.push(`ssn(${names.join(',')})`);
          return Promise.resolve();
        },
      },
      log: {
        info: () => undefined,
        warning: (t) => logs.push(`WARNING: ${t}`),
        error: (t) => logs.push(`ERROR: ${t}`),
      },
      onFatal: (code, reason) => fatal.push({ code, reason }),
    });
    return { loop: l, calls };
  }

  it('the leader hands every cycle to the sync port, with the mode from the DCS config', async () => {
    seedCluster(ME, { pg1: memberJson('pg1', 5441), [ME]: memberJson(ME, 5442, { role: 'master' }) });
    store.put(`${PREFIX}config`, '{"ttl":30,"loop_wait":10,"retry_timeout":10,"synchronous_mode":true}');
    node.postgres = PRIMARY;
    const { loop: l, calls } = syncLoop();
    expect((await l.runCycle()).message).toBe(`no action. I am (${ME}), the leader with the lock`);
    expect(calls).toEqual([`process(leader=${ME}, mode=on)`]);
    expect(logs.filter((t) => t.includes('not implemented'))).toEqual([]);
  });

  it('a race winner in strict mode claims /sync and sets synchronous_standby_names=* before promoting', async () => {
    seedCluster(undefined, { pg1: memberJson('pg1', 5441), [ME]: memberJson(ME, 5442) });
    store.put(
      `${PREFIX}config`,
      '{"ttl":30,"loop_wait":10,"retry_timeout":10,"synchronous_mode":true,"synchronous_mode_strict":true}',
    );
    store.put(`${PREFIX}sync`, '{"leader":"pg1","sync_standby":"pg2"}');
    const { loop: l, calls } = syncLoop();
    expect((await l.runCycle()).message).toBe('promoted self to leader by acquiring session lock');
    expect(store.get(`${PREFIX}sync`)?.value).toBe(`{"leader":"${ME}","quorum":0,"sync_standby":null}`);
    expect(calls).toEqual(['ssn(*)']);
    await l.waitForTask();
    expect(node.calls).toContain('promote');
  });
});

describe('refused settings in the DCS config key (no effect, logged: src/config/config-check.ts)', () => {
  it('quorum is quorum commit; a refused setting (primary_stop_timeout) has no effect, its refusal logged once', async () => {
    seedCluster('pg1', { pg1: memberJson('pg1', 5441), [ME]: memberJson(ME, 5442) });
    store.put(`${PREFIX}config`, '{"ttl":30,"synchronous_mode":"quorum","primary_stop_timeout":5}');
    await loop.runCycle();
    await loop.runCycle();
    expect(loop.haConfig.synchronousMode).toBe('quorum');
    expect(loop.haConfig.paused).toBe(false);
    const refusals = logs.filter((l) => l.startsWith('ERROR: dynamic configuration (DCS config key): '));
    expect(refusals.map((l) => l.split(': ')[2])).toEqual(['primary_stop_timeout']);
    expect(node.calls).not.toContain('promote');
  });
});

describe('a standby cluster (standby_cluster in the DCS config key)', () => {
  const STANDBY_CONFIG =
    '{"ttl":30,"loop_wait":10,"retry_timeout":10,"standby_cluster":{"host":"10.0.0.9","port":5433,"primary_slot_name":"pm_1"}}';

  it('the lock holder follows the remote primary as the standby leader and is not promoted', async () => {
    seedCluster(ME, { [ME]: memberJson(ME, 5442), pg3: memberJson('pg3', 5443) });
    store.put(`${PREFIX}config`, STANDBY_CONFIG);
    await loop.runCycle();
    expect(node.followed).toEqual([{ name: 'remote_member', host: '10.0.0.9', port: 5433, remote: true }]);
    expect(node.followedAsStandbyLeader).toEqual([true]);
    expect(node.calls).not.toContain('promote');
    expect(store.get(`${PREFIX}leader`)?.value).toBe(ME);
  });

  it('standby_cluster added under a lone running primary: stop fast, keep the lock, start as the standby leader', async () => {
    node.postgres = PRIMARY;
    node.shutdownAt = 50331900n;
    seedCluster(ME, { [ME]: memberJson(ME, 5442, { role: 'primary' }) });
    store.put(`${PREFIX}config`, STANDBY_CONFIG);
    await loop.runCycle();
    await loop.waitForTask();
    expect(node.calls).toContain('stop fast (on_shutdown)');
    expect(logs).toContain('WARNING: manual failover: members list is empty');
    expect(node.started).toEqual([
      { as: 'standby_leader', target: { name: 'remote_member', host: '10.0.0.9', port: 5433, remote: true } },
    ]);
    expect(store.get(`${PREFIX}leader`)?.value).toBe(ME);
    expect(logs).toContain('INFO: cannot be a real primary in standby cluster');
  });

  const REMOTE = { name: 'remote_member', host: '10.0.0.9', port: 5433, remote: true };
  const replicaPeer = (walPosition: bigint): PeerStatus => ({
    reachable: true,
    isPrimary: false,
    walPosition,
    timeline: 1,
    nofailover: false,
    failoverPriority: 1,
    watchdogFailed: false,
  });
  const demoteCluster = async (o: {
    readonly peerWal: bigint;
    readonly archiving?: boolean;
    readonly takeLock?: boolean;
  }): Promise<number[]> => {
    node.postgres = PRIMARY;
    node.shutdownAt = 50331900n;
    node.archiving = o.archiving === true;
    seedCluster(ME, {
      [ME]: memberJson(ME, 5442, { role: 'primary', api_url: 'http://127.0.0.1:8009/patroni' }),
      pg3: memberJson('pg3', 5443, { api_url: 'http://127.0.0.1:8003/patroni' }),
    });
    store.put(`${PREFIX}config`, STANDBY_CONFIG);
    peers = new Map([['pg3', replicaPeer(o.peerWal)]]);
    const sleeps: number[] = [];
    clock.sleep = async (ms: number): Promise<void> => {
      sleeps.push(ms);
      if (ms === DEMOTE_LOCK_WAIT_MS && o.takeLock === true) store.put(`${PREFIX}leader`, 'pg3');
    };
    expect((await loop.runCycle()).message).toBe('cannot be a real primary in standby cluster');
    await loop.waitForTask();
    return sleeps;
  };

  it('demote-cluster: a replica has the shutdown checkpoint, the lock goes to it and we follow it', async () => {
    const sleeps = await demoteCluster({ peerWal: 50331900n, takeLock: true });
    expect(node.calls).toContain('stop fast (on_shutdown)');
    expect(logs).toContain('INFO: Leader key released: a member has received the shutdown checkpoint');
    expect(store.get(`${PREFIX}status`)?.value).toBe('{"optime":50331900}');
    expect(sleeps).toContain(DEMOTE_LOCK_WAIT_MS);
    expect(node.started).toEqual([{ as: 'replica', target: { name: 'pg3', host: '127.0.0.1', port: 5443 } }]);
    expect(loop.isLeader()).toBe(false);
  });

  it('demote-cluster: lock released and not taken yet: start as a replica of the remote primary', async () => {
    await demoteCluster({ peerWal: 50331900n });
    expect(store.get(`${PREFIX}leader`)).toBeUndefined();
    expect(node.started).toEqual([{ as: 'replica', target: REMOTE }]);
  });

  it('demote-cluster: no replica has the shutdown checkpoint: keep the lock, start as the standby leader', async () => {
    const sleeps = await demoteCluster({ peerWal: 50331899n, takeLock: true });
    expect(logs).toContain('INFO: Member pg3 exceeds maximum replication lag');
    expect(sleeps).not.toContain(DEMOTE_LOCK_WAIT_MS);
    expect(store.get(`${PREFIX}leader`)?.value).toBe(ME);
    expect(node.started).toEqual([{ as: 'standby_leader', target: REMOTE }]);
  });

  it('a standby leader diverged from the remote primary runs pg_rewind from the remote (host/port of standby_cluster)', async () => {
    seedCluster(ME, { [ME]: memberJson(ME, 5442), pg3: memberJson('pg3', 5443) });
    store.put(`${PREFIX}config`, STANDBY_CONFIG);
    node.postgres = {
      ...REPLICA,
      isStandbyLeader: true,
      diverged: { leader: 'remote_member', remedy: 'rewind' },
    };
    expect((await loop.runCycle()).message).toBe('running pg_rewind from remote_member');
    await loop.waitForTask();
    expect(node.rewoundFrom).toEqual([REMOTE]);
    expect(loop.haMemory.rewindSucceeded).toBe(true);
    expect(store.get(`${PREFIX}leader`)?.value).toBe(ME);
  });

  it('demote-cluster with archiving on: the lock is kept and the shutdown checkpoint archived', async () => {
    await demoteCluster({ peerWal: 50331900n, archiving: true, takeLock: true });
    expect(node.calls).toContain('stop fast');
    expect(node.calls).toContain('archive shutdown checkpoint');
    expect(store.get(`${PREFIX}leader`)?.value).toBe(ME);
    expect(node.started).toEqual([{ as: 'standby_leader', target: REMOTE }]);
  });
});

describe('HaLoop and the watchdog port (src/ha/watchdog.ts decides, the port acts)', () => {
  class FakeWatchdog implements WatchdogPort {
    readonly calls: string[] = [];
    running = false;
    activates = true;
    view(): WatchdogView {
      return { mode: 'required', running: this.running, deviceUsable: true, safetyMargin: 5 };
    }
    async activate(t: WatchdogTiming): Promise<boolean> {
      this.calls.push(`activate ${t.timeout}`);
      this.running = this.activates;
      return this.activates;
    }
    async keepalive(t: WatchdogTiming, lockLeftMs: number | undefined): Promise<void> {
      this.calls.push(`keepalive ${t.timeout} lock left ${lockLeftMs ?? '-'}`);
    }
    async disable(): Promise<void> {
      this.calls.push('disable');
      this.running = false;
    }
  }

  function watchdogLoop(wd: FakeWatchdog): HaLoop {
    return new HaLoop({
      dcs,
      node,
      probe,
      clock,
      sync: { process: () => Promise.resolve(), setStandbyNames: () => Promise.resolve() },
      log: {
        info: (t) => logs.push(`INFO: ${t}`),
        warning: (t) => logs.push(`WARNING: ${t}`),
        error: (t) => logs.push(`ERROR: ${t}`),
      },
      onFatal: (code, reason) => fatal.push({ code, reason }),
      watchdog: wd,
    });
  }

  it('a leader activates it once, then pings after each refresh with the lock time left; pause disarms it', async () => {
    seedCluster(ME, { pg1: memberJson('pg1', 5441), [ME]: memberJson(ME, 5442, { role: 'master' }) });
    node.postgres = PRIMARY;
    const wd = new FakeWatchdog();
    const l = watchdogLoop(wd);
    await l.runCycle();
    await l.runCycle();
    expect(wd.calls).toEqual(['activate 25', 'keepalive 25 lock left 30000']);
    expect(l.watchdogFailed).toBe(false);
    store.put(`${PREFIX}config`, '{"ttl":30,"loop_wait":10,"retry_timeout":10,"pause":true}');
    await l.runCycle();
    expect(wd.calls.at(-1)).toBe('disable');
  });

  it('a leader whose required watchdog cannot be activated demotes and releases the lock', async () => {
    seedCluster(ME, { pg1: memberJson('pg1', 5441), [ME]: memberJson(ME, 5442, { role: 'master' }) });
    node.postgres = PRIMARY;
    const wd = new FakeWatchdog();
    wd.activates = false;
    const l = watchdogLoop(wd);
    expect((await l.runCycle()).message).toBe('Demoting self because watchdog could not be activated');
    expect(node.calls).toContain('stop immediate');
    expect(store.get(`${PREFIX}leader`)).toBeUndefined();
  });
});
