/**
 * A watchdog for the fault suite: the named pipe of Patroni's `driver: testing` (pgwarden and Patroni 4.1.4 both
 * speak it: `Ctimeout=N\n` sets the timeout, `1` pings, `V` is the magic close). Where the acceptance suite's monitor
 * only notes a missed ping, this one acts like the device it stands in for: a timeout that passes without a ping
 * resets the host (`onExpire`: the row kills the member's agent and PostgreSQL, and starts the agent again as a
 * rebooted host's service manager would). softdog is not available on this machine; this is the closest stand-in.
 *
 * The pipe is opened read-write and non-blocking: the open never waits for a writer, no libuv pool thread blocks on
 * it, and the agent's own opens and closes never end the stream.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, constants, openSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';

export interface WatchdogMonitor {
  /** How often the timeout expired without a ping (host resets). */
  readonly expirations: number;
  /** Armed: pinged since the last magic close or reset. */
  readonly armed: boolean;
  stop(): void;
}

export function startWatchdogMonitor(
  fifo: string,
  owner: { uid: number; gid: number },
  onExpire: () => void,
): WatchdogMonitor {
  rmSync(fifo, { force: true });
  execFileSync('mkfifo', ['-m', '0600', fifo], { timeout: 5000 });
  chownSync(fifo, owner.uid, owner.gid);
  const stream = new Socket({
    fd: openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK),
    readable: true,
    writable: false,
  });
  let timeoutS = 60;
  let lastPing = 0;
  let armed = false;
  let expirations = 0;
  let pending = '';
  stream.setEncoding('latin1');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    for (;;) {
      const c = pending[0];
      if (c === undefined) return;
      if (c === 'C') {
        const end = pending.indexOf('\n');
        if (end < 0) return;
        const m = /^Ctimeout=(\d+)$/.exec(pending.slice(0, end));
        if (m?.[1]) timeoutS = Number(m[1]);
        pending = pending.slice(end + 1);
        continue;
      }
      pending = pending.slice(1);
      if (c === '1') {
        armed = true;
        lastPing = Date.now();
      } else if (c === 'V') armed = false;
    }
  });
  stream.on('error', () => undefined);
  const check = setInterval(() => {
    if (!armed || Date.now() - lastPing <= timeoutS * 1000) return;
    armed = false;
    expirations++;
    onExpire();
  }, 100);
  return {
    get expirations() {
      return expirations;
    },
    get armed() {
      return armed;
    },
    stop() {
      clearInterval(check);
      stream.destroy();
      rmSync(fifo, { force: true });
    },
  };
}
