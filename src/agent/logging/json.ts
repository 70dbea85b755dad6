/**
 * `log.type: json`: one JSON object per line, as Patroni's python-json-logger formatter writes it. The fields are
 * the ones named in `log.format` (a %-style string, or a list of names and `{name: renamed}` maps), in that order,
 * then `static_fields`; renamed keys keep their place. Python's `json.dumps`: `", "` and `": "` separators,
 * non-ASCII escaped, floats in Python's repr.
 */
import { pyJson } from '../../model/pyjson.js';
import { isFloatField, pyFloatRepr, type Fields } from './format.js';

export interface JsonFormat {
  /** Record fields to log, in order. */
  readonly fields: readonly string[];
  readonly renames: Readonly<Record<string, string>>;
  readonly staticFields: readonly (readonly [string, unknown])[];
  readonly usesTime: boolean;
}

const FIELD = /%\((.+?)\)/g;

/**
 * The fields of a JSON format. `warn` reports the items Patroni skips with a warning. Undefined when the format
 * names no field (Patroni then falls back to its default format).
 */
export function jsonFormatFields(
  format: unknown,
  warn: (text: string) => void,
): { fields: string[]; renames: Record<string, string> } | undefined {
  if (typeof format === 'string') {
    const fields = [...format.matchAll(FIELD)].map((m) => m[1]!);
    return fields.length > 0 ? { fields, renames: {} } : undefined;
  }
  if (!Array.isArray(format)) return undefined;
  const fields: string[] = [];
  const renames: Record<string, string> = {};
  for (const item of format as unknown[]) {
    if (typeof item === 'string') fields.push(item);
    else if (typeof item === 'object' && item !== null && !Array.isArray(item)) {
      for (const [from, to] of Object.entries(item)) {
        if (typeof to === 'string') {
          fields.push(from);
          renames[from] = to;
        } else warn(`log.format: the new name of field ${from} must be a string; the field is left out`);
      }
    } else warn('log.format: each item must be a field name or a {field: new_name} map; an item is left out');
  }
  return fields.length > 0 ? { fields, renames } : undefined;
}

function jsonValue(name: string, v: unknown): string {
  if (typeof v === 'number' && isFloatField(name)) return pyFloatRepr(v);
  return pyJson(v);
}

export function renderJson(
  f: JsonFormat,
  record: Fields,
  extra: Readonly<Record<string, string>> = {},
): string {
  const entries = new Map<string, string>();
  const rename = (k: string): string => f.renames[k] ?? k;
  for (const field of f.fields) entries.set(rename(field), jsonValue(field, record[field] ?? null));
  for (const [k, v] of f.staticFields) entries.set(rename(k), jsonValue(k, v));
  for (const [k, v] of Object.entries(extra)) entries.set(rename(k), pyJson(v));
  return `{${[...entries].map(([k, v]) => `${pyJson(k)}: ${v}`).join(', ')}}`;
}
