/**
 * The ZooKeeper adapter against a real ZooKeeper 3.8 on loopback: the shared DCS contract, then what is specific
 * to ZooKeeper (ephemeral znodes of the owner's session, `sync` emptied instead of deleted, lock release by
 * session restart), checked with a raw client.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import zookeeper from 'node-zookeeper-client';
import type { Client, Stat } from 'node-zookeeper-client';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { DcsError, type Dcs, type DcsOptions } from '../../src/dcs/dcs.js';
import { ZooKeeperDcs } from '../../src/dcs/zookeeper/zookeeper-dcs.js';
import { runDcsContract } from '../contract/dcs-contract.js';
import { freePort, waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { fourLetterWord, startZooKeeper, type ZooKeeperServer } from '../harness/zookeeper.js';

let server: ZooKeeperServer;
let deadPort = 0;

beforeAll(async () => {
  server = await startZooKeeper();
  deadPort = await freePort();
});

afterAll(async () => {
  await server?.stop();
});

const describeWithNeeds = describeNeeding('zookeeper');

// In a describe of its own so that the file's hooks (which start the server) are skipped with every suite.
describeWithNeeds('on a real ZooKeeper server', () => {
  runDcsContract('zookeeper', () => ({
    create: (options) => new ZooKeeperDcs(options, [server.endpoint]),
    createUnreachable: (options) => new ZooKeeperDcs(options, [`127.0.0.1:${deadPort}`]),
  }));
});

/** A plain client to look at znodes behind the adapter's back. */
async function rawClient(endpoint: string): Promise<Client> {
  const client = zookeeper.createClient(endpoint, { sessionTimeout: 10_000, spinDelay: 200 });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`raw client: no zookeeper at ${endpoint}`)), 10_000);
    client.once('connected', () => {
      clearTimeout(timer);
      resolve();
    });
    client.connect();
  });
  return client;
}

async function statOf(client: Client, path: string): Promise<Stat | null> {
  return new Promise((resolve, reject) => client.exists(path, (e, stat) => (e ? reject(e) : resolve(stat))));
}

async function dataOf(client: Client, path: string): Promise<string> {
  return new Promise((resolve, reject) =>
    client.getData(path, (e, data) => (e ? reject(e) : resolve(data ? data.toString('utf8') : ''))),
  );
}

async function createEphemeral(client: Client, path: string, value: string): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    client.create(path, Buffer.from(value), zookeeper.CreateMode.EPHEMERAL, (e) =>
      e ? reject(e) : resolve(),
    ),
  );
}

/**
 * A loopback TCP proxy in front of ZooKeeper that can cut the client off (a partition) and let it back, or mute the
 * server: what it sends, its end of the connection included, no longer reaches the client.
 */
