/**
 * The faults, each done to the leader of a running 3-member cluster under write load. `run` injects the fault,
 * holds it, and removes it (a cut healed, a stopped process continued); a killed agent is started again after a
 * few seconds, as a service manager (systemd `Restart=always`) would: no other action is taken on the cluster.
 */
import { rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { childPids } from '../harness/ha-probe.js';
import type { Host, Lab } from '../harness/netns-lab.js';
import { runCommand } from '../harness/patroni.js';
import { PG_BIN, TIMING, type EtcdCluster, type Members } from './cluster.js';

export interface FaultContext {
  readonly lab: Lab;
  readonly etcd: EtcdCluster;
  readonly members: Members;
  /** Index of the leader when the fault starts. */
  readonly leader: number;
  /** Resolves after `ms`, or rejects early when the row's time is up. */
  hold(ms: number): Promise<void>;
}

export interface Fault {
  readonly name: string;
  readonly what: string;
  /** A control row: the checker must see two writable members, or it is blind. */
  readonly control?: boolean;
  /** Each member's data dir on a tmpfs of this size (MiB), for faults that fill it. */
  readonly diskMb?: number;
  /** Members run with `watchdog: required` on the suite's stand-in device (watchdog.ts), which resets the host. */
  readonly watchdog?: boolean;
  run(ctx: FaultContext): Promise<void>;
}

const CUT_MS = (TIMING.ttl + 25) * 1000;
const RESTART_AFTER_MS = 5000;

function leaderHost(ctx: FaultContext): Host {
  const m = ctx.members.list[ctx.leader];
  if (!m) throw new Error(`no member ${ctx.leader}`);
  return m.host;
}

function replicaHosts(ctx: FaultContext): Host[] {
  return ctx.members.list.filter((_m, i) => i !== ctx.leader).map((m) => m.host);
}

function signal(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) throw new Error(`no process to send ${sig} to`);
  process.kill(pid, sig);
}

async function cutFor(ctx: FaultContext, a: readonly Host[], b: readonly Host[]): Promise<void> {
  ctx.lab.cut(a, b);
  try {
    await ctx.hold(CUT_MS);
  } finally {
    ctx.lab.heal();
  }
}

async function killAndRestart(ctx: FaultContext, agent: boolean, postgres: boolean): Promise<void> {
  const i = ctx.leader;
  const pm = ctx.members.postmasterPid(i);
  const victims = [
    ...(agent ? [ctx.members.agentPid(i)] : []),
    ...(postgres ? [pm, ...(pm === undefined ? [] : childPids(pm))] : []),
  ];
  for (const pid of victims) signal(pid, 'SIGKILL');
  if (!agent) return;
  await ctx.hold(RESTART_AFTER_MS);
  ctx.members.start(i);
}

async function stopFor(ctx: FaultContext, pid: number | undefined, ms: number): Promise<void> {
  signal(pid, 'SIGSTOP');
  try {
    await ctx.hold(ms);
  } finally {
    signal(pid, 'SIGCONT');
  }
}

/**
 * For `ms`: `slow` sockets that send a request's headers one line every 2 s and never finish them (slow
 * clients holding the server's connections), and `busy` loops of back-to-back GET /patroni.
 */
