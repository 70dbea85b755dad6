/**
 * A one-line progress indicator for the CLI's long waits: what is being waited for and the time elapsed, redrawn in
 * place on a terminal (carriage return + erase line). Only for a stream that is a TTY: the commands create none
 * otherwise, so what a script reads stays byte for byte patronictl's output.
 */

/** What a service calls while it waits; absent (undefined) when stderr is no terminal. */
export interface Progress {
  /** Shows (or updates) what is being waited for; the elapsed time counts from the first `show` after a `clear`. */
  show(what: string): void;
  /** Erases the line and stops the clock. */
  clear(): void;
}

/** The writable side of a terminal (process.stderr in the CLI). */
export interface ProgressStream {
  write(text: string): unknown;
  readonly columns?: number;
}

const ERASE = '\r\x1b[K';

/** `7s`, `1m05s`, `2h03m04s`. */
export function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const p = (n: number): string => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${p(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${p(Math.floor(s / 60) % 60)}m${p(s % 60)}s`;
}

/** The progress line (no control characters), cut to fit `columns` so that it never wraps. */
export function progressLine(what: string, elapsedMs: number, columns?: number): string {
  const line = `${what} (${formatElapsed(elapsedMs)} elapsed)`;
  if (!columns || columns < 10 || line.length < columns) return line;
  return `${line.slice(0, columns - 2)}…`;
}

export class TerminalProgress implements Progress {
  private what: string | undefined;
  private since = 0;
  private drawn = false;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly stream: ProgressStream,
    private readonly clock: () => number = Date.now,
    private readonly everyMs = 1000,
  ) {}

  show(what: string): void {
    if (this.what === undefined) this.since = this.clock();
    this.what = what;
    this.draw();
    if (!this.timer) {
      this.timer = setInterval(() => this.draw(), this.everyMs);
      this.timer.unref();
    }
  }

  clear(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.what = undefined;
    this.erase();
  }

  /** Runs `write` (other output to the same terminal) with the line erased first and drawn again after. */
  around(write: () => void): void {
    this.erase();
    write();
    this.draw();
  }

  private erase(): void {
    if (!this.drawn) return;
    this.stream.write(ERASE);
    this.drawn = false;
  }

  private draw(): void {
    if (this.what === undefined) return;
    const line = progressLine(this.what, this.clock() - this.since, this.stream.columns);
    this.stream.write(`${ERASE}${line}`);
    this.drawn = true;
  }
}
