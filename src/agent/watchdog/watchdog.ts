/**
 * The agent's watchdog: Patroni's `Watchdog` facade (patroni/watchdog/base.py) behind the HA loop's `WatchdogPort`.
 * The decision of when to arm, ping and disarm is pure (src/ha/watchdog.ts); this class opens the device, checks the
 * timeout it got, and logs Patroni's lines. After a failed activation it falls back to the null device until the
 * configuration changes (as Patroni, so a missing device is tried once, not every cycle).
 */
import type { WatchdogConfig } from '../../config/agent-config.js';
import type { LoopLogger, WatchdogPort, WatchdogTiming } from '../../ha/loop.js';
import type { WatchdogView } from '../../ha/snapshot.js';
import { keepaliveIsSafe } from '../../ha/watchdog.js';
import { errorText } from '../../model/text.js';
import { NullWatchdog, WatchdogError, type WatchdogDevice } from './device.js';
import { SystemLinuxWatchdog, systemIo } from './linux.js';
import { TestingWatchdogDevice } from './testing.js';

export interface WatchdogLogger extends LoopLogger {
  debug(text: string): void;
}

/** The device a configuration asks for (Patroni's `get_impl`); null for an unknown driver or another platform. */
export function deviceFor(config: WatchdogConfig, platform: string = process.platform): WatchdogDevice {
  if (config.driver === 'testing') return new TestingWatchdogDevice(config.device, systemIo());
  if (platform === 'linux' && config.driver === 'default') return new SystemLinuxWatchdog(config.device);
  return new NullWatchdog();
}

const sameDevice = (a: WatchdogConfig, b: WatchdogConfig): boolean =>
  a.driver === b.driver && a.device === b.device;

export class AgentWatchdog implements WatchdogPort {
  private impl: WatchdogDevice;
  private active = false;
  /** The timeout last set (or found) on the armed device, seconds. */
  private activeTimeout: number | undefined;
  private unsafeWarned = false;

  constructor(
    private config: WatchdogConfig,
    private readonly log: WatchdogLogger,
    private readonly makeDevice: (c: WatchdogConfig) => WatchdogDevice = deviceFor,
  ) {
    this.impl = config.mode === 'off' ? new NullWatchdog() : makeDevice(config);
  }

  /** Patroni exits at start when `required` has no device implementation at all (another platform, a bad driver). */
  get unsupportedButRequired(): boolean {
    return this.config.mode === 'required' && this.impl.isNull;
  }

  get running(): boolean {
    return this.impl.isRunning;
  }

  view(): WatchdogView {
    return {
      mode: this.config.mode,
      running: this.impl.isRunning,
      deviceUsable: this.impl.isHealthy(),
      safetyMargin: this.config.safetyMargin,
    };
  }

  /** SIGHUP: turning it off works at once; another device only while it is not armed (Patroni's `reload_config`). */
  async reload(next: WatchdogConfig): Promise<void> {
    const old = this.config;
    this.config = next;
    if (next.mode === 'off') {
      if (this.active) await this.disable();
      this.impl = new NullWatchdog();
      return;
    }
    if (!this.active && (old.mode === 'off' || !sameDevice(old, next))) this.impl = this.makeDevice(next);
  }

