/**
 * The ZooKeeper adapter with Patroni's security settings against a real ZooKeeper 3.8 that serves TLS and checks
 * ACLs: the session over TLS (server verified against `cacert`, client certificate presented, `verify: false`,
 * an encrypted key with `key_password`), `set_acls` on every znode the adapter creates (checked with a raw client,
 * and an unauthenticated client refused), and `auth_data` digest credentials.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import zookeeper from 'node-zookeeper-client';
import type { Client } from 'node-zookeeper-client';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { DcsError, type Dcs, type DcsOptions } from '../../src/dcs/dcs.js';
import type { ZooKeeperTls } from '../../src/dcs/target.js';
import { ZooKeeperDcs } from '../../src/dcs/zookeeper/zookeeper-dcs.js';
import type { ZooKeeperSecurity } from '../../src/dcs/zookeeper/zookeeper-session.js';
import { describeNeeding } from '../harness/requirements.js';
import { startZooKeeper, type ZooKeeperServer } from '../harness/zookeeper.js';
import { makeTestCerts, type TestCerts } from '../helpers/tls-certs.js';
import { aclOf, rawZkClient, zkCall, zkOutcome, znodeTree } from '../helpers/zk-raw.js';

const describeWithNeeds = describeNeeding('zookeeper');
const PRINCIPAL = 'CN=pg-member';
const KEY_PASSWORD = 'key-secret';

describeWithNeeds('ZooKeeper security (TLS, set_acls, auth_data) on a real server', () => {
  let certs: TestCerts | undefined;
  let server: ZooKeeperServer | undefined;
  let encryptedKey = '';
  const open: Dcs[] = [];
  const raws: Client[] = [];
  let n = 0;

  const c = (): TestCerts => {
    if (!certs) throw new Error('no certificates');
    return certs;
  };
  const zk = (): ZooKeeperServer => {
    if (!server) throw new Error('no zookeeper');
    return server;
  };
  const secure = (): string => zk().secureEndpoint ?? '';
  const tls = (extra: Partial<ZooKeeperTls> = {}): ZooKeeperTls => ({
    cacert: c().caCert,
    cert: c().clientCert,
    key: c().clientKey,
    verify: true,
    ...extra,
  });

  beforeAll(async () => {
    certs = makeTestCerts();
    encryptedKey = join(certs.dir, 'client-encrypted.key');
    execFileSync('openssl', [
      'pkcs8',
      '-topk8',
      '-in',
      certs.clientKey,
      '-out',
      encryptedKey,
      '-passout',
      `pass:${KEY_PASSWORD}`,
    ]);
    server = await startZooKeeper({
      tls: { caCert: certs.caCert, serverCert: certs.serverCert, serverKey: certs.serverKey },
    });
  }, 90_000);

  afterAll(async () => {
    try {
      await server?.stop();
    } finally {
      certs?.cleanup();
    }
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((d) => d.close().catch(() => undefined)));
    for (const r of raws.splice(0)) r.close();
  });

  const dcs = (
    scope: string,
    security: ZooKeeperSecurity,
    extra: Partial<DcsOptions> = {},
    hosts = [secure()],
  ): ZooKeeperDcs => {
    const d = new ZooKeeperDcs(
      { namespace: 'zksec', scope, name: 'a', ttl: 10, retryTimeout: 4, ctl: false, ...extra },
      hosts,
      security,
    );
    open.push(d);
    return d;
  };

  /** A raw client: over TLS with the member's certificate, or plain and unauthenticated. */
  const raw = async (how: 'tls' | 'plain', digest?: string): Promise<Client> => {
    const client = await rawZkClient(how === 'tls' ? secure() : zk().endpoint, {
      ...(how === 'tls' ? { tls: tls() } : {}),
      ...(digest ? { digest } : {}),
    });
    raws.push(client);
    return client;
  };
  const call = zkCall;
  const codeOf = zkOutcome;
  const walk = znodeTree;

  it('connects over TLS with the client certificate; every znode it creates carries set_acls, and an unauthenticated client can neither delete /leader nor read it', async () => {
    const scope = `acl${++n}`;
    const acls = [{ scheme: 'x509', id: PRINCIPAL, perms: 31 }];
    const a = dcs(scope, { tls: tls(), acls });
    expect(await a.initialize(true, '7000000000000000001')).toBe(true);
    expect(await a.attemptToAcquireLeader()).toBe(true);
    expect(await a.touchMember('{"state":"running","role":"primary"}')).toBe(true);
    expect(await a.setConfigValue('{"ttl":10}')).toBe(true);
    expect(await a.setHistoryValue('[]')).toBe(true);
    expect(await a.setFailoverValue('{"leader":"a"}')).toBe(true);
    expect(await a.setSyncStateValue('{"leader":"a","sync_standby":null}')).not.toBe(false);
    expect(await a.writeStatus('{"optime":1}')).toBe(true);

    const t = await raw('tls');
    const znodes = await walk(t, '/zksec');
    const base = `/zksec/${scope}`;
    for (const key of [
      'initialize',
      'leader',
      'members/a',
      'config',
      'history',
      'failover',
      'sync',
      'status',
    ])
      expect(znodes).toContain(`${base}/${key}`);
    const acl = await Promise.all(znodes.map(async (p) => `${p} ${(await aclOf(t, p)).join(',')}`));
    // The namespace and the cluster's znode too: kazoo's makepath gives parents the same ACL.
    expect(acl).toEqual(znodes.map((p) => `${p} x509:${PRINCIPAL}:31`));

    const plain = await raw('plain');
    expect(await codeOf(call((done) => plain.remove(`${base}/leader`, -1, (e) => done(e, null))))).toBe(
      'NO_AUTH',
    );
    expect(await codeOf(call((done) => plain.getData(`${base}/leader`, (e, d) => done(e, d))))).toBe(
      'NO_AUTH',
    );
    expect(
      await codeOf(
        call((done) => plain.setData(`${base}/config`, Buffer.from('{}'), -1, (e, st) => done(e, st))),
      ),
    ).toBe('NO_AUTH');
    // Still the leader, and the CLI (read-only, same settings) reads the cluster over TLS.
    const cli = dcs(scope, { tls: tls(), acls }, { name: undefined, ctl: true });
    const view = await cli.getCluster();
    expect(view.leader?.name).toBe('a');
    expect(view.config?.data).toEqual({ ttl: 10 });
    // The adapter names the ACL when the server refuses it: a client without the certificate's identity.
    const outsider = dcs(scope, {}, { name: 'b' }, [zk().endpoint]);
    await expect(outsider.getCluster()).rejects.toThrow(
      /not allowed by the ACL of .*check zookeeper\.set_acls/,
    );
  }, 60_000);

  it('verifies the server against cacert unless verify is false, and says why a handshake failed', async () => {
    const scope = `verify${++n}`;
    const strict = dcs(scope, { tls: tls({ cacert: c().otherCaCert }) }, { retryTimeout: 3 });
    await expect(strict.getCluster()).rejects.toThrow(
      /connection timed out after 3 s \(TLS: 127\.0\.0\.1:\d+: .*certificate.*check zookeeper\.use_ssl/,
    );
    const lax = dcs(scope, { tls: tls({ cacert: c().otherCaCert, verify: false }) });
    expect((await lax.getCluster()).leader).toBeUndefined();
    // ZooKeeper needs a client certificate (ssl.clientAuth=need): without one the handshake fails.
    const anonymous = dcs(scope, { tls: { cacert: c().caCert, verify: true } }, { retryTimeout: 3 });
    await expect(anonymous.getCluster()).rejects.toThrow(/TLS: /);
  }, 60_000);

  it('reads an encrypted client key with key_password, and refuses a wrong password at once', async () => {
    const scope = `keypw${++n}`;
    const good = dcs(scope, { tls: tls({ key: encryptedKey, keyPassword: KEY_PASSWORD }) });
    expect(await good.attemptToAcquireLeader()).toBe(true);
    const t0 = performance.now();
    const wrong = dcs(scope, { tls: tls({ key: encryptedKey, keyPassword: 'nope' }) }, { name: 'b' });
    const e = await wrong.getCluster().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DcsError);
    expect(String(e)).toMatch(/the TLS settings cannot be used .*key_password/);
    expect(performance.now() - t0).toBeLessThan(3000);
    const missing = dcs(scope, { tls: tls({ cacert: join(c().dir, 'absent.pem') }) }, { name: 'b' });
    await expect(missing.getCluster()).rejects.toThrow(/cannot read zookeeper\.cacert .*absent\.pem/);
  }, 60_000);

  it('sends auth_data on connect: digest credentials open a namespace only that user may use', async () => {
    // An operator's namespace readable and writable by digest user pgw only (ZooKeeper's digest: sha1, base64).
    const hash = createHash('sha1').update('pgw:pgw-secret').digest('base64');
    const admin = await raw('plain');
    const ns = `digest${++n}`;
    await call((done) =>
      admin.create(
        `/${ns}`,
        null,
        [new zookeeper.ACL(zookeeper.Permission.ALL, new zookeeper.Id('digest', `pgw:${hash}`))],
        zookeeper.CreateMode.PERSISTENT,
        done,
      ),
    );
    const opts = { namespace: ns };
    const plainHost = [zk().endpoint];
    // Without the credentials nothing can be created in it.
    const stranger = dcs('main', {}, opts, plainHost);
    await expect(stranger.initialize(true, '7000000000000000002')).rejects.toThrow(
      /initialize failed: not allowed by the ACL of the znode; check zookeeper\.set_acls, auth_data/,
    );
    const member = dcs(
      'main',
      { auth: [{ scheme: 'digest', credential: 'pgw:pgw-secret' }] },
      opts,
      plainHost,
    );
    expect(await member.initialize(true, '7000000000000000002')).toBe(true);
    expect(await member.attemptToAcquireLeader()).toBe(true);
    const view = await member.getCluster();
    expect(view.initialize).toBe('7000000000000000002');
    expect(view.leader?.name).toBe('a');
    // The same credentials from a raw client see what the member wrote.
    const peer = await raw('plain', 'pgw:pgw-secret');
    expect(
      (
        await call<Buffer | null>((done) => peer.getData(`/${ns}/main/leader`, (e, d) => done(e, d)))
      )?.toString(),
    ).toBe('a');
    // A scheme the server has no provider for: it refuses the credentials and closes the connection.
    const bogus = dcs(
      'main',
      { auth: [{ scheme: 'bogus', credential: 'x' }] },
      { ...opts, name: 'b' },
      plainHost,
    );
    await expect(bogus.getCluster()).rejects.toThrow(
      /refused the credentials of zookeeper\.auth_data \(bogus\)/,
    );
  }, 60_000);
});
