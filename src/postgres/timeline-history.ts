/**
 * The `history` key as Patroni's `update_history` builds it on the primary: the rows of the current timeline's
 * `<tli>.history` file, each with the timestamp and new leader already known from the key, the newest row stamped
 * with the file's mtime and this member's name.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster } from '../model/cluster.js';
import { pyJson } from '../model/pyjson.js';

/** Python's `datetime.isoformat()` of a file's mtime in local time: `2026-11-22T04:55:01.123456+00:00`. */
export function isoLocal(mtimeNs: bigint): string {
  const ms = Number(mtimeNs / 1_000_000n);
  const micro = Number((mtimeNs / 1000n) % 1_000_000n);
  const d = new Date(ms);
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const tz = `${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` +
    `${micro > 0 ? `.${pad(micro, 6)}` : ''}${tz}`
  );
}

/** `<timeline>.history` text -> `[[parent_tli, switch_lsn, reason], ...]`. */
export function parseHistoryFile(text: string): [number, bigint, string][] {
  const out: [number, bigint, string][] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const [tli, lsn, ...reason] = t.split(/\s+/);
    const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(lsn ?? '');
    const n = Number.parseInt(tli ?? '', 10);
    if (!m || !Number.isInteger(n)) continue;
    out.push([n, (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`), reason.join(' ')]);
  }
  return out;
}

export interface HistoryInput {
  /** The primary's current timeline (undefined: not a running primary). */
  readonly timeline: number | undefined;
  readonly cluster: Cluster;
  readonly dataDir: string;
  /** This member, named as the new leader of the newest row. */
  readonly name: string;
  /** The dynamic configuration's `max_timelines_history` (0 or missing: keep all). */
  readonly maxTimelines: unknown;
}

/** The `history` value to write (compact JSON), or undefined when the key is up to date or nothing is known. */
export function historyValue(h: HistoryInput): string | undefined {
  const tl = h.timeline;
  if (tl === undefined) return undefined;
  const lines = h.cluster.history?.lines ?? [];
  if (tl === 1) return lines.length > 0 ? '[]' : undefined;
  const last = lines[lines.length - 1];
  if (last && last.timeline === tl - 1 && last.newLeader !== undefined) return undefined;
  const file = join(h.dataDir, 'pg_wal', `${tl.toString(16).toUpperCase().padStart(8, '0')}.history`);
  let text: string;
  let mtimeNs: bigint;
  try {
    text = readFileSync(file, 'utf8');
    mtimeNs = statSync(file, { bigint: true }).mtimeNs;
  } catch {
    return undefined;
  }
  const known = new Map(lines.map((l) => [l.timeline, l]));
  const history: unknown[][] = parseHistoryFile(text).map(([t, lsn, reason]) => {
    const row: unknown[] = [t, lsn, reason];
    const k = known.get(t);
    if (k && k.lsn === lsn && k.timestamp !== undefined) {
      row.push(k.timestamp);
      if (k.newLeader !== undefined) row.push(k.newLeader);
    }
    return row;
  });
  const lastRow = history[history.length - 1];
  if (lastRow && lastRow[0] === tl - 1 && lastRow.length === 3) {
    lastRow.push(isoLocal(mtimeNs), h.name);
  }
  const max = Number(h.maxTimelines ?? 0);
  const kept = Number.isInteger(max) && max > 0 ? history.slice(-max) : history;
  return pyJson(kept, true);
}
