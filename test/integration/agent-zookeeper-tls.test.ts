/**
 * Two pgwarden agents on real PostgreSQL 15 and a ZooKeeper 3.8 that they reach only over TLS (client certificate,
 * CA-verified server) with `set_acls`: the cluster bootstraps, every znode the agents created carries the ACL, an
 * unauthenticated client can neither delete `/leader` nor read it, and `pgwarden list` with the same configuration
 * file reads the secured ensemble.
 */
import { chmodSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Client } from 'node-zookeeper-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { runCommand } from '../harness/patroni.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { startZooKeeper, type ZooKeeperServer } from '../harness/zookeeper.js';
import { makeTestCerts, type TestCerts } from '../helpers/tls-certs.js';
import { aclOf, rawZkClient, zkCall, zkOutcome, znodeTree } from '../helpers/zk-raw.js';

const PGWARDEN = resolve(import.meta.dirname, '..', '..', 'bin', 'run.js');
const PRINCIPAL = 'CN=pg-member';

const describeWithNeeds = describeNeeding('postgres', 'zookeeper', 'bundle', 'root');

describeWithNeeds('pgwarden agents and CLI on a TLS-only ZooKeeper with set_acls', () => {
  let certs: TestCerts | undefined;
  let zk: ZooKeeperServer | undefined;
  let cluster: AgentCluster | undefined;
  const raws: Client[] = [];
  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  const tc = (): TestCerts => {
    if (!certs) throw new Error('no certificates');
    return certs;
  };

  beforeAll(async () => {
    certs = makeTestCerts();
    // The agents run as postgres: the test's throw-away certificates and keys must be readable by it.
    chmodSync(certs.dir, 0o755);
    for (const f of [certs.caCert, certs.clientCert, certs.clientKey]) chmodSync(f, 0o644);
    zk = await startZooKeeper({
      tls: { caCert: certs.caCert, serverCert: certs.serverCert, serverKey: certs.serverKey },
    });
  }, 90_000);

  afterAll(async () => {
    for (const r of raws.splice(0)) r.close();
    try {
      await cluster?.stop();
    } finally {
      try {
        await zk?.stop();
      } finally {
        certs?.cleanup();
      }
    }
  });

  it('bootstraps over TLS; the znodes carry set_acls; an unauthenticated client cannot delete /leader; pgwarden list reads it', async () => {
    const secure = zk?.secureEndpoint ?? '';
    expect(secure).not.toBe('');
    const t0 = Date.now();
    cluster = await startAgentCluster({
      dcs: 'zookeeper',
      etcdEndpoint: secure,
      nodes: 2,
      scope: 'zktls',
      namespace: '/secured',
      ttl: 20,
      loopWait: 2,
      retryTimeout: 5,
      dcsExtra: [
        'use_ssl: true',
        `cacert: ${tc().caCert}`,
        `cert: ${tc().clientCert}`,
        `key: ${tc().clientKey}`,
        'set_acls:',
        `  '${PRINCIPAL}': [ALL]`,
      ].join('\n'),
    });
    const leader = await c().waitReady({ timeoutMs: 120_000 });
    console.log(`zookeeper over TLS: 1 leader + 1 streaming replica after ${Date.now() - t0} ms`);

    const tls = { cacert: tc().caCert, cert: tc().clientCert, key: tc().clientKey, verify: true };
    const member = await rawZkClient(secure, { tls });
    raws.push(member);
    const base = '/secured/zktls';
    const znodes = await znodeTree(member, '/secured');
    for (const key of ['initialize', 'config', 'leader', 'members/pg1', 'members/pg2', 'status'])
      expect(znodes).toContain(`${base}/${key}`);
    const acls = await Promise.all(znodes.map(async (p) => `${p} ${(await aclOf(member, p)).join(',')}`));
    expect(acls).toEqual(znodes.map((p) => `${p} x509:${PRINCIPAL}:31`));

    const outsider = await rawZkClient(zk?.endpoint ?? '');
    raws.push(outsider);
    expect(
      await zkOutcome(zkCall((done) => outsider.remove(`${base}/leader`, -1, (e) => done(e, null)))),
    ).toBe('NO_AUTH');
    expect(await zkOutcome(zkCall((done) => outsider.getData(`${base}/leader`, (e, d) => done(e, d))))).toBe(
      'NO_AUTH',
    );
    const held = await zkCall<Buffer | null>((done) =>
      member.getData(`${base}/leader`, (e, d) => done(e, d)),
    );
    expect(held?.toString()).toBe(leader);

    // The CLI, as root, with the first node's configuration file: the same zookeeper section, TLS and all.
    const list = await waitFor(
      'pgwarden list to show the leader and a streaming replica',
      async () => {
        const r = await runCommand(
          process.execPath,
          [PGWARDEN, '-c', c().nodes[0]?.configFile ?? '', 'list'],
          {
            timeoutMs: 60_000,
            cwd: c().dir,
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: c().dir, LANG: 'C.UTF-8' },
          },
        );
        return r.code === 0 && /\|\s*Leader\s*\|\s*running\s*\|/.test(r.stdout) && /streaming/.test(r.stdout)
          ? r
          : false;
      },
      30_000,
      500,
    );
    console.log(list.stdout);
    expect(list.stdout).toContain(`| ${leader} `);
    expect(list.stdout).toContain('Cluster: zktls');
    // Without the settings (--dcs-url replaces the section) the plain port lets the CLI in, the ACL does not.
    const denied = await runCommand(
      process.execPath,
      [PGWARDEN, '-d', `zookeeper://${zk?.endpoint ?? ''}/secured`, 'list', 'zktls'],
      { timeoutMs: 60_000, cwd: c().dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: c().dir } },
    );
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/not allowed by the ACL/);
  }, 180_000);
});
