/**
 * The REST API's security settings on a real 3-member cluster (etcd3): HTTPS with `verify_client: required` and an
 * `allowlist` of 127.0.0.1. A client with a valid certificate connecting from 127.0.0.5 (outside the allowlist) gets
 * 403 for every unsafe call and changes nothing; then the leader is killed and the new leader is elected after
 * comparing positions with the other replica over HTTPS, presenting its member certificate (Patroni's peer
 * requests), so the lag comparison is not skipped.
 */
import { chmodSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { httpsRequest, startAgentCluster, type AgentCluster, type RestapiTls } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { makeTestCerts, type TestCerts } from '../helpers/tls-certs.js';

const OUTSIDE = '127.0.0.5';

describeNeeding(
  'postgres',
  'etcd',
  'bundle',
  'root',
)('REST API allowlist and client certificates', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  let certs: TestCerts | undefined;
  let tls: RestapiTls;

  beforeAll(async () => {
    certs = makeTestCerts();
    // The agents run as postgres: the throw-away CA's files must be readable by them.
    chmodSync(certs.dir, 0o755);
    for (const f of readdirSync(certs.dir)) chmodSync(join(certs.dir, f), 0o644);
    tls = {
      certfile: certs.serverCert,
      keyfile: certs.serverKey,
      cafile: certs.caCert,
      verifyClient: 'required',
      allowlist: ['127.0.0.1'],
      client: { cert: certs.clientCert, key: certs.clientKey },
    };
    etcd = await startEtcd();
    cluster = await startAgentCluster({
      etcdEndpoint: etcd.endpoint,
      scope: 'restsec',
      ttl: 20,
      loopWait: 2,
      retryTimeout: 5,
      restapiTls: tls,
    });
    await cluster.waitReady({ timeoutMs: 120_000 });
  }, 180_000);

  afterAll(async () => {
    try {
      await cluster?.stop();
    } finally {
      await etcd?.stop();
      certs?.cleanup();
    }
  }, 90_000);

  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  const indexOf = (name: string): number => c().nodes.findIndex((n) => n.name === name);

  it('a client outside the allowlist gets 403 for every unsafe call, and nothing changes', async () => {
    const leader = await c().waitReady({ timeoutMs: 60_000 });
    const li = indexOf(leader);
    const candidate = c().nodes.find((n) => n.name !== leader)?.name ?? '';
    const port = c().nodes[li]?.restPort ?? 0;
    const configBefore = (await c().rest(li, '/config')).body;
    const calls: readonly [string, string, unknown][] = [
      ['POST', '/switchover', { leader, candidate }],
      ['POST', '/failover', { candidate }],
      ['POST', '/restart', {}],
      ['POST', '/reinitialize', {}],
      ['POST', '/reload', {}],
      ['PATCH', '/config', { ttl: 99, postgresql: { parameters: { archive_command: 'false' } } }],
      ['PUT', '/config', { ttl: 99 }],
      ['DELETE', '/switchover', undefined],
    ];
    for (const [method, path, body] of calls) {
      for (const target of c().nodes.map((_n, i) => i)) {
        const r = await httpsRequest({
          port: c().nodes[target]?.restPort ?? 0,
          path,
          method,
          tls,
          localAddress: OUTSIDE,
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        expect(r.status, `${method} ${path} on ${c().nodes[target]?.name}: ${r.body}`).toBe(403);
      }
    }
    // The same certificate from inside the allowlist is let through (the 403 above is the allowlist, not TLS).
    const inside = await httpsRequest({ port, path: '/reload', method: 'POST', tls, body: '{}' });
    expect(inside.status, inside.body).toBe(202);
    expect((await c().rest(li, '/config')).body).toBe(configBefore);
    expect(await c().waitReady({ timeoutMs: 30_000 })).toBe(leader);
  }, 120_000);

  it('after the leader is killed, the new leader compares positions with the other replica over HTTPS', async () => {
    const leader = await c().waitReady({ timeoutMs: 60_000 });
    const li = indexOf(leader);
    const replicas = c()
      .nodes.map((n, i) => ({ n, i }))
      .filter(({ i }) => i !== li);
    const logLength = new Map(replicas.map(({ n }) => [n.name, readFileSync(n.logFile, 'utf8').length]));
    await c().kill9(li);
    const next = await waitFor(
      'a new leader',
      async () => (await c().primaries()).find((p) => p !== leader),
      90_000,
      250,
    );
    const winner = replicas.find(({ n }) => n.name === next);
    const other = replicas.find(({ n }) => n.name !== next);
    if (!winner || !other) throw new Error(`unexpected leader ${next}`);
    const log = readFileSync(winner.n.logFile, 'utf8').slice(logLength.get(winner.n.name) ?? 0);
    expect(log, log.slice(-4000)).toMatch(new RegExp(`Got response from ${other.n.name} https://`));
    expect(log, log.slice(-4000)).not.toMatch(new RegExp(`Request failed to ${other.n.name}`));
    c().start(li);
    expect(await c().waitReady({ timeoutMs: 120_000 })).toBe(next);
  }, 240_000);
});
