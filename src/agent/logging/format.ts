/**
 * Python logging's plain formatter (issue 12 item 5): `log.format` is a %-style string over the fields of a log
 * record (`%(asctime)s %(levelname)-8s %(message)s`, parsed by src/config/log-format.ts) and `log.dateformat` a C
 * strftime format for `asctime`.
 */

import { isFloatField, type Fields, type FieldValue, type PlainFormat } from '../../config/log-format.js';

export {
  checkPlainFields,
  isFloatField,
  parsePlainFormat,
  RECORD_FIELDS,
  type Fields,
  type FieldValue,
  type PlainFormat,
} from '../../config/log-format.js';

type Piece = PlainFormat['pieces'][number];

export function renderPlain(f: PlainFormat, fields: Fields): string {
  let out = '';
  for (const p of f.pieces) {
    if ('text' in p) out += p.text;
    else out += convert(fields[p.field] ?? null, p, isFloatField(p.field));
  }
  return out;
}

/** Python's str() of a record value. */
export function pyStr(v: FieldValue, isFloat = false): string {
  if (v === null) return 'None';
  if (typeof v === 'number') return isFloat ? pyFloatRepr(v) : String(Math.trunc(v));
  return v;
}

/** Python's repr() of a float: shortest round-trip digits, `.0` on whole numbers, exponent below 1e-4 / from 1e16. */
export function pyFloatRepr(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant = '0', expText = '0'] = x.toExponential().split('e');
  const exp = Number(expText);
  const sign = mant.startsWith('-') ? '-' : '';
  const digits = mant.replace('-', '').replace('.', '');
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const int = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
  const frac = digits.slice(exp + 1);
  return `${sign}${int}.${frac === '' ? '0' : frac}`;
}

function pyRepr(v: FieldValue, isFloat: boolean): string {
  if (typeof v !== 'string') return pyStr(v, isFloat);
  const quote = v.includes("'") && !v.includes('"') ? '"' : "'";
  const body = v
    .replace(/\\/g, '\\\\')
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')
    .replace(/\t/g, '\\t')
    .replace(new RegExp(quote, 'g'), `\\${quote}`);
  return quote + body + quote;
}

function pad(text: string, p: Extract<Piece, { field: string }>, numeric: boolean): string {
  const width = p.width ?? 0;
  if (text.length >= width) return text;
  if (p.flags.includes('-')) return text.padEnd(width);
  if (numeric && p.flags.includes('0')) {
    const sign = /^[-+ ]/.test(text) ? text[0]! : '';
    const prefix = /^[-+ ]?0[xXo]/.test(text) ? text.slice(sign.length, sign.length + 2) : '';
    const rest = text.slice(sign.length + prefix.length);
    return sign + prefix + rest.padStart(width - sign.length - prefix.length, '0');
  }
  return text.padStart(width);
}

function signed(n: number, body: string, flags: string): string {
  if (n < 0 || Object.is(n, -0)) return `-${body}`;
  return (flags.includes('+') ? '+' : flags.includes(' ') ? ' ' : '') + body;
}

function convert(v: FieldValue, p: Extract<Piece, { field: string }>, isFloat: boolean): string {
  const { conv, flags, precision } = p;
  if (conv === 's' || conv === 'r' || conv === 'a') {
    let s = conv === 's' ? pyStr(v, isFloat) : pyRepr(v, isFloat);
    if (precision !== undefined) s = s.slice(0, precision);
    return pad(s, p, false);
  }
  if (conv === 'c') {
    const s = typeof v === 'number' ? String.fromCodePoint(Math.trunc(v)) : String(v);
    return pad(s, p, false);
  }
  const n = typeof v === 'number' ? v : 0;
  const abs = Math.abs(n);
  let body: string;
  switch (conv) {
    case 'd':
    case 'i':
    case 'u':
      body = String(Math.trunc(abs));
      if (precision !== undefined) body = body.padStart(precision, '0');
      break;
    case 'x':
    case 'X':
    case 'o': {
      const radix = conv === 'o' ? 8 : 16;
      body = Math.trunc(abs).toString(radix);
      if (conv === 'X') body = body.toUpperCase();
      if (flags.includes('#')) body = (conv === 'o' ? '0o' : conv === 'x' ? '0x' : '0X') + body;
      break;
    }
    case 'f':
    case 'F':
      body = abs.toFixed(precision ?? 6);
      break;
    case 'e':
    case 'E':
      body = expForm(abs, precision ?? 6, conv === 'E');
      break;
    default:
      body = generalForm(abs, precision ?? 6, conv === 'G', flags.includes('#'));
  }
  return pad(signed(n, body, flags), p, true);
}

