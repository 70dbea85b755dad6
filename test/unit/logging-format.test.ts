/**
 * The log line renderers against Python's own output: test/fixtures/logging/python-logging.json was written by
 * Python 3.11's logging.Formatter and python-json-logger (make-reference.py beside it, in UTC) for one record whose
 * fields are the stand-ins pgwarden fills in. Plus strftime corners, Python float repr and refused formats.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkPlainFields,
  formatAsctime,
  localTime,
  parsePlainFormat,
  pyFloatRepr,
  renderPlain,
  strftime,
  utcTime,
  type FieldValue,
} from '../../src/agent/logging/format.js';
import { jsonFormatFields, renderJson } from '../../src/agent/logging/json.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

interface Case {
  readonly format: string;
  readonly dateformat: string | null;
  readonly level: string;
  readonly message: string;
  readonly line: string;
  readonly renames?: Record<string, string>;
}
const reference = JSON.parse(
  readFileSync(join(REPO_ROOT, 'test/fixtures/logging/python-logging.json'), 'utf8'),
) as { fields: Record<string, FieldValue>; plain: Case[]; json: Case[] };

const LEVELNO: Record<string, number> = { INFO: 20, WARNING: 30 };

function recordFor(c: Case): Record<string, FieldValue> {
  const f = reference.fields;
  const ms = Math.round(Number(f['created']) * 1000);
  return {
    ...f,
    levelname: c.level,
    levelno: LEVELNO[c.level]!,
    msg: c.message,
    message: c.message,
    args: null,
    exc_info: null,
    exc_text: null,
    stack_info: null,
    asctime: formatAsctime(utcTime(ms), Number(f['msecs']), c.dateformat ?? undefined),
  };
}

describe('plain lines as Python logging.Formatter writes them', () => {
  it.each(reference.plain.map((c) => [`${c.format} / ${c.dateformat}`, c] as const))('%s', (_, c) => {
    const format = parsePlainFormat(c.format);
    checkPlainFields(format);
    expect(renderPlain(format, recordFor(c))).toBe(c.line);
  });

  it("puts the level at column 24 with Patroni's default asctime (the acceptance suite reads it there)", () => {
    const suite = reference.plain[1]!;
    expect(suite.line.slice(24, 24 + 'WARNING'.length)).toBe('WARNING');
    expect(renderPlain(parsePlainFormat(suite.format), recordFor(suite)).slice(24, 31)).toBe('WARNING');
  });
});

describe('JSON lines as python-json-logger writes them', () => {
  it.each(reference.json.map((c) => [c.format, c] as const))('%s', (_, c) => {
    const parsed = jsonFormatFields(c.format, () => undefined)!;
    const line = renderJson(
      { ...parsed, renames: c.renames ?? {}, staticFields: [], usesTime: parsed.fields.includes('asctime') },
      recordFor(c),
    );
    expect(line).toBe(c.line);
  });

  it("takes Patroni's list format with renames, then static_fields (python-json-logger 3's order)", () => {
    const warnings: string[] = [];
    const parsed = jsonFormatFields(['asctime', { levelname: 'level' }, 'message', 7, { lineno: 3 }], (w) =>
      warnings.push(w),
    )!;
    expect(parsed).toEqual({ fields: ['asctime', 'levelname', 'message'], renames: { levelname: 'level' } });
    expect(warnings).toHaveLength(2);
    const c = reference.json[0]!;
    const line = renderJson(
      {
        ...parsed,
        staticFields: [
          ['app', 'pgwarden'],
          ['levelname', 'x'],
          ['n', 1],
        ],
        usesTime: true,
      },
      recordFor(c),
    );
    expect(line).toBe(
      '{"asctime": "2023-11-14 22:13:20,123", "level": "x", "message": "no action. I am (n1), the leader with the lock \\u00e9", "app": "pgwarden", "n": 1}',
    );
  });

  it('falls back to the default format when a list names no field', () => {
    expect(jsonFormatFields([{ a: 1 }], () => undefined)).toBeUndefined();
    expect(jsonFormatFields('no fields', () => undefined)).toBeUndefined();
  });
});

describe('format details', () => {
  it("writes floats as Python's repr", () => {
    expect([1, 0.5, 1e16, 1.5e16, 1e-5, 0.0001, 123.456, -2, 1700000000.123].map(pyFloatRepr)).toEqual([
      '1.0',
      '0.5',
      '1e+16',
      '1.5e+16',
      '1e-05',
      '0.0001',
      '123.456',
      '-2.0',
      '1700000000.123',
    ]);
  });

  it('strftime: ISO weeks across a year boundary, widths, padding flags, unknown conversions kept', () => {
    // 2021-01-01 is a Friday in ISO week 53 of 2020.
    const t = utcTime(Date.UTC(2021, 0, 1, 7, 5, 9));
    expect(strftime('%G-W%V-%u %g %j %U %W', t)).toBe('2020-W53-5 20 001 00 00');
    expect(strftime('%5Y|%-m|%_d|%e|%10A|%^B|%Ez|%', t)).toBe('02021|1| 1| 1|    Friday|JANUARY|+0000|%');
    expect(strftime('%f %Q', t)).toBe('%f %Q');
    expect(formatAsctime(t, 7, undefined)).toBe('2021-01-01 07:05:09,007');
  });

  it("local time: %Z is the zone's short name for that moment, %z its offset", () => {
    const ms = Date.UTC(2026, 6, 1, 12, 0, 0);
    const zone = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' })
      .formatToParts(new Date(ms))
      .find((p) => p.type === 'timeZoneName')?.value;
    const t = localTime(ms);
    expect(strftime('%Z', t)).toBe(zone);
    expect(t.offsetMinutes).toBe(-new Date(ms).getTimezoneOffset());
    expect(strftime('%Z', localTime(ms + 1000))).toBe(zone);
  });

  it.each([
    ['no fields', /names no field/],
    ['%(message)s %s', /has no field name/],
    ['%(message)s %(levelname)*s', /'\*' widths/],
    ['%(message)s %(levelname)k', /unsupported conversion 'k'/],
    ['%(message)s %(foo)s', /%\(foo\) is not a log record field/],
    ['%(levelname)d %(message)s', /needs a number/],
  ])('refuses %j', (format, error) => {
    expect(() => checkPlainFields(parsePlainFormat(format))).toThrow(error);
  });

  it("reads an empty format as Python's '%(message)s'", () => {
    expect(parsePlainFormat('').source).toBe('%(message)s');
  });
});
