/** patronictl's `-W` / `-w SECONDS`: repeat an output, clearing the screen, until interrupted. */

const CLEAR_SCREEN = '\x1b[2J\x1b[1;1H';

export interface WatchOptions {
  /** Seconds between iterations; undefined runs once. */
  readonly every?: number;
  readonly write: (text: string) => void;
  /** Resolves when the user interrupts (Ctrl-C); the loop stops at the next pause. */
  readonly stopped?: Promise<void>;
  /** Clear the screen before each iteration (default true; `query` does not). */
  readonly clear?: boolean;
}

export function watchInterval(continuous: boolean, seconds: number | undefined): number | undefined {
  if (seconds !== undefined) return seconds;
  return continuous ? 2 : undefined;
}

export async function watching(options: WatchOptions, iteration: () => Promise<void>): Promise<void> {
  if (options.every === undefined) {
    await iteration();
    return;
  }
  let stop = false;
  void options.stopped?.then(() => {
    stop = true;
  });
  while (!stop) {
    if (options.clear ?? true) options.write(CLEAR_SCREEN);
    await iteration();
    await Promise.race([new Promise((r) => setTimeout(r, options.every! * 1000)), options.stopped]);
  }
}

/** `YYYY-MM-DD HH:MM:SS` in local time, as patronictl prints before each iteration with `-t`. */
export function localTimestamp(d = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function interrupted(): Promise<void> {
  return new Promise((resolve) => process.once('SIGINT', () => resolve()));
}
