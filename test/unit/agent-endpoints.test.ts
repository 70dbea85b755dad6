/**
 * src/agent/endpoints.ts without PostgreSQL: Patroni's parsing helpers, and the handlers behind startApiServer with
 * Basic auth (401 before any handler runs) on an in-memory DCS (PATCH /config CAS conflict -> 409).
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  agentEndpoints,
  parseSchedule,
  postgresVersionToInt,
  type EndpointDeps,
} from '../../src/agent/endpoints.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import type { AgentStatus } from '../../src/api/status.js';
import type { Dcs } from '../../src/dcs/dcs.js';
import { MemoryDcs, MemoryStore } from '../../src/dcs/memory/memory-dcs.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');

describe('endpoint helpers', () => {
  it('parse_schedule', () => {
    expect(parseSchedule('2026-01-01T10:00:00', 'switchover', NOW)).toEqual({
      ok: false,
      code: 400,
      error: 'Timezone information is mandatory for the scheduled switchover',
    });
    expect(parseSchedule('2025-01-01T10:00+02:00', 'restart', NOW)).toEqual({
      ok: false,
      code: 422,
      error: 'Cannot schedule restart in the past',
    });
    expect(parseSchedule('tomorrow', 'restart', NOW)).toMatchObject({ ok: false, code: 422 });
    expect(parseSchedule('2026-01-02T10:00:00.5Z', 'restart', NOW)).toMatchObject({
      ok: true,
      iso: '2026-01-02T10:00:00.500000+00:00',
    });
    expect(parseSchedule('2026-01-02 10:00+0130', 'restart', NOW)).toMatchObject({
      ok: true,
      iso: '2026-01-02T10:00:00+01:30',
    });
  });

  it('postgres_version_to_int', () => {
    expect(postgresVersionToInt('9.5.3')).toBe(90503);
    expect(postgresVersionToInt('10.1')).toBe(100001);
    expect(postgresVersionToInt('10')).toBe(
      'Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: 10',
    );
    expect(postgresVersionToInt('a.b.c')).toBe('Invalid PostgreSQL version: a.b.c');
  });
});

describe('agent endpoints behind the API server', () => {
  let server: ApiServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  /** `restartTimeouts`: run the restart task itself, recording the timeout it restarts PostgreSQL with. */
  const setup = async (
    dcs: Dcs,
    pending = false,
    restarts: string[] = [],
    restartTimeouts?: number[],
  ): Promise<string> => {
    const deps: EndpointDeps = {
      name: 'pg1',
      dcs,
      loop: {
        lastCluster: undefined,
        haConfig: { loopWait: 1, primaryStartTimeout: 10 },
        wake: () => undefined,
        startRequested: (_kind, description, body) => {
          restarts.push(description);
          return restartTimeouts ? body({ cancelled: () => false }) : Promise.resolve(true);
        },
        cancelTask: () => undefined,
      },
      node: {
        role: () => 'master',
        serverVersion: () => Promise.resolve(150000),
        postmasterStartTime: () => Promise.resolve(undefined),
        isStarting: () => false,
        pendingRestart: () => pending,
        restart: (timeout) => {
          restartTimeouts?.push(timeout);
          return Promise.resolve(true);
        },
        reinitialize: () => Promise.resolve(true),
        reload: () => Promise.resolve(),
        setScheduledRestart: () => undefined,
      },
      probe: () => Promise.resolve(new Map()),
      log: { info: () => undefined, warning: () => undefined },
    };
    server = await startApiServer({
      listen: '127.0.0.1:0',
      auth: { username: 'admin', password: 'secret' },
      getStatus: () => ({}) as AgentStatus,
      getCluster: () => undefined,
      handlers: agentEndpoints(deps),
    });
    return `http://127.0.0.1:${server.port}`;
  };
  const auth = { authorization: `Basic ${Buffer.from('admin:secret').toString('base64')}` };

  it('401 without credentials; PATCH /config merges, and a lost CAS race is 409', async () => {
    const store = new MemoryStore();
    const dcs = new MemoryDcs(store, {
      namespace: '/service',
      scope: 'u',
      ttl: 30,
      retryTimeout: 10,
      ctl: true,
    });
    await dcs.setConfigValue('{"ttl":30,"loop_wait":10}');
    const base = await setup(dcs);

    const anon = await fetch(`${base}/reload`, { method: 'POST' });
    expect([anon.status, await anon.text()]).toEqual([401, 'no auth header received']);
    const reload = await fetch(`${base}/reload`, { method: 'POST', headers: auth });
    expect([reload.status, await reload.text()]).toEqual([202, 'reload scheduled']);

    const ok = await fetch(`${base}/config`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ pause: true }),
    });
    expect([ok.status, await ok.text()]).toEqual([200, '{"ttl": 30, "loop_wait": 10, "pause": true}']);
    expect((await dcs.getCluster()).config?.raw).toBe('{"ttl":30,"loop_wait":10,"pause":true}');

    // Another writer slips in between our read and our CAS write.
    const real = dcs.getCluster.bind(dcs);
    dcs.getCluster = async () => {
      const c = await real();
      await dcs.setConfigValue('{"ttl":30}');
      return c;
    };
    const conflict = await fetch(`${base}/config`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ pause: null }),
    });
    expect(conflict.status).toBe(409);
    await dcs.close();
  });

  it('PATCH and PUT /config refuse a setting pgwarden does not implement (400, the dotted path), writing nothing', async () => {
    const dcs = new MemoryDcs(new MemoryStore(), {
      namespace: '/service',
      scope: 'u',
      ttl: 30,
      retryTimeout: 10,
      ctl: true,
    });
    await dcs.setConfigValue('{"ttl":30}');
    const base = await setup(dcs);
    const send = async (method: string, body: unknown): Promise<[number, string]> => {
      const r = await fetch(`${base}/config`, {
        method,
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return [r.status, await r.text()];
    };
    const [patchCode, patchText] = await send('PATCH', { primary_stop_timeout: 5 });
    expect(patchCode).toBe(400);
    expect(patchText).toMatch(/^primary_stop_timeout: /);
    const [putCode, putText] = await send('PUT', { ttl: 30, postgresql: { pg_ctl_timeout: 30 } });
    expect(putCode).toBe(400);
    expect(putText).toMatch(/^postgresql\.pg_ctl_timeout: /);
    expect((await dcs.getCluster()).config?.raw).toBe('{"ttl":30}');
    expect(await send('PATCH', { failsafe_mode: false, ttl: 20 })).toEqual([
      200,
      '{"ttl": 20, "failsafe_mode": false}',
    ]);
    await dcs.close();
  });

  it('POST /restart with restart_pending restarts only while a restart is pending', async () => {
    const dcs = new MemoryDcs(new MemoryStore(), {
      namespace: '/service',
      scope: 'u',
      ttl: 30,
      retryTimeout: 10,
      ctl: true,
    });
    const post = async (base: string): Promise<[number, string]> => {
      const r = await fetch(`${base}/restart`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ restart_pending: true }),
      });
      return [r.status, await r.text()];
    };
    const restarts: string[] = [];
    expect(await post(await setup(dcs, false, restarts))).toEqual([
      503,
      'restart conditions are not satisfied',
    ]);
    expect(restarts).toEqual([]);
    await server?.close();
    expect(await post(await setup(dcs, true, restarts))).toEqual([200, 'restarted successfully']);
    expect(restarts).toEqual(['restart']);
    await dcs.close();
  });

  it("POST /restart's timeout is utils.py parse_int(str(value), 's'): units, hex, exponents, Python's rounding", async () => {
    const dcs = new MemoryDcs(new MemoryStore(), {
      namespace: '/service',
      scope: 'u',
      ttl: 30,
      retryTimeout: 10,
      ctl: true,
    });
    const timeouts: number[] = [];
    const base = await setup(dcs, false, [], timeouts);
    const post = async (timeout: unknown): Promise<[number, string]> => {
      const r = await fetch(`${base}/restart`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ timeout }),
      });
      return [r.status, await r.text()];
    };
    const accepted: readonly (readonly [unknown, number])[] = [
      [30, 30],
      ['45', 45],
      [' 2min ', 120],
      ['1500ms', 2], // 1.5 s to even
      ['2500 ms', 2],
      ['0x10', 16],
      ['1e2', 100],
      [2.5, 2],
    ];
    for (const [value, seconds] of accepted) {
      expect(await post(value)).toEqual([200, 'restarted successfully']);
      expect(timeouts.pop()).toBe(seconds);
    }
    const bad = 'Timeout should be a positive number of seconds';
    for (const value of [0, -5, '400ms', 'soon', '5 parsecs', true, null, [30], { s: 30 }]) {
      expect(await post(value)).toEqual([400, bad]);
    }
    expect(timeouts).toEqual([]);
    await dcs.close();
  });

  it('a restart scheduled past 24.8 days (setTimeout limit) waits; DELETE /restart withdraws it', async () => {
    const dcs = new MemoryDcs(new MemoryStore(), {
      namespace: '/service',
      scope: 'u',
      ttl: 30,
      retryTimeout: 10,
      ctl: true,
    });
    const restarts: string[] = [];
    const base = await setup(dcs, false, restarts);
    const schedule = new Date(Date.now() + 30 * 86_400_000).toISOString();
    const r = await fetch(`${base}/restart`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ schedule }),
    });
    expect([r.status, await r.text()]).toEqual([202, 'Restart scheduled']);
    // An overflowing setTimeout fires after 1 ms; give it far more than that.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(restarts).toEqual([]);
    const del = await fetch(`${base}/restart`, { method: 'DELETE', headers: auth });
    expect([del.status, await del.text()]).toEqual([200, 'scheduled restart deleted']);
    await dcs.close();
  });
});