async function restFlood(ctx: FaultContext, ms: number, slow: number, busy: number): Promise<void> {
  const host = leaderHost(ctx);
  const sockets: Socket[] = [];
  let stopped = false;
  const drip = setInterval(() => {
    for (const s of sockets) if (!s.destroyed) s.write('X-Slow: 1\r\n');
  }, 2000);
  for (let k = 0; k < slow; k++) {
    const s = connect({ host: host.ip, port: 8008 });
    s.on('error', () => undefined);
    s.write('GET /patroni HTTP/1.1\r\nHost: leader\r\n');
    sockets.push(s);
  }
  const hammer = async (): Promise<void> => {
    while (!stopped) {
      try {
        const res = await fetch(`http://${host.ip}:8008/patroni`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const loops = Array.from({ length: busy }, () => hammer());
  try {
    await ctx.hold(ms);
  } finally {
    stopped = true;
    clearInterval(drip);
    for (const s of sockets) s.destroy();
    await Promise.all(loops);
  }
}

export const FAULTS: readonly Fault[] = [
  {
    name: 'control-promote-replica',
    what: 'control: `pg_ctl promote` run by hand on a replica, behind the agent; the checker must see two writers',
    control: true,
    async run(ctx) {
      const replica = ctx.members.list.find((_m, i) => i !== ctx.leader);
      if (!replica) throw new Error('no replica');
      const r = await runCommand(
        'setpriv',
        [
          '--reuid=postgres',
          '--regid=postgres',
          '--init-groups',
          `${PG_BIN}/pg_ctl`,
          'promote',
          '-D',
          replica.dataDir,
        ],
        { timeoutMs: 30_000, cwd: '/' },
      );
      if (r.code !== 0) throw new Error(`pg_ctl promote: ${r.stderr}${r.stdout}`);
      await ctx.hold(10_000);
    },
  },
  {
    name: 'kill9-agent',
    what: "kill -9 of the leader's agent (PostgreSQL keeps running); agent restarted 5 s later",
    run: (ctx) => killAndRestart(ctx, true, false),
  },
  {
    name: 'kill9-postgres',
    what: "kill -9 of the leader's postmaster and its children; the agent keeps running",
    run: (ctx) => killAndRestart(ctx, false, true),
  },
  {
    name: 'kill9-both',
    what: "kill -9 of the leader's agent, postmaster and backends at once (a host crash); agent restarted 5 s later",
    run: (ctx) => killAndRestart(ctx, true, true),
  },
  {
    name: 'dcs-cut',
    what: `the leader cut from the three etcd nodes, not from clients or replicas, for ttl+25 s`,
    run: (ctx) => cutFor(ctx, [leaderHost(ctx)], ctx.etcd.hosts),
  },
  {
    name: 'replica-cut',
    what: 'the leader cut from both replicas only (DCS and clients reachable) for ttl+25 s',
    run: (ctx) => cutFor(ctx, [leaderHost(ctx)], replicaHosts(ctx)),
  },
  {
    name: 'isolated',
    what: 'the leader cut from everything (DCS, replicas, clients) for ttl+25 s',
    async run(ctx) {
      ctx.lab.isolate(leaderHost(ctx));
      try {
        await ctx.hold(CUT_MS);
      } finally {
        ctx.lab.heal();
      }
    },
  },
  {
    name: 'dcs-split-leader-minority',
    what: 'etcd split 2/1; the leader on the side of the one etcd node, the replicas with the two (ttl+25 s)',
    run: (ctx) => {
      const [e1, e2, e3] = ctx.etcd.hosts as [Host, Host, Host];
      return cutFor(ctx, [leaderHost(ctx), e1], [...replicaHosts(ctx), e2, e3]);
    },
  },
  {
    name: 'dcs-split-leader-majority',
    what: 'etcd split 2/1; the leader with the two etcd nodes, the replicas with the one (ttl+25 s)',
    run: (ctx) => {
      const [e1, e2, e3] = ctx.etcd.hosts as [Host, Host, Host];
      return cutFor(ctx, [leaderHost(ctx), e1, e2], [...replicaHosts(ctx), e3]);
    },
  },
  {
    name: 'etcd-leader-kill',
    what: "kill -9 of etcd's own raft leader; restarted 20 s later",
    async run(ctx) {
      const e = await ctx.etcd.leader();
      if (e === undefined) throw new Error('etcd has no leader to kill');
      ctx.etcd.kill9(e);
      await ctx.hold(20_000);
      ctx.etcd.start(e);
    },
  },
  {
    name: 'flapping-link',
    what: "the leader's link cut and restored every 4 s for 60 s",
    async run(ctx) {
      const host = leaderHost(ctx);
      try {
        for (let k = 0; k < 15; k++) {
          if (k % 2 === 0) ctx.lab.isolate(host);
          else ctx.lab.heal();
          await ctx.hold(4000);
        }
      } finally {
        ctx.lab.heal();
      }
    },
  },
  {
    name: 'sigstop-agent',
    what: "SIGSTOP of the leader's agent for ttl+15 s, then SIGCONT (control: no watchdog)",
    // Without a watchdog nothing can demote a frozen agent's PostgreSQL, on Patroni as on pgwarden: the checker
    // must see two writers here; sigstop-agent-watchdog is the protected configuration.
    control: true,
    run: (ctx) => stopFor(ctx, ctx.members.agentPid(ctx.leader), (TIMING.ttl + 15) * 1000),
  },
  {
    name: 'sigstop-agent-watchdog',
    what:
      "SIGSTOP of the leader's agent for ttl+15 s with a watchdog armed (mode required; the suite's stand-in device " +
      'resets the host when not fed in time: agent and PostgreSQL killed, agent started again 5 s later)',
    watchdog: true,
    async run(ctx) {
      const i = ctx.leader;
      const pid = ctx.members.agentPid(i);
      signal(pid, 'SIGSTOP');
      try {
        await ctx.hold((TIMING.ttl + 15) * 1000);
      } finally {
        // Still the frozen process (no reset happened): let it go on.
        if (pid !== undefined && ctx.members.agentPid(i) === pid) signal(pid, 'SIGCONT');
      }
      if (ctx.members.watchdogExpirations(i) === 0) {
        throw new Error("the frozen leader's watchdog never expired (was it armed?)");
      }
    },
  },
  {
    name: 'dcs-quorum-loss',
    what: 'kill -9 of two of the three DCS nodes (quorum lost); started again after ttl+25 s',
    async run(ctx) {
      ctx.etcd.kill9(0);
      ctx.etcd.kill9(1);
      try {
        await ctx.hold(CUT_MS);
      } finally {
        ctx.etcd.start(0);
        ctx.etcd.start(1);
      }
    },
  },
  {
    name: 'wal-disk-full',
    what: "the filesystem of the leader's data dir and pg_wal (a 400 MiB tmpfs) filled for 30 s, then freed",
    diskMb: 400,
    async run(ctx) {
      const m = ctx.members.list[ctx.leader];
      if (!m) throw new Error('no leader');
      const ballast = join(m.dataDir, '..', 'ballast');
      // Written until ENOSPC (dd reports the error; the file is then as large as the space left).
      await runCommand('dd', ['if=/dev/zero', `of=${ballast}`, 'bs=1M'], { timeoutMs: 60_000 });
      try {
        await ctx.hold(30_000);
      } finally {
        rmSync(ballast, { force: true });
      }
    },
  },
  {
    name: 'rest-flood',
    what: "400 slow clients (headers never finished) and 30 back-to-back GET /patroni loops on the leader's REST API for 40 s",
    run: (ctx) => restFlood(ctx, 40_000, 400, 30),
  },
  {
    name: 'sigstop-postmaster',
    what: "SIGSTOP of the leader's postmaster for 30 s, then SIGCONT",
    run: (ctx) => stopFor(ctx, ctx.members.postmasterPid(ctx.leader), 30_000),
  },
];
