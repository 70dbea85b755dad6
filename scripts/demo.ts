/**
 * The README's first command. Part 1: three pgwarden agents on a local etcd keep a PostgreSQL cluster
 * available: bootstrap, what `pgwarden list` and Patroni's own `patronictl` see, kill -9 of the leader and the
 * automatic failover. Part 2: the same CLI on a real Patroni cluster, before and after a switchover.
 * Everything runs on 127.0.0.1 and is stopped at the end.
 *
 *   npm run demo          (root; installs what is missing first)
 */
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAgentCluster } from '../test/harness/agents.js';
import { startEtcd } from '../test/harness/etcd.js';
import { startPatroniCluster } from '../test/harness/patroni.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function show(title: string, cmd: string, args: readonly string[]): void {
  console.log(`\n$ ${title}`);
  try {
    process.stdout.write(execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: 120_000 }));
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    process.stdout.write(`${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
}

async function pgwardenAgents(etcdEndpoint: string): Promise<void> {
  console.log('\n=== Part 1: three pgwarden agents (ttl 20, loop_wait 2) ===');
  const t0 = Date.now();
  const cluster = await startAgentCluster({
    etcdEndpoint,
    scope: 'demo',
    ttl: 20,
    loopWait: 2,
    retryTimeout: 5,
  });
  try {
    const leader = await cluster.waitReady({ timeoutMs: 120_000 });
    console.log(
      `bootstrapped: leader ${leader} and 2 streaming replicas after ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    const cfg = cluster.nodes[0]!.configFile;
    const pgwarden = (args: string[]): void =>
      show(`pgwarden ${args.join(' ')}`, 'node', ['bin/run.js', '-c', cfg, ...args]);
    pgwarden(['list']);
    show("patronictl list   # Patroni's own tool reads the pgwarden cluster", '/usr/bin/patronictl', [
      '-c',
      cfg,
      'list',
    ]);
    const i = cluster.nodes.findIndex((n) => n.name === leader);
    console.log(`\n$ kill -9 the agent and PostgreSQL of ${leader}`);
    const killedAt = Date.now();
    await cluster.kill9(i);
    const next = await cluster.waitReady({ timeoutMs: 120_000, exclude: [leader] });
    console.log(
      `new leader ${next} after ${((Date.now() - killedAt) / 1000).toFixed(1)} s (the old lock had to expire: ttl 20 s)`,
    );
    pgwarden(['list']);
    pgwarden(['history']);
  } finally {
    await cluster.stop();
  }
}

async function patroniCluster(etcdEndpoint: string): Promise<void> {
  console.log('\n=== Part 2: the pgwarden CLI on a Patroni 3.0.2 cluster ===');
  const cluster = await startPatroniCluster({
    dcs: 'etcd3',
    dcsEndpoint: etcdEndpoint,
    scope: 'lab',
    ttl: 20,
    loopWait: 2,
    retryTimeout: 5,
  });
  try {
    const cfg = cluster.configFile(0);
    const pgwarden = (args: string[]): void =>
      show(`pgwarden ${args.join(' ')}`, 'node', ['bin/run.js', '-c', cfg, ...args]);
    pgwarden(['list']);
    show('patronictl list', '/usr/bin/patronictl', ['-c', cfg, 'list']);
    pgwarden(['list', '-f', 'json']);
    pgwarden(['show-config']);
    pgwarden(['version', 'lab']);
    const leader = await cluster.leaderName();
    const candidate = cluster.nodes.map((n) => n.name).find((n) => n !== leader)!;
    show(`patronictl switchover --force --candidate ${candidate}`, '/usr/bin/patronictl', [
      '-c',
      cfg,
      'switchover',
      '--force',
      '--candidate',
      candidate,
    ]);
    await cluster.waitReady({ leader: candidate, timeoutMs: 120_000 });
    pgwarden(['history']);
  } finally {
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  console.log('Starting etcd on 127.0.0.1...');
  const etcd = await startEtcd();
  try {
    await pgwardenAgents(etcd.endpoint);
    await patroniCluster(etcd.endpoint);
  } finally {
    console.log('\nStopping everything...');
    await etcd.stop();
  }
}

await main();
