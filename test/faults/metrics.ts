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
  /** Which code ran the row and when: `<commit> <HH:MM UTC>` (the suite's and pgwarden's commit). */
  readonly code?: string;
  /** Runs of the row combined (combineRuns); absent: one run. */
  readonly runs?: number;
  /** The fastest and slowest of those runs' `resumeSeconds` (null: never). */
  readonly resumeRange?: readonly [number | null, number | null];
}

/** `resumeSeconds` ordered with `never` (null) last. */
const byResume = (a: RowResult, b: RowResult): number =>
  (a.resumeSeconds ?? Number.POSITIVE_INFINITY) - (b.resumeSeconds ?? Number.POSITIVE_INFINITY);

/**
 * Several runs of one row as one result: the worst of the safety figures (two writable members, lost writes, heals),
 * and the median run's timings and counts, with the range of `resumeSeconds` kept. A run that failed to complete
 * makes the row failed: its error is the row's.
 */
export function combineRuns(results: readonly RowResult[]): RowResult {
  const first = results[0];
  if (!first) throw new Error('no run to combine');
  const failed = results.find((r) => r.error !== undefined);
  if (failed || results.length === 1) return failed ?? first;
  const sorted = [...results].sort(byResume);
  const median = sorted[Math.floor((sorted.length - 1) / 2)] ?? first;
  return {
    ...median,
    doubleWritable: Math.max(...results.map((r) => r.doubleWritable)),
    doubleWho: [...new Set(results.flatMap((r) => r.doubleWho))],
    lost: Math.max(...results.map((r) => r.lost)),
    healed: results.every((r) => r.healed),
    healSeconds: results.every((r) => r.healed) ? median.healSeconds : null,
    runs: results.length,
    resumeRange: [sorted[0]?.resumeSeconds ?? null, sorted.at(-1)?.resumeSeconds ?? null],
  };
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
    '| fault | implementation | sync | two writable (rounds) | acked | lost | writes resume after (s) | heals | heal time (s) | code, run at (UTC) | notes |\n' +
    '|---|---|---|---:|---:|---:|---:|---|---:|---|---|';
  const lines = rows.map((r) => {
    const notes = [
      r.doubleWritable > 0 ? `double: ${r.doubleWho.join(', ')}` : '',
      r.runs !== undefined && r.runs > 1
        ? `${r.runs} runs (median shown), resume ${cell(r.resumeRange?.[0] ?? null)} to ${cell(r.resumeRange?.[1] ?? null)} s`
        : '',
      r.error ? `error: ${r.error.replace(/\|/g, '/').replace(/\s+/g, ' ').slice(0, 160)}` : '',
    ]
      .filter((s) => s !== '')
      .join('; ');
    const two = r.doubleWritable > 0 ? `**${r.doubleWritable}**` : '0';
    const lost = r.lost > 0 ? `**${r.lost}**` : '0';
    return `| ${r.fault} | ${r.impl} | ${r.sync} | ${two} | ${r.acked} | ${lost} | ${cell(r.resumeSeconds)} | ${cell(r.healed)} | ${cell(r.healSeconds)} | ${r.code ?? ''} | ${notes} |`;
  });
  return [head, ...lines].join('\n');
}

/**
 * The acceptance targets over pgwarden's rows, one line each: no moment with two writable members; no lost
 * acknowledged write with synchronous mode on or strict; heals by itself; writes resume no later than on Patroni
 * 4.1.4 in the same fault and mode (when that row ran). Control rows are left out.
 */
export function targetLines(rows: readonly RowResult[], isControl: (fault: string) => boolean): string[] {
  const mine = rows.filter((r) => r.impl === 'pgwarden' && !isControl(r.fault) && r.error === undefined);
  const patroni = new Map(
    rows
      .filter((r) => r.impl === 'patroni-4.1.4' && r.error === undefined)
      .map((r) => [`${r.fault}/${r.sync}`, r]),
  );
  const misses = (pick: (r: RowResult) => boolean): string => {
    const ids = mine.filter(pick).map((r) => `${r.fault}/${r.sync}`);
    return ids.length === 0 ? 'met' : `**missed** on ${ids.join(', ')}`;
  };
  const compared = mine.filter((r) => patroni.has(`${r.fault}/${r.sync}`));
  const slower = compared.filter((r) => {
    const p = patroni.get(`${r.fault}/${r.sync}`)?.resumeSeconds;
    if (r.resumeSeconds === null) return p !== null;
    return p !== null && p !== undefined && r.resumeSeconds > p;
  });
  const slowerText = slower
    .map(
      (r) =>
        `${r.fault}/${r.sync} ${r.resumeSeconds ?? 'never'} s vs ${patroni.get(`${r.fault}/${r.sync}`)?.resumeSeconds} s`,
    )
    .join(', ');
  return [
    `- 0 moments with two writable members (${mine.length} pgwarden rows): ${misses((r) => r.doubleWritable > 0)}`,
    `- 0 acknowledged writes lost with sync on/strict: ${misses((r) => r.sync !== 'off' && r.lost > 0)}`,
    `- heals with no human action: ${misses((r) => !r.healed)}`,
    `- writes resume no later than Patroni 4.1.4 (${compared.length} rows compared): ${
      slower.length === 0 ? 'met' : `**slower** on ${slowerText}`
    }`,
  ];
}

/**
 * The rows of a table `markdownTable` wrote, read back (docs/faults.md is committed; .bench/faults.json is not, so a
 * fresh checkout seeds its results from the table instead of dropping the rows it has not re-run). Each member's
 * direct-write count is not in the table: `probeAccepts` comes back empty.
 */
export function parseMarkdownTable(text: string): RowResult[] {
  const num = (s: string): number => Number(s.replace(/\*/g, ''));
  const orNull = (s: string): number | null => (s === 'never' ? null : num(s));
  return text.split('\n').flatMap((line) => {
    const c = line.split('|').map((s) => s.trim());
    // '', fault, impl, sync, two, acked, lost, resume, heals, heal time, code, notes, ''
    if (c.length !== 13 || c[1] === 'fault' || c[1]?.startsWith('---') || !c[4] || !/^\**\d/.test(c[4]))
      return [];
    const [
      ,
      fault = '',
      impl = '',
      sync = '',
      two = '',
      acked = '',
      lost = '',
      resume = '',
      heals = '',
      heal = '',
      code = '',
      notes = '',
    ] = c;
    const parts = notes.split('; ');
    const who = parts.find((p) => p.startsWith('double: '))?.slice('double: '.length);
    const error = parts.find((p) => p.startsWith('error: '))?.slice('error: '.length);
    const runs = parts
      .map((p) => /^(\d+) runs \(median shown\), resume (\S+) to (\S+) s$/.exec(p))
      .find((m) => m !== null);
    return [
      {
        fault,
        impl,
        sync,
        doubleWritable: num(two),
        doubleWho: who === undefined ? [] : who.split(', '),
        acked: num(acked),
        probeAccepts: {},
        lost: num(lost),
        resumeSeconds: orNull(resume),
        healed: heals === 'yes',
        healSeconds: orNull(heal),
        ...(error === undefined ? {} : { error }),
        ...(code === '' ? {} : { code }),
        ...(runs
          ? { runs: Number(runs[1]), resumeRange: [orNull(runs[2] ?? ''), orNull(runs[3] ?? '')] as const }
          : {}),
      },
    ];
  });
}
