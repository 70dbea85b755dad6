/**
 * CLI start-up, side by side with patronictl on the same 3-node Patroni clusters (one on etcd3, one on
 * ZooKeeper), in one run: whole-process wall time and peak RSS of `list`, and of `pgwarden --help`.
 * Runs are interleaved (pgwarden, patronictl, pgwarden, ...) so both see the same machine load.
 *
 *   npm run build && npx tsx scripts/bench-startup.ts [RUNS]      (root: starts etcd, ZooKeeper, 6 Patroni agents)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEtcd } from '../test/harness/etcd.js';
import { startZooKeeper } from '../test/harness/zookeeper.js';
import { startPatroniCluster, type PatroniCluster } from '../test/harness/patroni.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.argv[2] ?? 15);

interface Sample {
  readonly ms: number;
  readonly rssMiB: number;
}

/** One run under /usr/bin/time for the peak RSS; wall time measured here around the whole process. */
function runOnce(cmd: readonly string[]): Sample {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', 'RSS_KB=%M', ...cmd], { encoding: 'utf8', cwd: ROOT });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed (${r.status}): ${r.stderr}`);
  const kb = Number(/RSS_KB=(\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return { ms, rssMiB: kb / 1024 };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Row {
  readonly what: string;
  readonly samples: Sample[];
}

function summary(r: Row): string {
  const ms = r.samples.map((s) => s.ms);
  const rss = r.samples.map((s) => s.rssMiB);
  return `| ${r.what} | ${(median(ms) / 1000).toFixed(3)} s (${(Math.min(...ms) / 1000).toFixed(3)}-${(Math.max(...ms) / 1000).toFixed(3)}) | ${median(rss).toFixed(0)} MiB |`;
}

async function main(): Promise<void> {
  const etcd = await startEtcd();
  const zk = await startZooKeeper();
  const clusters: PatroniCluster[] = [];
  try {
    clusters.push(await startPatroniCluster({ dcs: 'etcd3', dcsEndpoint: etcd.endpoint, scope: 'benche' }));
    clusters.push(await startPatroniCluster({ dcs: 'zookeeper', dcsEndpoint: zk.endpoint, scope: 'benchz' }));
    const rows: Row[] = [];
    for (const c of clusters) {
      const cfg = c.configFile(0);
      const mine: Row = { what: `pgwarden list (${c.dcs})`, samples: [] };
      const theirs: Row = { what: `patronictl list (${c.dcs})`, samples: [] };
      // Warm the page cache for both before measuring.
      runOnce(['node', 'bin/run.js', '-c', cfg, 'list']);
      runOnce(['/usr/bin/patronictl', '-c', cfg, 'list']);
      for (let i = 0; i < RUNS; i++) {
        mine.samples.push(runOnce(['node', 'bin/run.js', '-c', cfg, 'list']));
        theirs.samples.push(runOnce(['/usr/bin/patronictl', '-c', cfg, 'list']));
      }
      rows.push(mine, theirs);
    }
    const help: Row = { what: 'pgwarden --help', samples: [] };
    const ctlHelp: Row = { what: 'patronictl --help', samples: [] };
    for (let i = 0; i < RUNS; i++) {
      help.samples.push(runOnce(['node', 'bin/run.js', '--help']));
      ctlHelp.samples.push(runOnce(['/usr/bin/patronictl', '--help']));
    }
    rows.push(help, ctlHelp);
    const lines = [
      `CLI start-up, ${RUNS} interleaved runs each, whole-process wall time: median (min-max); peak RSS median`,
      '| command | wall time | peak RSS |',
      '|---|---|---|',
      ...rows.map(summary),
    ];
    console.log(lines.join('\n'));
    mkdirSync(join(ROOT, '.bench'), { recursive: true });
    writeFileSync(join(ROOT, '.bench', 'startup.json'), JSON.stringify({ runs: RUNS, rows }, null, 2));
  } finally {
    for (const c of clusters) await c.stop();
    await zk.stop();
    await etcd.stop();
  }
}

await main();
