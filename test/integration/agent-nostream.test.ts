/**
 * The `nostream` and `sync_priority` tags on pgwarden agents (real PostgreSQL 15 and etcd3), as Patroni 4.1.4 runs
 * them:
 * 1. a replica tagged `nostream: 'true'` (a string: Patroni reads it with parse_bool) is cloned from the leader but
 *    never streams: no primary_conninfo and no primary_slot_name, the restore_command of the dynamic
 *    `postgresql.parameters`, `replication_state` "in archive recovery" in its member key, REST status and
 *    `pgwarden list`; the leader keeps no slot for it and has no walsender for it; rows reach it through the archive;
 * 2. synchronous_mode on: the streaming replica is the sync standby, never the nostream one (whatever its
 *    `sync_priority`); a replica with a higher `sync_priority` that starts later takes its place.
 */
import { chownSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { runCommand } from '../harness/patroni.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { createDcs } from '../../src/dcs/registry.js';
import type { Cluster } from '../../src/model/cluster.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'bundle', 'root');

describeWithNeeds('pgwarden agents with the nostream and sync_priority tags', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;

  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
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
  const sql = async (i: number, text: string): Promise<string> => {
    const r = await c().psql(i, text);
    if (r.code !== 0) throw new Error(`psql on node ${i} exited ${String(r.code)}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const diag = (): string => c().logTails(40);

  beforeAll(async () => {
    etcd = await startEtcd();
    cluster = await startAgentCluster({
      etcdEndpoint: etcd.endpoint,
      nodes: 4,
      ttl: 20,
      loopWait: 2,
      retryTimeout: 5,
      deferStart: true,
    });
    // One WAL archive for the cluster, written by the primary's archive_command, read by restore_command.
    const archive = join(cluster.dir, 'archive');
    mkdirSync(archive);
    const owner = statSync(cluster.nodes[0]?.dir ?? '');
    chownSync(archive, owner.uid, owner.gid);
    const archiving = [
      `        archive_mode: 'on'`,
      `        archive_command: 'test ! -f ${archive}/%f && cp %p ${archive}/%f'`,
      `        restore_command: 'cp ${archive}/%f %p'`,
    ].join('\n');
    const tags: Record<string, string> = {
      pg2: "  nostream: 'true'\n  sync_priority: 5",
      pg4: "  sync_priority: '3'",
    };
    for (const node of cluster.nodes) {
      let text = readFileSync(node.configFile, 'utf8');
      text = text.replace('        wal_level: replica\n', `        wal_level: replica\n${archiving}\n`);
      const extra = tags[node.name];
      if (extra) text = text.replace('  nosync: false\n', `  nosync: false\n${extra}\n`);
      writeFileSync(node.configFile, text);
    }
    cluster.start(0);
    await waitFor('pg1 to lead', async () => (await c().primaries()).includes('pg1'), 90_000, 500);
    cluster.start(1);
    cluster.start(2);
  }, 150_000);

  afterAll(async () => {
    try {
      await cluster?.stop();
    } finally {
      await etcd?.stop();
    }
  }, 60_000);

  it('a nostream replica replays from the archive only: no conninfo, no slot, shown in archive recovery', async () => {
    const t0 = Date.now();
    const member = await waitFor(
      'pg2 in archive recovery in its member key',
      async () => {
        const m = (await readDcs()).members.find((x) => x.name === 'pg2');
        return m?.data.replicationState === 'in archive recovery' ? m : undefined;
      },
      120_000,
      500,
    ).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${diag()}`);
    });
    console.log(`pg2 (nostream) in archive recovery ${Date.now() - t0} ms after its agent started`);
    expect(member.data.tags['nostream']).toBe('true');

    // Its PostgreSQL: a standby with the archive's restore_command and no upstream.
    expect(await sql(1, 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await sql(1, 'SHOW primary_conninfo')).toBe('');
    expect(await sql(1, 'SHOW primary_slot_name')).toBe('');
    expect(await sql(1, 'SHOW restore_command')).toContain('/archive/%f %p');
    const conf = readFileSync(join(c().nodes[1]?.dataDir ?? '', 'postgresql.conf'), 'utf8');
    expect(conf).not.toMatch(/^primary_conninfo/m);
    expect(conf).toMatch(/^restore_command = /m);

    // pg3 streams (and has its slot on the leader); pg2 has neither a slot nor a walsender there.
    await waitFor(
      'pg3 streaming from pg1',
      async () =>
        (await sql(0, "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'")) ===
        'pg3',
      120_000,
      500,
    ).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${diag()}`);
    });
    expect((await sql(0, 'SELECT slot_name FROM pg_replication_slots ORDER BY 1')).split('\n')).toEqual([
      'pg3',
    ]);

    // Rows reach it through the archive: a switched-out WAL segment is archived, then restored.
    await sql(0, 'CREATE TABLE nostream_probe(id int); INSERT INTO nostream_probe VALUES (42)');
    await sql(0, 'SELECT pg_switch_wal()');
    await waitFor(
      'the row on pg2',
      async () => (await c().psql(1, 'SELECT id FROM nostream_probe')).stdout.trim() === '42',
      60_000,
      500,
    );

    // REST and the CLI show it as Patroni 4.1.4 does.
    const st = JSON.parse((await c().rest(1, '/patroni')).body) as Record<string, unknown>;
    expect(st['replication_state']).toBe('in archive recovery');
    const list = await runCommand(
      process.execPath,
      [join(ROOT, 'bin', 'run.js'), '-d', `etcd3://${etcd?.endpoint ?? ''}`, 'list', c().scope, '-f', 'json'],
      { timeoutMs: 30_000 },
    );
    expect(list.code).toBe(0);
    const rows = JSON.parse(list.stdout) as { Member: string; State: string }[];
    expect(rows.find((r) => r.Member === 'pg2')?.State).toBe('in archive recovery');
    expect(rows.find((r) => r.Member === 'pg3')?.State).toBe('streaming');
  }, 240_000);

  it('synchronous mode: never the nostream replica; a higher sync_priority takes the place', async () => {
    const edit = await runCommand(
      process.execPath,
      [
        join(ROOT, 'bin', 'run.js'),
        '-d',
        `etcd3://${etcd?.endpoint ?? ''}`,
        'edit-config',
        c().scope,
        '-s',
        'synchronous_mode=true',
        '--force',
      ],
      { timeoutMs: 30_000 },
    );
    expect(edit.code, edit.stderr).toBe(0);
    const syncNamed = async (what: string): Promise<readonly string[]> =>
      (
        await waitFor(
          what,
          async () => {
            const s = (await readDcs()).sync;
            return s.leader === 'pg1' && s.members.length > 0 && s.members.join() === what ? s : undefined;
          },
          90_000,
          500,
        ).catch((e: unknown) => {
          throw new Error(`/sync never named ${what}: ${String(e)}\n${diag()}`);
        })
      ).members;
    // pg2 has the highest sync_priority (5) but does not stream: pg3 (priority 1) is the only candidate.
    expect(await syncNamed('pg3')).toEqual(['pg3']);
    expect(await sql(0, 'SHOW synchronous_standby_names')).toBe('pg3');
    // pg4 (sync_priority '3') joins: it is preferred over the current sync standby (Patroni 4.1.4's _ReplicaList).
    const t0 = Date.now();
    c().start(3);
    expect(await syncNamed('pg4')).toEqual(['pg4']);
    console.log(`pg4 (sync_priority 3) the sync standby ${Date.now() - t0} ms after its agent started`);
    expect(await sql(0, 'SHOW synchronous_standby_names')).toBe('pg4');
    expect((await readDcs()).members.find((m) => m.name === 'pg2')?.data.replicationState).toBe(
      'in archive recovery',
    );
  }, 180_000);
});
