/**
 * Crash of the leader's host, measured side by side on real Patroni 3.0.2 and on pgwarden agents, in one run on
 * the same machine, with the reference lab's probe: HAProxy as in Patroni's docs (OPTIONS /primary, inter 3s,
 * fall 3, rise 2) and writer.py inserting every 50 ms through it.
 *
 * For each timing setting (ttl 30 / loop_wait 10 / retry_timeout 10, and ttl 10 / 2 / 3) each system gets a fresh
 * 3-member cluster on etcd3; then kill -9 of the leader's agent, postmaster and its children at once. Recorded,
 * from the kill: the old lock's expiry (leader key gone from etcd), the first write a survivor takes (a direct
 * `txid_current()`), its REST /primary answering 200, and the first write acknowledged through HAProxy by the new
 * primary. Figures go to the console and to .bench/ha-compare.jsonl.
 *
 * Asserted for pgwarden: no promotion before the old lock expired (the safety bound), under 1 s from the expiry
 * to the new primary taking writes, no acknowledged write lost, and end to end (expiry -> first write through
 * HAProxy) no slower than Patroni within one HAProxy check interval: HAProxy's check phase adds 3-6 s at random
 * to both sides, the measurement cannot resolve finer than that in one run.
 */
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { startHaproxy, type Haproxy } from '../harness/haproxy.js';
import {
  checkWriter,
  crashHost,
  startWriter,
  waitForAcks,
  watchLeaderKey,
  watchWritable,
  WRITER_PY,
  type Writer,
  type WriterCheck,
} from '../harness/ha-probe.js';
import { startPatroniCluster, type PatroniCluster } from '../harness/patroni.js';
import { removeDir, tempDir, waitFor } from '../harness/process.js';

const available =
  existsSync('/usr/lib/postgresql/15/bin/initdb') &&
  existsSync('/usr/bin/etcd') &&
  existsSync('/usr/bin/patroni') &&
  existsSync('/usr/sbin/haproxy') &&
  existsSync(WRITER_PY) &&
  existsSync('dist/cli.js') &&
  process.getuid?.() === 0;

interface Timing {
  readonly ttl: number;
  readonly loopWait: number;
  readonly retryTimeout: number;
}

type System = 'patroni' | 'pgwarden';

interface Figures {
  readonly system: System;
  readonly timing: Timing;
  /** Seconds from the kill. */
  readonly lockExpiredS: number;
  readonly writableS: number;
  readonly restPrimaryS: number;
  readonly firstWriteViaHaproxyS: number;
  readonly writer: WriterCheck;
}

/** What both harnesses offer that this test needs. */
interface Members {
  readonly nodes: readonly { readonly name: string; readonly pgPort: number; readonly restPort: number }[];
  readonly dataDir: (i: number) => string;
  readonly pid: (i: number) => number | undefined;
  readonly afterKill: (i: number) => void;
  readonly waitReady: () => Promise<string>;
  readonly stop: () => Promise<void>;
}

function fromPatroni(c: PatroniCluster): Members {
  return {
    nodes: c.nodes,
    dataDir: (i) => join(c.nodes[i]?.dir ?? '', 'data'),
    pid: (i) => c.pid(i),
    afterKill: (i) => c.markKilled(i),
    waitReady: () => c.waitReady({ timeoutMs: 120_000 }),
    stop: () => c.stop(),
  };
}

function fromAgents(c: AgentCluster): Members {
  return {
    nodes: c.nodes,
    dataDir: (i) => c.nodes[i]?.dataDir ?? '',
    pid: (i) => c.pid(i),
    afterKill: () => undefined,
    waitReady: () => c.waitReady({ timeoutMs: 120_000 }),
    stop: () => c.stop(),
  };
}

async function restCode(port: number, path: string): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

const seconds = (ms: number): number => Math.round(ms) / 1000;

