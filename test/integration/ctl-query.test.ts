/**
 * `pgwarden query` on three pgwarden agents with real PostgreSQL 15 and etcd: the leader by default, `-r replica`
 * reaching a replica, `--format json`, an SQL error printed as a row; real patronictl 3.0.2 run with the same
 * arguments prints the same (except the timestamp of the error row).
 */
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { runCommand, type CommandResult } from '../harness/patroni.js';
import { describeNeeding } from '../harness/requirements.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

const TS = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\t/;

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'patronictl', 'bundle', 'root');

describeWithNeeds('pgwarden query on pgwarden agents', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  let leader = '';

  const env = (): NodeJS.ProcessEnv => ({
    PATH: process.env['PATH'],
    HOME: cluster?.dir,
    PGPASSWORD: 'zalando',
    LANG: 'C.UTF-8',
  });
  const configFile = (): string => cluster?.nodes[0]?.configFile ?? '';
  const pgwarden = (args: readonly string[]): Promise<CommandResult> =>
    runCommand(process.execPath, [join(ROOT, 'bin', 'run.js'), '-c', configFile(), 'query', ...args], {
      env: env(),
      timeoutMs: 30_000,
    });
  const patronictl = (args: readonly string[]): Promise<CommandResult> =>
    runCommand('/usr/bin/patronictl', ['-c', configFile(), 'query', ...args], {
      env: env(),
      timeoutMs: 30_000,
    });

  beforeAll(async () => {
    etcd = await startEtcd();
    cluster = await startAgentCluster({ etcdEndpoint: etcd.endpoint, ttl: 20, loopWait: 2, retryTimeout: 5 });
    leader = await cluster.waitReady({ timeoutMs: 90_000 });
  });

  afterAll(async () => {
    try {
      await cluster?.stop();
    } finally {
      await etcd?.stop();
    }
  });

  it('runs SQL on the leader by default', async () => {
    const r = await pgwarden(['-c', 'select 1 as x', '-U', 'postgres']);
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: 'x\n1\n' });
    const who = await pgwarden([
      '-c',
      "select current_setting('port') as port, pg_is_in_recovery()",
      '-U',
      'postgres',
    ]);
    const port = String(cluster?.nodes.find((n) => n.name === leader)?.pgPort);
    expect(who.stdout).toBe(`port\tpg_is_in_recovery\n${port}\tFalse\n`);
    expect(
      await patronictl([
        '-c',
        "select current_setting('port') as port, pg_is_in_recovery()",
        '-U',
        'postgres',
      ]),
    ).toMatchObject({ code: 0, stdout: who.stdout });
  });

  it('-r replica connects to a replica', async () => {
    const args = ['-r', 'replica', '-c', 'select pg_is_in_recovery()', '-U', 'postgres'];
    const r = await pgwarden(args);
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: 'pg_is_in_recovery\nTrue\n' });
    expect((await patronictl(args)).stdout).toBe(r.stdout);
  });

  it('-m MEMBER, -d DB and --format json', async () => {
    const replica = cluster?.nodes.find((n) => n.name !== leader)?.name ?? '';
    const args = [
      '-m',
      replica,
      '-d',
      'template1',
      '-U',
      'postgres',
      '--format',
      'json',
      '-c',
      'select current_database() as db, 2 as n, null as z',
    ];
    const r = await pgwarden(args);
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: '[{"db": "template1", "n": 2, "z": null}]\n' });
    expect((await patronictl(args)).stdout).toBe(r.stdout);
  });

  it('an SQL error is printed as a row with its SQLSTATE', async () => {
    const args = ['-c', 'select * from no_such_table', '-U', 'postgres'];
    const r = await pgwarden(args);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(TS);
    expect(r.stdout.replace(TS, '')).toBe('ERROR, SQLSTATE: 42P01\n');
    expect((await patronictl(args)).stdout.replace(TS, '')).toBe('ERROR, SQLSTATE: 42P01\n');
  });
});
