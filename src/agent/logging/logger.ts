/**
 * The agent's logger with Patroni 4.1.4's `log` settings (patroni/log.py): level, plain or JSON lines, format,
 * dateformat, static fields, a rotated file in `log.dir`, per-logger levels, traceback level and the deduplication
 * of heartbeat lines. `configure` applies a (re)loaded section; until then it logs in Patroni's default format.
 *
 * Every pgwarden message comes from one logger, named `pgwarden`: `log.loggers.pgwarden` (or `patroni`, the name
 * Patroni's own loggers share) sets its level. Record fields that have no meaning in Node get stand-ins: the call
 * site (pathname, filename, module, lineno, funcName) is read from the JavaScript stack, thread is the worker
 * thread id (0), threadName `MainThread`, processName `MainProcess`, args/exc_info/stack_info None.
 */
import { errorText } from '../../model/text.js';
import { threadId } from 'node:worker_threads';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_LOG_FORMAT,
  DEFAULT_LOG_SETTINGS,
  LEVELS,
  type LogSettings,
} from '../../config/log-section.js';
import {
  formatAsctime,
  localTime,
  parsePlainFormat,
  renderPlain,
  type BrokenDownTime,
  type FieldValue,
  type PlainFormat,
} from './format.js';
import { jsonFormatFields, renderJson, type JsonFormat } from './json.js';
import { RotatingFile } from './rotate.js';

export type LogSink = (line: string) => void;

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'DEBUG',
  20: 'INFO',
  30: 'WARNING',
  40: 'ERROR',
  50: 'CRITICAL',
};
const levelName = (n: number): string => LEVEL_NAMES[n] ?? `Level ${n}`;

export const LOGGER_NAME = 'pgwarden';
const CALL_SITE_FIELDS = ['pathname', 'filename', 'module', 'lineno', 'funcName'];
const START_MS = Date.now();

type Formatter =
  | { readonly kind: 'plain'; readonly format: PlainFormat }
  | { readonly kind: 'json'; readonly format: JsonFormat };

interface CallSite {
  readonly pathname: string;
  readonly lineno: number;
  readonly funcName: string;
}

const UNKNOWN_SITE: CallSite = { pathname: '(unknown file)', lineno: 0, funcName: '(unknown function)' };

/** The first frame below the logger method `skip`, from V8's stack text. */
function callSite(skip: (...args: never[]) => unknown): CallSite {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, skip);
  const line = holder.stack?.split('\n')[1];
  const m = line === undefined ? null : /^\s*at (?:(.*?) \()?(.+?):(\d+):\d+\)?$/.exec(line);
  if (m === null) return UNKNOWN_SITE;
  let path = m[2]!;
  if (path.startsWith('file://')) path = fileURLToPath(path);
  const fn = (m[1] ?? '<module>').replace(/^async /, '').replace(/^new /, '');
  return { pathname: path, lineno: Number(m[3]), funcName: fn };
}

/** Which of our messages Patroni would drop as a repeated heartbeat. */
const isHeartbeat = (text: string): boolean =>
  text.startsWith('no action. ') || text.startsWith('PAUSE: no action');

export interface AgentLoggerOptions {
  readonly sink: LogSink;
  readonly now?: () => number;
  /** Breaks a time down for `asctime` (local time, as Python's `time.localtime`). */
  readonly clock?: (ms: number) => BrokenDownTime;
  readonly pid?: number;
}

export class AgentLogger {
  private settings: LogSettings = { ...DEFAULT_LOG_SETTINGS, level: LEVELS['INFO']! };
  private formatter: Formatter = { kind: 'plain', format: parsePlainFormat(DEFAULT_LOG_FORMAT) };
  private file: RotatingFile | undefined;
  private lastHeartbeat: string | undefined;
  private readonly now: () => number;
  private readonly clock: (ms: number) => BrokenDownTime;
  private readonly pid: number;

  constructor(private readonly options: AgentLoggerOptions) {
    this.now = options.now ?? Date.now;
    this.clock = options.clock ?? localTime;
    this.pid = options.pid ?? process.pid;
  }

  // Arrow properties: callers pass the methods around unbound; each is also the frame the call site is read below.
  readonly debug = (text: string): void => this.log(10, text, this.debug);
  readonly info = (text: string): void => this.log(20, text, this.info);
  readonly warning = (text: string): void => this.log(30, text, this.warning);
  readonly error = (text: string): void => this.log(40, text, this.error);
  readonly critical = (text: string): void => this.log(50, text, this.critical);

  /**
   * An unexpected error, as Patroni's `logger.exception`: with traceback_level ERROR an ERROR line and the stack;
   * with DEBUG the stack only at DEBUG level, else an ERROR line with `, DETAIL: '<error>'`.
   */
  readonly exception = (text: string, error: unknown): void => {
    const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
    if (this.settings.tracebackLevel === 'ERROR') this.log(40, text, this.exception, stack);
    else if (this.enabled(10)) this.log(10, text, this.exception, stack);
    else {
      const detail = errorText(error);
      this.log(40, `${text}, DETAIL: '${detail}'`, this.exception);
    }
  };

