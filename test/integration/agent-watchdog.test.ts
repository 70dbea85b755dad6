/**
 * The watchdog on three pgwarden agents (real PostgreSQL 15 and etcd3). pg1 uses the testing driver (Patroni's
 * acceptance FIFO, `watchdog.driver: testing`) read by a small monitor here, as features/environment.py's
 * WatchdogMonitor reads it; pg2 has `mode: required` with a device that does not exist; pg3 `mode: automatic`
 * with none. ttl 20, safety_margin 10: the device's timeout is 10 s.
 * 1. pg1 leads: it sets `Ctimeout=10` and pings every loop, never more than the timeout apart.
 * 2. pg2 says `watchdog_failed` in GET /patroni; pg3 (automatic, no device) does not.
 * 3. pause: magic close (`V`); resume: armed and pinged again.
 * 4. SIGSTOP of pg1's agent for longer than the timeout (but less than the ttl): the next ping comes too late, the
 *    monitor sees the device triggered.
 * 5. SIGTERM of pg1: magic close; the lock goes to pg3, never to pg2, which logs why.
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { chownSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { runCommand } from '../harness/patroni.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'bundle', 'root');

interface WatchdogEvent {
  readonly at: number;
  readonly kind: 'timeout' | 'ping' | 'close';
  readonly value?: number;
}

/**
 * Reads the FIFO as Patroni's WatchdogMonitor does: `C<command>\n`, `1` (ping), `V` (magic close); a ping or close
 * more than `timeout` seconds after the previous ping means the device would have fired. Unlike that monitor it
 * models a real device across a magic close: disarmed after `V`, counting again from the `Ctimeout` the driver
 * writes right after opening. Opened read-write and non-blocking, so the agent's open never waits.
 */
class FifoMonitor {
  readonly events: WatchdogEvent[] = [];
  timeout = 60;
  lastPing = Date.now();
  triggered = false;
  private armed = false;
  private readonly fd: number;
  private readonly timer: NodeJS.Timeout;
  private pending = '';

  constructor(readonly path: string) {
    this.fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
    this.timer = setInterval(() => this.poll(), 20);
  }

  private poll(): void {
    const buf = Buffer.alloc(4096);
    for (;;) {
      let n = 0;
      try {
        n = readSync(this.fd, buf, 0, buf.length, null);
      } catch {
        return; // EAGAIN: nothing to read
      }
      if (n <= 0) return;
      this.consume(buf.subarray(0, n).toString('latin1'));
    }
  }

  private consume(text: string): void {
    const now = Date.now();
    for (const ch of text) {
      if (this.pending !== '') {
        if (ch === '\n') {
          const m = /^Ctimeout=(\d+)$/.exec(this.pending);
          if (m) {
            this.timeout = Number(m[1]);
            this.events.push({ at: now, kind: 'timeout', value: this.timeout });
            if (!this.armed) this.lastPing = now;
            this.armed = true;
          }
          this.pending = '';
        } else this.pending += ch;
        continue;
      }
      if (ch === 'C') this.pending = 'C';
      else if (ch === '1' || ch === 'V') {
        if (this.armed && now - this.lastPing > this.timeout * 1000) this.triggered = true;
        if (ch === '1') {
          this.events.push({ at: now, kind: 'ping' });
          this.lastPing = now;
        } else {
          this.events.push({ at: now, kind: 'close' });
          this.armed = false;
        }
      }
    }
  }

  since(t: number): WatchdogEvent[] {
    return this.events.filter((e) => e.at >= t);
  }

  stop(): void {
    clearInterval(this.timer);
    closeSync(this.fd);
  }
}

