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

const PRETTYTABLE_CHARS = {
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

export function renderPrettyTable(
  columns: readonly string[],
  rows: readonly (readonly string[])[],
  options: PrettyTableOptions = {},
): string {
  const allRules = options.allRules ?? rows.some((r) => r.some((c) => c.includes('\n')));
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
