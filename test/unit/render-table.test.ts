/**
 * The pretty table's direct drawing (plain ASCII cells) is byte for byte what cli-table3 draws, which the other
 * tables (Unicode, multi-line cells) still go through: compared on generated tables.
 */
import Table from 'cli-table3';
import { describe, expect, it } from 'vitest';
import { PRETTYTABLE_CHARS, renderPrettyTable, type Align } from '../../src/render/table.js';

function cliTable3(columns: string[], rows: string[][], align: Record<string, Align>): string {
  const t = new Table({
    head: [...columns],
    chars: PRETTYTABLE_CHARS,
    colAligns: columns.map((c) => align[c] ?? 'left'),
    style: { head: [], border: [], compact: true, 'padding-left': 1, 'padding-right': 1 },
  });
  for (const r of rows) t.push([...r]);
  return t.toString();
}

/** A small deterministic generator (mulberry32). */
function random(seed: number): (n: number) => number {
  let a = seed;
  return (n) => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

describe('renderPrettyTable', () => {
  it('draws plain ASCII tables as cli-table3 does (2,000 generated tables)', () => {
    const rnd = random(14);
    const alphabet = 'ab c1-_.:*+ |{}';
    const text = (): string => Array.from({ length: rnd(12) }, () => alphabet[rnd(alphabet.length)]).join('');
    for (let k = 0; k < 2000; k++) {
      const columns = Array.from({ length: 1 + rnd(6) }, (_, i) => `H${i}${text()}`);
      const rows = Array.from({ length: 1 + rnd(5) }, () => columns.map(() => text()));
      const align = Object.fromEntries(columns.map((c) => [c, rnd(2) ? 'right' : 'left'] as const));
      expect(renderPrettyTable(columns, rows, { align })).toBe(cliTable3(columns, rows, align));
    }
  });

  it('leaves wide characters to cli-table3', () => {
    const columns = ['Member', 'Tags'];
    const rows = [
      ['pg1', 'zone: 東京'],
      ['pg2', 'émoji 🐘'],
    ];
    expect(renderPrettyTable(columns, rows)).toBe(cliTable3(columns, rows, {}));
  });
});
