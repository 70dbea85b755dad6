/**
 * Python's `difflib.unified_diff` (n = 3, empty file names), built on a faithful port of `SequenceMatcher`'s
 * matching blocks so that hunks are grouped exactly as patronictl's `edit-config` shows them.
 */

interface Match {
  readonly a: number;
  readonly b: number;
  readonly size: number;
}

type Opcode = readonly ['equal' | 'replace' | 'delete' | 'insert', number, number, number, number];

class SequenceMatcher {
  private readonly b2j = new Map<string, number[]>();

  constructor(
    private readonly a: readonly string[],
    private readonly b: readonly string[],
  ) {
    b.forEach((line, j) => {
      const list = this.b2j.get(line);
      if (list) list.push(j);
      else this.b2j.set(line, [j]);
    });
    // autojunk: in sequences of 200+ items, items making up more than 1% are "popular" and ignored.
    const n = b.length;
    if (n >= 200) {
      const ntest = Math.floor(n / 100) + 1;
      for (const [line, idxs] of [...this.b2j]) if (idxs.length > ntest) this.b2j.delete(line);
    }
  }

  private findLongestMatch(alo: number, ahi: number, blo: number, bhi: number): Match {
    let besti = alo;
    let bestj = blo;
    let bestsize = 0;
    let j2len = new Map<number, number>();
    for (let i = alo; i < ahi; i++) {
      const newj2len = new Map<number, number>();
      for (const j of this.b2j.get(this.a[i]!) ?? []) {
        if (j < blo) continue;
        if (j >= bhi) break;
        const k = (j2len.get(j - 1) ?? 0) + 1;
        newj2len.set(j, k);
        if (k > bestsize) {
          besti = i - k + 1;
          bestj = j - k + 1;
          bestsize = k;
        }
      }
      j2len = newj2len;
    }
    // Without an isjunk function nothing is junk (popular lines are only left out of b2j): extend the match
    // with equal neighbours on both sides, as CPython does.
    while (besti > alo && bestj > blo && this.a[besti - 1] === this.b[bestj - 1]) {
      besti--;
      bestj--;
      bestsize++;
    }
    while (
      besti + bestsize < ahi &&
      bestj + bestsize < bhi &&
      this.a[besti + bestsize] === this.b[bestj + bestsize]
    ) {
      bestsize++;
    }
    return { a: besti, b: bestj, size: bestsize };
  }

  matchingBlocks(): Match[] {
    const queue: [number, number, number, number][] = [[0, this.a.length, 0, this.b.length]];
    const blocks: Match[] = [];
    while (queue.length > 0) {
      const [alo, ahi, blo, bhi] = queue.pop()!;
      const x = this.findLongestMatch(alo, ahi, blo, bhi);
      if (x.size > 0) {
        blocks.push(x);
        if (alo < x.a && blo < x.b) queue.push([alo, x.a, blo, x.b]);
        if (x.a + x.size < ahi && x.b + x.size < bhi) queue.push([x.a + x.size, ahi, x.b + x.size, bhi]);
      }
    }
    blocks.sort((p, q) => p.a - q.a || p.b - q.b);
    const merged: Match[] = [];
    let i1 = 0;
    let j1 = 0;
    let k1 = 0;
    for (const { a: i2, b: j2, size: k2 } of blocks) {
      if (i1 + k1 === i2 && j1 + k1 === j2) k1 += k2;
      else {
        if (k1) merged.push({ a: i1, b: j1, size: k1 });
        i1 = i2;
        j1 = j2;
        k1 = k2;
      }
    }
    if (k1) merged.push({ a: i1, b: j1, size: k1 });
    merged.push({ a: this.a.length, b: this.b.length, size: 0 });
    return merged;
  }

  opcodes(): Opcode[] {
    let i = 0;
    let j = 0;
    const out: Opcode[] = [];
    for (const { a: ai, b: bj, size } of this.matchingBlocks()) {
      const tag = i < ai && j < bj ? 'replace' : i < ai ? 'delete' : j < bj ? 'insert' : undefined;
      if (tag) out.push([tag, i, ai, j, bj]);
      i = ai + size;
      j = bj + size;
      if (size) out.push(['equal', ai, i, bj, j]);
    }
    return out;
  }

  groupedOpcodes(n: number): Opcode[][] {
    let codes = this.opcodes();
    if (codes.length === 0) codes = [['equal', 0, 1, 0, 1]];
    const first = codes[0]!;
    if (first[0] === 'equal') {
      const [, i1, i2, j1, j2] = first;
      codes[0] = ['equal', Math.max(i1, i2 - n), i2, Math.max(j1, j2 - n), j2];
    }
    const last = codes[codes.length - 1]!;
    if (last[0] === 'equal') {
      const [, i1, i2, j1, j2] = last;
      codes[codes.length - 1] = ['equal', i1, Math.min(i2, i1 + n), j1, Math.min(j2, j1 + n)];
    }
    const nn = n + n;
    const groups: Opcode[][] = [];
    let group: Opcode[] = [];
    for (const code of codes) {
      const [tag, , i2, , j2] = code;
      let [, i1, , j1] = code;
      if (tag === 'equal' && i2 - i1 > nn) {
        group.push(['equal', i1, Math.min(i2, i1 + n), j1, Math.min(j2, j1 + n)]);
        groups.push(group);
        group = [];
        i1 = Math.max(i1, i2 - n);
        j1 = Math.max(j1, j2 - n);
      }
      group.push([tag, i1, i2, j1, j2]);
    }
    if (group.length > 0 && !(group.length === 1 && group[0]![0] === 'equal')) groups.push(group);
    return groups;
  }
}

function formatRange(start: number, stop: number): string {
  let beginning = start + 1;
  const length = stop - start;
  if (length === 1) return `${beginning}`;
  if (!length) beginning -= 1;
  return `${beginning},${length}`;
}

/** The diff lines (without line ends) that patronictl echoes: `--- `, `+++ `, `@@ ... @@`, ` x`, `-x`, `+x`. */
export function unifiedDiff(before: readonly string[], after: readonly string[], n = 3): string[] {
  const out: string[] = [];
  let started = false;
  for (const group of new SequenceMatcher(before, after).groupedOpcodes(n)) {
    if (!started) {
      started = true;
      out.push('--- ', '+++ ');
    }
    const first = group[0]!;
    const last = group[group.length - 1]!;
    out.push(`@@ -${formatRange(first[1], last[2])} +${formatRange(first[3], last[4])} @@`);
    for (const [tag, i1, i2, j1, j2] of group) {
      if (tag === 'equal') {
        for (const line of before.slice(i1, i2)) out.push(` ${line}`);
        continue;
      }
      if (tag === 'replace' || tag === 'delete')
        for (const line of before.slice(i1, i2)) out.push(`-${line}`);
      if (tag === 'replace' || tag === 'insert') for (const line of after.slice(j1, j2)) out.push(`+${line}`);
    }
  }
  return out;
}

/** patronictl's `listify`: the text without trailing newlines, split into lines. */
export function diffLines(text: string): string[] {
  return text.replace(/\n+$/, '').split('\n');
}
