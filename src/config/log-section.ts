/**
 * The `log` section of patroni.yml (Patroni 4.1.4's `patroni/log.py` and its defaults), read into the settings the
 * agent's logger applies at start and on every reload (SIGHUP, POST /reload), as Patroni reapplies it.
 */
import type { LogSettings } from './agent-config-types.js';
import { UserError } from './errors.js';
import { get, invalid, optBool, optEnum, optInt, optMapping, optStr, type Node } from './config-values.js';
import { checkPlainFields, parsePlainFormat } from './log-format.js';

export type { LogSettings } from './agent-config-types.js';

export const DEFAULT_LOG_FORMAT = '%(asctime)s %(levelname)s: %(message)s';

/** Python's logging levels by name (`WARN` and `FATAL` are aliases). */
export const LEVELS: Readonly<Record<string, number>> = {
  NOTSET: 0,
  DEBUG: 10,
  INFO: 20,
  WARN: 30,
  WARNING: 30,
  ERROR: 40,
  FATAL: 50,
  CRITICAL: 50,
};

export const DEFAULT_LOG_SETTINGS: LogSettings = {
  level: LEVELS['INFO']!,
  type: 'plain',
  format: DEFAULT_LOG_FORMAT,
  staticFields: {},
  fileSize: 25_000_000,
  fileNum: 4,
  tracebackLevel: 'ERROR',
  loggers: {},
  deduplicateHeartbeatLogs: false,
};

function levelNumber(v: unknown, path: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  const n = typeof v === 'string' ? LEVELS[v] : undefined;
  if (n === undefined) throw invalid(path, v, `a log level (${Object.keys(LEVELS).join(', ')})`);
  return n;
}

function readFormat(log: Node, type: 'plain' | 'json'): string | readonly unknown[] {
  const format = get(log, 'format');
  if (format === undefined || format === null) return DEFAULT_LOG_FORMAT;
  if (Array.isArray(format)) {
    if (format.length === 0) {
      throw new UserError(
        'log.format: an empty list names no field; list the fields to log or remove log.format',
      );
    }
    return format as readonly unknown[];
  }
  if (typeof format !== 'string') throw invalid('log.format', format, 'a logging format string');
  try {
    const parsed = parsePlainFormat(format);
    // A JSON log takes any field name (an unknown one is null); a plain line needs the record to have it.
    if (type === 'plain') checkPlainFields(parsed);
  } catch (e) {
    throw new UserError(`log.format: ${(e as Error).message}; fix the format or remove log.format`);
  }
  return format;
}

export function readLogSettings(tree: Node): LogSettings {
  const log = optMapping(tree, 'log', '');
  if (log === undefined) return DEFAULT_LOG_SETTINGS;
  const level = get(log, 'level');
  const type = optEnum(log, 'type', 'log', ['plain', 'json']) ?? 'plain';
  const dateformat = optStr(log, 'dateformat', 'log');
  const dir = optStr(log, 'dir', 'log');
  const mode = optInt(log, 'mode', 'log', { min: 0, max: 511 });
  const loggers: Record<string, number> = {};
  for (const [name, v] of Object.entries(optMapping(log, 'loggers', 'log') ?? {})) {
    loggers[name] = levelNumber(v, `log.loggers.${name}`);
  }
  optInt(log, 'max_queue_size', 'log', { min: 1 });
  return {
    level: level === undefined ? DEFAULT_LOG_SETTINGS.level : levelNumber(level, 'log.level'),
    type,
    format: readFormat(log, type),
    // An empty dateformat is Python's default, as in Patroni.
    ...(dateformat ? { dateformat } : {}),
    staticFields: optMapping(log, 'static_fields', 'log') ?? {},
    ...(dir !== undefined && dir !== '' ? { dir } : {}),
    fileSize: optInt(log, 'file_size', 'log', { min: 0 }) ?? DEFAULT_LOG_SETTINGS.fileSize,
    fileNum: optInt(log, 'file_num', 'log', { min: 0 }) ?? DEFAULT_LOG_SETTINGS.fileNum,
    ...(mode !== undefined ? { mode } : {}),
    tracebackLevel:
      optEnum(log, 'traceback_level', 'log', ['debug', 'error'], false) === 'debug' ? 'DEBUG' : 'ERROR',
    loggers,
    deduplicateHeartbeatLogs: optBool(log, 'deduplicate_heartbeat_logs', 'log') ?? false,
  };
}
