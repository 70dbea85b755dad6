/**
 * The write-side commands' flows and messages (patronictl 3.0.2's), against an in-memory DCS and stub member REST
 * APIs on 127.0.0.1: what is printed, what each member is asked, what is written to the DCS, and what is refused.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryDcs, MemoryStore } from '../../src/dcs/memory/memory-dcs.js';
import type { Dcs } from '../../src/dcs/dcs.js';
import type { Cluster } from '../../src/model/cluster.js';
import { parseScheduled, ctlTimestamp, type ActionIo } from '../../src/ctl/actions.js';
import { togglePause } from '../../src/ctl/pause.js';
import { reloadMembers } from '../../src/ctl/reload.js';
import { postgresVersionToInt, restartMembers } from '../../src/ctl/restart.js';
import { switchover } from '../../src/ctl/switchover.js';
import { editConfig } from '../../src/ctl/edit-config.js';
import { flush } from '../../src/ctl/flush.js';
import { reinit } from '../../src/ctl/reinit.js';
import { removeCluster } from '../../src/ctl/remove.js';
import { scriptedPrompter, terminalPrompter, type Prompter } from '../../src/prompts/index.js';
import { unifiedDiff } from '../../src/render/unified-diff.js';
import { UserError } from '../../src/config/errors.js';

const NAMES = ['pg1', 'pg2', 'pg3'] as const;
const PREFIX = '/service/demo/';

interface Call {
  readonly member: string;
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
}
type Handler = (call: Call) => { status: number; body: string };

let handler: Handler = () => ({ status: 200, body: 'ok' });
let calls: Call[] = [];
const servers = new Map<string, Server>();
const ports = new Map<string, number>();

beforeAll(async () => {
  for (const name of NAMES) {
    const server = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        const call: Call = {
          member: name,
          method: req.method ?? '',
          path: req.url ?? '',
          body: text ? (JSON.parse(text) as unknown) : undefined,
        };
        calls.push(call);
        const r = handler(call);
        res.writeHead(r.status);
        res.end(r.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.set(name, server);
    ports.set(name, (server.address() as AddressInfo).port);
  }
});

afterAll(async () => {
  await Promise.all([...servers.values()].map((s) => new Promise((r) => s.close(r))));
});

const CONFIG = {
  loop_wait: 10,
  maximum_lag_on_failover: 1048576,
  postgresql: {
    parameters: { hot_standby: 'on', max_replication_slots: 10, max_wal_senders: 10, wal_level: 'replica' },
    use_pg_rewind: true,
  },
  retry_timeout: 10,
  ttl: 30,
};

let store: MemoryStore;
let dcs: Dcs;

function member(name: string, extra: Record<string, unknown> = {}): string {
  const port = ports.get(name) ?? 1;
  return JSON.stringify({
    conn_url: `postgres://127.0.0.1:5432/postgres`,
    api_url: `http://127.0.0.1:${port}/patroni`,
    state: 'running',
    role: name === 'pg1' ? 'master' : 'replica',
    version: '3.0.2',
    xlog_location: 50331800,
    timeline: 1,
    ...extra,
  });
}

function seed(options: { config?: Record<string, unknown>; leader?: string | null } = {}): void {
  store.put(`${PREFIX}initialize`, '7300000000000000001');
  store.put(`${PREFIX}config`, JSON.stringify(options.config ?? CONFIG));
  if (options.leader !== null) store.put(`${PREFIX}leader`, options.leader ?? 'pg1');
  for (const n of NAMES) store.put(`${PREFIX}members/${n}`, member(n));
  store.put(`${PREFIX}history`, '[]');
}

interface Captured {
  readonly io: ActionIo;
  readonly out: string[];
  readonly err: string[];
}

function capture(prompts: Prompter = terminalPrompter({ isTty: false })): Captured {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      out: (t) => out.push(...t.split('\n')),
      warn: (t) => err.push(t),
      prompts,
      rest: { timeoutMs: 2000 },
      sleep: async () => undefined,
    },
  };
}

const cluster = (): Promise<Cluster> => dcs.getCluster();

beforeEach(() => {
  store = new MemoryStore();
  dcs = new MemoryDcs(store, { namespace: '/service', scope: 'demo', ttl: 30, retryTimeout: 10, ctl: true });
  calls = [];
  handler = () => ({ status: 200, body: 'ok' });
  seed();
});

describe('prompts', () => {
  it('refuses to ask without a terminal and names the flag', async () => {
    const p = terminalPrompter({ isTty: false });
    await expect(p.confirm('Are you sure you want to reload members pg1?', '--force')).rejects.toThrow(
      '--force is required when stdin is not a terminal (would ask: Are you sure you want to reload members pg1?)',
    );
    await expect(p.input('Candidate ', { flag: '--candidate', default: '' })).rejects.toThrow(
      /^--candidate is required/,
    );
  });
  it('never asks with --force', async () => {
    await expect(terminalPrompter({ force: true, isTty: true }).confirm('x?', '--force')).rejects.toThrow(
      UserError,
    );
  });
});

describe('pause / resume', () => {
  it('PATCHes {"pause": true} on the leader and prints the success line', async () => {
    const c = capture();
    expect(await togglePause(dcs, c.io, { paused: true, wait: false })).toBe(true);
    expect(c.out).toEqual(['Success: cluster management is paused']);
    expect(calls).toEqual([{ member: 'pg1', method: 'PATCH', path: '/config', body: { pause: true } }]);
  });

  it('resume sends {"pause": null}; refuses when already in the requested state', async () => {
    await expect(togglePause(dcs, capture().io, { paused: false, wait: false })).rejects.toThrow(
      'Cluster is not paused',
    );
    store.put(`${PREFIX}config`, JSON.stringify({ ...CONFIG, pause: true }));
    await expect(togglePause(dcs, capture().io, { paused: true, wait: false })).rejects.toThrow(
      'Cluster is already paused',
    );
    const c = capture();
    await togglePause(dcs, c.io, { paused: false, wait: false });
    expect(calls[0]?.body).toEqual({ pause: null });
    expect(c.out).toEqual(['Success: cluster management is resumed']);
  });

  it('skips an unreachable leader with warnings, and fails when nobody answers', async () => {
    store.put(`${PREFIX}members/pg1`, member('pg1', { api_url: 'http://127.0.0.1:1/patroni' }));
    const c = capture();
    await togglePause(dcs, c.io, { paused: true, wait: false });
    expect(calls.map((x) => x.member)).toEqual(['pg2']);
    expect(c.err.join('\n')).toMatch(/WARNING - Member pg1 is not accessible/);
    for (const n of NAMES)
      store.put(`${PREFIX}members/${n}`, member(n, { api_url: 'http://127.0.0.1:1/patroni' }));
    await expect(togglePause(dcs, capture().io, { paused: true, wait: false })).rejects.toThrow(
      'Can not find accessible cluster member',
    );
  });

  it('prints the failure line for an error status', async () => {
    handler = () => ({ status: 409, body: 'Conflict' });
    const c = capture();
    expect(await togglePause(dcs, c.io, { paused: true, wait: false })).toBe(false);
    expect(c.out).toEqual(['Failed: pause cluster management status code=409, (Conflict)']);
  });

  it('--wait polls the DCS until every member reports the new state', async () => {
    let polls = 0;
    const c = capture();
    const io: ActionIo = {
      ...c.io,
      sleep: async () => {
        polls++;
        if (polls === 2)
          for (const n of NAMES) store.put(`${PREFIX}members/${n}`, member(n, { pause: true }));
      },
    };
    await togglePause(dcs, io, { paused: true, wait: true });
    expect(c.out).toEqual([
      "'pause' request sent, waiting until it is recognized by all nodes",
      'Success: cluster management is paused',
    ]);
    expect(polls).toBe(2);
  });
});

describe('reload', () => {
  it('prints the table, then one line per member', async () => {
    handler = (call) =>
      call.member === 'pg2' ? { status: 200, body: '' } : { status: 202, body: 'reload scheduled' };
    const c = capture();
    expect(
      await reloadMembers(dcs, c.io, { clusterName: 'demo', members: [], role: 'any', force: true }),
    ).toBe(true);
    expect(c.out[0]).toMatch(/^\+ Cluster: demo -+\+/);
    expect(c.out.slice(-3)).toEqual([
      'Reload request received for member pg1 and will be processed within 10 seconds',
      'No changes to apply on member pg2',
      'Reload request received for member pg3 and will be processed within 10 seconds',
    ]);
    expect(calls.every((x) => x.method === 'POST' && x.path === '/reload')).toBe(true);
  });

  it("a 401 keeps patronictl's Failed lines and adds one hint on stderr naming what to configure", async () => {
    handler = () => ({ status: 401, body: 'no auth header received' });
    const c = capture();
    expect(
      await reloadMembers(dcs, c.io, { clusterName: 'demo', members: [], role: 'any', force: true }),
    ).toBe(false);
    expect(c.out.slice(-3)).toEqual(
      NAMES.map((n) => `Failed: reload for member ${n}, status code=401, (no auth header received)`),
    );
    expect(c.err).toEqual([
      'Hint: the REST API of pg1 requires authentication (401 no auth header received): set ctl.authentication (username, password) or restapi.authentication in the configuration file, or PATRONI_RESTAPI_USERNAME and PATRONI_RESTAPI_PASSWORD',
    ]);
    handler = () => ({ status: 401, body: 'not authenticated' });
    const w = capture();
    const io: ActionIo = { ...w.io, rest: { ...w.io.rest, auth: { username: 'admin', password: 'x' } } };
    await reloadMembers(dcs, io, { clusterName: 'demo', members: ['pg2'], role: 'any', force: true });
    expect(w.err).toEqual([
      'Hint: the REST API of pg2 rejected the credentials for user admin (401 not authenticated): check ctl.authentication (username, password) or restapi.authentication in the configuration file, or PATRONI_RESTAPI_USERNAME and PATRONI_RESTAPI_PASSWORD',
    ]);
  });

  it('needs --force without a terminal; a declined confirmation aborts', async () => {
    await expect(
      reloadMembers(dcs, capture().io, { clusterName: 'demo', members: [], role: 'any', force: false }),
    ).rejects.toThrow(
      '--force is required when stdin is not a terminal (would ask: Are you sure you want to reload members pg1, pg2, pg3?)',
    );
    await expect(
      reloadMembers(dcs, capture(scriptedPrompter([false])).io, {
        clusterName: 'demo',
        members: ['pg2'],
        role: 'any',
        force: false,
      }),
    ).rejects.toThrow('Aborted reload');
    expect(calls).toEqual([]);
  });

  it('selects by role and name (spec 5.3)', async () => {
    const c = capture();
    await reloadMembers(dcs, c.io, { clusterName: 'demo', members: [], role: 'replica', force: true });
    expect(calls.map((x) => x.member)).toEqual(['pg2', 'pg3']);
    await expect(
      reloadMembers(dcs, capture().io, {
        clusterName: 'demo',
        members: ['pg1'],
        role: 'replica',
        force: true,
      }),
    ).rejects.toThrow('No replica among provided members');
    store.delete(`${PREFIX}leader`);
    for (const n of NAMES) store.delete(`${PREFIX}members/${n}`);
    await expect(
      reloadMembers(dcs, capture().io, { clusterName: 'demo', members: [], role: 'any', force: true }),
    ).rejects.toThrow("demo cluster doesn't have any members");
  });
});

describe('restart', () => {
  const base = { clusterName: 'demo', members: [], role: 'any' as const, any: false, pending: false };

  it('--force restarts every member now and prints the result lines', async () => {
    handler = (call) =>
      call.member === 'pg3'
        ? { status: 503, body: 'restart conditions are not satisfied' }
        : { status: 200, body: 'restarted successfully' };
    const c = capture();
    expect(await restartMembers(dcs, c.io, { ...base, force: true })).toBe(false);
    expect(c.out.slice(-3)).toEqual([
      'Success: restart on member pg1',
      'Success: restart on member pg2',
      'Failed: restart for member pg3, status code=503, (restart conditions are not satisfied)',
    ]);
    expect(calls[0]).toMatchObject({ method: 'POST', path: '/restart', body: {} });
  });

  it('--pending: a member without a pending restart answering 503 is the filter at work, not a failure', async () => {
    handler = (call) =>
      call.member === 'pg2'
        ? { status: 503, body: 'restart conditions are not satisfied' }
        : { status: 200, body: 'restarted successfully' };
    const c = capture();
    expect(await restartMembers(dcs, c.io, { ...base, force: true, pending: true })).toBe(true);
    expect(c.out.slice(-3)).toEqual([
      'Success: restart on member pg1',
      'Failed: restart for member pg2, status code=503, (restart conditions are not satisfied)',
      'Success: restart on member pg3',
    ]);
    expect(calls.map((x) => x.body)).toEqual([
      { restart_pending: true },
      { restart_pending: true },
      { restart_pending: true },
    ]);
    handler = () => ({ status: 503, body: 'restart failed' });
    expect(await restartMembers(dcs, capture().io, { ...base, force: true, pending: true })).toBe(false);
  });

  it('--pending among 4.x members: only the members with pending_restart are asked (patronictl 4.1.4)', async () => {
    for (const n of NAMES)
      store.put(
        `${PREFIX}members/${n}`,
        member(n, { version: '4.1.4', ...(n === 'pg2' ? {} : { pending_restart: true }) }),
      );
    const c = capture();
    expect(await restartMembers(dcs, c.io, { ...base, force: true, pending: true })).toBe(true);
    expect(c.out.slice(-2)).toEqual(['Success: restart on member pg1', 'Success: restart on member pg3']);
    expect(calls.map((x) => x.member)).toEqual(['pg1', 'pg3']);
  });

  it('asks schedule, confirmation and version in patronictl 3.0.2 order', async () => {
    handler = () => ({ status: 202, body: 'Restart scheduled' });
    const prompts = scriptedPrompter(['2030-01-02T03:04', true, '15.4']);
    const c = capture(prompts);
    await restartMembers(dcs, c.io, {
      ...base,
      members: ['pg2'],
      force: false,
      pending: true,
      timeout: '30',
    });
    const iso = parseScheduled('2030-01-02T03:04')!.iso;
    expect(prompts.asked).toEqual([
      expect.stringMatching(/^When should the restart take place \(e\.g\. \d{4}-\d\d-\d\dT\d\d:\d\d\) {2}$/),
      `Are you sure you want to schedule restart of members pg2 at ${iso}?`,
      'Restart if the PostgreSQL version is less than provided (e.g. 9.5.2)  ',
    ]);
    expect(calls).toEqual([
      {
        member: 'pg2',
        method: 'POST',
        path: '/restart',
        body: { restart_pending: true, postgres_version: '15.4', schedule: iso, timeout: '30' },
      },
    ]);
    expect(c.out.at(-1)).toBe('Success: restart scheduled on member pg2');
  });

  it('refuses a scheduled restart while paused, and a bad version', async () => {
    store.put(`${PREFIX}config`, JSON.stringify({ ...CONFIG, pause: true }));
    await expect(
      restartMembers(dcs, capture().io, { ...base, force: true, scheduled: '2030-01-02T03:04' }),
    ).rejects.toThrow("Can't schedule restart in the paused state");
    await expect(
      restartMembers(dcs, capture().io, { ...base, force: true, pgVersion: '10' }),
    ).rejects.toThrow('Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: 10');
    expect(postgresVersionToInt('9.5.3')).toBe(90503);
    expect(postgresVersionToInt('10.1')).toBe(100001);
    expect(() => postgresVersionToInt('a.b.c')).toThrow('Invalid PostgreSQL version: a.b.c');
    expect(calls).toEqual([]);
  });

  it('with --force and a schedule, deletes an existing scheduled restart first; 409 line', async () => {
    store.put(
      `${PREFIX}members/pg2`,
      member('pg2', { scheduled_restart: { schedule: '2030-01-01T00:00:00+00:00' } }),
    );
    handler = (call) => (call.method === 'DELETE' ? { status: 200, body: '' } : { status: 409, body: 'x' });
    const c = capture();
    await restartMembers(dcs, c.io, {
      ...base,
      members: ['pg2'],
      force: true,
      scheduled: '2030-01-02T03:04Z',
    });
    expect(calls.map((x) => `${x.method} ${x.path}`)).toEqual(['DELETE /restart', 'POST /restart']);
    expect(calls[1]?.body).toEqual({ schedule: '2030-01-02T03:04:00+00:00' });
    expect(c.out.at(-1)).toBe('Failed: another restart is already scheduled on member pg2');
  });
});

describe('switchover / failover', () => {
  const req = { action: 'switchover' as const, clusterName: 'demo', force: true };

  it('POSTs to the leader with 3.0.2 body and prints timestamped answer between two tables', async () => {
    handler = () => ({ status: 200, body: 'Successfully switched over to "pg2"' });
    const c = capture();
    expect(await switchover(dcs, c.io, { ...req, candidate: 'pg2' })).toBe(true);
    expect(calls).toEqual([
      {
        member: 'pg1',
        method: 'POST',
        path: '/switchover',
        body: { leader: 'pg1', candidate: 'pg2', scheduled_at: null },
      },
    ]);
    expect(c.out[0]).toBe('Current cluster topology');
    const line = c.out.find((l) => l.includes('Successfully'));
    expect(line).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{5} Successfully switched over to "pg2"$/);
    expect(c.out.filter((l) => l.includes('Cluster: demo'))).toHaveLength(2);
  });

  it('asks leader, candidate, time and confirmation in order; decline aborts', async () => {
    const prompts = scriptedPrompter(['pg1', '', 'now', false]);
    await expect(switchover(dcs, capture(prompts).io, { ...req, force: false })).rejects.toThrow(
      'Aborting switchover',
    );
    expect(prompts.asked).toEqual([
      'Primary',
      "Candidate ['pg2', 'pg3']",
      expect.stringMatching(/^When should the switchover take place \(e\.g\. \S+ \) $/),
      'Are you sure you want to switchover cluster demo, demoting current leader pg1?',
    ]);
    expect(calls).toEqual([]);
  });

  it('validates leader and candidate', async () => {
    await expect(switchover(dcs, capture().io, { ...req, leader: 'pg2' })).rejects.toThrow(
      'Member pg2 is not the leader of cluster demo',
    );
    await expect(switchover(dcs, capture().io, { ...req, candidate: 'pg9' })).rejects.toThrow(
      'Member pg9 does not exist in cluster demo',
    );
    await expect(switchover(dcs, capture().io, { ...req, candidate: 'pg1' })).rejects.toThrow(
      'Switchover target and source are the same.',
    );
    store.put(`${PREFIX}members/pg2`, member('pg2', { tags: { nofailover: true } }));
    await expect(switchover(dcs, capture().io, { ...req, candidate: 'pg2' })).rejects.toThrow(
      'Member pg2 does not exist in cluster demo',
    );
    await expect(
      switchover(dcs, capture().io, { ...req, action: 'failover', candidate: undefined }),
    ).rejects.toThrow('Failover could be performed only to a specific candidate');
    store.delete(`${PREFIX}leader`);
    await expect(switchover(dcs, capture().io, req)).rejects.toThrow('This cluster has no leader');
  });

  it('refuses to schedule while paused; sends the schedule with its offset', async () => {
    store.put(`${PREFIX}config`, JSON.stringify({ ...CONFIG, pause: true }));
    await expect(switchover(dcs, capture().io, { ...req, scheduled: '2030-01-01T00:00' })).rejects.toThrow(
      "Can't schedule switchover in the paused state",
    );
    store.put(`${PREFIX}config`, JSON.stringify(CONFIG));
    handler = () => ({ status: 202, body: 'Switchover scheduled' });
    await switchover(dcs, capture().io, { ...req, scheduled: '2030-01-01T00:00+02:00' });
    expect(calls[0]?.body).toEqual({
      leader: 'pg1',
      candidate: null,
      scheduled_at: '2030-01-01T00:00:00+02:00',
    });
  });

  it('prints the failure without falling back on an HTTP error status', async () => {
    handler = () => ({ status: 412, body: 'candidate does not exists' });
    const c = capture();
    expect(await switchover(dcs, c.io, { ...req, candidate: 'pg3' })).toBe(false);
    expect(c.out.at(-1)).toBe('Switchover failed, details: 412, candidate does not exists');
    expect(store.get(`${PREFIX}failover`)).toBeUndefined();
  });

  it('falls back to the DCS failover key when the REST call raises', async () => {
    store.put(`${PREFIX}members/pg1`, member('pg1', { api_url: 'http://127.0.0.1:1/patroni' }));
    const c = capture();
    await switchover(dcs, c.io, { ...req, action: 'failover', candidate: 'pg3' });
    expect(c.out.find((l) => l.includes('Could not'))).toMatch(
      /^\S+ \S+ Could not failover using Patroni api, falling back to DCS$/,
    );
    expect(store.get(`${PREFIX}failover`)?.value).toBe('{"leader":"pg1","member":"pg3"}');
  });
});

describe('edit-config', () => {
  const req = { clusterName: 'demo', set: [], pg: [], quiet: false, force: true };

  it('prints the diff exactly as patronictl and writes spaced JSON with CAS', async () => {
    const c = capture();
    await editConfig(dcs, c.io, { ...req, set: ['loop_wait=5'], pg: ['max_connections=150'] });
    expect(c.out).toEqual([
      '--- ',
      '+++ ',
      '@@ -1,8 +1,9 @@',
      '-loop_wait: 10',
      '+loop_wait: 5',
      ' maximum_lag_on_failover: 1048576',
      ' postgresql:',
      '   parameters:',
      "     hot_standby: 'on'",
      '+    max_connections: 150',
      '     max_replication_slots: 10',
      '     max_wal_senders: 10',
      '     wal_level: replica',
      'Configuration changed',
    ]);
    const written = store.get(`${PREFIX}config`)!.value;
    expect(written).toContain('"loop_wait": 5');
    expect(JSON.parse(written)).toMatchObject({
      loop_wait: 5,
      postgresql: { parameters: { max_connections: 150 } },
    });
  });

  it('Not changed; deletes with empty values; GUC names with dots', async () => {
    const c = capture();
    await editConfig(dcs, c.io, { ...req, set: ['loop_wait=10'] });
    expect(c.out).toEqual(['Not changed']);
    await editConfig(dcs, capture().io, {
      ...req,
      set: ['retry_timeout=', 'postgresql.use_pg_rewind=null'],
      pg: ['pg_stat_statements.max=1000'],
    });
    const data = JSON.parse(store.get(`${PREFIX}config`)!.value) as Record<string, unknown>;
    expect(data['retry_timeout']).toBeUndefined();
    expect(data['postgresql']).toEqual({
      parameters: { ...CONFIG.postgresql.parameters, 'pg_stat_statements.max': 1000 },
    });
    await expect(editConfig(dcs, capture().io, { ...req, set: ['nonsense'] })).rejects.toThrow(
      'Invalid parameter setting nonsense',
    );
  });

  it('--apply - needs --force; --replace starts from an empty config', async () => {
    const c = capture();
    await editConfig(dcs, c.io, { ...req, force: false, apply: '-', readStdin: () => 'ttl: 40\n' });
    expect(c.out.at(-1)).toBe('Use --force option to apply changes');
    expect(JSON.parse(store.get(`${PREFIX}config`)!.value)).toEqual(CONFIG);
    await editConfig(dcs, capture().io, { ...req, replace: '-', readStdin: () => 'ttl: 40\nloop_wait: 3\n' });
    expect(JSON.parse(store.get(`${PREFIX}config`)!.value)).toEqual({ ttl: 40, loop_wait: 3 });
  });

  it('loses a race with a concurrent change', async () => {
    const racing: Dcs = Object.assign(Object.create(dcs) as Dcs, {
      getCluster: async () => {
        const c = await dcs.getCluster();
        store.put(`${PREFIX}config`, JSON.stringify({ ...CONFIG, ttl: 31 }));
        return c;
      },
    });
    await expect(editConfig(racing, capture().io, { ...req, set: ['ttl=40'] })).rejects.toThrow(
      'Config modification aborted due to concurrent changes',
    );
  });

  it('without a change option and a terminal, names the flags; a declined confirmation is silent', async () => {
    await expect(editConfig(dcs, capture().io, req)).rejects.toThrow(/--set, --pg, --apply or --replace/);
    const c = capture(scriptedPrompter([false]));
    expect(await editConfig(dcs, c.io, { ...req, force: false, set: ['ttl=40'] })).toBe(true);
    expect(c.out.at(-1)).toBe('+ttl: 40');
    expect(JSON.parse(store.get(`${PREFIX}config`)!.value)).toEqual(CONFIG);
  });

  it('groups hunks like difflib.unified_diff', () => {
    const a = Array.from({ length: 30 }, (_, i) => `line${i % 7}`);
    const b = [...a];
    b.splice(3, 1, 'changed');
    b.splice(20, 0, 'inserted', 'line3');
    b.splice(27, 2);
    let expected: string[];
    try {
      expected = execFileSync(
        'python3',
        [
          '-c',
          'import difflib,json,sys; a,b=json.load(sys.stdin); print(json.dumps([l.rstrip("\\n") for l in difflib.unified_diff([x+"\\n" for x in a],[x+"\\n" for x in b])]))',
        ],
        { input: JSON.stringify([a, b]), encoding: 'utf8' },
      )
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as string[])[0]!;
    } catch {
      return; // no python3 here
    }
    expect(unifiedDiff(a, b)).toEqual(expected);
  });
});

describe('flush, reinit, remove', () => {
  it('flush restart / switchover messages', async () => {
    store.put(
      `${PREFIX}members/pg2`,
      member('pg2', { scheduled_restart: { schedule: '2030-01-01T00:00:00+00:00' } }),
    );
    handler = () => ({ status: 200, body: 'scheduled restart deleted' });
    const c = capture();
    await flush(dcs, c.io, { clusterName: 'demo', members: [], target: 'restart', role: 'any', force: true });
    expect(c.out.slice(-3)).toEqual([
      'No scheduled restart for member pg1',
      'Success: flush scheduled restart for member pg2',
      'No scheduled restart for member pg3',
    ]);
    const s = capture();
    await flush(dcs, s.io, {
      clusterName: 'demo',
      members: [],
      target: 'switchover',
      role: 'any',
      force: true,
    });
    expect(s.out).toEqual(['No pending scheduled switchover']);
    store.put(`${PREFIX}failover`, '{"leader":"pg1","scheduled_at":"2030-01-01T00:00:00+00:00"}');
    handler = () => ({ status: 200, body: 'scheduled switchover deleted' });
    const t = capture();
    await flush(dcs, t.io, {
      clusterName: 'demo',
      members: [],
      target: 'switchover',
      role: 'any',
      force: true,
    });
    expect(t.out).toEqual(['Success: scheduled switchover deleted']);
    expect(calls.at(-1)).toMatchObject({ member: 'pg1', method: 'DELETE', path: '/switchover' });
  });

  it('flush switchover clears the key in the DCS when no member answers', async () => {
    store.put(`${PREFIX}failover`, '{"leader":"pg1","scheduled_at":"2030-01-01T00:00:00+00:00"}');
    for (const n of NAMES)
      store.put(`${PREFIX}members/${n}`, member(n, { api_url: 'http://127.0.0.1:1/patroni' }));
    const c = capture();
    expect(
      await flush(dcs, c.io, {
        clusterName: 'demo',
        members: [],
        target: 'switchover',
        role: 'any',
        force: true,
      }),
    ).toBe(true);
    expect(c.out.at(-1)).toMatch(/ Could not find any accessible member of cluster demo$/);
    expect(store.get(`${PREFIX}failover`)?.value).toBe('{}');
  });

  it('reinit: replicas only, resend with force after confirmation, --wait', async () => {
    await expect(
      reinit(dcs, capture().io, {
        clusterName: 'demo',
        members: ['pg1'],
        force: true,
        wait: false,
        fromLeader: false,
      }),
    ).rejects.toThrow('No replica among provided members');
    let first = true;
    let polls = 0;
    handler = (call) => {
      if (call.path === '/patroni') {
        polls++;
        return { status: 200, body: JSON.stringify({ state: polls > 1 ? 'running' : 'creating replica' }) };
      }
      if (first) {
        first = false;
        return { status: 503, body: 'reinitialize already in progress' };
      }
      return { status: 200, body: 'reinitialize started' };
    };
    const c = capture(scriptedPrompter([true, true]));
    await reinit(dcs, c.io, {
      clusterName: 'demo',
      members: ['pg3'],
      force: false,
      wait: true,
      fromLeader: false,
    });
    expect(calls.filter((x) => x.path === '/reinitialize').map((x) => x.body)).toEqual([
      { force: false },
      { force: true },
    ]);
    expect(c.out.slice(-4)).toEqual([
      'Failed: reinitialize for member pg3, status code=503, (reinitialize already in progress)',
      'Success: reinitialize for member pg3',
      'Waiting for reinitialize to complete on: pg3',
      'Reinitialize is completed on: pg3',
    ]);
  });

  it('reinit without names asks which member', async () => {
    const prompts = scriptedPrompter(['pg2', true]);
    await reinit(dcs, capture(prompts).io, {
      clusterName: 'demo',
      members: [],
      force: false,
      wait: false,
      fromLeader: true,
    });
    expect(prompts.asked[0]).toBe('Which member do you want to reinitialize [pg2, pg3]? ');
    expect(calls[0]).toMatchObject({ member: 'pg2', body: { force: false, from_leader: true } });
  });

  it('remove asks three typed confirmations, then deletes the cluster', async () => {
    await expect(
      removeCluster(dcs, capture(scriptedPrompter(['other'])).io, { clusterName: 'demo', format: 'pretty' }),
    ).rejects.toThrow('Cluster names specified do not match');
    await expect(
      removeCluster(dcs, capture(scriptedPrompter(['demo', 'yes'])).io, {
        clusterName: 'demo',
        format: 'pretty',
      }),
    ).rejects.toThrow('You did not exactly type "Yes I am aware"');
    await expect(
      removeCluster(dcs, capture(scriptedPrompter(['demo', 'Yes I am aware', 'pg2'])).io, {
        clusterName: 'demo',
        format: 'pretty',
      }),
    ).rejects.toThrow('You did not specify the current leader of the cluster');
    await expect(removeCluster(dcs, capture().io, { clusterName: 'demo', format: 'pretty' })).rejects.toThrow(
      /stdin is not a terminal/,
    );
    await removeCluster(dcs, capture(scriptedPrompter(['demo', 'Yes I am aware', 'pg1'])).io, {
      clusterName: 'demo',
      format: 'pretty',
    });
    expect((await cluster()).members).toHaveLength(0);
    expect(store.list(PREFIX)).toEqual([]);
  });
});

describe('timestamps', () => {
  it('naive times get the local offset; explicit offsets are kept', () => {
    const s = parseScheduled('2030-06-01 12:30')!;
    const d = new Date(2030, 5, 1, 12, 30);
    const off = -d.getTimezoneOffset();
    const sign = off < 0 ? '-' : '+';
    const hh = String(Math.floor(Math.abs(off) / 60)).padStart(2, '0');
    const mm = String(Math.abs(off) % 60).padStart(2, '0');
    expect(s.iso).toBe(`2030-06-01T12:30:00${sign}${hh}:${mm}`);
    expect(s.epochMs).toBe(d.getTime());
    expect(parseScheduled('2030-06-01T12:30:15.5Z')!.iso).toBe('2030-06-01T12:30:15.500000+00:00');
    expect(parseScheduled('now')).toBeUndefined();
    expect(parseScheduled('')).toBeUndefined();
    expect(() => parseScheduled('tomorrow')).toThrow(
      'Unable to parse scheduled timestamp (tomorrow). It should be in an unambiguous format (e.g. ISO 8601)',
    );
    expect(ctlTimestamp(new Date(2030, 0, 2, 3, 4, 5, 678))).toMatch(/^2030-01-02 03:04:05\.678\d\d$/);
  });
});

describe('progress on a terminal (io.progress)', () => {
  /** Output lines and progress calls in the order they happen. */
  function recording(extra: Partial<ActionIo> = {}): { io: ActionIo; events: string[] } {
    const events: string[] = [];
    const c = capture();
    return {
      events,
      io: {
        ...c.io,
        out: (t) => events.push(...t.split('\n').filter((l) => !/^[+|]/.test(l))),
        progress: { show: (w) => events.push(`show: ${w}`), clear: () => events.push('clear') },
        ...extra,
      },
    };
  }

  it('pause --wait: who has not reported yet, cleared before the result line', async () => {
    let polls = 0;
    const r = recording({
      sleep: async () => {
        if (++polls === 2)
          for (const n of NAMES) store.put(`${PREFIX}members/${n}`, member(n, { pause: true }));
        else store.put(`${PREFIX}members/pg1`, member('pg1', { pause: true }));
      },
    });
    await togglePause(dcs, r.io, { paused: true, wait: true });
    expect(r.events).toEqual([
      "'pause' request sent, waiting until it is recognized by all nodes",
      'show: Waiting for pg1, pg2, pg3 to report pause: true',
      'show: Waiting for pg2, pg3 to report pause: true',
      'clear',
      'Success: cluster management is paused',
    ]);
  });

  it('restart: while each immediate POST /restart runs (with --timeout); not for a scheduled one', async () => {
    handler = () => ({ status: 200, body: 'restarted successfully' });
    const base = { clusterName: 'demo', members: ['pg2'], role: 'any' as const, any: false, pending: false };
    const r = recording();
    await restartMembers(dcs, r.io, { ...base, force: true, timeout: '30' });
    expect(r.events.slice(-3)).toEqual([
      'show: Waiting for pg2 to restart PostgreSQL (--timeout 30)',
      'clear',
      'Success: restart on member pg2',
    ]);
    handler = () => ({ status: 202, body: 'restart scheduled' });
    const s = recording();
    await restartMembers(dcs, s.io, { ...base, force: true, scheduled: '2099-01-01T00:00+00:00' });
    expect(s.events.filter((e) => e.startsWith('show') || e === 'clear')).toEqual([]);
  });

  it('switchover and reinit --wait', async () => {
    handler = () => ({ status: 200, body: 'Successfully switched over to "pg2"' });
    const r = recording();
    await switchover(dcs, r.io, { action: 'switchover', clusterName: 'demo', force: true, candidate: 'pg2' });
    expect(r.events.slice(1, 3)).toEqual(['show: Waiting for pg1 to switchover to pg2', 'clear']);

    let polls = 0;
    handler = (call) =>
      call.path === '/patroni'
        ? { status: 200, body: JSON.stringify({ state: ++polls > 1 ? 'running' : 'creating replica' }) }
        : { status: 200, body: 'reinitialize started' };
    const w = recording();
    await reinit(dcs, w.io, {
      clusterName: 'demo',
      members: ['pg3'],
      force: true,
      wait: true,
      fromLeader: false,
    });
    expect(w.events.slice(-5)).toEqual([
      'Waiting for reinitialize to complete on: pg3',
      'show: Waiting for reinitialize to complete on pg3',
      'show: Waiting for reinitialize to complete on pg3',
      'clear',
      'Reinitialize is completed on: pg3',
    ]);
  });
});
