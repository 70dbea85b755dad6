/**
 * Hooks on three real pgwarden agents (PostgreSQL 15, etcd3): postgresql.callbacks fire with Patroni 4.1.4's
 * arguments on start and on failover; replicas are cloned by a custom create_replica_methods entry (a script that
 * runs pg_basebackup itself) and, when it fails, by the built-in basebackup with postgresql.basebackup options
 * (waldir seen as a symlinked pg_wal); a pre_promote script that fails on the replica that takes the lock first
 * makes it release the lock, and the other replica wins; postgresql.before_stop runs on the old leader of a
 * switchover while its PostgreSQL still runs.
 *
 * Every script takes the node's name as its first argument and appends its argv to a log file.
 */
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { createDcs } from '../../src/dcs/registry.js';

const PG_BIN = '/usr/lib/postgresql/15/bin';

const TTL = 12;

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function lines(path: string): string[] {
  return read(path)
    .split('\n')
    .filter((l) => l !== '');
}

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'patronictl', 'bundle', 'root');

describeWithNeeds('pgwarden agents: callbacks, pre_promote, create_replica_methods', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  const hooks = mkdtempSync(join(tmpdir(), 'pgwarden-hooks-'));
  const cbLog = join(hooks, 'callbacks.log');
  const preLog = join(hooks, 'pre_promote.log');
  const cloneLog = join(hooks, 'clone.log');
  const stopLog = join(hooks, 'before_stop.log');
  let leader = '';
  let replicas: string[] = [];
  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  const node = (name: string) => {
    const n = c().nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  };
  const indexOf = (name: string): number => c().nodes.findIndex((n) => n.name === name);

  beforeAll(async () => {
    const owner = ((): { uid: number; gid: number } => {
      const line = readFileSync('/etc/passwd', 'utf8')
        .split('\n')
        .find((l) => l.startsWith('postgres:'));
      const f = line?.split(':') ?? [];
      return { uid: Number(f[2]), gid: Number(f[3]) };
    })();
    const script = (name: string, body: string): void => {
      const path = join(hooks, name);
      writeFileSync(path, `#!/bin/sh\n${body}\n`);
      chmodSync(path, 0o755);
    };
    script('cb.sh', `echo "$*" >> ${cbLog}`);
    script('stop.sh', `[ -e "$2/postmaster.pid" ] && s=running || s=stopped; echo "$1 $s" >> ${stopLog}`);
    script('pre.sh', `echo "$*" >> ${preLog}\n[ -e ${hooks}/fail-pre-$1 ] && exit 1\nexit 0`);
    script(
      'clone.sh',
      [
        `echo "$*" >> ${cloneLog}`,
        'node=$1; shift',
        'for a in "$@"; do case "$a" in --datadir=*) datadir="${a#--datadir=}";; --connstring=*) conn="${a#--connstring=}";; esac; done',
        `if [ -e ${hooks}/fail-custom-$node ]; then touch "$datadir/junk"; exit 3; fi`,
        `exec ${PG_BIN}/pg_basebackup -D "$datadir" -d "$conn" -X stream -c fast`,
      ].join('\n'),
    );
    chownSync(hooks, owner.uid, owner.gid);
    chmodSync(hooks, 0o755);
    etcd = await startEtcd();
  });

  afterAll(async () => {
    try {
      await cluster?.stop();
    } finally {
      try {
        await etcd?.stop();
      } finally {
        rmSync(hooks, { recursive: true, force: true });
      }
    }
  });

  it('fires on_start with the role and scope, and clones the replicas with the custom method', async () => {
    const t0 = Date.now();
    cluster = await startAgentCluster({
      etcdEndpoint: etcd?.endpoint ?? '',
      ttl: TTL,
      loopWait: 2,
      retryTimeout: 3,
      postgresqlExtra: (n) =>
        [
          'callbacks:',
          ...['on_start', 'on_stop', 'on_restart', 'on_reload', 'on_role_change'].map(
            (a) => `  ${a}: ${hooks}/cb.sh ${n.name}`,
          ),
          `pre_promote: ${hooks}/pre.sh ${n.name}`,
          `before_stop: ${hooks}/stop.sh ${n.name} ${n.dataDir}`,
          'create_replica_methods:',
          '- mycopy',
          '- basebackup',
          'mycopy:',
          `  command: ${hooks}/clone.sh ${n.name}`,
          '  tag: hello',
          'basebackup:',
          '  max-rate: 100M',
          '  checkpoint: fast',
          `  waldir: ${n.dir}/wal`,
        ].join('\n'),
    });
    leader = await c().waitReady({ timeoutMs: 90_000 });
    replicas = c()
      .nodes.map((n) => n.name)
      .filter((n) => n !== leader);
    console.log(`bootstrap with hooks: ${Date.now() - t0} ms; leader ${leader}`);

    const scope = c().scope;
    await waitFor(
      'on_start callbacks of all three members',
      () =>
        [
          `${leader} on_start primary ${scope}`,
          ...replicas.map((r) => `${r} on_start replica ${scope}`),
        ].every((l) => lines(cbLog).includes(l)),
      20_000,
      100,
    );
    const leaderNode = node(leader);
    for (const r of replicas) {
      expect(lines(cloneLog)).toContain(
        `${r} --tag=hello --scope=${scope} --role=replica --datadir=${node(r).dataDir} ` +
          `--connstring=dbname=postgres user=replicator host=127.0.0.1 port=${leaderNode.pgPort}`,
      );
      // Cloned by the script, not by the built-in basebackup (which would have made pg_wal a symlink).
      expect(lstatSync(join(node(r).dataDir, 'pg_wal')).isSymbolicLink()).toBe(false);
    }
    expect(lines(preLog)).toEqual([]);
  });

  it('falls back to basebackup with postgresql.basebackup options when the custom method fails (reinit)', async () => {
    const t0 = Date.now();
    const target = replicas[1] ?? '';
    writeFileSync(join(hooks, `fail-custom-${target}`), '');
    const before = lines(cloneLog).filter((l) => l.startsWith(`${target} `)).length;
    const r = await c().patronictl(['reinit', c().scope, target, '--force']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const wal = join(node(target).dataDir, 'pg_wal');
    await waitFor(
      `${target} re-created by basebackup with --waldir`,
      () => {
        try {
          return lstatSync(wal).isSymbolicLink();
        } catch {
          return false;
        }
      },
      60_000,
      200,
    );
    expect(realpathSync(wal)).toBe(join(node(target).dir, 'wal'));
    expect(lines(cloneLog).filter((l) => l.startsWith(`${target} `)).length).toBe(before + 1);
    expect(await c().waitReady({ timeoutMs: 60_000 })).toBe(leader);
    expect(read(node(target).logFile)).toContain('replica has been created using basebackup');
    rmSync(join(hooks, `fail-custom-${target}`));
    console.log(`reinit through the failing custom method and basebackup: ${Date.now() - t0} ms`);
  });

  it('after kill -9 of the leader, a replica whose pre_promote fails releases the lock and the other wins', async () => {
    const t0 = Date.now();
    const [failing, winner] = [replicas[0] ?? '', replicas[1] ?? ''];
    writeFileSync(join(hooks, `fail-pre-${failing}`), '');
    await c().kill9(indexOf(leader));
    // Make the failing replica the one to take the lock first: a failover key naming it (the old leader is dead,
    // its lock still there until ttl).
    const dcs = await createDcs(
      { kind: 'etcd3', hosts: [etcd?.endpoint ?? ''], protocol: 'http' },
      { namespace: c().namespace, scope: c().scope, ttl: 30, retryTimeout: 5, ctl: true },
    );
    try {
      expect(await dcs.setFailoverValue(JSON.stringify({ member: failing }))).not.toBe(false);
    } finally {
      await dcs.close();
    }
    const newLeader = await c().waitReady({ timeoutMs: 60_000, exclude: [leader] });
    console.log(`failover with a failing pre_promote: ${winner} primary after ${Date.now() - t0} ms`);
    expect(newLeader).toBe(winner);

    const scope = c().scope;
    expect(lines(preLog)).toContain(failing);
    expect(lines(preLog)).toContain(winner);
    expect(lines(preLog).indexOf(failing)).toBeLessThan(lines(preLog).indexOf(winner));
    const failingLog = read(node(failing).logFile);
    expect(failingLog).toContain(
      'Releasing the leader key voluntarily because the pre-promote script failed',
    );
    expect(failingLog).toContain('Promotion cancelled because the pre-promote script failed');
    await waitFor(
      `on_role_change primary on ${winner}`,
      () => lines(cbLog).includes(`${winner} on_role_change primary ${scope}`),
      10_000,
      100,
    );
    expect(lines(cbLog)).not.toContain(`${failing} on_role_change primary ${scope}`);
    expect((await c().status(indexOf(failing)))?.role).toBe('replica');
  });

  it('a switchover: on_role_change primary on the candidate; on_stop demoted, then on_role_change replica on the old leader', async () => {
    const t0 = Date.now();
    const [candidate, old] = [replicas[0] ?? '', replicas[1] ?? ''];
    rmSync(join(hooks, `fail-pre-${candidate}`));
    const scope = c().scope;
    const seen = lines(cbLog).length;
    const stopsSeen = lines(stopLog).length;
    const r = await c().patronictl([
      'switchover',
      scope,
      '--leader',
      old,
      '--candidate',
      candidate,
      '--force',
    ]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(await c().waitReady({ timeoutMs: 60_000, exclude: [leader] })).toBe(candidate);
    const expected = [
      `${candidate} on_role_change primary ${scope}`,
      `${old} on_stop demoted ${scope}`,
      `${old} on_role_change replica ${scope}`,
    ];
    await waitFor(
      'the switchover callbacks',
      () => expected.every((l) => lines(cbLog).slice(seen).includes(l)),
      10_000,
      100,
    );
    const after = lines(cbLog).slice(seen);
    expect(after.indexOf(`${old} on_stop demoted ${scope}`)).toBeLessThan(
      after.indexOf(`${old} on_role_change replica ${scope}`),
    );
    // A role change replaces on_start / on_restart (Patroni's follow with change_role).
    expect(after).not.toContain(`${old} on_start replica ${scope}`);
    expect(after).not.toContain(`${old} on_restart replica ${scope}`);
    // before_stop ran once, on the demoted leader, before its PostgreSQL was stopped.
    expect(lines(stopLog).slice(stopsSeen)).toEqual([`${old} running`]);
    console.log(`switchover with callbacks: ${Date.now() - t0} ms`);
  });

  it('patronictl restart of a replica fires on_restart only; reload fires on_reload', async () => {
    const replica = replicas[1] ?? '';
    const scope = c().scope;
    const seen = lines(cbLog).length;
    const r = await c().patronictl(['restart', scope, replica, '--force']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    await waitFor(
      'on_restart',
      () => lines(cbLog).slice(seen).includes(`${replica} on_restart replica ${scope}`),
      30_000,
      100,
    );
    const rl = await c().patronictl(['reload', scope, replica, '--force']);
    expect(rl.code, rl.stderr + rl.stdout).toBe(0);
    await waitFor(
      'on_reload',
      () => lines(cbLog).slice(seen).includes(`${replica} on_reload replica ${scope}`),
      10_000,
      100,
    );
    const mine = lines(cbLog)
      .slice(seen)
      .filter((l) => l.startsWith(`${replica} `));
    expect(mine).not.toContain(`${replica} on_stop replica ${scope}`);
    expect(mine).not.toContain(`${replica} on_start replica ${scope}`);
  });
});
