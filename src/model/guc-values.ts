/**
 * Patroni's parsing of PostgreSQL values (utils.py strtol / strtod / parse_int / parse_real): a strtol(3)-like
 * prefix (hex, octal, decimal) or a float, then an optional unit converted to the base unit with PostgreSQL's
 * rounding. Used to compare configured parameters with `pg_settings` and to read the health checks' `?lag=`.
 */

/** Python's `str.strip()`: Unicode whitespace plus the ASCII separators \x1c-\x1f and NEL. */
function pyStrip(s: string): string {
  const ws = (c: number): boolean =>
    /\s/.test(String.fromCharCode(c)) || (c >= 0x1c && c <= 0x1f) || c === 0x85;
  let a = 0;
  let b = s.length;
  while (a < b && ws(s.charCodeAt(a))) a++;
  while (b > a && ws(s.charCodeAt(b - 1))) b--;
  return s.slice(a, b);
}

const OCT_RE = /^[-+]?0[0-7]*/;
const DEC_RE = /^[-+]?(0|[1-9][0-9]*)/;
const HEX_RE = /^[-+]?0x[0-9a-fA-F]+/;
const DBL_RE = /^[-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?/;

function strtol(value: string, strict = true): [number | undefined, string] {
  const v = pyStrip(value);
  for (const [re, base] of [
    [HEX_RE, 16],
    [OCT_RE, 8],
    [DEC_RE, 10],
  ] as const) {
    const m = re.exec(v);
    if (m) {
      const text = m[0];
      const neg = text.startsWith('-');
      const digits = text.replace(/^[-+]/, '').replace(/^0x/i, '');
      const n = digits === '' ? 0 : Number.parseInt(digits, base);
      return [neg ? -n : n, v.slice(text.length)];
    }
  }
  return [strict ? undefined : 1, v];
}

function strtod(value: string): [number | undefined, string] {
  const v = pyStrip(value);
  const m = DBL_RE.exec(v);
  return m ? [Number(m[0]), v.slice(m[0].length)] : [undefined, v];
}

/** Python's `rint`: round half to even. */
function rint(x: number): number {
  const r = Math.round(x);
  return Math.abs(r - x) === 0.5 ? 2 * Math.round(x / 2) : r;
}

const CONVERT: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  B: { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 },
  kB: { B: 1 / 1024, kB: 1, MB: 1024, GB: 1024 ** 2, TB: 1024 ** 3 },
  MB: { B: 1 / 1024 ** 2, kB: 1 / 1024, MB: 1, GB: 1024, TB: 1024 ** 2 },
  ms: { us: 1 / 1000, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 },
  s: { us: 1e-6, ms: 1e-3, s: 1, min: 60, h: 3600, d: 86_400 },
  min: { us: 1 / 60e6, ms: 1 / 60_000, s: 1 / 60, min: 1, h: 60, d: 1440 },
};
const ROUND_ORDER: Readonly<Record<string, string>> = {
  TB: 'GB',
  GB: 'MB',
  MB: 'kB',
  kB: 'B',
  d: 'h',
  h: 'min',
  min: 's',
  s: 'ms',
  ms: 'us',
};

const DESCENDING: readonly (readonly string[])[] = [
  ['TB', 'GB', 'MB', 'kB', 'B'],
  ['d', 'h', 'min', 's', 'ms', 'us'],
];

/**
 * utils.py `maybe_convert_from_base_unit` for an integer setting: `4096` in `8kB` pages -> `32MB` (the greatest
 * unit that holds the value exactly); the value as it is when it is not an integer or the unit is unknown.
 */
export function gucFromBaseUnit(value: string, vartype: string, baseUnit: string | null): string {
  if (vartype !== 'integer' || !baseUnit || !/^-?\d+$/.test(value.trim())) return value;
  const [mult, base] = strtol(baseUnit, false);
  const table = CONVERT[base];
  const n = Number(value) * (mult ?? 1);
  if (!table || n === 0) return value;
  const units = DESCENDING.find((u) => u.includes(base)) ?? [];
  for (const unit of units) {
    const multiplier = table[unit];
    if (multiplier === undefined) continue;
    if (multiplier <= 1 || n % multiplier === 0) return `${Math.round(n / multiplier)}${unit}`;
  }
  return value;
}

function convertToBaseUnit(value: number, unit: string, baseUnit: string | null): number | undefined {
  let baseValue = 1;
  let base = baseUnit;
  if (base && !(base in CONVERT)) {
    const [bv, bu] = strtol(base, false);
    baseValue = bv ?? 1;
    base = bu;
  }
  const table = base ? CONVERT[base] : undefined;
  const factor = table?.[unit];
  if (!table || factor === undefined) return undefined;
  let v = (value * factor) / baseValue;
  const roundTo = ROUND_ORDER[unit];
  if (roundTo !== undefined) {
    const multiplier = table[roundTo] ?? 1;
    v = rint(v / multiplier) * multiplier;
  }
  return v;
}

/** utils.py `parse_int(value, base_unit)`: `'32MB'` in `'8kB'` pages -> 4096. */
export function parseGucInt(value: unknown, baseUnit: string | null = null): number | undefined {
  const text = String(value);
  let [val, unit] = strtol(text);
  if ((val === undefined && unit.startsWith('.')) || (unit !== '' && '.eE'.includes(unit[0] ?? ''))) {
    [val, unit] = strtod(text);
  }
  if (val === undefined) return undefined;
  unit = pyStrip(unit);
  if (unit === '') return rint(val);
  const converted = convertToBaseUnit(val, unit, baseUnit);
  return converted === undefined ? undefined : rint(converted);
}

/** utils.py `parse_real(value, base_unit)`. */
export function parseGucReal(value: unknown, baseUnit: string | null = null): number | undefined {
  const [val, rest] = strtod(String(value));
  if (val === undefined) return undefined;
  const unit = pyStrip(rest);
  if (unit === '') return val;
  return convertToBaseUnit(val, unit, baseUnit);
}
