/**
 * Dynamic configuration changes on three pgwarden agents (etcd3), as Patroni applies them: a reload-only
 * parameter (work_mem) is live on every member without a restart; a postmaster parameter (shared_buffers) sets
 * `pending_restart` (with 4.x's `pending_restart_reason`) in the member key, GET /patroni and the list table, and
 * `restart --pending --force` clears it (pgwarden's output and exit code next to real patronictl 4.1.4's on the same
 * cluster of agents speaking 4.1.4; the member key and document shapes next to a Patroni 4.1.4 cluster's); a
 * loop_wait change is
 * picked up; a SIGHUP with a changed local postgresql.parameters value is applied.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import {
  PATRONICTL4,
  runCommand,
  startPatroniCluster,
  type CommandResult,
  type PatroniCluster,
} from '../harness/patroni.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { createDcs } from '../../src/dcs/registry.js';
import type { JsonObject } from '../../src/model/cluster.js';

const PGWARDEN = resolve(import.meta.dirname, '..', '..', 'bin', 'run.js');

const show = (what: string, r: CommandResult): string =>
  `${what} exited ${String(r.code)}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

/** `2026-12-02 04:10:01,123 INFO: ...` -> epoch ms (local time, as the agent writes it). */
function logTime(line: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}),(\d{3}) /.exec(line);
  if (!m) return Number.NaN;
  const [, y, mo, d, h, mi, s, ms] = m.map(Number) as [number, ...number[]];
  return new Date(y ?? 0, (mo ?? 1) - 1, d, h, mi, s, ms).getTime();
}

/** Top-level field names of the member key and GET /patroni by role, with every member pending a restart. */
interface Shapes {
  readonly memberKey: Readonly<Record<string, readonly string[]>>;
  readonly status: Readonly<Record<string, readonly string[]>>;
}
let pgwardenShapes: Shapes | undefined;

/** Field names by role (`master` / `replica`), after checking that members of one role agree. */
function shapesByRole(docs: readonly JsonObject[]): Record<string, readonly string[]> {
  const out: Record<string, readonly string[]> = {};
  for (const d of docs) {
    const role = String(d['role']);
    const keys = Object.keys(d);
    const seen = out[role];
    if (seen && JSON.stringify(seen) !== JSON.stringify(keys)) {
      throw new Error(`two ${role} documents differ: ${seen.join(',')} / ${keys.join(',')}`);
    }
    out[role] = keys;
  }
  return out;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'patroni4', 'patronictl4', 'bundle', 'root');

