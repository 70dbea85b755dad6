/**
 * `watchdog.driver: testing`: Patroni's `TestingWatchdogDevice`, the named pipe the acceptance suite's
 * `WatchdogMonitor` reads (features/environment.py). It writes exactly what Patroni's does: `Ctimeout=N\n` instead
 * of WDIOC_SETTIMEOUT, `1` per ping, `V` before closing; it claims magic close and settable timeouts.
 *
 * Unlike Patroni's blocking open, the pipe is opened non-blocking (a missing reader fails the activation instead of
 * freezing the agent), retried for a second while the reader reopens its end after our previous close.
 */
import { errorText } from '../../model/text.js';
import { WatchdogError } from './device.js';
import { LinuxWatchdogDevice, WDIOF_MAGICCLOSE, WDIOF_SETTIMEOUT, type WatchdogInfo } from './linux.js';

export class TestingWatchdogDevice extends LinuxWatchdogDevice {
  private timeout = 60;

  protected override openNonBlocking(): boolean {
    return true;
  }

  override async open(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await super.open();
        return;
      } catch (e) {
        // ENXIO: no reader on the pipe right now.
        if (attempt >= 10 || !/ENXIO/.test(errorText(e))) throw e;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  override getSupport(): WatchdogInfo {
    return {
      options: WDIOF_MAGICCLOSE | WDIOF_SETTIMEOUT,
      firmwareVersion: 0,
      identity: 'Watchdog test harness',
    };
  }

  override setTimeout(seconds: number): void {
    if (this.fd === undefined) throw new WatchdogError('Watchdog device is closed');
    try {
      this.io.write(this.fd, `Ctimeout=${seconds}\n`);
    } catch (e) {
      throw new WatchdogError(`Could not set timeout on watchdog device: ${errorText(e)}`);
    }
    this.timeout = seconds;
  }

  override getTimeout(): number {
    return this.timeout;
  }
}