async function startProxy(
  target: string,
): Promise<{ endpoint: string; cut(): void; heal(): void; mute(): void; close(): Promise<void> }> {
  const [host = '127.0.0.1', port = '2181'] = target.split(':');
  const sockets = new Set<Socket>();
  let open = true;
  let muted = false;
  const server: Server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = connect({ host, port: Number(port) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream);
    upstream.on('data', (data: Buffer) => {
      if (!muted) client.write(data);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => {
      if (!muted) client.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('proxy has no address');
  return {
    endpoint: `127.0.0.1:${address.port}`,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    heal() {
      open = true;
    },
    mute() {
      muted = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const owner = (stat: Stat | null): string =>
  stat ? stat.ephemeralOwner.readBigInt64BE(0).toString() : 'missing';
const sessionOf = (client: Client): string => client.getSessionId().readBigInt64BE(0).toString();

describeWithNeeds('ZooKeeper specifics', () => {
  const open: Dcs[] = [];
  const raws: Client[] = [];
  let n = 0;
  let scope = '';
  let base = '';

  const fresh = (): void => {
    scope = `zk${process.pid}x${++n}`;
    base = `/service/${scope}`;
  };

  const dcs = (name?: string, extra: Partial<DcsOptions> = {}, hosts = [server.endpoint]): ZooKeeperDcs => {
    const d = new ZooKeeperDcs(
      { namespace: 'service', scope, name, ttl: 10, retryTimeout: 5, ctl: name === undefined, ...extra },
      hosts,
    );
    open.push(d);
    return d;
  };

  const raw = async (): Promise<Client> => {
    const c = await rawClient(server.endpoint);
    raws.push(c);
    return c;
  };

  afterEach(async () => {
    await Promise.all(open.splice(0).map((d) => d.close().catch(() => undefined)));
    for (const c of raws.splice(0)) c.close();
  });

  it('lets an agent reuse its cluster view as Patroni does: re-read on watched keys and membership, status alone, own writes patched in', async () => {
    fresh();
    const a = dcs('a');
    const b = dcs('b');
    expect(await a.attemptToAcquireLeader()).toBe(true);
    await a.touchMember('{"state":"running","xlog_location":1}');
    await a.writeStatus('{"optime":1}');
    await b.touchMember('{"state":"running"}');
    const first = await b.getCluster();
    await b.watch(300); // b's watches are in place after its read; nothing changes
    expect(await b.getCluster()).toBe(first); // the same view object: nothing was read again

    // Another member's key (its WAL position) is not watched, as in Patroni: b keeps its view...
    await a.touchMember('{"state":"running","xlog_location":2}');
    expect(await b.getCluster()).toBe(first);
    // ...until it asks for a fresh read (GET /cluster does).
    const fresher = await b.getCluster({ fresh: true });
    expect(fresher.members.find((m) => m.name === 'a')?.data.raw['xlog_location']).toBe(2);

    // Full reads list the cluster's children; from here on b must not need one.
    const lists = vi.spyOn(b as unknown as { getChildren: () => Promise<unknown> }, 'getChildren');
    // The leader's status: only that key is read again, the rest of the view stays.
    await a.writeStatus('{"optime":7}');
    expect(await b.watch(2000)).toBe(true);
    const afterStatus = await b.getCluster();
    expect(afterStatus.status?.optime).toBe(7n);
    expect(afterStatus.members).toEqual(fresher.members);

    // b's own member write is patched into its view, without a read (and without a write when unchanged).
    await b.touchMember('{"state":"stopped"}');
    const patched = await b.getCluster();
    expect(patched.members.find((m) => m.name === 'b')?.data.state).toBe('stopped');
    expect(patched.members.find((m) => m.name === 'a')).toEqual(
      afterStatus.members.find((m) => m.name === 'a'),
    );
    expect(lists).not.toHaveBeenCalled();
    const rawB = await raw();
    const statOfB = (): Promise<Stat> =>
      new Promise<Stat>((resolve, reject) =>
        rawB.getData(`${base}/members/b`, (e, _d, st) => (e ? reject(e) : resolve(st))),
      );
    const before = await statOfB();
    expect(await b.touchMember('{"state":"stopped"}')).toBe(true);
    expect((await statOfB()).version).toBe(before.version);

    // A member joining (or leaving) is watched: b reads everything again.
    const c = dcs('c');
    await c.touchMember('{"state":"running"}');
    await b.watch(2000);
    expect((await b.getCluster()).members.map((m) => m.name).sort()).toEqual(['a', 'b', 'c']);
    // The CLI never reuses a view.
    const cli = dcs();
    expect(await cli.getCluster()).not.toBe(await cli.getCluster());
  });

  it('keeps the lock without reading it while the session holds it, and re-creates it when it was deleted', async () => {
    fresh();
    const a = dcs('a');
    expect(await a.attemptToAcquireLeader()).toBe(true);
    await a.getCluster();
    expect(await a.updateLeader(await a.getCluster())).toBe(true);
    // Someone deletes the lock: the watch marks a's view stale and the next refresh takes it back.
    const r = await raw();
    await new Promise<void>((resolve, reject) =>
      r.remove(`${base}/leader`, -1, (e) => (e ? reject(e) : resolve())),
    );
    await a.watch(2000);
    const view = await a.getCluster();
    expect(view.leader).toBeUndefined();
    expect(await a.updateLeader(view)).toBe(true);
    expect((await a.getCluster()).leader?.name).toBe('a');
  });

  it('keeps leader and member znodes ephemeral to the owner session, everything else persistent', async () => {
    fresh();
    const a = dcs('a');
    expect(await a.initialize(true, '7710821883631976027')).toBe(true);
    expect(await a.setConfigValue('{"ttl":30}')).toBe(true);
    expect(await a.attemptToAcquireLeader()).toBe(true);
    expect(await a.touchMember('{"state":"running","role":"master"}')).toBe(true);
    expect(await a.writeStatus('{"optime":67108960}')).toBe(true);
    const c = await a.getCluster();
    const session = c.leader?.session;
    expect(session).toMatch(/^[1-9]\d*$/);

    const zk = await raw();
    expect(owner(await statOf(zk, `${base}/leader`))).toBe(session);
    expect(owner(await statOf(zk, `${base}/members/a`))).toBe(session);
    expect(c.members[0]?.session).toBe(session);
    for (const key of ['', '/members', '/config', '/status', '/initialize']) {
      const stat = await statOf(zk, base + key);
      expect(stat, key).not.toBeNull();
      expect(owner(stat), key).toBe('0');
    }
    expect(await dataOf(zk, `${base}/leader`)).toBe('a');
    expect(await dataOf(zk, `${base}/initialize`)).toBe('7710821883631976027');
    // Versions and modify versions come from the znode stat.
    const configStat = await statOf(zk, `${base}/config`);
    expect(c.config?.version).toBe(String(configStat?.version));
    expect(c.config?.modifyVersion).toBe(configStat?.mzxid.readBigInt64BE(0).toString());
  });

  it('empties sync with {} instead of deleting it, with the version check', async () => {
    fresh();
    const ctl = dcs();
    const v = await ctl.setSyncStateValue('{"leader":"a","sync_standby":"b"}');
    expect(v).toBe('0');
    expect(await ctl.deleteSyncState('7')).toBe(false);
    expect(await ctl.deleteSyncState(v === false ? undefined : v)).toBe(true);
    const zk = await raw();
    expect(await dataOf(zk, `${base}/sync`)).toBe('{}');
    expect((await statOf(zk, `${base}/sync`))?.version).toBe(1);
    expect((await ctl.getCluster()).sync.leader).toBeUndefined();
    // CAS on a key that does not exist fails; without a version it is created.
    expect(await ctl.setFailoverValue('{"member":"b"}', '0')).toBe(false);
    expect(await ctl.setFailoverValue('{"member":"b"}')).toBe(true);
  });

  it('releases the lock by restarting the session, which drops the member znode too', async () => {
    fresh();
    const a = dcs('a');
    const b = dcs('b');
    expect(await a.touchMember('{"state":"running"}')).toBe(true);
    expect(await b.touchMember('{"state":"running"}')).toBe(true);
    expect(await a.attemptToAcquireLeader()).toBe(true);
    const before = await a.getCluster();
    const oldSession = before.leader?.session;
    expect(await a.deleteLeader(before)).toBe(true);

    const zk = await raw();
    expect(await statOf(zk, `${base}/leader`)).toBeNull();
    expect(await statOf(zk, `${base}/members/a`)).toBeNull();
    expect(await statOf(zk, `${base}/members/b`)).not.toBeNull();
    // The next cycle publishes the member key again, under a new session.
    expect(await a.touchMember('{"state":"running"}')).toBe(true);
    const after = await b.getCluster();
    expect(after.leader).toBeUndefined();
    expect(after.members.map((m) => m.name)).toEqual(['a', 'b']);
    expect(after.members[0]?.session).toBeTruthy();
    expect(after.members[0]?.session).not.toBe(oldSession);
  });

  it('re-creates a lock holding our name under another session, and never steals a foreign one', async () => {
    fresh();
    const a = dcs('a');
    const zk = await raw();
    await a.setConfigValue('{}'); // makes the cluster path
    await createEphemeral(zk, `${base}/leader`, 'a');
    const c = await a.getCluster();
    expect(c.leader?.session).toBe(sessionOf(zk));
    expect(await a.updateLeader(c)).toBe(true);
    const mine = (await a.getCluster()).leader?.session;
    expect(mine).toBeTruthy();
    expect(mine).not.toBe(sessionOf(zk));
    expect(owner(await statOf(zk, `${base}/leader`))).toBe(mine);

    // Someone else's lock stays.
    const b = dcs('b');
    expect(await b.updateLeader(c)).toBe(false);
    expect(await b.takeLeader()).toBe(true);
    expect(await dataOf(zk, `${base}/leader`)).toBe('b');
    expect(await a.updateLeader(await a.getCluster())).toBe(false);
  });

  it('replaces a member znode left by another session', async () => {
    fresh();
    const zk = await raw();
    const a = dcs('a');
    await a.setConfigValue('{}');
    await new Promise<void>((resolve, reject) =>
      zk.mkdirp(`${base}/members`, (e) => (e ? reject(e) : resolve())),
    );
    await createEphemeral(zk, `${base}/members/a`, '{"state":"stopped"}');
    expect(await a.touchMember('{"state":"stopped"}')).toBe(true);
    const m = (await a.getCluster()).members[0];
    expect(m?.name).toBe('a');
    expect(m?.session).not.toBe(sessionOf(zk));
    expect(owner(await statOf(zk, `${base}/members/a`))).toBe(m?.session);
  });

  it('refuses leader and member operations in ctl mode', async () => {
    fresh();
    const ctl = dcs();
    const c = await ctl.getCluster();
    for (const call of [
      () => ctl.attemptToAcquireLeader(),
      () => ctl.updateLeader(c),
      () => ctl.takeLeader(),
      () => ctl.deleteLeader(c),
      () => ctl.touchMember('{}'),
    ]) {
      await expect(call()).rejects.toBeInstanceOf(DcsError);
    }
    expect(await ctl.setConfigValue('{"ttl":30}')).toBe(true);
  });

  it("closes a ctl client's session without waiting for the server's answer", async () => {
    fresh();
    const proxy = await startProxy(server.endpoint);
    const [host = '', port = ''] = server.endpoint.split(':');
    const closes = async (): Promise<number> =>
      Number(
        /^zk_cnt_close_session_prep_time\s+(\d+)/m.exec(
          await fourLetterWord(host, Number(port), 'mntr', 2000),
        )?.[1],
      );
    try {
      const ctl = dcs(undefined, {}, [proxy.endpoint]);
      await ctl.getCluster();
      const before = await closes();
      expect(before).toBeGreaterThanOrEqual(0);
      // The server's answer never arrives: a member would wait for it (up to 3 s) so that its ephemerals are gone.
      proxy.mute();
      const t0 = performance.now();
      await ctl.close();
      expect(performance.now() - t0).toBeLessThan(1000);
      // The close request went out: the server ends the session now, not when its 10 s timeout runs out.
      await waitFor('the server to close the session', async () => (await closes()) > before, 5000, 100);
    } finally {
      await proxy.close();
    }
  });

  it('wakes replicas on status and membership changes but not the leader on its own status writes', async () => {
    fresh();
    const a = dcs('a');
    const b = dcs('b');
    await a.attemptToAcquireLeader();
    await a.writeStatus('{"optime":1}');
    await a.touchMember('{"state":"running"}');
    await a.getCluster();
    await b.getCluster();
    const quiet = a.watch(1200);
    const woken = b.watch(10_000);
    await new Promise((r) => setTimeout(r, 200));
    await a.writeStatus('{"optime":2}');
    expect(await woken).toBe(true);
    expect(await quiet).toBe(false);

    await a.getCluster();
    const joined = a.watch(10_000);
    await new Promise((r) => setTimeout(r, 200));
    await b.touchMember('{"state":"running"}');
    expect(await joined).toBe(true);
  });

  it('gives up connecting after retryTimeout, names the host and stops retrying', async () => {
    fresh();
    const dead = dcs(undefined, { retryTimeout: 2 }, [`127.0.0.1:${deadPort}`]);
    const t0 = Date.now();
    const err = await dead.getCluster().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DcsError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^no zookeeper at 127\\.0\\.0\\.1:${deadPort}: connection timed out after 2 s; check zookeeper\\.hosts`,
      ),
    );
    expect(Date.now() - t0).toBeLessThan(3500);
    // A client that kept retrying would knock on the port as soon as something listens there (one attempt already
    // scheduled by the library may still run during the first spin delay: wait that out).
    await new Promise((r) => setTimeout(r, 400));
    let knocks = 0;
    const listener = createServer((socket) => {
      knocks++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(deadPort, '127.0.0.1', resolve));
    await new Promise((r) => setTimeout(r, 1500));
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    expect(knocks).toBe(0);
  });

  it('rides out a short partition: calls wait for the same session to reconnect', async () => {
    fresh();
    const proxy = await startProxy(server.endpoint);
    try {
      const a = dcs('a', { ttl: 10, retryTimeout: 5 }, [proxy.endpoint]);
      expect(await a.attemptToAcquireLeader()).toBe(true);
      const before = await a.getCluster();
      const woken = a.watch(10_000);
      proxy.cut();
      // Connection trouble wakes the HA loop, as in Patroni.
      expect(await woken).toBe(true);
      const t0 = Date.now();
      const pending = a.updateLeader(before);
      setTimeout(() => proxy.heal(), 1000);
      expect(await pending).toBe(true);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect((await a.getCluster()).leader?.session).toBe(before.leader?.session);
    } finally {
      await proxy.close();
    }
  });

  it('opens a new session after the old one expired and takes its lock back', async () => {
    fresh();
    const proxy = await startProxy(server.endpoint);
    try {
      const a = dcs('a', { ttl: 2, retryTimeout: 2 }, [proxy.endpoint]);
      const b = dcs('b');
      expect(await a.attemptToAcquireLeader()).toBe(true);
      const before = await b.getCluster();
      proxy.cut();
      // The server drops the lock once the session times out.
      await waitFor('the lock to expire', async () => (await b.getCluster()).leader === undefined, 10_000);
      await expect(a.getCluster()).rejects.toBeInstanceOf(DcsError);
      proxy.heal();
      // The first call after the partition may still meet the expired session; the next one has a new session.
      const ok = await waitFor(
        'updateLeader',
        async () => a.updateLeader(before).catch(() => false),
        10_000,
        100,
      );
      expect(ok).toBe(true);
      const after = await b.getCluster();
      expect(after.leader?.name).toBe('a');
      expect(after.leader?.session).not.toBe(before.leader?.session);
    } finally {
      await proxy.close();
    }
  });

  it("takes the session timeout the server negotiated (capped by its maxSessionTimeout) as the lock's lifetime", async () => {
    const capped = await startZooKeeper({ maxSessionTimeoutMs: 4000 });
    try {
      fresh();
      // ttl 30 asks for a 30 s session; this server grants at most 4 s, and the lock lives only that long.
      const a = dcs('a', { ttl: 30 }, [capped.endpoint]);
      const before = performance.now();
      expect(await a.attemptToAcquireLeader()).toBe(true);
      expect(a.lockLifetime()).toBe(4);
      const proven = a.leaseRefreshedAt();
      expect(proven).toBeGreaterThanOrEqual(before);
      expect(proven).toBeLessThanOrEqual(performance.now());
      // A ctl client that never opened a session knows only the configured ttl.
      expect(dcs(undefined, { ttl: 30 }, [capped.endpoint]).lockLifetime()).toBe(30);
      // The server that allows 60 s grants the 30 asked for.
      const b = dcs('b', { ttl: 30 });
      expect(await b.attemptToAcquireLeader()).toBe(true);
      expect(b.lockLifetime()).toBe(30);
    } finally {
      await Promise.all(open.splice(0).map((d) => d.close().catch(() => undefined)));
      await capped.stop();
    }
  });

  it('turns a lost server into DcsError within retryTimeout', async () => {
    fresh();
    const lonely = await startZooKeeper();
    try {
      const a = dcs('a', { retryTimeout: 2 }, [lonely.endpoint]);
      expect(await a.attemptToAcquireLeader()).toBe(true);
      const cluster = await a.getCluster();
      await lonely.stop();
      const t0 = Date.now();
      const err = await a.getCluster().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DcsError);
      expect((err as Error).message).toContain(lonely.endpoint);
      expect(Date.now() - t0).toBeLessThan(3500);
      await expect(a.updateLeader(cluster)).rejects.toBeInstanceOf(DcsError);
      // Closing a client whose server is gone must not hang.
      const t1 = Date.now();
      await a.close();
      expect(Date.now() - t1).toBeLessThan(3500);
    } finally {
      await lonely.stop();
    }
  });
});