describeWithNeeds('pgwarden agents: dynamic configuration changes', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  /** patronictl 4.1.4: the agents speak 4.1.4, so its output is the one pgwarden's must equal. */
  const patronictl4 = (args: readonly string[]): Promise<CommandResult> =>
    runCommand(PATRONICTL4, ['-c', c().nodes[0]?.configFile ?? '', ...args], {
      timeoutMs: 60_000,
      cwd: c().dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: c().dir, LANG: 'C.UTF-8' },
    });
  const pgwarden = (args: readonly string[]): Promise<CommandResult> =>
    runCommand(process.execPath, [PGWARDEN, '-c', c().nodes[0]?.configFile ?? '', ...args], {
      timeoutMs: 60_000,
      cwd: c().dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: c().dir, LANG: 'C.UTF-8' },
    });
  const diag = (): string => c().logTails(30);

  /** Member keys as stored in etcd, by name (field order kept). */
  const memberKeys = async (): Promise<Map<string, JsonObject>> => {
    const dcs = await createDcs(
      { kind: 'etcd3', hosts: [etcd?.endpoint ?? ''], protocol: 'http' },
      { namespace: c().namespace, scope: c().scope, ttl: 30, retryTimeout: 5, ctl: true },
    );
    try {
      return new Map((await dcs.getCluster()).members.map((m) => [m.name, m.data.raw]));
    } finally {
      await dcs.close();
    }
  };
  const patroniStatus = async (i: number): Promise<JsonObject> =>
    JSON.parse((await c().rest(i, '/patroni')).body) as JsonObject;
  const sql = async (i: number, query: string): Promise<string> => {
    const r = await c().psql(i, query);
    if (r.code !== 0) throw new Error(show(`psql on ${c().nodes[i]?.name}`, r));
    return r.stdout.trim();
  };
  const everywhere = (query: string): Promise<string[]> =>
    Promise.all(c().nodes.map((_n, i) => sql(i, query)));
  const startTimes = (): Promise<string[]> => everywhere('SELECT pg_catalog.pg_postmaster_start_time()');
  const names = (): string[] => c().nodes.map((n) => n.name);
  const waitPending = (want: ReadonlySet<string>, what: string): Promise<true> =>
    waitFor(
      `${what}\n${diag()}`,
      async () => {
        const keys = await memberKeys();
        return names().every((n) => (keys.get(n)?.['pending_restart'] === true) === want.has(n)) || false;
      },
      30_000,
      250,
    );

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

  it('edit-config of work_mem is live on every member without a restart', async () => {
    const before = await startTimes();
    const t0 = Date.now();
    const r = await pgwarden(['edit-config', c().scope, '-p', 'work_mem=7MB', '--force']);
    expect(r.code, show('edit-config', r)).toBe(0);
    await waitFor(
      `work_mem 7MB everywhere\n${diag()}`,
      async () => (await everywhere('SHOW work_mem')).every((v) => v === '7MB'),
      20_000,
      250,
    );
    console.log(`work_mem applied on all members ${Date.now() - t0} ms after edit-config returned`);
    expect(await startTimes()).toEqual(before);
    const keys = await memberKeys();
    for (const n of names()) expect(keys.get(n)?.['pending_restart'], n).toBeUndefined();
    for (let i = 0; i < 3; i++) expect((await patroniStatus(i))['pending_restart']).toBeUndefined();
    expect(readFileSync(resolve(c().nodes[0]?.dataDir ?? '', 'postgresql.conf'), 'utf8')).toContain(
      "work_mem = '7MB'",
    );
  });

  it('shared_buffers sets pending_restart; restart --pending --force clears it (pgwarden vs patronictl)', async () => {
    const all = new Set(names());
    const leader = (await c().primaries())[0] ?? '';
    const replica = names().find((n) => n !== leader) ?? '';
    const ri = names().indexOf(replica);

    const bump = async (value: string): Promise<void> => {
      const r = await pgwarden(['edit-config', c().scope, '-p', `shared_buffers=${value}`, '--force']);
      expect(r.code, show('edit-config', r)).toBe(0);
      const t = Date.now();
      await waitPending(all, `pending_restart on every member after shared_buffers=${value}`);
      console.log(`pgwarden: pending_restart on all members ${Date.now() - t} ms after edit-config returned`);
    };

    await bump('48MB');
    expect(await everywhere('SHOW shared_buffers')).toEqual(['32MB', '32MB', '32MB']);
    // Member key: pending_restart and its reason right after version/tags, before the WAL fields (4.x).
    const keys = await memberKeys();
    const reason = { shared_buffers: { old_value: '32MB', new_value: '48MB' } };
    for (const n of names()) {
      const k = Object.keys(keys.get(n) ?? {});
      expect(k.slice(0, 7), n).toEqual([
        'conn_url',
        'api_url',
        'state',
        'role',
        'version',
        'pending_restart',
        'pending_restart_reason',
      ]);
      expect(keys.get(n)?.['pending_restart_reason'], n).toEqual(reason);
    }
    for (let i = 0; i < 3; i++) {
      const st = await patroniStatus(i);
      expect(st['pending_restart']).toBe(true);
      expect(st['pending_restart_reason']).toEqual(reason);
      expect(Object.keys(st).indexOf('pending_restart_reason')).toBe(Object.keys(st).indexOf('patroni') - 1);
    }
    pgwardenShapes = {
      memberKey: shapesByRole([...keys.values()]),
      status: shapesByRole(await Promise.all([0, 1, 2].map((i) => patroniStatus(i)))),
    };
    // The list table: pgwarden prints what patronictl prints, with the Pending restart column. The LSN columns
    // move while WAL is written between the two reads: both run side by side until they agree (or 20 s pass).
    let ours = await pgwarden(['list', c().scope]);
    let theirs = await patronictl4(['list', c().scope]);
    await waitFor(
      'pgwarden list and patronictl 4.1.4 list to agree',
      async () => {
        [ours, theirs] = await Promise.all([pgwarden(['list', c().scope]), patronictl4(['list', c().scope])]);
        return ours.stdout === theirs.stdout;
      },
      20_000,
      250,
    ).catch(() => undefined); // the assertions below show both tables
    expect(ours.code, show('pgwarden list', ours)).toBe(0);
    expect(theirs.code, show('patronictl list', theirs)).toBe(0);
    expect(ours.stdout).toContain('| Pending restart |');
    expect(ours.stdout.split('\n').filter((l) => /\| \*\s+\|/.test(l))).toHaveLength(3);
    expect(ours.stdout).toBe(theirs.stdout);

    // Only some members pending: restart one replica first.
    const single = await pgwarden(['restart', c().scope, replica, '--force']);
    expect(single.stdout, show('restart one', single)).toContain(`Success: restart on member ${replica}`);
    const others = new Set(names().filter((n) => n !== replica));
    await waitPending(others, `pending_restart cleared on ${replica} only`);
    expect(await sql(ri, 'SHOW shared_buffers')).toBe('48MB');

    const t0 = Date.now();
    const real = await patronictl4(['restart', c().scope, '--pending', '--force']);
    console.log(
      `patronictl restart --pending --force took ${Date.now() - t0} ms:\n${show('patronictl', real)}`,
    );
    await waitPending(new Set(), 'pending_restart cleared everywhere after patronictl restart --pending');
    await c().waitReady({ timeoutMs: 60_000 });
    expect(await everywhere('SHOW shared_buffers')).toEqual(['48MB', '48MB', '48MB']);

    await bump('64MB');
    const single2 = await pgwarden(['restart', c().scope, replica, '--force']);
    expect(single2.stdout, show('restart one', single2)).toContain(`Success: restart on member ${replica}`);
    await waitPending(others, `pending_restart cleared on ${replica} only (again)`);

    const t1 = Date.now();
    const mine = await pgwarden(['restart', c().scope, '--pending', '--force']);
    console.log(`pgwarden restart --pending --force took ${Date.now() - t1} ms:\n${show('pgwarden', mine)}`);
    // The tables were printed at two different moments (other LSNs, other reasons): compare what follows them.
    const actions = (r: CommandResult): string[] => r.stdout.split('\n').filter((l) => !/^[+|]/.test(l));
    expect(actions(mine)).toEqual(actions(real));
    expect(mine.code).toBe(real.code);
    // patronictl 4.1.4 asks only the members with pending_restart: the restarted replica is not asked at all.
    expect(real.stdout).not.toContain(`member ${replica}`);
    expect(actions(real).filter((l) => l.startsWith('Success: restart on member'))).toHaveLength(2);
    await waitPending(new Set(), 'pending_restart cleared everywhere after pgwarden restart --pending');
    await c().waitReady({ timeoutMs: 60_000 });
    expect(await everywhere('SHOW shared_buffers')).toEqual(['64MB', '64MB', '64MB']);
    for (let i = 0; i < 3; i++) expect((await patroniStatus(i))['pending_restart']).toBeUndefined();
    const after = await pgwarden(['list', c().scope]);
    expect(after.stdout).not.toContain('Pending restart');
  }, 110_000);

  it('a loop_wait change is picked up on the next cycle', async () => {
    const leader = (await c().primaries())[0] ?? '';
    const node = c().nodes.find((n) => n.name === leader);
    if (!node) throw new Error('no leader');
    const marker = `no action. I am (${leader}), the leader with the lock`;
    const cycles = (from: number): number[] =>
      readFileSync(node.logFile, 'utf8')
        .slice(from)
        .split('\n')
        .filter((l) => l.includes(marker))
        .map(logTime);
    const gaps = (ts: readonly number[]): number[] => ts.slice(1).map((t, i) => t - (ts[i] ?? 0));
    const baseline = gaps(cycles(0).slice(-5));
    const offset = readFileSync(node.logFile, 'utf8').length;
    const r = await pgwarden(['edit-config', c().scope, '-s', 'loop_wait=4', '--force']);
    expect(r.code, show('edit-config', r)).toBe(0);
    // The cycle that reads the new value still waits the old loop_wait; the gaps after it are 4 s.
    const after = await waitFor(
      `5 leader cycles after loop_wait=4\n${diag()}`,
      () => {
        const ts = cycles(offset);
        return ts.length >= 5 ? gaps(ts.slice(1)) : false;
      },
      30_000,
      250,
    );
    console.log(
      `leader cycle gaps (ms): loop_wait=2 ${baseline.join(', ')}; loop_wait=4 ${after.join(', ')}`,
    );
    expect(median(baseline)).toBeGreaterThan(1500);
    expect(median(baseline)).toBeLessThan(2800);
    expect(median(after)).toBeGreaterThan(3500);
    expect(median(after)).toBeLessThan(4800);
    const back = await pgwarden(['edit-config', c().scope, '-s', 'loop_wait=2', '--force']);
    expect(back.code, show('edit-config', back)).toBe(0);
  }, 60_000);

  it('SIGHUP with a changed local postgresql.parameters value is applied (local over dynamic)', async () => {
    const i = 2;
    const node = c().nodes[i];
    const pid = c().pid(i);
    if (!node || pid === undefined) throw new Error('no node 3');
    const before = await startTimes();
    const yml = readFileSync(node.configFile, 'utf8');
    const changed = yml.replace(
      '  parameters:\n    unix_socket_directories:',
      '  parameters:\n    work_mem: 9MB\n    unix_socket_directories:',
    );
    expect(changed).not.toBe(yml);
    writeFileSync(node.configFile, changed);
    process.kill(pid, 'SIGHUP');
    await waitFor(
      `work_mem 9MB on ${node.name}\n${diag()}`,
      async () => (await sql(i, 'SHOW work_mem')) === '9MB',
      20_000,
      250,
    );
    expect(await sql(0, 'SHOW work_mem')).toBe('7MB');
    expect(await sql(1, 'SHOW work_mem')).toBe('7MB');
    expect(await startTimes()).toEqual(before);
    expect(readFileSync(node.logFile, 'utf8')).toContain('Changed work_mem from 7168 to 9MB');
  }, 40_000);

  it('an agent restarted next to its running PostgreSQL finds the pending restart again (no PG restart)', async () => {
    const leader = (await c().primaries())[0] ?? '';
    const i = names().findIndex((n) => n !== leader);
    const node = c().nodes[i];
    const pid = c().pid(i);
    if (!node || pid === undefined) throw new Error('no replica agent');
    const r = await pgwarden(['edit-config', c().scope, '-p', 'shared_buffers=80MB', '--force']);
    expect(r.code, show('edit-config', r)).toBe(0);
    await waitPending(new Set(names()), 'pending_restart on every member after shared_buffers=80MB');
    const before = await sql(i, 'SELECT pg_catalog.pg_postmaster_start_time()');
    process.kill(pid, 'SIGKILL');
    await waitFor(`agent of ${node.name} to die`, () => !c().running(i), 5000, 50);
    const offset = readFileSync(node.logFile, 'utf8').length;
    c().start(i);
    const log = await waitFor(
      `the restarted agent of ${node.name} to compare its configuration\n${diag()}`,
      () => {
        const text = readFileSync(node.logFile, 'utf8').slice(offset);
        return /Changed shared_buffers from \d+ to 80MB \(restart might be required\)/.test(text)
          ? text
          : false;
      },
      30_000,
      250,
    );
    // The new agent's member key (its api_url is the same; wait for a write by the new process).
    await waitFor(
      `pending_restart published by the restarted agent\n${diag()}`,
      async () => (await patroniStatus(i))['pending_restart'] === true,
      15_000,
      250,
    );
    expect((await memberKeys()).get(node.name)?.['pending_restart']).toBe(true);
    expect(await sql(i, 'SELECT pg_catalog.pg_postmaster_start_time()')).toBe(before);
    // Nothing but shared_buffers differs from what runs (no spurious "Changed" for values spelled differently).
    expect(log.match(/INFO: Changed /g)).toHaveLength(1);
  }, 60_000);
});