function expForm(abs: number, precision: number, upper: boolean): string {
  const [m = '0', e = '0'] = abs.toExponential(precision).split('e');
  const exp = Number(e);
  const text = `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return upper ? text.toUpperCase() : text;
}

/** `%g`: fixed or exponent form by the exponent, trailing zeros dropped unless `#`. */
function generalForm(abs: number, precision: number, upper: boolean, alt: boolean): string {
  const p = precision === 0 ? 1 : precision;
  const exp = abs === 0 ? 0 : Number(abs.toExponential(p - 1).split('e')[1]);
  const text = exp >= -4 && exp < p ? abs.toFixed(p - 1 - exp) : expForm(abs, p - 1, upper);
  if (alt) return text;
  const [mant = '', tail = ''] = text.split(/(?=[eE])/);
  return (mant.includes('.') ? mant.replace(/0+$/, '').replace(/\.$/, '') : mant) + tail;
}

// strftime, as glibc does it in the C locale (Python's time.strftime hands the format to the C library).
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/** A moment broken down as C's `struct tm`, plus the zone's offset and name. */
export interface BrokenDownTime {
  readonly year: number;
  /** 0-11 */
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  /** 0 = Sunday */
  readonly weekday: number;
  /** Minutes east of UTC. */
  readonly offsetMinutes: number;
  readonly zoneName: string;
  /** Seconds since the epoch. */
  readonly epochSeconds: number;
}

/**
 * The zone's short name, for `%Z` only: an Intl.DateTimeFormat costs ~2 ms to build in the agent's interpreter and
 * loads ICU's data (~10 MiB RSS), so it is built at the first `%Z` and kept (agent-footprint bench).
 */
let zoneNames: Intl.DateTimeFormat | undefined;
function zoneNameAt(d: Date): string {
  zoneNames ??= new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' });
  return zoneNames.formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? '';
}

export function localTime(ms: number): BrokenDownTime {
  const d = new Date(ms);
  return {
    year: d.getFullYear(),
    month: d.getMonth(),
    day: d.getDate(),
    hour: d.getHours(),
    minute: d.getMinutes(),
    second: d.getSeconds(),
    weekday: d.getDay(),
    offsetMinutes: -d.getTimezoneOffset(),
    get zoneName() {
      return zoneNameAt(d);
    },
    epochSeconds: Math.floor(ms / 1000),
  };
}

export function utcTime(ms: number): BrokenDownTime {
  const d = new Date(ms);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth(),
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    weekday: d.getUTCDay(),
    offsetMinutes: 0,
    zoneName: 'UTC',
    epochSeconds: Math.floor(ms / 1000),
  };
}

function dayOfYear(t: BrokenDownTime): number {
  return Math.round((Date.UTC(t.year, t.month, t.day) - Date.UTC(t.year, 0, 1)) / 86_400_000);
}

/** ISO 8601 week-based year and week number (weeks start on Monday; week 1 holds the year's first Thursday). */
function isoWeek(t: BrokenDownTime): { year: number; week: number } {
  const thursday = new Date(Date.UTC(t.year, t.month, t.day));
  thursday.setUTCDate(thursday.getUTCDate() - ((t.weekday + 6) % 7) + 3);
  const year = thursday.getUTCFullYear();
  const jan4 = new Date(Date.UTC(year, 0, 4));
  const firstThursday = Date.UTC(year, 0, 4 - ((jan4.getUTCDay() + 6) % 7) + 3);
  return { year, week: 1 + Math.round((thursday.getTime() - firstThursday) / (7 * 86_400_000)) };
}

type Numeric = { readonly n: number; readonly w: number; readonly blank?: boolean };

