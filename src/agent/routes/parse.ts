/**
 * Patroni's parsing and comparison helpers used by the unsafe endpoints (api.py `parse_schedule`, misc.py
 * `postgres_version_to_int`), and the replies they share. Python's own semantics (`bool()`, `str()`,
 * `patch_config`, `deep_compare`) are in src/model/python.ts, utils.py `parse_int` in src/model/guc-values.ts.
 */
import type { ApiReply } from '../../api/types.js';
import type { Cluster, JsonObject } from '../../model/cluster.js';
import { postgresVersionToInt as versionToInt } from '../../model/pg-version.js';
import { pyStr } from '../../model/python.js';

export type Reply = Promise<ApiReply>;

export const text = (code: number, body: string): ApiReply => ({ code, body });

/** A fresh DCS read, or the loop's cached view when the DCS does not answer. */
export async function freshCluster(deps: {
  readonly dcs: { getCluster(): Promise<Cluster> };
  readonly loop: { readonly lastCluster: Cluster | undefined };
}): Promise<Cluster | undefined> {
  try {
    return await deps.dcs.getCluster();
  } catch {
    return deps.loop.lastCluster;
  }
}

export type ScheduleResult =
  | { readonly ok: true; readonly at: Date; readonly iso: string }
  | { readonly ok: false; readonly code: number; readonly error: string };

const ISO_RE =
  /^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6})\d*)?)?)?\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)?\s*$/i;

/**
 * api.py `parse_schedule`: a timestamp with a zone, not in the past. The accepted syntax is ISO 8601 (what
 * patronictl sends); dateutil accepts more free-form text, which we answer with the 422 "unable to parse".
 * `iso` is Python's `datetime.isoformat()` of the parsed value (the zone offset kept).
 */
export function parseSchedule(value: unknown, action: string, now: number = Date.now()): ScheduleResult {
  const unparsable: ScheduleResult = {
    ok: false,
    code: 422,
    error: 'Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601',
  };
  if (typeof value !== 'string') return unparsable;
  const m = ISO_RE.exec(value);
  if (!m) return unparsable;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac, zone] = m;
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59)
    return unparsable;
  if (zone === undefined) {
    return { ok: false, code: 400, error: `Timezone information is mandatory for the scheduled ${action}` };
  }
  let offsetMin = 0;
  if (!/^(Z|UTC)$/i.test(zone)) {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    offsetMin = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0'));
  }
  const micros = (frac ?? '').padEnd(6, '0');
  const utc =
    Date.UTC(Number(y), month - 1, day, Number(h), Number(mi), Number(s), Number(micros.slice(0, 3))) -
    offsetMin * 60_000;
  const at = new Date(utc);
  if (Number.isNaN(at.getTime())) return unparsable;
  if (utc < now) return { ok: false, code: 422, error: `Cannot schedule ${action} in the past` };
  const abs = Math.abs(offsetMin);
  const off = `${offsetMin < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  const fraction = frac !== undefined && Number(micros) !== 0 ? `.${micros}` : '';
  const iso = `${y}-${mo}-${d}T${h.padStart(2, '0')}:${mi}:${s}${fraction}${off}`;
  return { ok: true, at, iso };
}

/** misc.py `postgres_version_to_int` of a JSON value (Python's `str()` of it first). */
export function postgresVersionToInt(version: unknown): number | string {
  return versionToInt(pyStr(version));
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function deepCopy(o: JsonObject): Record<string, unknown> {
  return JSON.parse(JSON.stringify(o)) as Record<string, unknown>;
}