describeWithNeeds('pgwarden agents with a watchdog', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  let monitor: FifoMonitor | undefined;

  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  const m = (): FifoMonitor => {
    if (!monitor) throw new Error('no monitor');
    return monitor;
  };
  const cli = (args: readonly string[]): ReturnType<typeof runCommand> =>
    runCommand(
      process.execPath,
      [
        join(import.meta.dirname, '..', '..', 'bin', 'run.js'),
        '-d',
        `etcd3://${etcd?.endpoint ?? ''}`,
        ...args,
      ],
      { timeoutMs: 30_000 },
    );
  const watchdogFailed = async (i: number): Promise<boolean | undefined> => {
    const r = await c().rest(i, '/patroni');
    return (JSON.parse(r.body) as { watchdog_failed?: boolean }).watchdog_failed;
  };
  const pings = async (label: string, after: number, count: number): Promise<WatchdogEvent[]> =>
    waitFor(
      label,
      () => {
        const p = m()
          .since(after)
          .filter((e) => e.kind === 'ping');
        return p.length >= count ? p : false;
      },
      30_000,
      100,
    );

  beforeAll(async () => {
    etcd = await startEtcd();
    cluster = await startAgentCluster({
      etcdEndpoint: etcd.endpoint,
      ttl: 20,
      loopWait: 2,
      retryTimeout: 5,
      deferStart: true,
      watchdog: (node, i) =>
        i === 0
          ? `mode: required\ndriver: testing\ndevice: ${node.dir}/watchdog.fifo\nsafety_margin: 10`
          : i === 1
            ? `mode: required\ndevice: ${node.dir}/no-such-watchdog`
            : `mode: automatic\ndevice: ${node.dir}/no-such-watchdog`,
    });
    const fifo = join(c().nodes[0]?.dir ?? '', 'watchdog.fifo');
    const mk = await runCommand('mkfifo', ['-m', '0600', fifo], { timeoutMs: 5000 });
    expect(mk.code, mk.stderr).toBe(0);
    const owner = await runCommand('id', ['-u', 'postgres'], { timeoutMs: 5000 });
    chownSync(fifo, Number(owner.stdout.trim()), Number(owner.stdout.trim()));
    monitor = new FifoMonitor(fifo);
    // pg1 first, so that it bootstraps and leads.
    c().start(0);
    await waitFor('pg1 to lead', async () => (await c().primaries()).includes('pg1'), 90_000, 250);
    c().start(1);
    c().start(2);
    await c().waitReady({ timeoutMs: 90_000 });
  }, 180_000);

  afterAll(async () => {
    monitor?.stop();
    try {
      await cluster?.stop();
    } finally {
      await etcd?.stop();
    }
  }, 60_000);

  it('the leader sets ttl - safety_margin and pings every loop', async () => {
    const t0 = Date.now();
    const p = await pings('five pings', t0, 5);
    expect(m().events.find((e) => e.kind === 'timeout')?.value).toBe(10);
    expect(m().timeout).toBe(10);
    const gaps = p.slice(1).map((e, k) => e.at - (p[k]?.at ?? 0));
    console.log(`ping gaps (ms): ${gaps.join(', ')}`);
    expect(Math.max(...gaps)).toBeLessThan(10_000);
    expect(m().triggered).toBe(false);
  }, 60_000);

  it('a required watchdog without a device is reported in GET /patroni; automatic without one is not', async () => {
    expect(await watchdogFailed(1)).toBe(true);
    expect(await watchdogFailed(2)).toBeUndefined();
    expect(await watchdogFailed(0)).toBeUndefined();
  });

  it('pause closes the device with the magic close; resume arms it again', async () => {
    const t0 = Date.now();
    const r = await cli(['pause', c().scope, '--wait']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    await waitFor(
      'magic close on pause',
      () =>
        m()
          .since(t0)
          .some((e) => e.kind === 'close'),
      20_000,
      100,
    );
    const closedAt = m()
      .since(t0)
      .find((e) => e.kind === 'close')?.at;
    // No ping after the close while paused.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    expect(
      m()
        .since(closedAt ?? t0)
        .filter((e) => e.kind === 'ping'),
    ).toEqual([]);
    const t1 = Date.now();
    const rr = await cli(['resume', c().scope, '--wait']);
    expect(rr.code, rr.stderr + rr.stdout).toBe(0);
    await waitFor(
      'Ctimeout after resume',
      () =>
        m()
          .since(t1)
          .some((e) => e.kind === 'timeout'),
      20_000,
      100,
    );
    await pings('pings after resume', t1, 2);
    expect(m().triggered).toBe(false);
  }, 90_000);

  it('a hung agent (SIGSTOP for longer than the timeout) lets the device fire', async () => {
    const pid = c().pid(0);
    if (pid === undefined) throw new Error('pg1 is not running');
    await pings('a fresh ping', Date.now(), 1);
    process.kill(pid, 'SIGSTOP');
    const stoppedAt = Date.now();
    try {
      // Longer than the 10 s timeout, shorter than the ttl minus a loop: pg1 keeps its lock.
      await new Promise((resolve) => setTimeout(resolve, 13_000));
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await pings('a ping after SIGCONT', stoppedAt, 1);
    expect(m().triggered).toBe(true);
    expect(await c().primaries()).toEqual(['pg1']);
  }, 60_000);

  it('a clean shutdown closes the device; a required node without one never takes the lock, another does', async () => {
    const t0 = Date.now();
    await c().terminate(0);
    const last = m().since(t0).at(-1);
    expect(last?.kind).toBe('close');
    const leader = await waitFor(
      'a new leader',
      async () => {
        const p = await c().primaries();
        expect(p).not.toContain('pg2');
        return p.length === 1 ? p[0] : false;
      },
      60_000,
      250,
    );
    expect(leader).toBe('pg3');
    // pg2 stays out for a few more cycles and says why.
    await new Promise((resolve) => setTimeout(resolve, 6000));
    expect(await c().primaries()).toEqual(['pg3']);
    const status = await c().status(1);
    expect(status?.role).toBe('replica');
    const log = await runCommand('cat', [c().nodes[1]?.logFile ?? ''], { timeoutMs: 5000 });
    expect(log.stdout).toContain('WARNING: Watchdog device is not usable');
  }, 120_000);
});
