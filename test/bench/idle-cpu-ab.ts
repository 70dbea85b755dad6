/**
 * Idle CPU of agents side by side, for A/B comparisons on a loaded machine (`npx tsx test/bench/idle-cpu-ab.ts`):
 * 3-member clusters of each variant on one etcd or ZooKeeper (ttl 30 / loop_wait 10), all running at the same time,
 * so every window sees the same load. CPU is counted, not sampled: utime+stime of /proc/<pid>/stat (10 ms ticks, the
 * whole thread group) and the sum of /proc/<pid>/task/<tid>/schedstat (on-CPU nanoseconds, the same threads). Printed per
 * window and agent, then medians per variant, as CPU seconds per 10 minutes of idle.
 *
 * Environment:
 *   DCS        etcd3 (default) or zookeeper               the DCS every cluster shares
 *   PGWARDEN   label=repository[,label=repository...]   pgwarden builds to run (default: this repository as `new`)
 *   PATRONI    4.1.4,3.0.2 (default) or empty            Patroni versions to run next to them
 *   WINDOW_S   seconds per window (default 120)           REPS windows (default 5) after SETTLE_S (default 60)
 *   NODE_ARGS  label=flag flag...                         extra node flags for one pgwarden variant (e.g. --cpu-prof)
 *
 * Profiling: the agents run as `postgres` and their {dir} is deleted at the end, so give --cpu-prof a directory of
 * its own that postgres may write (`NODE_ARGS='new=--cpu-prof --cpu-prof-interval 5000 --cpu-prof-dir=/tmp/p'`,
 * /tmp/p mode 777); the profile is written when the agent stops. Its sampler costs ~20 s CPU per 10 min: read the
 * profile for shares, take the CPU figures from a run without it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { startPatroniCluster, type PatroniCluster } from '../harness/patroni.js';
import { startZooKeeper, type ZooKeeperServer } from '../harness/zookeeper.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const TIMING = { ttl: 30, loopWait: 10, retryTimeout: 10 };
const WINDOW_S = Number(process.env.WINDOW_S ?? 120);
const REPS = Number(process.env.REPS ?? 5);
const SETTLE_S = Number(process.env.SETTLE_S ?? 60);
const DCS = process.env.DCS === 'zookeeper' ? 'zookeeper' : 'etcd3';

interface Agent {
  readonly variant: string;
  readonly member: string;
  readonly pid: number;
  readonly leader: () => Promise<boolean>;
}

function ticks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

function schedNs(pid: number): number {
  let sum = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      sum += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* thread gone */
    }
  }
  return sum;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
};

function variants(): [string, string][] {
  const spec = process.env.PGWARDEN ?? `new=${REPO}`;
  return spec
    .split(',')
    .filter((s) => s !== '')
    .map((s) => {
      const [label, dir] = s.split('=');
      if (!label || !dir) throw new Error(`PGWARDEN: expected label=dir, got ${s}`);
      return [label, resolve(dir)];
    });
}

function nodeArgs(label: string): string[] {
  for (const s of (process.env.NODE_ARGS ?? '').split(';')) {
    const eq = s.indexOf('=');
    if (eq > 0 && s.slice(0, eq) === label)
      return s
        .slice(eq + 1)
        .split(' ')
        .filter((f) => f !== '');
  }
  return [];
}

async function main(): Promise<void> {
  const server: EtcdServer | ZooKeeperServer =
    DCS === 'zookeeper' ? await startZooKeeper() : await startEtcd();
  const ours: AgentCluster[] = [];
  const theirs: PatroniCluster[] = [];
  try {
    const agents: Agent[] = [];
    const starts = variants().map(async ([label, dir]) => {
      const c = await startAgentCluster({
        dcs: DCS,
        etcdEndpoint: server.endpoint,
        scope: `idle-${label}`,
        ...TIMING,
        agentArgv: (node) => [
          process.execPath,
          ...nodeArgs(label).map((f) => f.replace('{dir}', node.dir)),
          join(dir, 'bin', 'run.js'),
          'agent',
          node.configFile,
        ],
      });
      ours.push(c);
      await c.waitReady({ timeoutMs: 240_000 });
      c.nodes.forEach((n, i) =>
        agents.push({
          variant: `pgwarden-${label}`,
          member: n.name,
          pid: c.pid(i) ?? -1,
          leader: async () => (await c.rest(i, '/primary')).status === 200,
        }),
      );
    });
    const versions = (process.env.PATRONI ?? '4.1.4,3.0.2').split(',').filter((v) => v !== '');
    const pstarts = versions.map(async (v) => {
      const c = await startPatroniCluster({
        dcs: DCS,
        dcsEndpoint: server.endpoint,
        scope: `idle-patroni-${v}`,
        patroniVersion: v as '4.1.4' | '3.0.2',
        upTimeoutMs: 240_000,
        ...TIMING,
      });
      theirs.push(c);
      c.nodes.forEach((n, i) =>
        agents.push({
          variant: `patroni-${v}`,
          member: n.name,
          pid: c.pid(i) ?? -1,
          leader: async () => (await c.rest(i, '/primary')).status === 200,
        }),
      );
    });
    await Promise.all([...starts, ...pstarts]);
    agents.sort((a, b) => (a.variant + a.member).localeCompare(b.variant + b.member));
    const roles = await Promise.all(agents.map(async (a) => ((await a.leader()) ? 'L' : 'R')));
    console.log(`all up; settling ${SETTLE_S} s; windows of ${WINDOW_S} s x ${REPS}`);
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    const per10min = 600 / WINDOW_S;
    const rows: { variant: string; tick: number; ns: number }[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      const t0 = agents.map((a) => ticks(a.pid));
      const s0 = agents.map((a) => schedNs(a.pid));
      const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
      await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
      const line: string[] = [];
      agents.forEach((a, i) => {
        const tick = ((ticks(a.pid) - (t0[i] ?? 0)) / 100) * per10min;
        const ns = ((schedNs(a.pid) - (s0[i] ?? 0)) / 1e9) * per10min;
        rows.push({ variant: a.variant, tick, ns });
        line.push(`${a.variant}/${a.member}${roles[i]} ${tick.toFixed(2)}/${ns.toFixed(2)}`);
      });
      console.log(`window ${rep + 1} (load ${load0}): ${line.join('  ')}`);
    }
    console.log('CPU s per 10 min per agent (median over agents x windows): ticks / schedstat');
    for (const v of [...new Set(rows.map((r) => r.variant))]) {
      const mine = rows.filter((r) => r.variant === v);
      console.log(
        `  ${v.padEnd(20)} ${median(mine.map((r) => r.tick)).toFixed(2)} / ${median(mine.map((r) => r.ns)).toFixed(2)}` +
          `  (n=${mine.length})`,
      );
    }
  } finally {
    for (const c of [...theirs, ...ours]) await c.stop().catch(() => undefined);
    await server.stop();
  }
}

await main();
