/**
 * POST /failsafe end to end without PostgreSQL: the leader's caller (src/agent/failsafe.ts) against the handler
 * (src/agent/routes/failsafe.ts) behind the API server with Basic auth, plus a refused port and a member that never
 * answers (Patroni 4.1.4's `call_failsafe_member`, `do_POST_failsafe`, `update_failsafe`).
 */
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { agentEndpoints, type EndpointDeps } from '../../src/agent/endpoints.js';
import { createFailsafeCaller } from '../../src/agent/failsafe.js';
import { failsafeSlots } from '../../src/agent/routes/failsafe.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import type { AgentStatus } from '../../src/api/status.js';
import { agentConfigFromTree, type AgentConfig } from '../../src/config/agent-config.js';
import type { ConfigTree } from '../../src/config/tree.js';
import { MemoryDcs, MemoryStore } from '../../src/dcs/memory/memory-dcs.js';
import type { FailsafeLeader } from '../../src/ha/snapshot.js';

const NODE_YML = `
scope: lab
name: pg1
restapi:
  listen: 127.0.0.1:8008
  connect_address: 127.0.0.1:8008
  authentication: {username: admin, password: secret}
etcd3:
  hosts: 127.0.0.1:2379
postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: /tmp/pg1
  authentication:
    superuser: {username: postgres, password: pw}
    replication: {username: rep, password: pw}
`;

const leaderConfig = (): AgentConfig =>
  agentConfigFromTree(parseYaml(NODE_YML, { version: '1.1' }) as ConfigTree, 'test').config;

interface Member {
  role: string;
  failsafeMode: boolean;
  lsn: bigint | undefined;
  readonly contacts: FailsafeLeader[];
}

const servers: ApiServer[] = [];
const sockets: net.Server[] = [];
const connections: net.Socket[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const c of connections.splice(0)) c.destroy();
  for (const s of sockets.splice(0)) await new Promise((r) => s.close(r));
});

/** A member's REST API with the agent's handlers; `state` says what its node and loop answer. */
async function memberApi(state: Member): Promise<string> {
  const deps: EndpointDeps = {
    name: 'pg2',
    dcs: new MemoryDcs(new MemoryStore(), {
      namespace: '/service',
      scope: 'lab',
      ttl: 30,
      retryTimeout: 10,
      ctl: true,
    }),
    loop: {
      lastCluster: undefined,
      get haConfig() {
        return { loopWait: 10, primaryStartTimeout: 300, failsafeMode: state.failsafeMode };
      },
      failsafeContactedBy: (leader) => {
        state.contacts.push(leader);
        return state.lsn;
      },
      wake: () => undefined,
      startRequested: () => Promise.resolve(true),
      cancelTask: () => undefined,
    },
    node: {
      role: () => state.role,
      serverVersion: () => Promise.resolve(150000),
      postmasterStartTime: () => Promise.resolve(undefined),
      isStarting: () => false,
      pendingRestart: () => false,
      restart: () => Promise.resolve(true),
      reinitialize: () => Promise.resolve(true),
      reload: () => Promise.resolve(),
      setScheduledRestart: () => undefined,
    },
    probe: () => Promise.resolve(new Map()),
    log: { info: () => undefined, warning: () => undefined },
  };
  const server = await startApiServer({
    listen: '127.0.0.1:0',
    auth: { username: 'admin', password: 'secret' },
    getStatus: () => ({}) as AgentStatus,
    getCluster: () => undefined,
    handlers: agentEndpoints(deps),
  });
  servers.push(server);
  return `http://127.0.0.1:${server.port}/patroni`;
}

/** A port that accepts connections and never answers. */
async function silentPort(): Promise<number> {
  const s = net.createServer((c) => connections.push(c));
  sockets.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const addr = s.address();
  return typeof addr === 'object' && addr ? addr.port : 0;
}

