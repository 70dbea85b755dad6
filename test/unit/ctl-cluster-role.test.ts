/**
 * `demote-cluster` / `promote-cluster` (patronictl 4.1.4's `change_cluster_role`) against an in-memory DCS and a stub
 * leader REST API on 127.0.0.1: checks and their messages, the confirmation, the PATCH /config body, the state lines
 * printed while waiting and the end condition; and the terminal progress line of long waits (render/progress.ts).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/config/errors.js';
import type { ActionIo } from '../../src/ctl/actions.js';
import { changeClusterRole, roleProgress, standbyClusterSection } from '../../src/ctl/cluster-role.js';
import { MemoryDcs, MemoryStore } from '../../src/dcs/memory/memory-dcs.js';
import type { Dcs } from '../../src/dcs/dcs.js';
import { scriptedPrompter, terminalPrompter, type Prompter } from '../../src/prompts/index.js';
import { formatElapsed, progressLine, TerminalProgress, type Progress } from '../../src/render/progress.js';

const PREFIX = '/service/demo/';
interface Call {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
}
let calls: Call[] = [];
let answer = { status: 200, body: 'OK' };
let server: Server;
let port = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      calls.push({
        method: req.method ?? '',
        path: req.url ?? '',
        body: text ? JSON.parse(text) : undefined,
      });
      res.writeHead(answer.status);
      res.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise((r) => server.close(r)));

let store: MemoryStore;
let dcs: Dcs;

function putMember(name: string, role: string, state = 'running', apiPort = port): void {
  store.put(
    `${PREFIX}members/${name}`,
    JSON.stringify({
      conn_url: 'postgres://127.0.0.1:5432/postgres',
      api_url: `http://127.0.0.1:${apiPort}/patroni`,
      state,
      role,
      version: '4.1.4',
      xlog_location: 50331800,
      timeline: 1,
    }),
  );
}

beforeEach(() => {
  store = new MemoryStore();
  dcs = new MemoryDcs(store, { namespace: '/service', scope: 'demo', ttl: 30, retryTimeout: 10, ctl: true });
  calls = [];
  answer = { status: 200, body: 'OK' };
  store.put(`${PREFIX}initialize`, '7300000000000000001');
  store.put(`${PREFIX}config`, JSON.stringify({ ttl: 30, loop_wait: 10 }));
  store.put(`${PREFIX}leader`, 'pg1');
  putMember('pg1', 'primary');
  putMember('pg2', 'replica', 'streaming');
});

interface Run {
  readonly out: string[];
  readonly shown: string[];
  readonly io: ActionIo;
}

/** `steps[i]` changes the DCS before poll i + 1 (the sleeps between polls). */
function capture(prompts: Prompter, steps: (() => void)[] = []): Run {
  const out: string[] = [];
  const shown: string[] = [];
  const progress: Progress = { show: (w) => shown.push(w), clear: () => shown.push('<clear>') };
  let i = 0;
  return {
    out,
    shown,
    io: {
      out: (t) => out.push(...t.split('\n')),
      warn: (t) => out.push(`stderr: ${t}`),
      prompts,
      rest: { timeoutMs: 2000 },
      now: () => new Date(2026, 11, 7, 13, 0, i),
      sleep: async () => {
        const step = steps[i++];
        if (!step) throw new Error('the wait did not end');
        step();
      },
      progress,
    },
  };
}

const force = terminalPrompter({ force: true });
const stamp = (s: number): string => `2026-12-07 13:00:${String(s).padStart(2, '0')}`;

describe('standby_cluster section (demote-cluster options)', () => {
  it('needs --host, --port or --restore-command; drops empty values; keeps patronictl key order', () => {
    expect(() => standbyClusterSection({ primarySlotName: 's' })).toThrow(
      new UserError('At least --host, --port or --restore-command should be specified'),
    );
    expect(() => standbyClusterSection({ host: '', port: 0 })).toThrow(UserError);
    expect(
      JSON.stringify(
        standbyClusterSection({
          restoreCommand: 'cp %f %p',
          primarySlotName: 'slot1',
          port: 5433,
          host: 'h',
        }),
      ),
    ).toBe('{"host":"h","port":5433,"primary_slot_name":"slot1","restore_command":"cp %f %p"}');
  });
});

