/**
 * The agent's logger with a `log` section applied: level filtering, per-logger levels, the acceptance suite's
 * format (call site from the stack), JSON with static fields, traceback_level, heartbeat deduplication, and
 * log.dir rotation on real files (RotatingFileHandler's rule: rotate before a line that would reach file_size).
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { utcTime } from '../../src/agent/logging/format.js';
import { AgentLogger } from '../../src/agent/logging/logger.js';
import { RotatingFile } from '../../src/agent/logging/rotate.js';
import { createLogger } from '../../src/agent/log.js';
import { UserError } from '../../src/config/errors.js';
import { DEFAULT_LOG_SETTINGS, readLogSettings, type LogSettings } from '../../src/config/log-section.js';

const NOW = Date.UTC(2026, 11, 3, 18, 0, 1, 42);

function logger(tree: Record<string, unknown> = {}): {
  log: AgentLogger;
  lines: string[];
  warnings: string[];
} {
  const lines: string[] = [];
  const log = new AgentLogger({ sink: (l) => lines.push(l), now: () => NOW, clock: utcTime, pid: 77 });
  const warnings = log.configure(readLogSettings({ log: tree }));
  return { log, lines, warnings };
}

describe('levels', () => {
  it("logs INFO and up by default in Patroni's default format", () => {
    const { log, lines } = logger();
    log.debug('d');
    log.info('i');
    log.warning('w');
    log.error('e');
    log.critical('c');
    expect(lines).toEqual([
      '2026-12-03 18:00:01,042 INFO: i\n',
      '2026-12-03 18:00:01,042 WARNING: w\n',
      '2026-12-03 18:00:01,042 ERROR: e\n',
      '2026-12-03 18:00:01,042 CRITICAL: c\n',
    ]);
  });

  it.each([
    [{ level: 'DEBUG' }, ['DEBUG', 'INFO', 'WARNING', 'ERROR']],
    [{ level: 'WARN' }, ['WARNING', 'ERROR']],
    [{ level: 'ERROR' }, ['ERROR']],
    [{ level: 'CRITICAL' }, []],
    // log.loggers: the pgwarden logger's own level wins over the root level; `patroni` names it too.
    [{ level: 'ERROR', loggers: { patroni: 'DEBUG' } }, ['DEBUG', 'INFO', 'WARNING', 'ERROR']],
    [{ level: 'DEBUG', loggers: { patroni: 'DEBUG', pgwarden: 'WARNING' } }, ['WARNING', 'ERROR']],
    [{ level: 'WARNING', loggers: { 'patroni.ha': 'DEBUG' } }, ['WARNING', 'ERROR']],
  ])('%j', (tree, shown) => {
    const { log, lines } = logger({ ...tree, format: '%(levelname)s' });
    log.debug('d');
    log.info('i');
    log.warning('w');
    log.error('e');
    expect(lines.map((l) => l.trim())).toEqual(shown);
  });
});

describe('the acceptance suite format', () => {
  it('fills pathname, lineno and funcName from the caller, keeps the level at column 24', () => {
    const { log, lines } = logger({
      format: '%(asctime)s %(levelname)s [%(pathname)s:%(lineno)d - %(funcName)s]: %(message)s',
    });
    const callerLine = new Error().stack!.split('\n')[1]!;
    log.info('hello');
    const line = lines[0]!;
    expect(line.slice(24, 28)).toBe('INFO');
    const m = /^\S+ \S+ INFO \[(.+):(\d+) - (.*)\]: hello\n$/.exec(line);
    expect(m).not.toBeNull();
    expect(m![1]).toMatch(/logging-logger\.test\.ts$/);
    // The next line after the one that captured callerLine.
    const here = Number(/:(\d+):\d+\)?$/.exec(callerLine)![1]);
    expect(Number(m![2])).toBe(here + 1);
  });

  it('works through the unbound methods createLogger hands out', () => {
    const lines: string[] = [];
    const log = createLogger((l) => lines.push(l));
    log.configure(
      readLogSettings({ log: { format: '%(filename)s %(module)s %(name)s %(process)d %(message)s' } }),
    );
    const { warning } = log;
    warning('unbound');
    expect(lines).toEqual([`logging-logger.test.ts logging-logger.test pgwarden ${process.pid} unbound\n`]);
  });
});

describe('JSON', () => {
  it('writes the format fields, renamed in place, then static_fields', () => {
    const { log, lines } = logger({
      type: 'json',
      format: ['asctime', { levelname: 'level' }, 'message'],
      dateformat: '%Y-%m-%dT%H:%M:%S%z',
      static_fields: { app: 'pgwarden', dc: 1 },
    });
    log.warning('caf\u00e9');
    expect(lines).toEqual([
      '{"asctime": "2026-12-03T18:00:01+0000", "level": "WARNING", "message": "caf\\u00e9", "app": "pgwarden", "dc": 1}\n',
    ]);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'WARNING', app: 'pgwarden' });
  });

  it('adds exc_info for an exception', () => {
    const { log, lines } = logger({ type: 'json', format: '%(levelname)s %(message)s' });
    log.exception('boom', new Error('bad'));
    const parsed = JSON.parse(lines[0]!) as Record<string, string>;
    expect(Object.keys(parsed)).toEqual(['levelname', 'message', 'exc_info']);
    expect(parsed['exc_info']).toMatch(/^Error: bad\n\s+at /);
  });
});

describe('plain format with a list', () => {
  it('warns and uses the default format, as Patroni does', () => {
    const { log, lines, warnings } = logger({ format: ['message'] });
    log.info('x');
    expect(warnings).toEqual([
      'log.format: a plain log needs a format string, not a list; using the default format',
    ]);
    expect(lines).toEqual(['2026-12-03 18:00:01,042 INFO: x\n']);
  });
});

describe('traceback_level', () => {
  it('ERROR (default): an ERROR line and the stack', () => {
    const { log, lines } = logger({ format: '%(levelname)s %(message)s' });
    log.exception('reload failed', new Error('oops'));
    expect(lines[0]).toMatch(/^ERROR reload failed\nError: oops\n\s+at .*\n$/s);
  });

  it("DEBUG: at level INFO one ERROR line with the error's text; at DEBUG the stack at DEBUG", () => {
    const info = logger({ format: '%(levelname)s %(message)s', traceback_level: 'debug' });
    info.log.exception('reload failed', new Error('oops'));
    expect(info.lines).toEqual(["ERROR reload failed, DETAIL: 'oops'\n"]);
    const debug = logger({ format: '%(levelname)s %(message)s', traceback_level: 'DEBUG', level: 'DEBUG' });
    debug.log.exception('reload failed', new Error('oops'));
    expect(debug.lines[0]).toMatch(/^DEBUG reload failed\nError: oops\n/);
  });
});

describe('deduplicate_heartbeat_logs', () => {
  const beat = (log: AgentLogger): void => {
    log.info('no action. I am (n1), the leader with the lock');
    log.info('no action. I am (n1), the leader with the lock');
    log.info('PAUSE: no action. I am (n1), the leader with the lock');
    log.info('PAUSE: no action. I am (n1), the leader with the lock');
    log.warning('something else');
    log.info('PAUSE: no action. I am (n1), the leader with the lock');
  };

  it('drops a heartbeat equal to the one before at level INFO', () => {
    const { log, lines } = logger({ format: '%(message)s', deduplicate_heartbeat_logs: true });
    beat(log);
    expect(lines).toEqual([
      'no action. I am (n1), the leader with the lock\n',
      'PAUSE: no action. I am (n1), the leader with the lock\n',
      'something else\n',
      'PAUSE: no action. I am (n1), the leader with the lock\n',
    ]);
  });

  it('keeps every heartbeat when off, or at another level', () => {
    for (const tree of [{}, { deduplicate_heartbeat_logs: true, level: 'DEBUG' }]) {
      const { log, lines } = logger({ ...tree, format: '%(message)s' });
      beat(log);
      expect(lines).toHaveLength(6);
    }
  });
});

describe('the log section', () => {
  it.each([
    [{ format: '%(message)s %(nope)s' }, /^log\.format: %\(nope\) is not a log record field/],
    [{ format: 'plain text' }, /^log\.format: it names no field/],
    [{ format: [] }, /^log\.format: an empty list names no field/],
    [{ loggers: { patroni: 'LOUD' } }, /^log\.loggers\.patroni: "LOUD" is not a log level/],
    [{ file_size: 'big' }, /^log\.file_size: /],
  ])('refuses %j', (tree, message) => {
    expect(() => readLogSettings({ log: tree })).toThrow(UserError);
    expect(() => readLogSettings({ log: tree })).toThrow(message);
  });

  it('accepts any field name in a JSON format (python-json-logger writes null)', () => {
    expect(readLogSettings({ log: { type: 'json', format: '%(message)s %(anything)s' } }).type).toBe('json');
  });

  it("reads Patroni's defaults", () => {
    expect(readLogSettings({})).toEqual(DEFAULT_LOG_SETTINGS);
    expect(readLogSettings({ log: { dateformat: '', dir: '' } })).toEqual(DEFAULT_LOG_SETTINGS);
  });
});

describe('log.dir rotation on real files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pgwarden-logdir-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const settings = (extra: Partial<LogSettings>): LogSettings => ({
    ...DEFAULT_LOG_SETTINGS,
    format: '%(message)s',
    dir,
    ...extra,
  });

  it('rotates before a line would reach file_size and keeps file_num old files', () => {
    const { log } = logger();
    log.configure(settings({ fileSize: 100, fileNum: 2, mode: 0o640 }));
    // 10 lines of 30 bytes: 3 fit under 100 (90 + 30 >= 100 rotates).
    for (let i = 0; i < 10; i++) log.info(`line ${String(i).padStart(2, '0')} ${'x'.repeat(21)}`);
    log.close();
    expect(readdirSync(dir).sort()).toEqual(['patroni.log', 'patroni.log.1', 'patroni.log.2']);
    const lineNos = (f: string): string[] =>
      readFileSync(join(dir, f), 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.slice(5, 7));
    expect(lineNos('patroni.log.2')).toEqual(['03', '04', '05']);
    expect(lineNos('patroni.log.1')).toEqual(['06', '07', '08']);
    expect(lineNos('patroni.log')).toEqual(['09']);
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).size).toBeLessThan(100);
    expect(statSync(join(dir, 'patroni.log')).mode & 0o777).toBe(0o640);
  });

  it('appends to an existing file and counts its size', () => {
    writeFileSync(join(dir, 'patroni.log'), 'x'.repeat(95) + '\n');
    const file = new RotatingFile({ dir, fileSize: 100, fileNum: 1 });
    file.write('next\n');
    file.close();
    expect(readFileSync(join(dir, 'patroni.log'), 'utf8')).toBe('next\n');
    expect(readFileSync(join(dir, 'patroni.log.1'), 'utf8')).toHaveLength(96);
  });

  it('with file_num 0 keeps one growing file, as RotatingFileHandler with backupCount 0', () => {
    const file = new RotatingFile({ dir, fileSize: 10, fileNum: 0 });
    for (let i = 0; i < 5; i++) file.write('123456\n');
    file.close();
    expect(readdirSync(dir)).toEqual(['patroni.log']);
    expect(statSync(join(dir, 'patroni.log')).size).toBe(35);
  });

  it('moves back to the sink when log.dir is removed on reload, and a missing directory is an error', () => {
    const { log, lines } = logger();
    log.configure(settings({}));
    log.info('to file');
    log.configure({ ...DEFAULT_LOG_SETTINGS, format: '%(message)s' });
    log.info('to stderr');
    expect(readFileSync(join(dir, 'patroni.log'), 'utf8')).toBe('to file\n');
    expect(lines).toEqual(['to stderr\n']);
    expect(() => log.configure(settings({ dir: join(dir, 'missing') }))).toThrow(/ENOENT/);
    expect(existsSync(join(dir, 'missing'))).toBe(false);
    log.info('still here');
    expect(lines).toEqual(['to stderr\n', 'still here\n']);
  });
});
