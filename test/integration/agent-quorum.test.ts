/**
 * Quorum commit (`synchronous_mode: quorum`, Patroni 4.0+) on three pgwarden agents (real PostgreSQL and etcd3).
 * The safety rule: a failover never loses a commit the old primary acknowledged.
 *
 * 1. `pgwarden edit-config -s synchronous_mode=quorum`: the leader sets synchronous_standby_names to
 *    `ANY 1 (a,b)` and writes `/sync` = {leader, quorum 1, sync_standby "a,b"}; REST /quorum, /read-only-quorum,
 *    /async and `pgwarden list` (`Quorum Standby`) agree.
 * 2. Standby B's walreceiver is frozen (SIGSTOP): commits are acknowledged by A alone. Then A is frozen whole (agent,
 *    postmaster and its children) and the leader host crashes (kill -9) while a writer commits. B is up, its agent
 *    races, but no voter can vouch for it (the old leader is dead, A does not answer): it must not promote, as it
 *    lacks the commits only A acknowledged. Once A is thawed, A wins the race with B's vote and has every
 *    acknowledged id.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { childPids, crashHost } from '../harness/ha-probe.js';
import { runCommand } from '../harness/patroni.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { connectSuperuser } from '../harness/write-probe.js';
import { createDcs } from '../../src/dcs/registry.js';
import type { Cluster } from '../../src/model/cluster.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'bundle', 'root');

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

describeWithNeeds('pgwarden agents in quorum commit mode', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  const clients: pg.Client[] = [];
  /** Every process this test stopped with SIGSTOP: continued in afterAll whatever happens. */
  const frozen = new Set<number>();
  let leader = '';
  let a = '';
  let b = '';

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
  const ssn = async (name: string): Promise<string> =>
    (await c().psql(idx(name), 'SHOW synchronous_standby_names')).stdout.trim();
  const cli = (args: readonly string[]): ReturnType<typeof runCommand> =>
    runCommand(
      process.execPath,
      [join(ROOT, 'bin', 'run.js'), '-d', `etcd3://${etcd?.endpoint ?? ''}`, ...args],
      { timeoutMs: 30_000 },
    );
  const client = (name: string): Promise<pg.Client> =>
    connectSuperuser(node(name).pgPort, { track: clients });
  const postmaster = (name: string): number => {
    const pid = Number.parseInt(
      readText(join(node(name).dataDir, 'postmaster.pid')).split('\n', 1)[0] ?? '',
      10,
    );
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no postmaster for ${name}`);
    return pid;
  };
  const signal = (pids: readonly number[], sig: 'SIGSTOP' | 'SIGCONT'): void => {
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
        if (sig === 'SIGSTOP') frozen.add(pid);
        else frozen.delete(pid);
      } catch {
        frozen.delete(pid);
      }
    }
  };

  beforeAll(async () => {
    etcd = await startEtcd();
    cluster = await startAgentCluster({ etcdEndpoint: etcd.endpoint, ttl: 10, loopWait: 2, retryTimeout: 3 });
    leader = await cluster.waitReady({ timeoutMs: 90_000 });
  }, 120_000);

  afterAll(async () => {
    signal([...frozen], 'SIGCONT');
    await Promise.all(clients.map((cl) => cl.end().catch(() => undefined)));
    try {
      await cluster?.stop();
    } finally {
      await etcd?.stop();
    }
  }, 60_000);

  it('synchronous_mode quorum: ANY 1 of both replicas, /sync quorum 1; REST and list show Quorum Standby', async () => {
    const t0 = Date.now();
    const r = await cli(['edit-config', c().scope, '-s', 'synchronous_mode=quorum', '--force']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const replicas = c()
      .nodes.map((n) => n.name)
      .filter((n) => n !== leader)
      .sort();
    const want = `ANY 1 (${replicas.join(',')})`;
    await waitFor(
      `/sync {leader ${leader}, quorum 1, ${replicas.join(',')}} and synchronous_standby_names ${want}`,
      async () => {
        const s = (await readDcs()).sync;
        return (
          s.leader === leader &&
          s.quorum === 1 &&
          [...s.members].sort().join() === replicas.join() &&
          (await ssn(leader)) === want
        );
      },
      30_000,
      200,
    );
    console.log(`quorum commit on: ${want}, /sync quorum 1 after ${Date.now() - t0} ms`);
    [a, b] = [replicas[0] ?? '', replicas[1] ?? ''];
    const rep = await c().psql(
      idx(leader),
      "SELECT application_name || ':' || sync_state FROM pg_stat_replication ORDER BY 1",
    );
    expect(rep.stdout.trim().split('\n')).toEqual(replicas.map((n) => `${n}:quorum`));

    const codes = async (path: string): Promise<Record<string, number>> =>
      Object.fromEntries(
        await Promise.all(c().nodes.map(async (n, i) => [n.name, (await c().rest(i, path)).status] as const)),
      );
    await waitFor(
      '/quorum on both replicas',
      async () => Object.values(await codes('/quorum')).filter((x) => x === 200).length === 2,
      10_000,
    );
    expect(await codes('/quorum')).toEqual({ [leader]: 503, [a]: 200, [b]: 200 });
    expect(await codes('/read-only-quorum')).toEqual({ [leader]: 200, [a]: 200, [b]: 200 });
    expect(await codes('/async')).toEqual({ [leader]: 503, [a]: 503, [b]: 503 });
    expect(await codes('/sync')).toEqual({ [leader]: 503, [a]: 503, [b]: 503 });
    const st = JSON.parse((await c().rest(idx(a), '/patroni')).body) as Record<string, unknown>;
    expect(st['quorum_standby']).toBe(true);
    const list = await cli(['list', c().scope, '-f', 'json']);
    expect(list.code, list.stderr).toBe(0);
    const rows = JSON.parse(list.stdout) as { Member: string; Role: string }[];
    expect(Object.fromEntries(rows.map((x) => [x.Member, x.Role]))).toEqual({
      [leader]: 'Leader',
      [a]: 'Quorum Standby',
      [b]: 'Quorum Standby',
    });
  }, 60_000);

  it('two of three nodes frozen, the leader crashed: the lagging voter never promotes, no acknowledged commit is lost', async () => {
    const w = await client(leader);
    await w.query('CREATE TABLE acked (id int PRIMARY KEY)');

    // B stops receiving WAL (its postgres and agent keep answering): from now on only A acknowledges commits.
    const walreceiver = childPids(postmaster(b)).filter((pid) =>
      readText(`/proc/${pid}/cmdline`).includes('walreceiver'),
    );
    expect(walreceiver.length).toBe(1);
    signal(walreceiver, 'SIGSTOP');

    const acked: number[] = [];
    let stop = false;
    const writer = (async (): Promise<void> => {
      for (let id = 1; !stop; id++) {
        try {
          await w.query('INSERT INTO acked VALUES ($1)', [id]);
          acked.push(id);
        } catch {
          return; // the primary is gone
        }
      }
    })();
    await waitFor('100 acknowledged writes', () => acked.length >= 100, 30_000, 50);
    const bRows = async (): Promise<number> =>
      Number((await c().psql(idx(b), 'SELECT count(*) FROM acked')).stdout.trim() || '0');
    // B is behind: it lacks commits the primary acknowledged.
    expect(await bRows()).toBeLessThan(acked.length);

    // A frozen whole (agent, postmaster, backends): nobody acknowledges any more; then the leader host crashes.
    const aAgent = c().pid(idx(a));
    if (aAgent === undefined) throw new Error(`agent of ${a} not running`);
    const aPostmaster = postmaster(a);
    signal([aAgent, aPostmaster, ...childPids(aPostmaster)], 'SIGSTOP');
    await waitFor(
      'a commit waiting for an acknowledgement',
      async () => {
        const n = acked.length;
        await new Promise((r) => setTimeout(r, 300));
        return acked.length === n;
      },
      10_000,
    );
    const leaderAgent = c().pid(idx(leader));
    if (leaderAgent === undefined) throw new Error('leader agent not running');
    const t0 = Date.now();
    crashHost(leaderAgent, node(leader).dataDir);
    let guard: NodeJS.Timeout | undefined;
    await Promise.race([writer, new Promise<void>((r) => (guard = setTimeout(r, 15_000)))]);
    clearTimeout(guard);
    stop = true;
    await writer;
    const ackedAtCrash = [...acked];

    // The leader key expires (ttl 10 s) and B races every loop_wait (2 s): it must stay a replica throughout.
    const watchUntil = Date.now() + 30_000;
    while (Date.now() < watchUntil) {
      const primaries = await c().primaries();
      expect(primaries).toEqual([]);
      await new Promise((r) => setTimeout(r, 500));
    }
    const lockAfter = (await readDcs()).leader?.name;
    expect(lockAfter).toBeUndefined();
    console.log(
      `leader ${leader} crashed with ${ackedAtCrash.length} acknowledged writes, ${a} frozen: ${b} (behind, ${await bRows()} rows) did not promote in 30 s`,
    );

    // A thawed: it wins the race (B votes for it), and has every acknowledged id.
    signal([aAgent, aPostmaster, ...childPids(aPostmaster)], 'SIGCONT');
    const newLeader = await waitFor(
      'a new primary',
      async () => {
        const ps = await c().primaries();
        return ps.length === 1 ? ps[0] : false;
      },
      60_000,
      200,
    );
    expect(newLeader).toBe(a);
    const r = await client(a);
    const present = new Set((await r.query<{ id: number }>('SELECT id FROM acked')).rows.map((x) => x.id));
    const lost = ackedAtCrash.filter((id) => !present.has(id));
    console.log(
      `${a} thawed: promoted ${Date.now() - t0} ms after the crash with ${present.size} rows, lost ${lost.length} of ${ackedAtCrash.length} acknowledged`,
    );
    expect(lost).toEqual([]);
    // The new leader takes /sync over.
    await waitFor(`/sync naming ${a}`, async () => (await readDcs()).sync.leader === a, 30_000, 200);
    signal(walreceiver, 'SIGCONT');
  }, 180_000);
});
