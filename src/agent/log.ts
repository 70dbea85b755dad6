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

export function createLogger(sink: LogSink = (l) => process.stderr.write(l), now = Date.now): AgentLogger {
  // The `log` settings (level, format, JSON, log.dir rotation) are applied with `configure`: src/agent/logging.
  return new AgentLogger({ sink, now });
}
