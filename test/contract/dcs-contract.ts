/**
 * The one contract every DCS adapter must satisfy (docs/architecture.md, "The DCS"), run against memory, real etcd
 * and real ZooKeeper.
 * Each test uses its own scope so adapters can share one server.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Dcs, DcsOptions } from '../../src/dcs/dcs.js';
import { DcsError } from '../../src/dcs/dcs.js';

export interface ContractTarget {
  /** A client of the shared server. */
  create(options: DcsOptions): Promise<Dcs> | Dcs;
  /** A client whose server cannot be reached (DcsError expected). */
  createUnreachable(options: DcsOptions): Promise<Dcs> | Dcs;
}

let scopeCounter = 0;

export function runDcsContract(label: string, target: () => ContractTarget): void {
  describe(`DCS contract: ${label}`, () => {
    const open: Dcs[] = [];
    let scope = '';

    const client = async (name?: string, extra: Partial<DcsOptions> = {}): Promise<Dcs> => {
      const dcs = await target().create({
        namespace: '/service',
        scope,
        name,
        ttl: 10,
        retryTimeout: 5,
        ctl: name === undefined,
        ...extra,
      });
      open.push(dcs);
      return dcs;
    };

    afterEach(async () => {
      await Promise.all(open.splice(0).map((d) => d.close().catch(() => undefined)));
    });

    const fresh = (): void => {
      scope = `contract${process.pid}x${++scopeCounter}`;
    };

    it('reads an empty cluster', async () => {
      fresh();
      const ctl = await client();
      const c = await ctl.getCluster();
      expect(c.scope).toBe(scope);
      expect(c.initialize).toBeUndefined();
      expect(c.leader).toBeUndefined();
      expect(c.members).toEqual([]);
      expect(c.config).toBeUndefined();
      expect(c.status.optime).toBe(0n);
      expect(c.sync.leader).toBeUndefined();
    });

    it('runs the initialize race: create-if-absent, overwrite, cancel', async () => {
      fresh();
      const a = await client('a');
      const b = await client('b');
      expect(await a.initialize(true, '')).toBe(true);
      expect(await b.initialize(true, '')).toBe(false);
      expect((await b.getCluster()).initialize).toBe('');
      expect(await a.initialize(false, '7710821883631976027')).toBe(true);
      expect((await b.getCluster()).initialize).toBe('7710821883631976027');
      expect(await a.cancelInitialization()).toBe(true);
      expect((await b.getCluster()).initialize).toBeUndefined();
    });

    it('grants the leader lock to one member and releases it only for the holder', async () => {
      fresh();
      const a = await client('a');
      const b = await client('b');
      expect(await a.attemptToAcquireLeader()).toBe(true);
      expect(await b.attemptToAcquireLeader()).toBe(false);
      let c = await b.getCluster();
      expect(c.leader?.name).toBe('a');
      expect(c.leader?.session).toBeTruthy();
      expect(await a.updateLeader(c)).toBe(true);
      expect(await b.updateLeader(c)).toBe(false);
      expect(await b.deleteLeader(c)).toBe(false);
      expect((await b.getCluster()).leader?.name).toBe('a');
      c = await a.getCluster();
      expect(await a.deleteLeader(c)).toBe(true);
      expect((await b.getCluster()).leader).toBeUndefined();
      expect(await b.attemptToAcquireLeader()).toBe(true);
      expect((await a.getCluster()).leader?.name).toBe('b');
    });

    it('takeLeader writes the lock unconditionally for the caller', async () => {
      fresh();
      const a = await client('a');
      expect(await a.takeLeader()).toBe(true);
      const c = await a.getCluster();
      expect(c.leader?.name).toBe('a');
      expect(await a.updateLeader(c)).toBe(true);
    });

    it('publishes member keys bound to the owner and links the leader to its member', async () => {
      fresh();
      const a = await client('a');
      const b = await client('b');
      const data =
        '{"conn_url":"postgres://127.0.0.1:5432/postgres","api_url":"http://127.0.0.1:8008/patroni","state":"running","role":"master","version":"3.0.2","xlog_location":67108960,"timeline":1}';
      expect(await a.touchMember(data)).toBe(true);
      expect(await b.touchMember(data.replace('5432', '5433').replace('master', 'replica'))).toBe(true);
      expect(await a.attemptToAcquireLeader()).toBe(true);
      const c = await a.getCluster();
      expect(c.members.map((m) => m.name)).toEqual(['a', 'b']);
      const ma = c.members[0]!;
      expect(ma.data.role).toBe('master');
      expect(ma.data.xlogLocation).toBe(67108960n);
      expect(ma.session).toBeTruthy();
      expect(ma.session).toBe(c.leader?.session);
      expect(c.leader?.member?.data.connUrl).toBe('postgres://127.0.0.1:5432/postgres');
      // Unchanged data is not rewritten.
      expect(await a.touchMember(data)).toBe(true);
      expect((await a.getCluster()).members[0]!.version).toBe(ma.version);
      expect(await a.touchMember(data.replace('running', 'stopped'))).toBe(true);
      const after = (await a.getCluster()).members[0]!;
      expect(after.data.state).toBe('stopped');
      expect(after.version).not.toBe(ma.version);
    });

    it('writes config with compare-and-set on the version read', async () => {
      fresh();
      const ctl = await client();
      expect(await ctl.setConfigValue('{"ttl":30,"loop_wait":10}')).toBe(true);
      const c1 = await ctl.getCluster();
      expect(c1.config?.data).toEqual({ ttl: 30, loop_wait: 10 });
      const v1 = c1.config!.version;
      expect(await ctl.setConfigValue('{"ttl":20}', v1)).toBe(true);
      expect(await ctl.setConfigValue('{"ttl":40}', v1)).toBe(false);
      const c2 = await ctl.getCluster();
      expect(c2.config?.data).toEqual({ ttl: 20 });
      expect(c2.config!.version).not.toBe(v1);
    });

    it('writes failover and sync with compare-and-set, and deletes sync', async () => {
      fresh();
      const ctl = await client();
      expect(await ctl.setFailoverValue('{"leader":"a","member":"b"}')).toBe(true);
      const f = (await ctl.getCluster()).failover!;
      expect(f.leader).toBe('a');
      expect(f.member).toBe('b');
      expect(await ctl.setFailoverValue('{}', f.version)).toBe(true);
      expect(await ctl.setFailoverValue('{"member":"c"}', f.version)).toBe(false);
      const cleared = (await ctl.getCluster()).failover!;
      expect(cleared.leader).toBeUndefined();
      expect(cleared.member).toBeUndefined();

      const v = await ctl.setSyncStateValue('{"leader":"a","sync_standby":"b"}');
      expect(typeof v).toBe('string');
      const s = (await ctl.getCluster()).sync;
      expect(s.leader).toBe('a');
      expect(s.members).toEqual(['b']);
      expect(s.version).toBe(v);
      expect(await ctl.setSyncStateValue('{"leader":"a","sync_standby":null}', 'x1')).toBe(false);
      expect(await ctl.deleteSyncState(s.version)).toBe(true);
      expect((await ctl.getCluster()).sync.leader).toBeUndefined();
    });

    it('replaces failover only if it still has the version read (absent: only if still absent)', async () => {
      fresh();
      const ctl = await client();
      // Two switchover requests validated against the same (absent) key: the second must not swap its candidate in.
      expect(await ctl.replaceFailoverValue('{"leader":"a","member":"b"}', undefined)).toBe(true);
      expect(await ctl.replaceFailoverValue('{"leader":"a","member":"c"}', undefined)).toBe(false);
      const f = (await ctl.getCluster()).failover!;
      expect(f.member).toBe('b');
      // Validated against that version: the first writer wins, the second one loses.
      expect(await ctl.replaceFailoverValue('{"leader":"a","member":"d"}', f.version)).toBe(true);
      expect(await ctl.replaceFailoverValue('{"leader":"a","member":"e"}', f.version)).toBe(false);
      expect((await ctl.getCluster()).failover?.member).toBe('d');
    });

    it('writes history, status and failsafe', async () => {
      fresh();
      const a = await client('a');
      expect(
        await a.setHistoryValue(
          '[[1,67554736,"no recovery target specified","2026-11-22T02:53:51.312726+00:00","pg3"]]',
        ),
      ).toBe(true);
      expect(await a.writeStatus('{"optime":67108960}')).toBe(true);
      expect(await a.writeFailsafe('{"a":"http://127.0.0.1:8008/patroni"}')).toBe(true);
      const c = await a.getCluster();
      expect(c.history?.lines).toEqual([
        {
          timeline: 1,
          lsn: 67554736n,
          reason: 'no recovery target specified',
          timestamp: '2026-11-22T02:53:51.312726+00:00',
          newLeader: 'pg3',
        },
      ]);
      expect(c.status.optime).toBe(67108960n);
      expect(c.failsafe).toEqual({ a: 'http://127.0.0.1:8008/patroni' });
    });

    it('deletes the whole cluster and nothing outside it', async () => {
      fresh();
      const other = scope + 'other';
      const a = await client('a');
      const b = await client('b', { scope: other });
      await a.setConfigValue('{}');
      await a.touchMember('{}');
      await b.setConfigValue('{"x":1}');
      expect(await a.deleteCluster()).toBe(true);
      const c = await a.getCluster();
      expect(c.config).toBeUndefined();
      expect(c.members).toEqual([]);
      expect((await b.getCluster()).config?.data).toEqual({ x: 1 });
      await b.deleteCluster();
    });

    it('shows another member’s write to the very next read, also to a reader at rest', async () => {
      fresh();
      const a = await client('a');
      const b = await client('b');
      const replica = '{"state":"running","role":"replica"}';
      expect(await a.touchMember(replica)).toBe(true);
      expect(await b.touchMember(replica)).toBe(true);
      await b.getCluster();
      // b is idle as between two HA cycles: its lease fresh, its cache current, nothing to wake it.
      expect(await b.watch(300)).toBe(false);
      for (let i = 1; i <= 10; i++) {
        expect(await a.setConfigValue(`{"round":${i}}`)).toBe(true);
        expect((await b.getCluster()).config?.data).toEqual({ round: i });
        expect(await a.setFailoverValue(`{"leader":"a","member":"m${i}"}`)).toBe(true);
        expect((await b.getCluster()).failover?.member).toBe(`m${i}`);
      }
      // A member joins (other members' data is only as fresh as the last read on ZooKeeper, as in Patroni; their
      // comings and goings are seen at once).
      const c = await client('c');
      expect(await c.touchMember(replica)).toBe(true);
      expect((await b.getCluster()).members.map((m) => m.name)).toEqual(['a', 'b', 'c']);
      expect(await a.attemptToAcquireLeader()).toBe(true);
      expect((await b.getCluster()).leader?.name).toBe('a');
      expect(await a.deleteLeader(await a.getCluster())).toBe(true);
      expect((await b.getCluster()).leader).toBeUndefined();
    });

    it('wakes a watcher when the leader key changes, and times out when nothing does', async () => {
      fresh();
      const a = await client('a');
      const b = await client('b');
      await b.getCluster();
      const quiet = Date.now();
      expect(await b.watch(700)).toBe(false);
      expect(Date.now() - quiet).toBeGreaterThanOrEqual(600);
      const woken = b.watch(10_000);
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      expect(await a.attemptToAcquireLeader()).toBe(true);
      expect(await woken).toBe(true);
      expect(Date.now() - t0).toBeLessThan(3000);
    });

    it('wakes at once for a change made after the last read but before the watch began', async () => {
      fresh();
      const a = await client('a');
      const b = await client('b');
      await b.getCluster();
      expect(await b.watch(300)).toBe(false);
      // b is between watches (doing its cycle's work) when the lock is taken.
      expect(await a.attemptToAcquireLeader()).toBe(true);
      const t0 = Date.now();
      expect(await b.watch(5_000)).toBe(true);
      expect(Date.now() - t0).toBeLessThan(1_500);
      // A read that has seen the change consumes it: the next watch is quiet again.
      expect((await b.getCluster()).leader?.name).toBe('a');
      expect(await b.watch(500)).toBe(false);
    });

    it('a fresh read (REST) does not consume the wake-up the watcher has not seen yet', async () => {
      fresh();
      const a = await client('a');
      const b = await client('b');
      await b.getCluster();
      expect(await b.watch(300)).toBe(false);
      expect(await a.attemptToAcquireLeader()).toBe(true);
      // GET /cluster reads the DCS through b's client between b's cycles...
      expect((await b.getCluster({ fresh: true })).leader?.name).toBe('a');
      // ...and b's loop is still woken for the change its own read has not seen.
      const t0 = Date.now();
      expect(await b.watch(5_000)).toBe(true);
      expect(Date.now() - t0).toBeLessThan(1_500);
    });

    it('tells how long the lock lives and when its lease was last proven alive (monotonic)', async () => {
      fresh();
      const a = await client('a', { ttl: 10 });
      const before = performance.now();
      expect(await a.attemptToAcquireLeader()).toBe(true);
      const after = performance.now();
      expect(a.lockLifetime()).toBeGreaterThan(0);
      expect(a.lockLifetime()).toBeLessThanOrEqual(10);
      const refreshed = a.leaseRefreshedAt();
      expect(refreshed).toBeDefined();
      expect(refreshed!).toBeLessThanOrEqual(after);
      // Acquiring refreshed the lease (or opened the session) within this test, not at some earlier moment.
      expect(refreshed!).toBeGreaterThanOrEqual(before - 1);
      const ctl = await client();
      expect(ctl.leaseRefreshedAt()).toBeUndefined();
    });

    it('lets the lock expire after its owner goes away, within ttl', async () => {
      fresh();
      const a = await client('a', { ttl: 3 });
      const b = await client('b', { ttl: 3 });
      expect(await a.attemptToAcquireLeader()).toBe(true);
      await a.touchMember('{"state":"running"}');
      await a.close();
      const t0 = Date.now();
      let c = await b.getCluster();
      while (c.leader && Date.now() - t0 < 10_000) {
        await new Promise((r) => setTimeout(r, 200));
        c = await b.getCluster();
      }
      expect(c.leader).toBeUndefined();
      expect(c.members).toEqual([]);
      expect(Date.now() - t0).toBeLessThan(3000 + 4000);
      expect(await b.attemptToAcquireLeader()).toBe(true);
    });

    it('keeps the lock across a ttl change', async () => {
      fresh();
      const a = await client('a', { ttl: 10 });
      expect(await a.attemptToAcquireLeader()).toBe(true);
      a.setTimings(12, 5);
      expect(await a.updateLeader(await a.getCluster())).toBe(true);
      expect((await a.getCluster()).leader?.name).toBe('a');
    });

    it('reads every cluster of the namespace at once, in scope order, each as getCluster reads it', async () => {
      fresh();
      const ns = `/${scope}`;
      const at = (cluster: string, name?: string, namespace = ns): Promise<Dcs> =>
        client(name, { namespace, scope: cluster });
      const member = (port: number, role: string): string =>
        `{"conn_url":"postgres://127.0.0.1:${port}/postgres","api_url":"http://127.0.0.1:${port + 3000}/patroni","state":"running","role":"${role}","version":"4.1.4","xlog_location":67108960,"timeline":1}`;
      // `b`: a running cluster; `a`: a member only; `ab` (`a` is a prefix of it): config only.
      const b1 = await at('b', 'b1');
      const b2 = await at('b', 'b2');
      expect(await b1.initialize(true, '7710821883631976027')).toBe(true);
      expect(await b1.touchMember(member(5432, 'primary'))).toBe(true);
      expect(await b2.touchMember(member(5433, 'replica'))).toBe(true);
      expect(await b1.attemptToAcquireLeader()).toBe(true);
      expect(await b1.setConfigValue('{"ttl":30,"loop_wait":10}')).toBe(true);
      expect(await b1.writeStatus('{"optime":67108960,"slots":{},"retain_slots":[]}')).toBe(true);
      expect(await b1.setHistoryValue('[[1,25165984,"no recovery target specified"]]')).toBe(true);
      expect(await (await at('a', 'a1')).touchMember(member(5434, 'replica'))).toBe(true);
      expect(await (await at('ab')).setConfigValue('{"ttl":20}')).toBe(true);
      // Another namespace whose name starts with this one's, and a scope with no keys: neither shows.
      expect(await (await at('c', undefined, `${ns}x`)).setConfigValue('{}')).toBe(true);
      const reader = await at('empty');

      const all = await reader.getClusters();
      expect(all.map((c) => c.scope)).toEqual(['a', 'ab', 'b']);
      const byName = <T extends { name: string }>(xs: readonly T[]): T[] =>
        [...xs].sort((x, y) => (x.name < y.name ? -1 : 1));
      for (const c of all) {
        const one = await (await at(c.scope)).getCluster();
        expect({ ...c, members: byName(c.members) }).toEqual({ ...one, members: byName(one.members) });
      }
      const b = all[2]!;
      expect(b.leader?.name).toBe('b1');
      expect(b.members.map((m) => m.name).sort()).toEqual(['b1', 'b2']);
      expect(b.initialize).toBe('7710821883631976027');
      expect(b.status.optime).toBe(67108960n);
      expect(await (await at('none', undefined, `${ns}y`)).getClusters()).toEqual([]);
    });

    it('throws DcsError naming the endpoint when the server cannot be reached', async () => {
      fresh();
      const dead = await target().createUnreachable({
        namespace: '/service',
        scope,
        ttl: 10,
        retryTimeout: 3,
        ctl: true,
      });
      open.push(dead);
      const t0 = Date.now();
      const err = await dead.getCluster().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DcsError);
      expect((err as Error).message).toContain(dead.endpoints[0]!);
      expect(Date.now() - t0).toBeLessThan(3000 + 2000);
      const t1 = Date.now();
      const all = await dead.getClusters().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(all).toBeInstanceOf(DcsError);
      expect((all as Error).message).toContain(dead.endpoints[0]!);
      expect(Date.now() - t1).toBeLessThan(3000 + 2000);
    });
  });
}