/** A port nobody listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const addr = s.address();
  await new Promise((r) => s.close(r));
  return typeof addr === 'object' && addr ? addr.port : 0;
}

const replica = (): Member => ({ role: 'replica', failsafeMode: true, lsn: 50331800n, contacts: [] });

describe('POST /failsafe from the leader to the members', () => {
  it('a replica accepts, remembers the leader and sends its position; a primary and failsafe off do not', async () => {
    const accepting = replica();
    const primary: Member = { ...replica(), role: 'master' };
    const off: Member = { ...replica(), failsafeMode: false };
    const urls = {
      pg2: await memberApi(accepting),
      pg3: await memberApi(primary),
      pg4: await memberApi(off),
    };
    const logs: string[] = [];
    const call = createFailsafeCaller(leaderConfig, {
      info: (t) => logs.push(`INFO: ${t}`),
      warning: (t) => logs.push(`WARNING: ${t}`),
    });
    const answers = await call(Object.entries(urls).map(([name, apiUrl]) => ({ name, apiUrl })));
    expect(answers).toEqual([
      { name: 'pg2', accepted: true, lsn: 50331800n },
      { name: 'pg3', accepted: false },
      { name: 'pg4', accepted: false },
    ]);
    expect(accepting.contacts).toEqual([
      {
        name: 'pg1',
        apiUrl: 'http://127.0.0.1:8008/patroni',
        connUrl: 'postgres://127.0.0.1:5432/postgres',
      },
    ]);
    expect(primary.contacts).toEqual([]);
    expect(off.contacts).toEqual([]);
    expect(logs).toContain(`INFO: Got response from pg2 ${urls.pg2}: Accepted`);
    expect(logs).toContain(`INFO: Got response from pg3 ${urls.pg3}: Running as a leader`);
  });

  it("sends the leader's slot positions as JSON numbers; the replica remembers them with the leader", async () => {
    const m = replica();
    const slots = { dcs_slot_0: 50331800n, dcs_slot_1: 50331648n, pg1: 50332000n };
    const call = createFailsafeCaller(leaderConfig, { info: () => undefined, warning: () => undefined }, () =>
      Promise.resolve(slots),
    );
    expect(await call([{ name: 'pg2', apiUrl: await memberApi(m) }])).toEqual([
      { name: 'pg2', accepted: true, lsn: 50331800n },
    ]);
    expect(m.contacts).toEqual([
      {
        name: 'pg1',
        apiUrl: 'http://127.0.0.1:8008/patroni',
        connUrl: 'postgres://127.0.0.1:5432/postgres',
        slots,
      },
    ]);
  });

  it('slots that cannot be read are left out of the body (a warning); the member still accepts', async () => {
    const m = replica();
    const warnings: string[] = [];
    const call = createFailsafeCaller(
      leaderConfig,
      { info: () => undefined, warning: (t) => warnings.push(t) },
      () => Promise.reject(new Error('connection refused')),
    );
    expect(await call([{ name: 'pg2', apiUrl: await memberApi(m) }])).toEqual([
      { name: 'pg2', accepted: true, lsn: 50331800n },
    ]);
    expect(m.contacts).toHaveLength(1);
    expect(m.contacts[0]).not.toHaveProperty('slots');
    expect(warnings).toEqual(['failsafe: could not read the replication slots: connection refused']);
  });

  it('slots read too slowly do not hold up the check: the body goes without them (a warning)', async () => {
    const m = replica();
    const warnings: string[] = [];
    const call = createFailsafeCaller(
      leaderConfig,
      { info: () => undefined, warning: (t) => warnings.push(t) },
      () => new Promise(() => undefined),
      undefined,
      50,
    );
    expect(await call([{ name: 'pg2', apiUrl: await memberApi(m) }])).toEqual([
      { name: 'pg2', accepted: true, lsn: 50331800n },
    ]);
    expect(m.contacts[0]).not.toHaveProperty('slots');
    expect(warnings).toEqual([
      'failsafe: the replication slots were not read within 50 ms; sent without them',
    ]);
  });

  it('a replica whose position is unknown answers Accepted without the lsn header', async () => {
    const m: Member = { ...replica(), lsn: undefined };
    const call = createFailsafeCaller(leaderConfig, { info: () => undefined, warning: () => undefined });
    expect(await call([{ name: 'pg2', apiUrl: await memberApi(m) }])).toEqual([
      { name: 'pg2', accepted: true },
    ]);
  });

  it('without the credentials the member refuses (401): not accepted', async () => {
    const m = replica();
    const url = await memberApi(m);
    const noAuth = (): AgentConfig => {
      const c = leaderConfig();
      const { authentication: _drop, ...restapi } = c.restapi;
      return { ...c, restapi };
    };
    const call = createFailsafeCaller(noAuth, { info: () => undefined, warning: () => undefined });
    expect(await call([{ name: 'pg2', apiUrl: url }])).toEqual([{ name: 'pg2', accepted: false }]);
    expect(m.contacts).toEqual([]);
  });

  it('a refused connection and a member that never answers: not accepted, within the timeout and its retry', async () => {
    const warnings: string[] = [];
    const call = createFailsafeCaller(
      leaderConfig,
      { info: () => undefined, warning: (t) => warnings.push(t) },
      undefined,
      300,
    );
    const started = Date.now();
    const answers = await call([
      { name: 'pg5', apiUrl: `http://127.0.0.1:${await closedPort()}/patroni` },
      { name: 'pg6', apiUrl: `http://127.0.0.1:${await silentPort()}/patroni` },
    ]);
    expect(answers).toEqual([
      { name: 'pg5', accepted: false },
      { name: 'pg6', accepted: false },
    ]);
    // Two attempts of 300 ms each for the silent one, in parallel with the other; generous for a loaded machine.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(warnings).toHaveLength(2);
    expect(warnings.find((w) => w.startsWith('Request failed to pg6: POST '))).toMatch(
      /no answer within 300 ms/,
    );
  });
});

describe("POST /failsafe's slots (the handler's parsing)", () => {
  it('keeps the entries that are positions; anything but an object is no slots', () => {
    expect(failsafeSlots({ a: 16777216, b: '33554432', c: 'x', d: null })).toEqual({
      a: 16777216n,
      b: 33554432n,
    });
    expect(failsafeSlots({})).toEqual({});
    expect(failsafeSlots(undefined)).toBeUndefined();
    expect(failsafeSlots([1, 2])).toBeUndefined();
    expect(failsafeSlots('{"a":1}')).toBeUndefined();
  });
});
