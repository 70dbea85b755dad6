/**
 * etcd member discovery (src/dcs/etcd3/members.ts), as Patroni 4.1.4's etcd client, against a real etcd 3.4 cluster
 * grown from one member to three while the clients run. Each client is given the first member only:
 * - with `use_proxies: false` (the default) it learns the members' client URLs from /v3/cluster/member/list, learns
 *   the ones added later once its list is older than ttl x 10 s, and keeps working (reads, the leader lock, the
 *   member key) once the only configured member is killed;
 * - with `use_proxies: true` it keeps to the given host, and fails as a DcsError within its retry_timeout once that
 *   host is gone.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DcsError, type DcsOptions } from '../../src/dcs/dcs.js';
import { Etcd3Dcs } from '../../src/dcs/etcd3/etcd3-dcs.js';
import { startEtcdCluster, type EtcdCluster } from '../harness/etcd-cluster.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';

describeNeeding('etcd')('etcd3 member discovery on a growing 3-member cluster', () => {
  let cluster: EtcdCluster | undefined;
  const open: Etcd3Dcs[] = [];
  const scope = `disc${process.pid}`;

  beforeAll(async () => {
    cluster = await startEtcdCluster(1);
  }, 120_000);

  afterAll(async () => {
    for (const d of open.splice(0)) await d.close();
    await cluster?.stop();
  });

  const client = (options: Partial<DcsOptions>, useProxies = false): Etcd3Dcs => {
    const first = cluster?.members[0];
    if (!first) throw new Error('no etcd');
    const d = new Etcd3Dcs(
      { namespace: 'service', scope, ttl: 10, retryTimeout: 4, ctl: true, ...options },
      { hosts: [first.endpoint], protocol: 'http', ...(useProxies ? { useProxies } : {}) },
    );
    open.push(d);
    return d;
  };
  const urlOf = (endpoint: string): string => `http://${endpoint}`;

  it('learns the members, then those added later, and keeps working without the configured one', async () => {
    const c = cluster!;
    const first = c.members[0]!;
    // ttl 1: the learnt list lives 10 s.
    const early = client({ ttl: 1 });
    const proxied = client({}, true);
    await early.getCluster();
    // A configured host that is a member keeps its name.
    expect(early.etcdEndpoints).toEqual([first.endpoint]);
    expect(await proxied.setConfigValue('{"ttl":30}')).toBe(true);
    expect(proxied.etcdEndpoints).toEqual([first.endpoint]);

    const second = await c.add();
    const third = await c.add();
    expect((await c.memberList(third)).flatMap((m) => m.clientURLs).sort()).toEqual(
      [first, second, third].map((m) => urlOf(m.endpoint)).sort(),
    );
    const all = [first.endpoint, urlOf(second.endpoint), urlOf(third.endpoint)].sort();
    // An agent started now learns all three at once and takes the leader lock and its member key.
    const agent = client({ name: 'pg1', ctl: false });
    expect(await agent.touchMember('{"state":"running"}')).toBe(true);
    expect(await agent.attemptToAcquireLeader()).toBe(true);
    expect([...agent.etcdEndpoints].sort()).toEqual(all);

    // The early client refreshes its list once it is older than its lifetime, on the way of its reads.
    await waitFor(
      'the early client to learn the members added later',
      async () => {
        await early.getCluster();
        return early.etcdEndpoints.length === 3;
      },
      40_000,
      500,
    );
    expect([...early.etcdEndpoints].sort()).toEqual(all);

    await first.kill();
    const started = performance.now();
    const seen = await early.getCluster({ fresh: true });
    expect(seen.config?.data).toEqual({ ttl: 30 });
    const mine = await agent.getCluster({ fresh: true });
    expect(mine.leader?.name).toBe('pg1');
    expect(await agent.updateLeader(mine)).toBe(true);
    expect(await agent.touchMember('{"state":"running","role":"primary"}')).toBe(true);
    expect((await agent.getCluster({ fresh: true })).members.map((m) => m.name)).toEqual(['pg1']);
    // Within one retry_timeout each, although the first attempt may have gone to the dead member.
    expect(performance.now() - started).toBeLessThan(3 * 4000);
    expect(agent.etcdEndpoints[0]).not.toBe(first.endpoint);

    // use_proxies: true keeps to the one given host: gone, every call fails within its retry_timeout.
    const t0 = performance.now();
    await expect(proxied.getCluster({ fresh: true })).rejects.toBeInstanceOf(DcsError);
    expect(performance.now() - t0).toBeLessThan(4000 + 1500);
    expect(proxied.etcdEndpoints).toEqual([first.endpoint]);
  }, 180_000);
});
