/** The agent's log lines in Patroni's default format: `2026-11-22 04:50:01,123 INFO: message` on stderr. */
import type { LoopLogger } from '../ha/loop.js';

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** Python logging's `%(asctime)s`: local time, `YYYY-MM-DD HH:MM:SS,mmm`. */
export function asctime(ms: number): string {
  const d = new Date(ms);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())},${pad(d.getMilliseconds(), 3)}`
  );
}

export type LogSink = (line: string) => void;

export function createLogger(
  sink: LogSink = (l) => process.stderr.write(l),
  now = Date.now,
): LoopLogger & { debug(text: string): void; critical(text: string): void } {
  const write = (level: string, text: string): void => sink(`${asctime(now())} ${level}: ${text}\n`);
  return {
    debug: () => undefined,
    info: (t) => write('INFO', t),
    warning: (t) => write('WARNING', t),
    error: (t) => write('ERROR', t),
    critical: (t) => write('CRITICAL', t),
  };
}