  isEnabledFor(level: number): boolean {
    return this.enabled(level);
  }

  /**
   * Applies a `log` section (start and reload). Throws when the log file cannot be opened; the previous settings
   * then stay. Returns warnings about parts Patroni also skips.
   */
  configure(settings: LogSettings): string[] {
    const warnings: string[] = [];
    const formatter = this.buildFormatter(settings, (w) => warnings.push(w));
    let file = this.file;
    const rotation =
      settings.dir === undefined
        ? undefined
        : { dir: settings.dir, fileSize: settings.fileSize, fileNum: settings.fileNum, mode: settings.mode };
    if (rotation === undefined) file = undefined;
    else if (file === undefined || this.settings.dir !== settings.dir) file = new RotatingFile(rotation);
    else file.update(rotation);
    if (file !== this.file) this.file?.close();
    this.file = file;
    this.formatter = formatter;
    this.settings = settings;
    return warnings;
  }

  close(): void {
    this.file?.close();
    this.file = undefined;
  }

  private buildFormatter(s: LogSettings, warn: (w: string) => void): Formatter {
    if (s.type === 'json') {
      const parsed = jsonFormatFields(s.format, warn) ?? jsonFormatFields(DEFAULT_LOG_FORMAT, warn)!;
      return {
        kind: 'json',
        format: {
          ...parsed,
          staticFields: Object.entries(s.staticFields),
          usesTime: parsed.fields.includes('asctime'),
        },
      };
    }
    if (typeof s.format !== 'string') {
      warn('log.format: a plain log needs a format string, not a list; using the default format');
      return { kind: 'plain', format: parsePlainFormat(DEFAULT_LOG_FORMAT) };
    }
    return { kind: 'plain', format: parsePlainFormat(s.format) };
  }

  /** The level of the `pgwarden` logger: its own, else `patroni`'s, else the root level (Python's inheritance). */
  private enabled(level: number): boolean {
    const own = this.settings.loggers[LOGGER_NAME] ?? this.settings.loggers['patroni'];
    const effective = own !== undefined && own !== 0 ? own : this.settings.level;
    return level >= effective;
  }

  private log(level: number, text: string, caller: (...args: never[]) => unknown, trace?: string): void {
    if (!this.enabled(level)) return;
    if (this.suppressedHeartbeat(text)) return;
    let line = this.render(level, text, caller, trace);
    if (this.formatter.kind === 'plain' && trace !== undefined) line += `\n${trace}`;
    this.write(`${line}\n`);
  }

  /** Patroni, at level INFO with deduplicate_heartbeat_logs, drops a heartbeat line equal to the last one shown. */
  private suppressedHeartbeat(text: string): boolean {
    if (this.settings.level !== LEVELS['INFO']) return false;
    if (!isHeartbeat(text)) {
      // Anything else in between: the next heartbeat is shown again (never hides one that follows news).
      this.lastHeartbeat = undefined;
      return false;
    }
    const repeated = this.settings.deduplicateHeartbeatLogs && text === this.lastHeartbeat;
    this.lastHeartbeat = text;
    return repeated;
  }

  private render(level: number, text: string, caller: (...args: never[]) => unknown, trace?: string): string {
    const ms = this.now();
    const fieldNames = this.formatter.format.fields;
    const site = fieldNames.some((f) => CALL_SITE_FIELDS.includes(f)) ? callSite(caller) : UNKNOWN_SITE;
    const msecs = ms % 1000;
    const filename = basename(site.pathname);
    const record: Record<string, FieldValue> = {
      name: LOGGER_NAME,
      msg: text,
      message: text,
      args: null,
      levelname: levelName(level),
      levelno: level,
      pathname: site.pathname,
      filename,
      module: filename.replace(/\.[^.]*$/, ''),
      lineno: site.lineno,
      funcName: site.funcName,
      exc_info: null,
      exc_text: trace ?? null,
      stack_info: null,
      created: ms / 1000,
      msecs,
      relativeCreated: ms - START_MS,
      thread: threadId,
      threadName: 'MainThread',
      process: this.pid,
      processName: 'MainProcess',
    };
    if (this.formatter.format.usesTime) {
      record['asctime'] = formatAsctime(this.clock(ms), msecs, this.settings.dateformat);
    }
    if (this.formatter.kind === 'plain') return renderPlain(this.formatter.format, record);
    return renderJson(this.formatter.format, record, trace === undefined ? {} : { exc_info: trace });
  }

  private write(line: string): void {
    if (this.file === undefined) {
      this.options.sink(line);
      return;
    }
    try {
      this.file.write(line);
    } catch (e) {
      // A log file that cannot be written must not stop the agent: the line goes to stderr instead.
      this.options.sink(`${line.trimEnd()} (log file ${this.file.path}: ${(e as Error).message})\n`);
    }
  }
}
