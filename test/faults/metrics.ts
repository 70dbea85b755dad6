/**
 * What a fault row records, computed from the writer's acknowledgements and the split-brain probe's rounds (pure
 * functions; no I/O), and the table docs/faults.md shows.
 */
import type { Ack, ProbeRound } from './traffic.js';

export interface RowResult {
  readonly fault: string;
  readonly impl: string;
  readonly sync: string;
  /** Probe rounds in which two or more members acknowledged a direct write. */
  readonly doubleWritable: number;
  /** Members seen in those rounds, e.g. `m1+m2`, for the notes. */
  readonly doubleWho: readonly string[];
  readonly acked: number;
  /** Direct writes each member acknowledged to the probe (shows the probe saw the primaries it should). */
  readonly probeAccepts: Readonly<Record<string, number>>;
  /** Acknowledged ids missing on the final primary. */
  readonly lost: number;
  /** Longest stretch without an acknowledged write from the fault's start (s); null: writes never resumed. */
  readonly resumeSeconds: number | null;
  /** Whether the cluster came back to one leader and two streaming replicas with no human action. */
  readonly healed: boolean;
  /** Seconds from the end of the fault until healed (null when it did not). */
  readonly healSeconds: number | null;
  /** Set when the row could not run to the end (set-up failure, time-out); the figures are then partial. */
  readonly error?: string;
}

export function doubleRounds(rounds: readonly ProbeRound[]): ProbeRound[] {
  return rounds.filter((r) => r.accepted.length > 1);
}

export function acceptsByMember(rounds: readonly ProbeRound[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of rounds) for (const a of r.accepted) counts[a.name] = (counts[a.name] ?? 0) + 1;
  return counts;
}

export function lostAcks(acks: readonly Ack[], stored: ReadonlySet<number>): number[] {
  return acks.filter((a) => !stored.has(a.id)).map((a) => a.id);
}

/**
 * The longest time without an acknowledged write from `faultStart` to `end`: gaps between consecutive acks
 * (the first measured from `faultStart`). Null when nothing was acknowledged after `faultStart`.
 */
export function resumeSeconds(acks: readonly Ack[], faultStart: number, end: number): number | null {
  const times = acks.map((a) => a.at).filter((t) => t > faultStart && t <= end);
  if (times.length === 0) return null;
  let prev = faultStart;
  for (const a of acks) if (a.at <= faultStart) prev = a.at;
  prev = Math.max(prev, faultStart);
  let worst = 0;
  for (const t of times) {
    worst = Math.max(worst, t - prev);
    prev = t;
  }
  return Math.round(worst / 100) / 10;
}

function cell(v: number | null | boolean, unit = ''): string {
  if (v === null) return 'never';
  if (typeof v === 'boolean') return v ? 'yes' : '**no**';
  return `${v}${unit}`;
}

export function markdownTable(rows: readonly RowResult[]): string {
  const head =
    '| fault | implementation | sync | two writable (rounds) | acked | lost | writes resume after (s) | heals | heal time (s) | notes |\n' +
    '|---|---|---|---:|---:|---:|---:|---|---:|---|';
  const lines = rows.map((r) => {
    const notes = [
      r.doubleWritable > 0 ? `double: ${r.doubleWho.join(', ')}` : '',
      r.error ? `error: ${r.error.replace(/\|/g, '/').replace(/\s+/g, ' ').slice(0, 160)}` : '',
    ]
      .filter((s) => s !== '')
      .join('; ');
    const two = r.doubleWritable > 0 ? `**${r.doubleWritable}**` : '0';
    const lost = r.lost > 0 ? `**${r.lost}**` : '0';
    return `| ${r.fault} | ${r.impl} | ${r.sync} | ${two} | ${r.acked} | ${lost} | ${cell(r.resumeSeconds)} | ${cell(r.healed)} | ${cell(r.healSeconds)} | ${notes} |`;
  });
  return [head, ...lines].join('\n');
}