describe.skipIf(!available)(
  'leader host crash: pgwarden next to Patroni 3.0.2 (etcd3, HAProxy, writer)',
  () => {
    let etcd: EtcdServer | undefined;

    beforeAll(async () => {
      etcd = await startEtcd();
      mkdirSync('.bench', { recursive: true });
    });

    afterAll(async () => {
      await etcd?.stop();
    });

    async function crashRun(system: System, timing: Timing): Promise<Figures> {
      const endpoint = etcd?.endpoint ?? '';
      const scope = `crash-${system}-${timing.ttl}`;
      const dir = tempDir('crash');
      let members: Members | undefined;
      let haproxy: Haproxy | undefined;
      let writer: Writer | undefined;
      const stops: (() => Promise<void>)[] = [];
      try {
        members =
          system === 'patroni'
            ? fromPatroni(
                await startPatroniCluster({ dcs: 'etcd3', dcsEndpoint: endpoint, scope, ...timing }),
              )
            : fromAgents(await startAgentCluster({ etcdEndpoint: endpoint, scope, ...timing }));
        const m = members;
        const leader = await m.waitReady();
        const li = m.nodes.findIndex((n) => n.name === leader);
        const old = m.nodes[li];
        if (!old) throw new Error(`leader ${leader} is not a node`);
        haproxy = await startHaproxy({ servers: m.nodes, inter: '3s', fall: 3, rise: 2 });
        const h = haproxy;
        await waitFor(
          `HAProxy rw port to route to ${leader} only`,
          async () => {
            const up = (await h.states()).filter((s) => s.proxy === 'primary' && s.status === 'UP');
            return up.length === 1 && up[0]?.server === leader;
          },
          30_000,
          200,
        );
        writer = await startWriter(h.rwPort, dir, timing.ttl + 120);
        const w = writer;
        await waitForAcks(w, 20);

        const survivors = m.nodes.filter((n) => n !== old);
        const keyWatch = watchLeaderKey(endpoint, `/service/${scope}/leader`);
        stops.push(() => keyWatch.stop());
        const writable = watchWritable(survivors.map((n) => n.pgPort));
        stops.push(() => writable.stop());
        let restPrimaryAt: number | undefined;
        let restPolling = true;
        const restPoll = (async () => {
          while (restPolling && restPrimaryAt === undefined) {
            const codes = await Promise.all(survivors.map((n) => restCode(n.restPort, '/primary')));
            if (codes.includes(200)) restPrimaryAt = Date.now();
            else await new Promise((r) => setTimeout(r, 50));
          }
        })();
        stops.push(async () => {
          restPolling = false;
          await restPoll;
        });

        const pid = m.pid(li);
        if (pid === undefined) throw new Error(`the agent of ${leader} is not running`);
        const t0 = Date.now();
        crashHost(pid, m.dataDir(li));
        m.afterKill(li);

        // Done when the lock expired, a survivor took a write, and 20 writes were acknowledged by it via HAProxy.
        await waitFor(
          'the failover to be seen by every probe',
          () =>
            keyWatch.goneAt() !== undefined &&
            writable.first() !== undefined &&
            restPrimaryAt !== undefined &&
            w.ackedElsewhere(old.pgPort).count >= 20,
          (timing.ttl + 60) * 1000,
          100,
        );
        await w.stop();
        const newPrimary = writable.first();
        const gone = keyWatch.goneAt();
        if (!newPrimary || gone === undefined || restPrimaryAt === undefined) throw new Error('unreachable');
        const check = await checkWriter(w, newPrimary.port, t0, old.pgPort);
        const fig: Figures = {
          system,
          timing,
          lockExpiredS: seconds(gone - t0),
          writableS: seconds(newPrimary.at - t0),
          restPrimaryS: seconds(restPrimaryAt - t0),
          firstWriteViaHaproxyS: check.first_ok_new_primary_s ?? Number.NaN,
          writer: check,
        };
        appendFileSync(
          '.bench/ha-compare.jsonl',
          `${JSON.stringify({ at: new Date().toISOString(), kind: 'crash', ...fig })}\n`,
        );
        return fig;
      } finally {
        await writer?.stop();
        for (const s of stops) await s();
        try {
          await haproxy?.stop();
        } finally {
          await members?.stop();
          removeDir(dir);
        }
      }
    }

    const TIMINGS: readonly Timing[] = [
      { ttl: 30, loopWait: 10, retryTimeout: 10 },
      { ttl: 10, loopWait: 2, retryTimeout: 3 },
    ];

    it.each(TIMINGS)(
      'ttl $ttl / loop_wait $loopWait / retry_timeout $retryTimeout: safe, < 1 s from expiry, no slower than Patroni',
      async (timing) => {
        const patroni = await crashRun('patroni', timing);
        const ours = await crashRun('pgwarden', timing);
        const line = (f: Figures): string =>
          `${f.system.padEnd(8)} lock expired ${f.lockExpiredS.toFixed(2)} s, writable ${f.writableS.toFixed(2)} s ` +
          `(+${(f.writableS - f.lockExpiredS).toFixed(2)}), REST /primary ${f.restPrimaryS.toFixed(2)} s, ` +
          `first write via HAProxy ${f.firstWriteViaHaproxyS.toFixed(2)} s ` +
          `(+${(f.firstWriteViaHaproxyS - f.lockExpiredS).toFixed(2)}), longest gap ${f.writer.max_gap_s} s, ` +
          `lost ${f.writer.lost}/${f.writer.acked}`;
        console.log(
          `crash of the leader host, ttl ${timing.ttl}/${timing.loopWait}/${timing.retryTimeout} ` +
            `(seconds from kill -9):\n  ${line(patroni)}\n  ${line(ours)}`,
        );

        // Safety: nobody writable before the old lock is gone (the key poll runs every 20 ms: 0.1 s of slack).
        expect(ours.writableS).toBeGreaterThanOrEqual(ours.lockExpiredS - 0.1);
        expect(patroni.writableS).toBeGreaterThanOrEqual(patroni.lockExpiredS - 0.1);
        expect(ours.writableS - ours.lockExpiredS).toBeLessThan(1);
        expect(ours.writer.lost).toBe(0);
        expect(Number.isFinite(ours.firstWriteViaHaproxyS)).toBe(true);
        const oursEndToEnd = ours.firstWriteViaHaproxyS - ours.lockExpiredS;
        const theirsEndToEnd = patroni.firstWriteViaHaproxyS - patroni.lockExpiredS;
        expect(oursEndToEnd).toBeLessThanOrEqual(theirsEndToEnd + 3);
      },
      600_000,
    );
  },
);
