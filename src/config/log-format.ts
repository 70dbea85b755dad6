/**
 * `log.format` as Python's %-style logging format (issue 12 item 5), parsed when the configuration is read so that
 * a bad format is refused at start instead of failing on every line as it would in Python. The agent renders
 * lines from the parsed form (src/agent/logging/format.ts).
 */

/** The fields of a Python LogRecord, as pgwarden fills them in (see `recordFields` in logger.ts). */
export type FieldValue = string | number | null;
export type Fields = Readonly<Record<string, FieldValue>>;

/** Fields whose value is a number (Python int or float); the others are text or None. */
const NUMERIC = new Set(['created', 'msecs', 'relativeCreated', 'lineno', 'levelno', 'process', 'thread']);
const FLOATS = new Set(['created', 'msecs', 'relativeCreated']);
/** Fields that are None in Patroni's records (its log queue clears args and exc_info). */
const NONE = new Set(['args', 'exc_info', 'exc_text', 'stack_info', 'taskName']);
export const RECORD_FIELDS = new Set([
  ...NUMERIC,
  ...NONE,
  'name',
  'msg',
  'message',
  'asctime',
  'levelname',
  'pathname',
  'filename',
  'module',
  'funcName',
  'threadName',
  'processName',
]);

export const isFloatField = (name: string): boolean => FLOATS.has(name);

export type Piece =
  | { readonly text: string }
  | {
      readonly field: string;
      readonly flags: string;
      readonly width?: number;
      readonly precision?: number;
      readonly conv: string;
    };

export interface PlainFormat {
  readonly source: string;
  readonly pieces: readonly Piece[];
  /** Fields named in the format, in order (what the JSON formatter logs). */
  readonly fields: readonly string[];
  readonly usesTime: boolean;
}

// %(name)flags width .precision [length] conversion, as Python's printf-style formatting reads it.
const SPEC = /%(?:\(([^)]*)\))?([#0+ -]*)(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.|$)/gs;
const CONVERSIONS = 'diouxXeEfFgGcrsa';

/** Parses a %-style format; throws an Error saying what is wrong with it. */
export function parsePlainFormat(source: string): PlainFormat {
  // Python's Formatter uses '%(message)s' for an empty format.
  const fmt = source === '' ? '%(message)s' : source;
  if (!/%\(\w+\)[#0+ -]*(\*|\d+)?(\.(\*|\d+))?[diouxefgcrsa%]/i.test(fmt)) {
    throw new Error(
      "it names no field: write fields as %(name)s, e.g. '%(asctime)s %(levelname)s: %(message)s'",
    );
  }
  const pieces: Piece[] = [];
  let last = 0;
  for (const m of fmt.matchAll(SPEC)) {
    const [all, field, flags = '', width, precision, conv = ''] = m;
    if (m.index > last) pieces.push({ text: fmt.slice(last, m.index) });
    last = m.index + all.length;
    if (
      field === undefined &&
      conv === '%' &&
      flags === '' &&
      width === undefined &&
      precision === undefined
    ) {
      pieces.push({ text: '%' });
      continue;
    }
    if (field === undefined) throw new Error(`'${all}' has no field name: write %(name)s`);
    if (width === '*' || precision === '*') throw new Error(`'${all}': '*' widths need positional arguments`);
    if (!CONVERSIONS.includes(conv) || conv === '') {
      throw new Error(`'${all}' ends in an unsupported conversion '${conv}' (use s, d, f, r, ...)`);
    }
    pieces.push({
      field,
      flags,
      conv,
      ...(width !== undefined ? { width: Number(width) } : {}),
      ...(precision !== undefined ? { precision: Number(precision) } : {}),
    });
  }
  if (last < fmt.length) pieces.push({ text: fmt.slice(last) });
  const fields = pieces.flatMap((p) => ('field' in p ? [p.field] : []));
  return { source: fmt, pieces, fields, usesTime: fmt.includes('%(asctime)') };
}

/** The plain format must name record fields only, with conversions their values accept. */
export function checkPlainFields(f: PlainFormat): void {
  for (const p of f.pieces) {
    if (!('field' in p)) continue;
    if (!RECORD_FIELDS.has(p.field)) {
      throw new Error(
        `%(${p.field}) is not a log record field (fields: ${[...RECORD_FIELDS].sort().join(', ')})`,
      );
    }
    if ('diouxXeEfFgGc'.includes(p.conv) && !NUMERIC.has(p.field)) {
      throw new Error(
        `%(${p.field})${p.conv} needs a number, but ${p.field} is not one (use %(${p.field})s)`,
      );
    }
  }
}
