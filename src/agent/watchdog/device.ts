/**
 * A watchdog device as Patroni's `WatchdogBase` sees it (patroni/watchdog/base.py): opened when the node leads,
 * pinged after every lock refresh, closed with the magic `V` so that it stops counting. Implementations: the Linux
 * device (linux.ts), the acceptance suite's FIFO (testing.ts) and the null device (nothing to arm).
 */

/** A device operation failed; the message is Patroni's wording. */
export class WatchdogError extends Error {}

export interface WatchdogDevice {
  /** Nothing to arm (mode off, an unknown driver, or after a failed activation). */
  readonly isNull: boolean;
  /** Open and armed. */
  readonly isRunning: boolean;
  /** Opening is expected to work (the device exists and is writable). */
  isHealthy(): boolean;
  /** A magic close stops it (WDIOF_MAGICCLOSE). */
  canBeDisabled(): boolean;
  open(): Promise<void>;
  /** Magic close, then close. */
  close(): void;
  keepalive(): void;
  /** Seconds. */
  getTimeout(): number;
  hasSetTimeout(): boolean;
  setTimeout(seconds: number): void;
  describe(): string;
}

export class NullWatchdog implements WatchdogDevice {
  readonly isNull = true;
  readonly isRunning = false;
  isHealthy(): boolean {
    return false;
  }
  canBeDisabled(): boolean {
    return true;
  }
  async open(): Promise<void> {}
  close(): void {}
  keepalive(): void {}
  getTimeout(): number {
    // Patroni's: "a big enough number to not matter".
    return 1000000000;
  }
  hasSetTimeout(): boolean {
    return false;
  }
  setTimeout(_seconds: number): void {
    throw new WatchdogError(`Setting timeout is not supported on ${this.describe()}`);
  }
  describe(): string {
    return 'NullWatchdog';
  }
}
