/**
 * The etcd3 adapter against a real etcd 3.4: the shared DCS contract, then what is specific to etcd (Patroni's
 * key layout and leases, linearizable reads under faults, lock expiry without refreshes, auth, API prefixes).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { DcsError, type DcsOptions } from '../../src/dcs/dcs.js';
import { Etcd3Dcs, type Etcd3Connection } from '../../src/dcs/etcd3/etcd3-dcs.js';
import { b64, EtcdGateway, fromB64, prefixRangeEnd, type KeyValue } from '../../src/dcs/etcd3/gateway.js';
import { runDcsContract } from '../contract/dcs-contract.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { freePort, removeDir, tempDir, waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';

let etcd: EtcdServer;
let deadPort = 0;

beforeAll(async () => {
  etcd = await startEtcd();
  deadPort = await freePort();
});

afterAll(async () => {
  await etcd?.stop();
});

const describeWithNeeds = describeNeeding('etcd');

// In a describe of its own so that the file's hooks (which start the server) are skipped with every suite.
describeWithNeeds('on a real etcd server', () => {
  runDcsContract('etcd3', () => ({
    create: (options) => new Etcd3Dcs(options, { hosts: [etcd.endpoint], protocol: 'http' }),
    createUnreachable: (options) =>
      new Etcd3Dcs(options, { hosts: [`127.0.0.1:${deadPort}`], protocol: 'http' }),
  }));
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let scopes = 0;
const freshScope = (): string => `etcd${process.pid}x${++scopes}`;

describeWithNeeds('etcd3 specifics', () => {
  const open: (Etcd3Dcs | EtcdGateway)[] = [];
  afterAll(async () => {
    for (const c of open.splice(0)) await c.close();
  });

  const dcs = (
    scope: string,
    name?: string,
    extra: Partial<DcsOptions> = {},
    conn?: Partial<Etcd3Connection>,
  ) => {
    const d = new Etcd3Dcs(
      { namespace: 'service', scope, name, ttl: 10, retryTimeout: 5, ctl: name === undefined, ...extra },
      { hosts: [etcd.endpoint], protocol: 'http', ...conn },
    );
    open.push(d);
    return d;
  };

  const raw = (endpoint = etcd.endpoint): EtcdGateway => {
    const g = new EtcdGateway({ endpoints: [endpoint], protocol: 'http', retryTimeout: 5 });
    open.push(g);
    return g;
  };

  const listKeys = async (prefix: string): Promise<Map<string, KeyValue>> => {
    const res = await raw().range(prefix, prefixRangeEnd(prefix), false);
    return new Map((res.kvs ?? []).map((kv) => [fromB64(kv.key), kv]));
  };

  it('writes the exact Patroni key layout: leader and member on one lease, the rest without', async () => {
    const scope = freshScope();
    const a = dcs(scope, 'pg1');
    const member =
      '{"conn_url":"postgres://127.0.0.1:5432/postgres","api_url":"http://127.0.0.1:8008/patroni","state":"running","role":"master","version":"3.0.2"}';
    const config = '{"ttl":30,"loop_wait":10,"retry_timeout":10}';
    expect(await a.initialize(true, '')).toBe(true);
    expect(await a.initialize(false, '7710821883631976027')).toBe(true);
    expect(await a.setConfigValue(config)).toBe(true);
    expect(await a.touchMember(member)).toBe(true);
    expect(await a.attemptToAcquireLeader()).toBe(true);
    expect(await a.writeStatus('{"optime":67108960}')).toBe(true);
    expect(await a.setFailoverValue('{}')).toBe(true);

    const keys = await listKeys(`/service/${scope}/`);
    const p = `/service/${scope}/`;
    expect([...keys.keys()].sort()).toEqual(
      ['config', 'failover', 'initialize', 'leader', 'members/pg1', 'status'].map((k) => p + k),
    );
    const leader = keys.get(p + 'leader')!;
    const mem = keys.get(p + 'members/pg1')!;
    expect(fromB64(leader.value)).toBe('pg1');
    expect(leader.lease).toMatch(/^[1-9]\d*$/);
    expect(mem.lease).toBe(leader.lease);
    expect(fromB64(mem.value)).toBe(member);
    for (const k of ['config', 'initialize', 'status', 'failover'])
      expect(keys.get(p + k)?.lease).toBeUndefined();
    expect(fromB64(keys.get(p + 'config')?.value)).toBe(config);
    expect(fromB64(keys.get(p + 'initialize')?.value)).toBe('7710821883631976027');
    expect(keys.get(p + 'initialize')?.version).toBe('2');
    expect(fromB64(keys.get(p + 'status')?.value)).toBe('{"optime":67108960}');

    // The cluster view maps mod_revision to versions and the lease to the session.
    const c = await a.getCluster();
    expect(c.leader?.session).toBe(leader.lease);
    expect(c.leader?.version).toBe(leader.mod_revision);
    expect(c.config?.version).toBe(keys.get(p + 'config')?.mod_revision);

    // Refreshing a lock whose lease is ours is a keepalive only: the key is not rewritten.
    expect(await a.updateLeader(c)).toBe(true);
    expect((await listKeys(p)).get(p + 'leader')?.mod_revision).toBe(leader.mod_revision);
    // An unchanged status is not rewritten either.
    expect(await a.writeStatus('{"optime":67108960}')).toBe(true);
    expect((await listKeys(p)).get(p + 'status')?.mod_revision).toBe(keys.get(p + 'status')?.mod_revision);
    await a.deleteCluster();
  });

  it('refuses leader and member operations in ctl mode and grants no lease', async () => {
    const scope = freshScope();
    const ctl = dcs(scope);
    await expect(ctl.attemptToAcquireLeader()).rejects.toBeInstanceOf(DcsError);
    await expect(ctl.touchMember('{}')).rejects.toBeInstanceOf(DcsError);
    await expect(ctl.takeLeader()).rejects.toBeInstanceOf(DcsError);
    expect((await ctl.getCluster()).leader).toBeUndefined();
  });

  it('re-creates its own expired lock on updateLeader but never takes another member’s', async () => {
    const scope = freshScope();
    const a = dcs(scope, 'a', { ttl: 2 });
    const b = dcs(scope, 'b', { ttl: 10 });
    expect(await a.attemptToAcquireLeader()).toBe(true);
    const before = await a.getCluster();
    await waitFor(
      'a’s lease to expire',
      async () => (await b.getCluster()).leader === undefined,
      10_000,
      200,
    );
    // Same member, lease gone: updateLeader grants a new lease and re-creates the key.
    expect(await a.updateLeader(before)).toBe(true);
    // b reads from its watch-fed cache (as Patroni's KVCache): another member's write shows up within moments.
    await waitFor(
      'b to see a’s new lock',
      async () => (await b.getCluster()).leader?.name === 'a',
      3_000,
      20,
    );
    const after = await b.getCluster();
    expect(after.leader?.name).toBe('a');
    expect(after.leader?.session).not.toBe(before.leader?.session);
    await waitFor(
      'a’s lease to expire again',
      async () => (await b.getCluster()).leader === undefined,
      10_000,
      200,
    );
    expect(await b.attemptToAcquireLeader()).toBe(true);
    expect(await a.updateLeader(after)).toBe(false);
    expect((await b.getCluster()).leader?.name).toBe('b');
  });

  it('loses the lock within ttl when the holder just stops refreshing (no background keepalive)', async () => {
    const scope = freshScope();
    const a = dcs(scope, 'a', { ttl: 3 });
    const b = dcs(scope, 'b', { ttl: 3 });
    const t0 = Date.now();
    expect(await a.attemptToAcquireLeader()).toBe(true);
    await a.touchMember('{"state":"running"}');
    // `a` stays open but is never called again, like an agent whose HA loop hangs.
    let c = await b.getCluster();
    while (c.leader && Date.now() - t0 < 10_000) {
      await sleep(100);
      c = await b.getCluster();
    }
    const elapsed = Date.now() - t0;
    expect(c.leader).toBeUndefined();
    expect(c.members).toEqual([]);
    expect(elapsed).toBeGreaterThan(2500);
    expect(elapsed).toBeLessThan(3000 + 1500);
  });

  it('wakes a replica on status changes but not the leader on its own status writes', async () => {
    const scope = freshScope();
    const leader = dcs(scope, 'a');
    const replica = dcs(scope, 'b');
    expect(await leader.attemptToAcquireLeader()).toBe(true);
    await leader.getCluster();
    await replica.getCluster();
    const leaderWoken = leader.watch(800);
    const replicaWoken = replica.watch(5000);
    await sleep(200);
    expect(await leader.writeStatus('{"optime":1}')).toBe(true);
    expect(await replicaWoken).toBe(true);
    expect(await leaderWoken).toBe(false);
    // A change made between the last read and the watch still wakes (start_revision = read revision + 1).
    await replica.getCluster();
    expect(await leader.setConfigValue('{"ttl":30}')).toBe(true);
    expect(await replica.watch(5000)).toBe(true);
  });

  it('lets an agent read its cluster from the watch-fed cache, and see every write at once', async () => {
    const scope = freshScope();
    const a = dcs(scope, 'a');
    const b = dcs(scope, 'b');
    const gateway = (b as unknown as { gateway: EtcdGateway }).gateway;
    const fullReads = vi.spyOn(gateway, 'range');
    const fingerprints = vi.spyOn(gateway, 'rangeFingerprint');
    expect(await a.attemptToAcquireLeader()).toBe(true);
    await b.getCluster(); // the full read that seeds b's cache and opens its watch stream
    await b.watch(300); // the stream is open and has delivered what there was
    fullReads.mockClear();
    for (let i = 0; i < 5; i++) expect((await b.getCluster()).leader?.name).toBe('a');
    // Nothing changed: five keys-only fingerprints, no value read from etcd.
    expect(fullReads).not.toHaveBeenCalled();
    expect(fingerprints).toHaveBeenCalledTimes(5);
    // Another member's write is seen by b's very next read (from etcd or, once delivered, from the cache).
    await a.writeStatus('{"optime":7}');
    expect((await b.getCluster()).status.optime).toBe(7n);
    await b.watch(300);
    fullReads.mockClear();
    expect((await b.getCluster()).status.optime).toBe(7n);
    expect(fullReads).not.toHaveBeenCalled();
    // So is b's own write.
    await b.touchMember('{"state":"running","role":"replica"}');
    const mine = (await b.getCluster()).members.find((m) => m.name === 'b');
    expect(mine?.data.state).toBe('running');
  });

  it('at rest an agent’s read is its lease keepalive: no range read, also while other clusters write', async () => {
    const scope = freshScope();
    const a = dcs(scope, 'a');
    const b = dcs(scope, 'b');
    const neighbour = dcs(freshScope(), 'n');
    const gateway = (b as unknown as { gateway: EtcdGateway }).gateway;
    const fullReads = vi.spyOn(gateway, 'range');
    const fingerprints = vi.spyOn(gateway, 'rangeFingerprint');
    const keepalives = vi.spyOn(gateway, 'leaseKeepAlive');
    expect(await a.attemptToAcquireLeader()).toBe(true);
    expect(await b.touchMember('{"state":"running","role":"replica"}')).toBe(true);
    await b.getCluster();
    await b.watch(300);
    fullReads.mockClear();
    keepalives.mockClear();
    // An HA cycle: the read, then the member key (unchanged): one keepalive, nothing else.
    for (let i = 0; i < 3; i++) {
      expect((await b.getCluster()).leader?.name).toBe('a');
      expect(await b.touchMember('{"state":"running","role":"replica"}')).toBe(true);
    }
    expect(keepalives).toHaveBeenCalledTimes(3);
    expect(fullReads).not.toHaveBeenCalled();
    expect(fingerprints).not.toHaveBeenCalled();
    // Writes of another cluster move etcd's revision past anything b's stream delivers: b still reads no range, and
    // its read waits for the stream no longer than the grace.
    for (let i = 0; i < 3; i++) {
      await neighbour.setConfigValue(`{"n":${i}}`);
      const t0 = performance.now();
      expect((await b.getCluster()).leader?.name).toBe('a');
      expect(performance.now() - t0).toBeLessThan(1500);
      await a.writeStatus(`{"optime":${i + 1}}`);
      expect((await b.getCluster()).status.optime).toBe(BigInt(i + 1));
      // Another member's data too: the stream carries the whole cluster prefix.
      await a.touchMember(`{"state":"running","role":"master","xlog_location":${i + 1}}`);
      const seen = (await b.getCluster()).members.find((m) => m.name === 'a');
      expect(seen?.data.xlogLocation).toBe(BigInt(i + 1));
    }
    expect(fullReads).not.toHaveBeenCalled();
    expect(fingerprints).not.toHaveBeenCalled();
    // The leader's cycle: the read keeps the lease alive, so refreshing the lock right after costs no second call.
    await a.getCluster(); // reads its own status write back from etcd
    await a.watch(300); // ...which its stream has delivered by now
    const leaderGateway = (a as unknown as { gateway: EtcdGateway }).gateway;
    const leaderKeepalives = vi.spyOn(leaderGateway, 'leaseKeepAlive');
    const leaderReads = vi.spyOn(leaderGateway, 'range');
    const c = await a.getCluster();
    expect(await a.updateLeader(c)).toBe(true);
    expect(leaderKeepalives).toHaveBeenCalledTimes(1);
    expect(leaderReads).not.toHaveBeenCalled();
    await neighbour.deleteCluster();
  });

  it('keeps member keys bound to the current lease after a ttl change', async () => {
    const scope = freshScope();
    const a = dcs(scope, 'a', { ttl: 10 });
    await a.touchMember('{"state":"running"}');
    const s1 = (await a.getCluster()).members[0]?.session;
    a.setTimings(15, 5);
    await a.touchMember('{"state":"running"}');
    const s2 = (await a.getCluster()).members[0]?.session;
    expect(s1).toBeTruthy();
    expect(s2).toBeTruthy();
    expect(s2).not.toBe(s1);
    // A key deleted behind our back is rewritten, not skipped by the local cache.
    await a.deleteCluster();
    await a.getCluster();
    await a.touchMember('{"state":"running"}');
    expect((await a.getCluster()).members.map((m) => m.name)).toEqual(['a']);
  });

  it('reports a won initialize race as won when its answer was lost and the retry found the key taken', async () => {
    const scope = freshScope();
    const [etcdHost, etcdPort] = etcd.endpoint.split(':');
    // A proxy to etcd that forwards every request but never answers a txn: etcd applies it, the answer is lost.
    let swallowed = 0;
    const proxy: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const up = request(
          { host: etcdHost, port: Number(etcdPort), path: req.url, method: req.method, headers: req.headers },
          (answer) => {
            if (req.url?.endsWith('/kv/txn')) {
              swallowed++;
              answer.resume();
              return;
            }
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        up.on('error', () => res.destroy());
        up.end(Buffer.concat(chunks));
      });
    });
    const proxyPort = await freePort();
    await new Promise<void>((r) => proxy.listen(proxyPort, '127.0.0.1', r));
    try {
      const a = new Etcd3Dcs(
        { namespace: 'service', scope, name: 'pg1', ttl: 10, retryTimeout: 4, ctl: false },
        // use_proxies: the proxy is what is tested, not etcd's own client URL that discovery would switch to.
        { hosts: [`127.0.0.1:${proxyPort}`, etcd.endpoint], protocol: 'http', useProxies: true },
      );
      open.push(a);
      expect(await a.touchMember('{"state":"starting"}')).toBe(true);
      // The first attempt (through the proxy) creates the key; the retry on etcd itself finds it taken.
      expect(await a.initialize(true, '')).toBe(true);
      expect(swallowed).toBe(1);
      expect((await listKeys(`/service/${scope}/`)).has(`/service/${scope}/initialize`)).toBe(true);
      // Someone else who loses the race still hears so.
      const b = dcs(scope, 'pg2');
      expect(await b.touchMember('{"state":"starting"}')).toBe(true);
      expect(await b.initialize(true, '')).toBe(false);
    } finally {
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
    }
  });

  it('names the endpoint and the cause when nothing listens', async () => {
    const dead = new Etcd3Dcs(
      { namespace: 'service', scope: freshScope(), ttl: 10, retryTimeout: 1, ctl: true },
      { hosts: [`127.0.0.1:${deadPort}`], protocol: 'http' },
    );
    open.push(dead);
    await expect(dead.getCluster()).rejects.toThrow(`no etcd3 at 127.0.0.1:${deadPort}: connection refused`);
  });

  it('fails over to the next endpoint', async () => {
    const scope = freshScope();
    const d = dcs(scope, undefined, {}, { hosts: [`127.0.0.1:${deadPort}`, etcd.endpoint] });
    expect(await d.setConfigValue('{"x":1}')).toBe(true);
    expect((await d.getCluster()).config?.data).toEqual({ x: 1 });
    await d.deleteCluster();
  });

  it('lets a CLI process exit promptly after using the DCS', async () => {
    const dir = tempDir('etcd3-exit');
    try {
      const script = join(dir, 'cli.mts');
      const src = resolve('src/dcs/etcd3/etcd3-dcs.ts');
      writeFileSync(
        script,
        `import { Etcd3Dcs } from ${JSON.stringify(src)};
const options = { namespace: 'service', scope: 'exit', ttl: 10, retryTimeout: 5 };
const ctl = new Etcd3Dcs({ ...options, ctl: true }, { hosts: [${JSON.stringify(etcd.endpoint)}], protocol: 'http' });
await ctl.getCluster();
await ctl.setConfigValue('{}');
// No close(): idle keep-alive sockets must not hold the process open.
const agent = new Etcd3Dcs({ ...options, name: 'x', ctl: false }, { hosts: [${JSON.stringify(etcd.endpoint)}], protocol: 'http' });
await agent.touchMember('{}');
void agent.watch(30_000);
await new Promise((r) => setTimeout(r, 200));
await agent.close();
console.log('done ' + Date.now());
`,
      );
      const child = spawn(process.execPath, ['--import', 'tsx', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      const exitedAt = Date.now();
      expect(err).toBe('');
      expect(code).toBe(0);
      const doneAt = Number(/done (\d+)/.exec(out)?.[1]);
      expect(exitedAt - doneAt).toBeLessThan(1000);
      await raw().deleteRange('/service/exit/', prefixRangeEnd('/service/exit/'));
    } finally {
      removeDir(dir);
    }
  });
});

describeWithNeeds('etcd3 under faults', () => {
  let own: EtcdServer | undefined;
  afterEach(async () => {
    await own?.stop();
    own = undefined;
  });

  it('fails a linearizable read with DcsError while etcd is frozen or stopped, within retryTimeout', async () => {
    own = await startEtcd();
    const options: DcsOptions = {
      namespace: 'service',
      scope: freshScope(),
      ttl: 10,
      retryTimeout: 2,
      ctl: true,
    };
    const ctl = new Etcd3Dcs(options, { hosts: [own.endpoint], protocol: 'http' });
    try {
      expect(await ctl.setConfigValue('{"a":1}')).toBe(true);
      expect((await ctl.getCluster()).config?.data).toEqual({ a: 1 });

      own.signal('SIGSTOP');
      let t0 = Date.now();
      const frozen = await ctl.getCluster().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(frozen).toBeInstanceOf(DcsError);
      expect((frozen as Error).message).toContain(own.endpoint);
      expect((frozen as Error).message).toMatch(/timed out/);
      expect(Date.now() - t0).toBeLessThan(2000 + 1000);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);

      own.signal('SIGCONT');
      expect((await ctl.getCluster()).config?.data).toEqual({ a: 1 });

      await own.stop();
      const endpoint = own.endpoint;
      own = undefined;
      t0 = Date.now();
      const stopped = await ctl.getCluster().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(stopped).toBeInstanceOf(DcsError);
      expect((stopped as Error).message).toBe(`no etcd3 at ${endpoint}: connection refused`);
      expect(Date.now() - t0).toBeLessThan(2000 + 1000);
    } finally {
      await ctl.close();
    }
  });

  it('authenticates with username and password and re-authenticates after the token is lost', async () => {
    own = await startEtcd();
    const admin = new EtcdGateway({ endpoints: [own.endpoint], protocol: 'http', retryTimeout: 5 });
    const scope = freshScope();
    const mk = (conn: Partial<Etcd3Connection>): Etcd3Dcs =>
      new Etcd3Dcs(
        { namespace: 'service', scope, name: 'a', ttl: 10, retryTimeout: 3, ctl: false },
        { hosts: [own!.endpoint], protocol: 'http', ...conn },
      );
    const clients: Etcd3Dcs[] = [];
    try {
      await admin.call('/auth/role/add', { name: 'root' });
      await admin.call('/auth/user/add', { name: 'root', password: 'rootpw' });
      await admin.call('/auth/user/grant', { user: 'root', role: 'root' });
      await admin.call('/auth/enable', {});

      const anonymous = mk({});
      clients.push(anonymous);
      await expect(anonymous.getCluster()).rejects.toThrow(/user name is empty|permission denied/);

      const wrong = mk({ username: 'root', password: 'nope' });
      clients.push(wrong);
      await expect(wrong.getCluster()).rejects.toThrow(/authentication .*failed/);

      const good = mk({ username: 'root', password: 'rootpw' });
      clients.push(good);
      expect(await good.attemptToAcquireLeader()).toBe(true);
      expect((await good.getCluster()).leader?.name).toBe('a');
      // Turning auth off and on again drops every simple token: the next call gets "invalid auth token",
      // re-authenticates once and goes through.
      const root = new EtcdGateway({
        endpoints: [own.endpoint],
        protocol: 'http',
        retryTimeout: 5,
        username: 'root',
        password: 'rootpw',
      });
      await root.call('/auth/disable', {});
      await admin.call('/auth/enable', {});
      root.close();
      await expect(
        admin.call('/kv/range', { key: b64('/'), range_end: b64('0'), count_only: true }),
      ).rejects.toThrow(/user name is empty/);
      expect(await good.updateLeader(await good.getCluster())).toBe(true);
      expect(await good.setConfigValue('{"ttl":10}')).toBe(true);
      // Watches carry the token too (without it etcd cancels the watch and nothing would wake us).
      const other = mk({ username: 'root', password: 'rootpw' });
      clients.push(other);
      await good.getCluster();
      const woken = good.watch(5000);
      await sleep(200);
      expect(await other.setConfigValue('{"ttl":20}')).toBe(true);
      expect(await woken).toBe(true);
    } finally {
      for (const c of clients) await c.close();
      admin.close();
    }
  });

  it('uses /v3beta for a 3.3 cluster and refuses etcd older than 3.0.4', async () => {
    const seen: string[] = [];
    let version = '{"etcdserver":"3.3.11","etcdcluster":"3.3.0"}';
    const server: Server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.url === '/version') res.end(version);
        else
          res.end(
            '{"header":{"revision":"7"},"kvs":[{"key":"' +
              b64('/service/x/leader') +
              '","value":"' +
              b64('n1') +
              '","mod_revision":"5","lease":"42"}]}',
          );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    try {
      const d = new Etcd3Dcs(
        { namespace: 'service', scope: 'x', ttl: 10, retryTimeout: 2, ctl: true },
        { hosts: [`127.0.0.1:${port}`], protocol: 'http', useProxies: true },
      );
      const c = await d.getCluster();
      await d.close();
      expect(c.leader).toMatchObject({ name: 'n1', version: '5', session: '42' });
      expect(seen).toEqual(['GET /version', 'POST /v3beta/kv/range']);

      version = '{"etcdserver":"3.0.2","etcdcluster":"3.0.0"}';
      const old = new Etcd3Dcs(
        { namespace: 'service', scope: 'x', ttl: 10, retryTimeout: 2, ctl: true },
        { hosts: [`127.0.0.1:${port}`], protocol: 'http', useProxies: true },
      );
      await expect(old.getCluster()).rejects.toThrow(
        /Detected etcd version 3\.0\.2 .* is lower than 3\.0\.4/,
      );
      await old.close();
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('speaks https with a configured CA, and names the TLS failure without it', async () => {
    const dir = tempDir('etcd3-tls');
    const certFile = join(dir, 'cert.pem');
    const keyFile = join(dir, 'key.pem');
    // A self-signed certificate for 127.0.0.1 that also serves as the CA.
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        '2',
      ].concat(['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']),
      { stdio: 'ignore' },
    );
    own = await startEtcd({ tls: { certFile, keyFile } });
    const options: DcsOptions = {
      namespace: 'service',
      scope: freshScope(),
      name: 'a',
      ttl: 10,
      retryTimeout: 2,
      ctl: false,
    };
    const good = new Etcd3Dcs(options, { hosts: [own.endpoint], protocol: 'https', cacert: certFile });
    const byUrl = new Etcd3Dcs(
      { ...options, ctl: true, name: undefined },
      {
        hosts: [`https://${own.endpoint}`],
        protocol: 'http',
        cacert: certFile,
      },
    );
    const untrusted = new Etcd3Dcs(
      { ...options, retryTimeout: 1 },
      { hosts: [own.endpoint], protocol: 'https' },
    );
    try {
      expect(await good.attemptToAcquireLeader()).toBe(true);
      expect(await good.updateLeader(await good.getCluster())).toBe(true);
      expect((await byUrl.getCluster()).leader?.name).toBe('a');
      await expect(untrusted.getCluster()).rejects.toThrow(
        `no etcd3 at ${own.endpoint}: self-signed certificate`,
      );
    } finally {
      await Promise.all([good.close(), byUrl.close(), untrusted.close()]);
      await own.stop();
      own = undefined;
      removeDir(dir);
    }
  });

  it('etcd3.key_password decrypts an encrypted client key (a wrong one fails with the reason)', async () => {
    const dir = tempDir('etcd3-keypw');
    const certFile = join(dir, 'cert.pem');
    const keyFile = join(dir, 'key.pem');
    const clientKey = join(dir, 'client.key');
    const clientEncrypted = join(dir, 'client-enc.key');
    const clientCert = join(dir, 'client.pem');
    const openssl = (args: string[]): void => {
      execFileSync('openssl', args, { stdio: 'ignore' });
    };
    const selfSigned = (key: string, cert: string, cn: string, ext: string[]): void =>
      openssl(
        ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2'].concat([
          '-subj',
          `/CN=${cn}`,
          ...ext,
        ]),
      );
    selfSigned(keyFile, certFile, '127.0.0.1', ['-addext', 'subjectAltName=IP:127.0.0.1']);
    selfSigned(clientKey, clientCert, 'pg-member', []);
    openssl(['pkey', '-in', clientKey, '-aes256', '-passout', 'pass:s3cret', '-out', clientEncrypted]);
    own = await startEtcd({ tls: { certFile, keyFile } });
    const options: DcsOptions = {
      namespace: 'service',
      scope: freshScope(),
      name: 'a',
      ttl: 10,
      retryTimeout: 2,
      ctl: false,
    };
    const tls = { hosts: [own.endpoint], protocol: 'https' as const, cacert: certFile, cert: clientCert };
    const withPassword = new Etcd3Dcs(options, { ...tls, key: clientEncrypted, keyPassword: 's3cret' });
    const wrongPassword = new Etcd3Dcs(
      { ...options, retryTimeout: 1 },
      { ...tls, key: clientEncrypted, keyPassword: 'nope' },
    );
    try {
      expect(await withPassword.attemptToAcquireLeader()).toBe(true);
      expect((await withPassword.getCluster()).leader?.name).toBe('a');
      await expect(wrongPassword.getCluster()).rejects.toThrow(/decrypt/i);
    } finally {
      await Promise.all([withPassword.close(), wrongPassword.close()]);
      await own.stop();
      own = undefined;
      removeDir(dir);
    }
  });
});