describeWithNeeds('Patroni 4.1.4 reference: the same pending restart', () => {
  let etcd: EtcdServer | undefined;
  let lab: PatroniCluster | undefined;
  const l = (): PatroniCluster => {
    if (!lab) throw new Error('no Patroni cluster');
    return lab;
  };

  beforeAll(async () => {
    etcd = await startEtcd();
    lab = await startPatroniCluster({
      dcs: 'etcd3',
      dcsEndpoint: etcd.endpoint,
      ttl: 20,
      loopWait: 2,
      retryTimeout: 5,
      upTimeoutMs: 120_000,
      patroniVersion: '4.1.4',
    });
  }, 180_000);

  afterAll(async () => {
    try {
      await lab?.stop();
    } finally {
      await etcd?.stop();
    }
  }, 120_000);

  it('member key and GET /patroni have the fields pgwarden publishes, in the same order', async () => {
    const r = await l().patronictl(['edit-config', l().scope, '-p', 'shared_buffers=48MB', '--force']);
    expect(r.code, show('patronictl edit-config', r)).toBe(0);
    const memberKeys = async (): Promise<JsonObject[]> => {
      const dcs = await createDcs(
        { kind: 'etcd3', hosts: [etcd?.endpoint ?? ''], protocol: 'http' },
        { namespace: l().namespace, scope: l().scope, ttl: 30, retryTimeout: 5, ctl: true },
      );
      try {
        return (await dcs.getCluster()).members.map((m) => m.data.raw);
      } finally {
        await dcs.close();
      }
    };
    const t = Date.now();
    const keys = await waitFor(
      `pending_restart on every Patroni member\n${l().logTails(20)}`,
      async () => {
        const ks = await memberKeys();
        return ks.length === 3 && ks.every((k) => k['pending_restart'] === true) ? ks : false;
      },
      30_000,
      250,
    );
    console.log(`Patroni: pending_restart on all members ${Date.now() - t} ms after edit-config returned`);
    const statuses = await Promise.all(
      [0, 1, 2].map(async (i) => JSON.parse((await l().rest(i, '/patroni')).body) as JsonObject),
    );
    const theirs: Shapes = { memberKey: shapesByRole(keys), status: shapesByRole(statuses) };
    console.log(
      `Patroni 4.1.4 with a pending restart:\n${JSON.stringify(keys[0])}\n${JSON.stringify(statuses[0])}`,
    );
    if (!pgwardenShapes) throw new Error('the pgwarden shapes were not recorded (its test failed)');
    // The reference cluster has a `mytag` tag; the pgwarden agents have none.
    const noTags = (r: Readonly<Record<string, readonly string[]>>): Record<string, string[]> =>
      Object.fromEntries(Object.entries(r).map(([role, ks]) => [role, ks.filter((k) => k !== 'tags')]));
    expect(noTags(pgwardenShapes.memberKey)).toEqual(noTags(theirs.memberKey));
    expect(noTags(pgwardenShapes.status)).toEqual(noTags(theirs.status));
    for (const st of statuses) expect(st['pending_restart']).toBe(true);
  }, 60_000);
});
