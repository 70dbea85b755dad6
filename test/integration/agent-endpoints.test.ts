/**
 * The unsafe REST endpoints of pgwarden agents (src/agent/endpoints.ts) driven by real patronictl 3.0.2 and by
 * pgwarden's own CLI: switchover, pause/resume, reload, restart of a replica, PATCH /config with a stale version
 * (409 is not reachable from outside, so the merge/CAS result is checked instead), Patroni's 400/412 texts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { runCommand, type CommandResult } from '../harness/patroni.js';
import { waitFor } from '../harness/process.js';
import { createDcs } from '../../src/dcs/registry.js';

const available =
  existsSync('/usr/lib/postgresql/15/bin/initdb') &&
  existsSync('/usr/bin/etcd') &&
  existsSync('/usr/bin/patronictl') &&
  existsSync('dist/cli.js') &&
  process.getuid?.() === 0;

const PGWARDEN = resolve(import.meta.dirname, '..', '..', 'bin', 'run.js');

interface Answer {
  readonly status: number;
  readonly body: string;
}

async function call(port: number, method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    signal: AbortSignal.timeout(60_000),
  });
  return { status: res.status, body: await res.text() };
}

const show = (what: string, r: CommandResult): string =>
  `${what} exited ${String(r.code)}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

describe.skipIf(!available)('pgwarden agents: unsafe REST endpoints', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  const port = (name: string): number => {
    const n = c().nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n.restPort;
  };
  const pgwarden = (args: readonly string[]): Promise<CommandResult> =>
    runCommand(process.execPath, [PGWARDEN, '-c', c().nodes[0]?.configFile ?? '', ...args], {
      timeoutMs: 60_000,
      cwd: c().dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: c().dir, LANG: 'C.UTF-8' },
    });
  const diag = (): string => c().logTails(30);

  beforeAll(async () => {
    etcd = await startEtcd();
    cluster = await startAgentCluster({ etcdEndpoint: etcd.endpoint, ttl: 20, loopWait: 2, retryTimeout: 5 });
    await cluster.waitReady({ timeoutMs: 120_000 });
  }, 180_000);

  afterAll(async () => {
    try {
      await cluster?.stop();
    } finally {
      await etcd?.stop();
    }
  }, 120_000);

  it('answers Patroni 3.0.2 validation texts', async () => {
    const leader = (await c().primaries())[0] ?? '';
    const p = port(leader);
    expect(await call(p, 'POST', '/switchover', { candidate: 'pg2' })).toEqual({
      status: 400,
      body: 'Switchover could be performed only from a specific leader',
    });
    expect(await call(p, 'POST', '/failover', { leader })).toEqual({
      status: 400,
      body: 'Failover could be performed only to a specific candidate',
    });
    expect(await call(p, 'POST', '/switchover', { leader: 'nobody' })).toEqual({
      status: 412,
      body: 'leader name does not match',
    });
    expect(await call(p, 'POST', '/switchover', { leader, candidate: 'pg9' })).toEqual({
      status: 412,
      body: 'candidate does not exists',
    });
    expect(await call(p, 'POST', '/switchover', { leader, scheduled_at: '2030-01-01T10:00:00' })).toEqual({
      status: 400,
      body: 'Timezone information is mandatory for the scheduled switchover',
    });
    expect(
      await call(p, 'POST', '/switchover', { leader, scheduled_at: '2001-01-01T10:00:00+00:00' }),
    ).toEqual({ status: 422, body: 'Cannot schedule switchover in the past' });
    expect(await call(p, 'POST', '/restart', { role: 'leader' })).toEqual({
      status: 400,
      body: 'PostgreSQL role should be either primary or replica',
    });
    expect(await call(p, 'POST', '/restart', { postgres_version: '10' })).toEqual({
      status: 400,
      body: 'Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: 10',
    });
    expect(await call(p, 'POST', '/restart', { foo: 1 })).toEqual({
      status: 400,
      body: 'Unknown filter for the scheduled restart: foo',
    });
    expect(await call(p, 'POST', '/restart', { role: 'replica' })).toEqual({
      status: 503,
      body: 'restart conditions are not satisfied',
    });
    expect(await call(p, 'DELETE', '/restart')).toEqual({ status: 404, body: 'no restarts are scheduled' });
    expect(await call(p, 'DELETE', '/switchover')).toEqual({
      status: 404,
      body: 'no switchover is scheduled',
    });
    expect(await call(p, 'POST', '/reinitialize')).toEqual({
      status: 503,
      body: 'I am the leader, can not reinitialize',
    });
  });

  it('schedules and deletes a switchover and a restart', async () => {
    const leader = (await c().primaries())[0] ?? '';
    const p = port(leader);
    const at = new Date(Date.now() + 3600_000).toISOString().replace('Z', '+00:00');
    expect(await call(p, 'POST', '/switchover', { leader, scheduled_at: at })).toEqual({
      status: 202,
      body: 'Switchover scheduled',
    });
    expect(await call(p, 'DELETE', '/switchover')).toEqual({
      status: 200,
      body: 'scheduled switchover deleted',
    });
    expect(await call(p, 'POST', '/restart', { schedule: at })).toEqual({
      status: 202,
      body: 'Restart scheduled',
    });
    expect(await call(p, 'POST', '/restart', { schedule: at })).toEqual({
      status: 409,
      body: 'Another restart is already scheduled',
    });
    expect(await call(p, 'DELETE', '/restart')).toEqual({ status: 200, body: 'scheduled restart deleted' });
  });

  it('PATCH /config merges (null deletes) and PUT /config replaces', async () => {
    const p = port(c().nodes[1]?.name ?? '');
    const patched = await call(p, 'PATCH', '/config', { endpoint_test: { a: 1, b: 'x' } });
    expect(patched.status).toBe(200);
    const doc = JSON.parse(patched.body) as Record<string, unknown>;
    expect(doc['endpoint_test']).toEqual({ a: 1, b: 'x' });
    expect(doc['loop_wait']).toBe(2);
    const again = await call(p, 'PATCH', '/config', { endpoint_test: { a: null } });
    expect((JSON.parse(again.body) as Record<string, unknown>)['endpoint_test']).toEqual({ b: 'x' });
    const removed = await call(p, 'PATCH', '/config', { endpoint_test: null });
    expect(JSON.parse(removed.body)).not.toHaveProperty('endpoint_test');
    expect((await call(p, 'PATCH', '/config', {})).status).toBe(400);
    const current = JSON.parse((await call(p, 'GET', '/config')).body) as Record<string, unknown>;
    const put = await call(p, 'PUT', '/config', current);
    expect(put.status).toBe(200);
    expect(JSON.parse(put.body)).toEqual(current);
  });

  it('patronictl pause / resume', { timeout: 60_000 }, async () => {
    const p = await c().patronictl(['pause', c().scope]);
    expect(p.stdout, show('patronictl pause', p)).toContain('Success: cluster management is paused');
    await waitFor(
      'Maintenance mode in list',
      async () => (await c().patronictl(['list', c().scope])).stdout.includes('Maintenance mode: on'),
      20_000,
      500,
    );
    await waitFor(
      'member keys with "pause": true',
      async () => {
        const dcs = await createDcs(
          { kind: 'etcd3', hosts: [etcd?.endpoint ?? ''], protocol: 'http' },
          { namespace: c().namespace, scope: c().scope, ttl: 30, retryTimeout: 5, ctl: true },
        );
        try {
          const members = (await dcs.getCluster()).members;
          return members.length === 3 && members.every((m) => m.data.raw['pause'] === true);
        } finally {
          await dcs.close();
        }
      },
      20_000,
      500,
    );
    const leader = (await c().primaries())[0] ?? '';
    expect(await call(port(leader), 'POST', '/switchover', { leader })).toEqual({
      status: 400,
      body: 'Switchover is possible only to a specific candidate in a paused state',
    });
    const r = await c().patronictl(['resume', c().scope]);
    expect(r.stdout, show('patronictl resume', r)).toContain('Success: cluster management is resumed');
    await waitFor(
      'no Maintenance mode in list',
      async () => !(await c().patronictl(['list', c().scope])).stdout.includes('Maintenance mode'),
      20_000,
      500,
    );
  });

  it('patronictl reload and restart of a replica', { timeout: 90_000 }, async () => {
    const r = await c().patronictl(['reload', c().scope, '--force']);
    expect(r.code, show('patronictl reload', r)).toBe(0);
    expect(
      r.stdout.match(/Reload request received for member pg\d and will be processed within \d+ seconds/g),
    ).toHaveLength(3);
    const leader = (await c().primaries())[0] ?? '';
    const replica = c().nodes.find((n) => n.name !== leader)?.name ?? '';
    const before = (
      await c().psql(
        c().nodes.findIndex((n) => n.name === replica),
        'SELECT pg_postmaster_start_time()',
      )
    ).stdout;
    const s = await c().patronictl(['restart', c().scope, replica, '--force']);
    expect(s.stdout, show('patronictl restart', s)).toContain(`Success: restart on member ${replica}`);
    const after = (
      await c().psql(
        c().nodes.findIndex((n) => n.name === replica),
        'SELECT pg_postmaster_start_time()',
      )
    ).stdout;
    expect(after).not.toBe(before);
    await c().waitReady({ timeoutMs: 60_000 });
  });

  it('patronictl switchover --force --candidate moves the leader', { timeout: 90_000 }, async () => {
    const leader = await c().waitReady({ timeoutMs: 60_000 });
    const candidate = c().nodes.find((n) => n.name !== leader)?.name ?? '';
    const r = await c().patronictl(['switchover', c().scope, '--force', '--candidate', candidate]);
    expect(r.stdout, `${show('patronictl switchover', r)}\n${diag()}`).toContain(
      `Successfully switched over to "${candidate}"`,
    );
    expect(await c().primaries()).toEqual([candidate]);
    await c().waitReady({ timeoutMs: 60_000 });
  });

  it('pgwarden switchover --force --candidate moves the leader', { timeout: 90_000 }, async () => {
    const leader = await c().waitReady({ timeoutMs: 60_000 });
    const candidate = c().nodes.find((n) => n.name !== leader)?.name ?? '';
    const r = await pgwarden(['switchover', c().scope, '--force', '--candidate', candidate]);
    expect(r.code, `${show('pgwarden switchover', r)}\n${diag()}`).toBe(0);
    expect(r.stdout).toContain(`Successfully switched over to "${candidate}"`);
    expect(await c().primaries()).toEqual([candidate]);
  });

  it('reinitializes a replica', { timeout: 90_000 }, async () => {
    const leader = await c().waitReady({ timeoutMs: 60_000 });
    const replica = c().nodes.find((n) => n.name !== leader)?.name ?? '';
    expect(await call(port(replica), 'POST', '/reinitialize', { force: true })).toEqual({
      status: 200,
      body: 'reinitialize started',
    });
    const node = c().nodes.find((n) => n.name === replica);
    await waitFor(
      'reinitialize to finish',
      () => readFileSync(node?.logFile ?? '', 'utf8').includes('reinitialize finished'),
      60_000,
      500,
    );
    expect(existsSync(join(node?.dataDir ?? '', 'PG_VERSION'))).toBe(true);
    expect(await c().waitReady({ timeoutMs: 60_000 })).toBe(leader);
  });
});