describe('demote-cluster', () => {
  it('PATCHes standby_cluster on the leader, prints a state line per poll until demoted, then the table', async () => {
    const run = capture(force, [
      () => {
        // What the leader's PATCH /config does to the DCS.
        store.put(
          `${PREFIX}config`,
          JSON.stringify({ ttl: 30, standby_cluster: { host: '10.0.0.5', port: 5432 } }),
        );
        putMember('pg1', 'primary', 'stopping');
      },
      () => {
        store.delete(`${PREFIX}leader`);
        putMember('pg1', 'demoted', 'stopped');
      },
      () => {
        store.put(`${PREFIX}leader`, 'pg2');
        putMember('pg2', 'standby_leader', 'running');
      },
      () => putMember('pg1', 'replica', 'running'),
    ]);
    const ok = await changeClusterRole(dcs, run.io, {
      clusterName: 'demo',
      force: true,
      standby: { host: '10.0.0.5', port: 5432 },
    });
    expect(ok).toBe(true);
    expect(calls).toEqual([
      { method: 'PATCH', path: '/config', body: { standby_cluster: { host: '10.0.0.5', port: 5432 } } },
    ]);
    expect(run.out[0]).toBe('Current cluster topology');
    const lines = run.out.filter((l) => l.startsWith('2026-'));
    expect(lines).toEqual([
      `${stamp(0)} cluster is unlocked: False, leader role: primary, leader state: running`,
      `${stamp(1)} cluster is unlocked: False, leader role: primary, leader state: stopping`,
      `${stamp(2)} cluster is unlocked: True, leader role: None, leader state: None`,
      `${stamp(3)} cluster is unlocked: False, leader role: standby_leader, leader state: running, previous leader state: 'stopped'`,
      `${stamp(4)} cluster is successfully demoted`,
    ]);
    expect(run.out.at(-1)).toMatch(/^\+[-+]+\+$/);
    expect(run.out.filter((l) => l.startsWith('| pg2 ')).at(-1)).toContain('Standby Leader');
    expect(run.shown).toEqual([
      ...Array<string>(4).fill('Waiting for demo to run as a standby cluster'),
      '<clear>',
    ]);
  });

  it('asks for confirmation; declining aborts before any request', async () => {
    const prompts = scriptedPrompter([false]);
    const run = capture(prompts);
    await expect(
      changeClusterRole(dcs, run.io, { clusterName: 'demo', force: false, standby: { host: 'h' } }),
    ).rejects.toThrow(new UserError('Aborted cluster demotion'));
    expect(prompts.asked).toEqual(['Are you sure you want to demote demo cluster?']);
    expect(calls).toEqual([]);
    expect(run.out[0]).toBe('Current cluster topology');
  });

  it('without a terminal and without --force, names the flag', async () => {
    const run = capture(terminalPrompter({ isTty: false }));
    await expect(
      changeClusterRole(dcs, run.io, { clusterName: 'demo', force: false, standby: { host: 'h' } }),
    ).rejects.toThrow(/--force is required when stdin is not a terminal/);
  });

  it('refuses a cluster without leader or already a standby cluster, before printing anything', async () => {
    store.delete(`${PREFIX}leader`);
    const run = capture(force);
    await expect(
      changeClusterRole(dcs, run.io, { clusterName: 'demo', force: true, standby: { host: 'h' } }),
    ).rejects.toThrow(new UserError('Cluster has no leader, demotion is not possible'));
    store.put(`${PREFIX}leader`, 'pg1');
    putMember('pg1', 'standby_leader');
    await expect(
      changeClusterRole(dcs, run.io, { clusterName: 'demo', force: true, standby: { host: 'h' } }),
    ).rejects.toThrow(new UserError('Cluster is already in the required state'));
    expect(run.out).toEqual([]);
    expect(calls).toEqual([]);
  });

  it("an error status is reported with patronictl's doubled prefix; an unreachable API with one", async () => {
    answer = { status: 400, body: 'standby_cluster is not supported' };
    const run = capture(force);
    await expect(
      changeClusterRole(dcs, run.io, { clusterName: 'demo', force: true, standby: { host: 'h' } }),
    ).rejects.toThrow(
      new UserError(
        'Failed to demote demo cluster: Failed to demote demo cluster: /config PATCH status code=400, (standby_cluster is not supported)',
      ),
    );
    putMember('pg1', 'primary', 'running', 1);
    await expect(
      changeClusterRole(dcs, run.io, { clusterName: 'demo', force: true, standby: { host: 'h' } }),
    ).rejects.toThrow(/^Failed to demote demo cluster: .*ECONNREFUSED/);
  });
});

