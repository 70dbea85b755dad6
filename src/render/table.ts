/**
 * Tables drawn the way patronictl's PrettyTable draws them: `+---+` borders, one space of padding, per-column
 * alignment, and a title written over the top border (` Cluster: demo `).
 */
import Table from 'cli-table3';

export type Align = 'left' | 'right';

export interface PrettyTableOptions {
  /** Written over the top border, starting after its first `+`. */
  readonly title?: string;
  readonly align?: Readonly<Record<string, Align>>;
  /** Rules between all rows (PrettyTable `ALL`), used when any cell spans several lines. */
  readonly allRules?: boolean;
}

/** prettytable's frame as cli-table3 characters (also what the direct drawing below uses). */
export const PRETTYTABLE_CHARS = {
  top: '-',
  'top-mid': '+',
  'top-left': '+',
  'top-right': '+',
  bottom: '-',
  'bottom-mid': '+',
  'bottom-left': '+',
  'bottom-right': '+',
  left: '|',
  'left-mid': '+',
  mid: '-',
  'mid-mid': '+',
  right: '|',
  'right-mid': '+',
  middle: '|',
};

/** Printable ASCII only: one column per character, as cli-table3 measures it. */
const PLAIN = /^[\x20-\x7e]*$/;

/**
 * The common table (one line per cell, printable ASCII) drawn directly, as cli-table3 draws it: cli-table3 measures
 * every cell's display width with ANSI and Unicode rules, about 2 ms a table, which `list --all` over a thousand
 * clusters would spend seconds on. Undefined when a cell needs those rules.
 */
function plainTable(
  columns: readonly string[],
  rows: readonly (readonly string[])[],
  align: (c: number) => Align,
): string | undefined {
  if (![columns, ...rows].every((r) => r.every((c) => PLAIN.test(c)))) return undefined;
  const widths = columns.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const line = (cells: readonly string[]): string =>
    `|${widths
      .map((w, i) => {
        const c = cells[i] ?? '';
        return ` ${align(i) === 'right' ? c.padStart(w) : c.padEnd(w)} `;
      })
      .join('|')}|`;
  return [rule, line(columns), rule, ...rows.map(line), rule].join('\n');
}

export function renderPrettyTable(
  columns: readonly string[],
  rows: readonly (readonly string[])[],
  options: PrettyTableOptions = {},
): string {
  const allRules = options.allRules ?? rows.some((r) => r.some((c) => c.includes('\n')));
  const plain =
    allRules || rows.length === 0
      ? undefined
      : plainTable(columns, rows, (i) => options.align?.[columns[i] ?? ''] ?? 'left');
  if (plain !== undefined) return options.title === undefined ? plain : overlayTitle(plain, options.title);
  const table = new Table({
    head: [...columns],
    chars: PRETTYTABLE_CHARS,
    colAligns: columns.map((c) => options.align?.[c] ?? 'left'),
    style: { head: [], border: [], compact: !allRules, 'padding-left': 1, 'padding-right': 1 },
  });
  for (const row of rows) table.push([...row]);
  let text = table.toString();
  // PrettyTable keeps the rule under the header and the bottom border apart even with no rows.
  if (rows.length === 0) text += `\n${text.slice(text.lastIndexOf('\n') + 1)}`;
  return options.title === undefined ? text : overlayTitle(text, options.title);
}

function overlayTitle(text: string, title: string): string {
  const nl = text.indexOf('\n');
  const top = nl < 0 ? text : text.slice(0, nl);
  const t = title.slice(0, Math.max(0, top.length - 2));
  return top.slice(0, 1) + t + top.slice(1 + t.length) + (nl < 0 ? '' : text.slice(nl));
}
