/**
 * The README's first command: start etcd and a 3-member Patroni cluster on 127.0.0.1, and show what pgwarden
 * sees of it next to patronictl, before and after a switchover. Everything is stopped at the end (Ctrl-C too).
 *
 *   npm run demo          (root; installs what is missing first)
 */
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
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

async function main(): Promise<void> {
  console.log('Starting etcd and 3 Patroni agents on 127.0.0.1 (about a minute)...');
  const etcd = await startEtcd();
  const cluster = await startPatroniCluster({
    dcs: 'etcd3',
    dcsEndpoint: etcd.endpoint,
    scope: 'demo',
    ttl: 20,
    loopWait: 2,
    retryTimeout: 5,
  });
  try {
    const cfg = cluster.configFile(0);
    const pgwarden = (args: string[]): void =>
      show(`pgwarden ${args.join(' ')}`, 'node', ['bin/run.js', '-c', cfg, ...args]);
    pgwarden(['list']);
    show("patronictl list   # the same cluster, seen by Patroni's own tool", '/usr/bin/patronictl', [
      '-c',
      cfg,
      'list',
    ]);
    pgwarden(['topology']);
    pgwarden(['list', '-f', 'json']);
    pgwarden(['show-config']);
    pgwarden(['dsn']);
    pgwarden(['version', 'demo']);
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
    pgwarden(['list']);
    pgwarden(['history']);
  } finally {
    console.log('\nStopping the cluster and etcd...');
    await cluster.stop();
    await etcd.stop();
  }
}

await main();
