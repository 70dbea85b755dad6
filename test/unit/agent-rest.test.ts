/**
 * The agent's REST wiring (src/agent/rest.ts) on 127.0.0.1 with stand-ins for the node, the loop and the DCS: a
 * reload (what SIGHUP and POST /reload run) applies new restapi credentials, allowlist and server_tokens to the
 * running server, and moves it when restapi.listen changes. GET /metrics answers from the same status as GET /patroni
 * and, like it, is not subject to the allowlist or authentication.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { startAgentApi, type AgentApi, type AgentRestDeps } from '../../src/agent/rest.js';
import type { PostgresNode } from '../../src/agent/node.js';
import { agentConfigFromTree, type AgentConfig } from '../../src/config/agent-config.js';
import type { ConfigTree } from '../../src/config/local-config.js';
import type { Dcs } from '../../src/dcs/dcs.js';
import type { HaLoop } from '../../src/ha/loop.js';
import { freePort } from '../harness/process.js';

function configFor(port: number, restapiExtra: string): AgentConfig {
  const yml = `scope: demo
name: pg1
restapi:
  listen: 127.0.0.1:${port}
  connect_address: 127.0.0.1:${port}
${restapiExtra}
etcd3:
  hosts: 127.0.0.1:2379
postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: /nonexistent/data
  authentication:
    replication:
      username: replicator
      password: rep-pass
    superuser:
      username: postgres
      password: pg-pass
`;
  return agentConfigFromTree(parseYaml(yml) as ConfigTree, 'test.yml').config;
}

const reloads: string[] = [];
let api: AgentApi | undefined;

afterEach(async () => {
  await api?.close();
  api = undefined;
  reloads.length = 0;
});

function deps(config: AgentConfig): AgentRestDeps {
  return {
    config,
    node: {
      currentState: 'stopped',
      currentRole: 'replica',
      memberTags: {},
      pendingRestart: false,
      reloadPostgresql: async () => {
        reloads.push('postgresql');
      },
    } as unknown as PostgresNode,
    loop: {
      lastCluster: undefined,
      wake: () => undefined,
      haConfig: { ttl: 30, maximumLagOnFailover: 1048576 },
      leaderLockUntil: () => undefined,
      dcsLastSeen: 1795316134,
      watchdogFailed: false,
      failsafeIsActive: () => false,
      nextRun: 0,
    } as unknown as HaLoop,
    dcs: {} as Dcs,
    onError: () => undefined,
    reloadConfig: () => reloads.push('config'),
  };
}

const basic = (u: string, p: string): Record<string, string> => ({
  authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`,
});

async function postReload(
  port: number,
  headers: Record<string, string> = {},
): Promise<[number, string, string]> {
  const r = await fetch(`http://127.0.0.1:${port}/reload`, { method: 'POST', headers });
  return [r.status, await r.text(), r.headers.get('server') ?? ''];
}

describe('agent REST reload', () => {
  it('new credentials, allowlist and server_tokens apply without a restart', async () => {
    const port = await freePort();
    const auth = '  authentication:\n    username: admin\n    password: old';
    api = await startAgentApi(deps(configFor(port, auth)));
    expect(await postReload(port, basic('admin', 'old'))).toEqual([
      202,
      'reload scheduled',
      'BaseHTTP/0.6 Python/3.11.2',
    ]);
    await api.reload(
      configFor(
        port,
        '  authentication:\n    username: admin\n    password: new\n  server_tokens: ProductOnly',
      ),
    );
    expect((await postReload(port, basic('admin', 'old'))).slice(0, 2)).toEqual([401, 'not authenticated']);
    expect(await postReload(port, basic('admin', 'new'))).toEqual([202, 'reload scheduled', 'Patroni']);
    await api.reload(configFor(port, '  allowlist: [10.0.0.0/8]'));
    expect((await postReload(port)).slice(0, 2)).toEqual([403, 'Access is denied']);
    await expect.poll(() => reloads.filter((r) => r === 'postgresql').length).toBe(2);
  });

  it('a new restapi.listen moves the server', async () => {
    const [first, second] = [await freePort(), await freePort()];
    api = await startAgentApi(deps(configFor(first, '')));
    expect((await postReload(first))[0]).toBe(202);
    await api.reload(configFor(second, ''));
    expect((await postReload(second))[0]).toBe(202);
    await expect(fetch(`http://127.0.0.1:${first}/reload`, { method: 'POST' })).rejects.toThrow();
  });
});

describe('agent GET /metrics', () => {
  it('Prometheus text from the status document, open like GET /patroni under allowlist and authentication', async () => {
    const port = await freePort();
    const restapi = '  allowlist: [10.0.0.0/8]\n  authentication:\n    username: admin\n    password: secret';
    api = await startAgentApi(deps(configFor(port, restapi)));
    const r = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain');
    const body = await r.text();
    // PostgreSQL is stopped here: the status says so, and the metrics with it.
    const patroni = (await (await fetch(`http://127.0.0.1:${port}/patroni`)).json()) as Record<
      string,
      unknown
    >;
    expect(patroni).toMatchObject({ state: 'stopped', role: 'replica', dcs_last_seen: 1795316134 });
    expect(body).toContain('patroni_postgres_running{scope="demo",name="pg1"} 0\n');
    expect(body).toContain('patroni_replica{scope="demo",name="pg1"} 1\n');
    expect(body).toContain('patroni_dcs_last_seen{scope="demo",name="pg1"} 1795316134\n');
    expect(body).toContain('patroni_postgres_state{scope="demo",name="pg1"} 12\n');
    expect(body).toContain('patroni_cluster_unlocked{scope="demo",name="pg1"} 1\n');
    // The unsafe endpoints stay behind the allowlist.
    expect((await postReload(port, basic('admin', 'secret'))).slice(0, 2)).toEqual([403, 'Access is denied']);
    // HEAD /metrics is a health check in Patroni too (do_HEAD): a bare status.
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'HEAD' })).status).toBe(503);
  });
});
