/**
 * Synchronous mode on three pgwarden agents (real PostgreSQL 15 and etcd3), the safety rule being "never lose an
 * acknowledged write in synchronous mode":
 * 1. `pgwarden edit-config -s synchronous_mode=true`: the leader writes `/sync` = {leader, sync_standby} and sets
 *    synchronous_standby_names; REST /sync, /async and /cluster, and `pgwarden list` show the sync standby.
 * 2. The sync standby gets the `nosync` tag (config file + SIGHUP): the other replica takes its place.
 * 3. synchronous_mode_strict with every standby stopped: a commit on the primary waits (SyncRep) instead of the
 *    primary going asynchronous, and completes once a standby is back.
 * 4. kill -9 of the leader agent and its postmaster while a writer commits on it: the new leader is the former
 *    sync standby and has every acknowledged id.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { crashHost } from '../harness/ha-probe.js';
import { runCommand } from '../harness/patroni.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { connectSuperuser } from '../harness/write-probe.js';
import { createDcs } from '../../src/dcs/registry.js';
import type { Cluster } from '../../src/model/cluster.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'bundle', 'root');

describeWithNeeds('pgwarden agents in synchronous mode', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  const clients: pg.Client[] = [];
  let leader = '';
  let syncStandby = '';
  let other = '';

  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  const idx = (name: string): number => c().nodes.findIndex((n) => n.name === name);
  const node = (name: string): AgentCluster['nodes'][number] => {
    const n = c().nodes[idx(name)];
    if (!n) throw new Error(`no node ${name}`);
    return n;
  };
  const readDcs = async (): Promise<Cluster> => {
    const dcs = await createDcs(
      { kind: 'etcd3', hosts: [etcd?.endpoint ?? ''], protocol: 'http' },
      { namespace: '/service', scope: c().scope, ttl: 30, retryTimeout: 5, ctl: true },
    );
    try {
      return await dcs.getCluster();
    } finally {
      await dcs.close();
    }
  };
  const syncKey = async (): Promise<{ leader?: string; standbys: readonly string[] }> => {
    const s = (await readDcs()).sync;
    return { ...(s.leader ? { leader: s.leader } : {}), standbys: s.members };
  };
  const ssn = async (name: string): Promise<string> =>
    (await c().psql(idx(name), 'SHOW synchronous_standby_names')).stdout.trim();
  const cli = (args: readonly string[]): ReturnType<typeof runCommand> =>
    runCommand(
      process.execPath,
      [join(ROOT, 'bin', 'run.js'), '-d', `etcd3://${etcd?.endpoint ?? ''}`, ...args],
      {
        timeoutMs: 30_000,
      },
    );
  const client = (name: string): Promise<pg.Client> =>
    connectSuperuser(node(name).pgPort, { track: clients });
  /** Rewrites the `nosync` tag in the member's config file and reloads its agent (SIGHUP). */
  const setNosync = (name: string, on: boolean): void => {
    const file = node(name).configFile;
    writeFileSync(file, readFileSync(file, 'utf8').replace(/nosync: (true|false)/, `nosync: ${on}`));
    const pid = c().pid(idx(name));
    if (pid === undefined) throw new Error(`agent of ${name} is not running`);
    process.kill(pid, 'SIGHUP');
  };
  const editConfig = async (...settings: string[]): Promise<void> => {
    const r = await cli(['edit-config', c().scope, ...settings.flatMap((s) => ['-s', s]), '--force']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
  };

  beforeAll(async () => {
    etcd = await startEtcd();
    cluster = await startAgentCluster({ etcdEndpoint: etcd.endpoint, ttl: 10, loopWait: 2, retryTimeout: 3 });
    leader = await cluster.waitReady({ timeoutMs: 90_000 });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(clients.map((cl) => cl.end().catch(() => undefined)));
    try {
      await cluster?.stop();
    } finally {
      await etcd?.stop();
    }
  }, 60_000);

  it('synchronous_mode on: /sync and synchronous_standby_names name one replica; REST and list agree', async () => {
    const t0 = Date.now();
    await editConfig('synchronous_mode=true');
    const s = await waitFor(
      '/sync naming the leader and one sync standby',
      async () => {
        const k = await syncKey();
        return k.leader === leader && k.standbys.length === 1 ? k : false;
      },
      30_000,
      200,
    );
    syncStandby = s.standbys[0] ?? '';
    other =
      c()
        .nodes.map((n) => n.name)
        .find((n) => n !== leader && n !== syncStandby) ?? '';
    console.log(
      `synchronous mode on: /sync={leader:${leader}, sync_standby:${syncStandby}} after ${Date.now() - t0} ms`,
    );
    expect(await ssn(leader)).toBe(syncStandby);
    const rep = await c().psql(
      idx(leader),
      "SELECT application_name || ':' || sync_state FROM pg_stat_replication ORDER BY 1",
    );
    expect(rep.stdout.trim().split('\n').sort()).toEqual([`${other}:async`, `${syncStandby}:sync`].sort());

    // REST health checks as Patroni 3.0.2: /sync only on the sync standby, /async only on the async replica.
    const codes = async (path: string): Promise<number[]> =>
      Promise.all(c().nodes.map(async (_n, i) => (await c().rest(i, path)).status));
    const expectCodes = (path: string, ok: string): Promise<void> =>
      waitFor(
        `${path} answering 200 on ${ok} only`,
        async () => {
          const got = await codes(path);
          return got.every((code, i) => code === (c().nodes[i]?.name === ok ? 200 : 503));
        },
        10_000,
      ).then(() => undefined);
    await expectCodes('/sync', syncStandby);
    await expectCodes('/synchronous', syncStandby);
    await expectCodes('/async', other);
    const patroni = JSON.parse((await c().rest(idx(syncStandby), '/patroni')).body) as Record<
      string,
      unknown
    >;
    expect(patroni['sync_standby']).toBe(true);
    const view = JSON.parse((await c().rest(idx(leader), '/cluster')).body) as {
      members: { name: string; role: string }[];
    };
    expect(Object.fromEntries(view.members.map((m) => [m.name, m.role]))).toEqual({
      [leader]: 'leader',
      [syncStandby]: 'sync_standby',
      [other]: 'replica',
    });
    const list = await cli(['list', c().scope, '-f', 'json']);
    expect(list.code, list.stderr).toBe(0);
    const rows = JSON.parse(list.stdout) as { Member: string; Role: string }[];
    expect(Object.fromEntries(rows.map((r) => [r.Member, r.Role]))).toEqual({
      [leader]: 'Leader',
      [syncStandby]: 'Sync Standby',
      [other]: 'Replica',
    });
  }, 60_000);

  it('nosync tag on the sync standby: the other replica takes its place', async () => {
    const t0 = Date.now();
    setNosync(syncStandby, true);
    await waitFor(
      `/sync moving from ${syncStandby} to ${other}`,
      async () => {
        const k = await syncKey();
        return k.leader === leader && k.standbys.join() === other && (await ssn(leader)) === other;
      },
      30_000,
      200,
    );
    console.log(
      `nosync on ${syncStandby}: /sync and synchronous_standby_names = ${other} after ${Date.now() - t0} ms`,
    );
    // The reloaded tag is published in the REST status too.
    const st = JSON.parse((await c().rest(idx(syncStandby), '/patroni')).body) as {
      tags?: Record<string, unknown>;
    };
    expect(st.tags?.['nosync']).toBe(true);
    [syncStandby, other] = [other, syncStandby];
  }, 45_000);

  it('synchronous_mode_strict with no standby left: commits wait instead of going asynchronous', async () => {
    // Created while a standby can still acknowledge: creating a table commits a transaction too.
    expect((await c().psql(idx(leader), 'CREATE TABLE strict_probe (id int)')).code).toBe(0);
    await editConfig('synchronous_mode_strict=true');
    // The nosync replica first, then the sync standby: nobody can acknowledge commits any more.
    await c().terminate(idx(other));
    await c().terminate(idx(syncStandby));
    console.log(`strict mode: ${other} and ${syncStandby} stopped`);
    await waitFor(
      "/sync emptied and synchronous_standby_names='*'",
      async () => {
        const k = await syncKey();
        return k.leader === leader && k.standbys.length === 0 && (await ssn(leader)) === '*';
      },
      30_000,
      200,
    );
    const w = await client(leader);
    const t0 = Date.now();
    let settled = false;
    const insert = w.query('INSERT INTO strict_probe VALUES (1)').then(
      () => (settled = true),
      (e: unknown) => {
        settled = true;
        throw e;
      },
    );
    // The commit is waiting for a synchronous standby (wait event SyncRep), and keeps waiting.
    const probe = await client(leader);
    await waitFor(
      'the INSERT waiting in SyncRep',
      async () =>
        (await probe.query("SELECT 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'")).rowCount === 1,
      10_000,
      100,
    );
    // A second commit with statement_timeout=1s: what PostgreSQL does with a timeout during the wait.
    const timed = await client(leader);
    const notices: string[] = [];
    timed.on('notice', (n) => notices.push(n.message ?? ''));
    await timed.query("SET statement_timeout = '1s'");
    const t1 = Date.now();
    const timedInsert = timed.query('INSERT INTO strict_probe VALUES (2)').then(
      () => `returned after ${Date.now() - t1} ms`,
      (e: unknown) => `failed after ${Date.now() - t1} ms: ${e instanceof Error ? e.message : String(e)}`,
    );
    await waitFor('3 s with the commit still waiting', () => Date.now() - t0 >= 3000, 5000, 100);
    expect(settled).toBe(false);
    const blockedMs = Date.now() - t0;

    // The sync standby comes back: it is made synchronous and the waiting commit returns.
    c().start(idx(syncStandby));
    console.log(`strict mode: commit still waiting after ${blockedMs} ms; starting ${syncStandby}`);
    await insert;
    console.log(
      `strict mode, statement_timeout=1s: ${await timedInsert}; notices: ${JSON.stringify(notices)}`,
    );
    console.log(
      `strict mode: a commit waited ${blockedMs}+ ms with no standby (SyncRep), returned after ${Date.now() - t0} ms once ${syncStandby} was back`,
    );
    // SSN='*' let the returning standby acknowledge at once; the leader then names it in SSN and /sync.
    await waitFor(
      `/sync = {${leader}, ${syncStandby}} and synchronous_standby_names = ${syncStandby}`,
      async () => {
        const k = await syncKey();
        return (
          k.leader === leader && k.standbys.join() === syncStandby && (await ssn(leader)) === syncStandby
        );
      },
      20_000,
    );
    c().start(idx(other));
    await c().waitReady({ timeoutMs: 60_000 });
  }, 120_000);

  it('kill -9 of the leader while a writer commits: the sync standby takes over with every acknowledged id', async () => {
    setNosync(other, false);
    await waitFor(
      `/sync = {${leader}, ${syncStandby}}`,
      async () => {
        const k = await syncKey();
        return k.leader === leader && k.standbys.join() === syncStandby;
      },
      20_000,
    );
    const w = await client(leader);
    await w.query('CREATE TABLE IF NOT EXISTS acked (id int PRIMARY KEY)');
    const acked: number[] = [];
    let failed = 0;
    let stop = false;
    const writer = (async (): Promise<void> => {
      for (let id = 1; !stop; id++) {
        try {
          await w.query('INSERT INTO acked VALUES ($1)', [id]);
          acked.push(id);
        } catch {
          failed++;
          return; // the primary is gone
        }
      }
    })();
    await waitFor('200 acknowledged writes', () => acked.length >= 200, 30_000, 50);
    const pid = c().pid(idx(leader));
    if (pid === undefined) throw new Error('leader agent not running');
    const t0 = Date.now();
    crashHost(pid, node(leader).dataDir);
    // The writer's connection breaks with the postmaster; the guard only bounds a hung socket.
    let guard: NodeJS.Timeout | undefined;
    await Promise.race([writer, new Promise<void>((r) => (guard = setTimeout(r, 15_000)))]);
    clearTimeout(guard);
    stop = true;
    await writer;
    const ackedAtCrash = acked.length;

    const newLeader = await waitFor(
      'a new primary',
      async () => {
        const ps = (await c().primaries()).filter((p) => p !== leader);
        return ps.length === 1 ? ps[0] : false;
      },
      60_000,
      200,
    );
    const failoverMs = Date.now() - t0;
    expect(newLeader).toBe(syncStandby);
    const r = await client(newLeader);
    const present = new Set(
      (await r.query<{ id: number }>('SELECT id FROM acked')).rows.map((row) => row.id),
    );
    const lost = acked.filter((id) => !present.has(id));
    console.log(
      `kill -9 of ${leader}: ${ackedAtCrash} acknowledged writes, ${failed} failed at the crash, new leader ${newLeader} after ${failoverMs} ms has ${present.size} rows, lost ${lost.length}`,
    );
    expect(lost).toEqual([]);
    const k = await waitFor(
      `/sync rewritten by ${newLeader}`,
      async () => {
        const s = await syncKey();
        return s.leader === newLeader ? s : false;
      },
      20_000,
    );
    expect(k.leader).toBe(newLeader);
  }, 120_000);
});