function conversion(c: string, t: BrokenDownTime): string | Numeric | undefined {
  const h12 = t.hour % 12 === 0 ? 12 : t.hour % 12;
  const yday = dayOfYear(t);
  switch (c) {
    case 'a':
      return DAYS[t.weekday]!.slice(0, 3);
    case 'A':
      return DAYS[t.weekday]!;
    case 'b':
    case 'h':
      return MONTHS[t.month]!.slice(0, 3);
    case 'B':
      return MONTHS[t.month]!;
    case 'c':
      return strftime('%a %b %e %H:%M:%S %Y', t);
    case 'C':
      return { n: Math.floor(t.year / 100), w: 2 };
    case 'd':
      return { n: t.day, w: 2 };
    case 'D':
    case 'x':
      return strftime('%m/%d/%y', t);
    case 'e':
      return { n: t.day, w: 2, blank: true };
    case 'F':
      return strftime('%Y-%m-%d', t);
    case 'g':
      return { n: isoWeek(t).year % 100, w: 2 };
    case 'G':
      return { n: isoWeek(t).year, w: 1 };
    case 'H':
      return { n: t.hour, w: 2 };
    case 'I':
      return { n: h12, w: 2 };
    case 'j':
      return { n: yday + 1, w: 3 };
    case 'k':
      return { n: t.hour, w: 2, blank: true };
    case 'l':
      return { n: h12, w: 2, blank: true };
    case 'm':
      return { n: t.month + 1, w: 2 };
    case 'M':
      return { n: t.minute, w: 2 };
    case 'n':
      return '\n';
    case 'p':
      return t.hour < 12 ? 'AM' : 'PM';
    case 'P':
      return t.hour < 12 ? 'am' : 'pm';
    case 'r':
      return strftime('%I:%M:%S %p', t);
    case 'R':
      return strftime('%H:%M', t);
    case 's':
      return { n: t.epochSeconds, w: 1 };
    case 'S':
      return { n: t.second, w: 2 };
    case 't':
      return '\t';
    case 'T':
    case 'X':
      return strftime('%H:%M:%S', t);
    case 'u':
      return { n: t.weekday === 0 ? 7 : t.weekday, w: 1 };
    case 'U':
      return { n: Math.floor((yday + 7 - t.weekday) / 7), w: 2 };
    case 'V':
      return { n: isoWeek(t).week, w: 2 };
    case 'w':
      return { n: t.weekday, w: 1 };
    case 'W':
      return { n: Math.floor((yday + 7 - ((t.weekday + 6) % 7)) / 7), w: 2 };
    case 'y':
      return { n: t.year % 100, w: 2 };
    case 'Y':
      return { n: t.year, w: 1 };
    case 'z': {
      const off = Math.abs(t.offsetMinutes);
      const hhmm = String(Math.floor(off / 60) * 100 + (off % 60)).padStart(4, '0');
      return (t.offsetMinutes < 0 ? '-' : '+') + hhmm;
    }
    case 'Z':
      return t.zoneName;
    case '%':
      return '%';
    default:
      return undefined;
  }
}

/** C strftime over the conversions glibc knows, with its `-`, `_`, `0`, `^`, `#` flags and a field width. */
export function strftime(format: string, t: BrokenDownTime): string {
  return format.replace(
    /%([-_0^#]*)(\d*)([EO]?)(.?)/gs,
    (all, flags: string, width: string, _mod, c: string) => {
      const v = c === '' ? undefined : conversion(c, t);
      if (v === undefined) return c === '' ? '%' : all;
      let text: string;
      const w = width === '' ? undefined : Number(width);
      if (typeof v === 'string') {
        text = v;
        if (w !== undefined) text = text.padStart(w, flags.includes('0') ? '0' : ' ');
      } else {
        const fill = flags.includes('-')
          ? ''
          : flags.includes('_')
            ? ' '
            : flags.includes('0')
              ? '0'
              : v.blank
                ? ' '
                : '0';
        const digits = String(Math.abs(v.n));
        const min = w ?? v.w;
        text = (v.n < 0 ? '-' : '') + (fill === '' ? digits : digits.padStart(min - (v.n < 0 ? 1 : 0), fill));
      }
      if (flags.includes('^')) text = text.toUpperCase();
      else if (flags.includes('#')) text = /[a-z]/.test(text) ? text.toUpperCase() : text.toLowerCase();
      return text;
    },
  );
}

/** Python logging's `asctime`: strftime with `log.dateformat`, else `YYYY-MM-DD HH:MM:SS,mmm`. */
export function formatAsctime(t: BrokenDownTime, msecs: number, dateformat: string | undefined): string {
  if (dateformat !== undefined) return strftime(dateformat, t);
  return `${strftime('%Y-%m-%d %H:%M:%S', t)},${String(Math.floor(msecs)).padStart(3, '0')}`;
}
