/** The agent's log lines: Patroni's default format (`2026-11-22 04:50:01,123 INFO: message`) on stderr until configured. */
import { AgentLogger } from './logging/logger.js';

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

/** Set once stderr's reader went away: later lines are dropped instead of failing again. */
let stderrGone = false;

/**
 * Writes to stderr, dropping the line once stderr is broken. Whoever reads the agent's stderr (a terminal, a log
 * shipper, a pipe to `tee`) may go away; losing log lines is better than losing the lock holder.
 */
export const stderrSink: LogSink = (line) => {
  if (stderrGone || process.stderr.destroyed) return;
  try {
    process.stderr.write(line);
  } catch {
    stderrGone = true;
  }
};

/**
 * Keeps a write error on stdout or stderr (EPIPE when the reader went away) from becoming an uncaught exception that
 * kills the agent: Node reports it as an 'error' event on the stream, fatal when nobody listens.
 */
export function survivePipeErrors(): void {
  process.stderr.on('error', () => {
    stderrGone = true;
  });
  process.stdout.on('error', () => undefined);
}

export function createLogger(sink: LogSink = stderrSink, now = Date.now): AgentLogger {
  // The `log` settings (level, format, JSON, log.dir rotation) are applied with `configure`: src/agent/logging.
  return new AgentLogger({ sink, now });
}