describe('promote-cluster', () => {
  beforeEach(() => putMember('pg1', 'standby_leader'));

  it('PATCHes standby_cluster: null and waits for the leader to run as primary', async () => {
    const run = capture(force, [
      () => putMember('pg1', 'primary', 'starting'),
      () => putMember('pg1', 'primary'),
    ]);
    expect(await changeClusterRole(dcs, run.io, { clusterName: 'demo', force: true })).toBe(true);
    expect(calls).toEqual([{ method: 'PATCH', path: '/config', body: { standby_cluster: null } }]);
    expect(run.out.filter((l) => l.startsWith('2026-'))).toEqual([
      `${stamp(0)} cluster is unlocked: False, leader role: standby_leader, leader state: running`,
      `${stamp(1)} cluster is unlocked: False, leader role: primary, leader state: starting`,
      `${stamp(2)} cluster is successfully promoted`,
    ]);
    expect(run.shown.at(0)).toBe('Waiting for demo to run standalone');
  });

  it('refuses a cluster that runs standalone; the prompt and abort say promote', async () => {
    const prompts = scriptedPrompter(['n']);
    const run = capture(prompts);
    await expect(changeClusterRole(dcs, run.io, { clusterName: 'demo', force: false })).rejects.toThrow(
      new UserError('Aborted cluster promotion'),
    );
    expect(prompts.asked).toEqual(['Are you sure you want to promote demo cluster?']);
    putMember('pg1', 'primary');
    await expect(changeClusterRole(dcs, run.io, { clusterName: 'demo', force: true })).rejects.toThrow(
      new UserError('Cluster is already in the required state'),
    );
  });

  it('a 3.x leader (role master) is not "primary": the request is made', async () => {
    putMember('pg1', 'master');
    const run = capture(force, []);
    await expect(changeClusterRole(dcs, run.io, { clusterName: 'demo', force: true })).rejects.toThrow(
      'the wait did not end',
    );
    expect(calls).toHaveLength(1);
    expect(run.out.at(-1)).toBe(
      `${stamp(0)} cluster is unlocked: False, leader role: master, leader state: running`,
    );
  });
});

describe('state lines (roleProgress)', () => {
  const s = {
    unlocked: false,
    leaderName: 'pg2',
    leaderRole: 'standby_leader',
    leaderState: 'running',
    oldLeaderState: 'starting',
  };
  it.each([
    [{}, true, false, ", previous leader state: 'starting'"],
    [{ oldLeaderState: 'running' }, true, true, ", previous leader state: 'running'"],
    [{ oldLeaderState: undefined }, true, false, ''],
    [{ oldLeaderState: '' }, true, false, ''],
    [{ leaderName: 'pg1' }, true, false, ''],
    [{ leaderRole: 'primary' }, false, true, ''],
  ])('%o demote=%s: done %s, suffix %j', (change, demote, done, suffix) => {
    const p = roleProgress({ ...s, ...change }, demote, 'pg1');
    expect(p.done).toBe(done);
    expect(p.line.endsWith(`running${suffix}`)).toBe(true);
  });
});

describe('terminal progress line', () => {
  it('formats the elapsed time and never wraps', () => {
    expect([0, 7_999, 65_000, 3_723_000].map(formatElapsed)).toEqual(['0s', '7s', '1m05s', '1h02m03s']);
    expect(progressLine('Waiting for pg2', 12_000)).toBe('Waiting for pg2 (12s elapsed)');
    expect(progressLine('Waiting for a very long list of members', 1000, 20)).toBe('Waiting for a very…');
  });

  it('draws in place, is erased around other output and by clear, and times from the first show', () => {
    const written: string[] = [];
    let t = 1000;
    const p = new TerminalProgress({ write: (s) => written.push(s) }, () => t, 3_600_000);
    p.around(() => written.push('before\n'));
    p.show('Waiting for pg2');
    t += 5000;
    p.show('Waiting for pg3');
    p.around(() => written.push('line\n'));
    p.clear();
    p.clear();
    expect(written).toEqual([
      'before\n',
      '\r\x1b[KWaiting for pg2 (0s elapsed)',
      '\r\x1b[KWaiting for pg3 (5s elapsed)',
      '\r\x1b[K',
      'line\n',
      '\r\x1b[KWaiting for pg3 (5s elapsed)',
      '\r\x1b[K',
    ]);
  });
});