  async activate(timing: WatchdogTiming): Promise<boolean> {
    const { timeout, loopWait } = timing;
    this.active = true;
    const required = this.config.mode === 'required';
    if (timeout - loopWait < 0) {
      this.log.warning(
        `Watchdog not supported because leader TTL ${timing.ttl} is less than 2x loop_wait ${loopWait}`,
      );
      this.impl = new NullWatchdog();
    }
    let actual: number | undefined;
    try {
      await this.impl.open();
      actual = this.setTimeout(timeout, loopWait);
    } catch (e) {
      if (!(e instanceof WatchdogError)) throw e;
      // Patroni logs this at debug level in automatic mode; pgwarden says it once (the null device follows).
      const line = `Could not activate ${this.impl.describe()}: ${e.message}`;
      if (required || !this.impl.isNull) this.log.warning(line);
      this.impl = new NullWatchdog();
      actual = this.impl.getTimeout();
    }
    if (this.impl.isRunning && !this.canBeDisabled()) {
      this.log.warning(
        "Watchdog implementation can't be disabled. Watchdog will trigger after Patroni loses leader key.",
      );
    }
    if (!this.impl.isRunning || (actual !== undefined && actual > timeout)) {
      if (required) {
        if (this.impl.isNull) {
          this.log.error('Configuration requires watchdog, but watchdog could not be configured.');
        } else {
          this.log.error(
            `Configuration requires watchdog, but a safe watchdog timeout ${timeout} could not be configured. Watchdog timeout is ${actual}.`,
          );
        }
        return false;
      }
      if (!this.impl.isNull) {
        this.log.warning(
          `Watchdog timeout ${actual} seconds does not ensure safe termination within ${timeout} seconds`,
        );
      }
    }
    if (this.impl.isRunning) {
      this.activeTimeout = actual;
      this.log.info(
        `${this.impl.describe()} activated with ${actual} second timeout, timing slack ${timeout - loopWait} seconds`,
      );
    } else if (required) {
      this.log.error('Configuration requires watchdog, but watchdog could not be activated');
      return false;
    }
    return true;
  }

  private canBeDisabled(): boolean {
    try {
      return this.impl.canBeDisabled();
    } catch {
      return false;
    }
  }

  /** Patroni's `_set_timeout`: set it when the device can, then check what it really is. */
  private setTimeout(timeout: number, loopWait: number): number | undefined {
    if (this.impl.hasSetTimeout()) this.impl.setTimeout(timeout);
    const actual = this.impl.getTimeout();
    if (this.impl.isRunning && actual < loopWait) {
      this.log.error(`loop_wait of ${loopWait} seconds is too long for watchdog ${actual} second timeout`);
      if (this.canBeDisabled()) {
        this.log.info('Disabling watchdog due to unsafe timeout.');
        this.impl.close();
        this.impl = new NullWatchdog();
        return undefined;
      }
    }
    return actual;
  }

  async keepalive(timing: WatchdogTiming, lockLeftMs: number | undefined): Promise<void> {
    const { timeout, loopWait } = timing;
    if (!this.active || !this.impl.isRunning) return;
    try {
      const changed = this.activeTimeout !== timeout;
      const counting = changed ? timeout : (this.activeTimeout ?? timeout);
      // Never let a ping push the device's deadline past the lock's (src/ha/watchdog.ts).
      if (!keepaliveIsSafe(lockLeftMs, counting)) {
        if (!this.unsafeWarned) {
          this.log.warning(
            `not pinging the watchdog: the leader lock expires in ${Math.max(0, Math.floor((lockLeftMs ?? 0) / 1000))} seconds, before its ${counting} second timeout`,
          );
        }
        this.unsafeWarned = true;
        return;
      }
      this.unsafeWarned = false;
      this.impl.keepalive();
      if (changed) {
        this.impl.setTimeout(timeout);
        this.activeTimeout = this.impl.getTimeout();
        this.log.info(
          `${this.impl.describe()} updated with ${this.activeTimeout} second timeout, timing slack ${timeout - loopWait} seconds`,
        );
      }
    } catch (e) {
      this.log.error(`Error while sending keepalive: ${errorText(e)}`);
    }
  }

  async disable(): Promise<void> {
    try {
      if (this.impl.isRunning && !this.canBeDisabled()) {
        this.impl.keepalive();
        this.log.warning(
          `Watchdog implementation can't be disabled. System will reboot after ${this.impl.getTimeout()} seconds when watchdog times out.`,
        );
      }
      this.impl.close();
    } catch (e) {
      this.log.error(`Error while disabling watchdog: ${errorText(e)}`);
    }
    this.active = false;
    this.activeTimeout = undefined;
  }
}
