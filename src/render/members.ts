/** Prints the member table of `list`/`topology` in each of patronictl's formats. */
import {
  pyYaml,
  pyYamlFlow,
  renderJsonRows,
  renderYamlRows,
  renderTsvRows,
  type Cell,
  type Row,
} from './formats.js';
import { renderPrettyTable } from './table.js';

export type ListFormat = 'pretty' | 'tsv' | 'json' | 'yaml' | 'topology';

/** The member table `list`/`topology` print, as ctl/list.ts builds it from the cluster. */
export interface MembersTable {
  readonly columns: readonly string[];
  readonly rows: readonly Row[];
  readonly title: string;
  /** Lines printed under a pretty table: maintenance mode, scheduled switchover. */
  readonly serviceInfo: readonly string[];
  readonly rightAligned: readonly string[];
  /** 4.1's pretty header shows both lag columns as `Lag`. */
  readonly prettyHeaders: Readonly<Record<string, string>>;
}

function cellText(v: Cell): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return String(v);
}

function tagsText(v: Cell, flow: boolean): string {
  if (typeof v !== 'object' || v === null) return cellText(v);
  return flow ? pyYamlFlow(v) : pyYaml(v).trim();
}

export function renderMembersTable(table: MembersTable, format: ListFormat): string {
  if (format === 'json') return renderJsonRows(table.columns, table.rows);
  if (format === 'yaml') return renderYamlRows(table.columns, table.rows);
  const flowTags = format !== 'pretty';
  const text = (col: string, v: Cell): string => (col === 'Tags' ? tagsText(v, flowTags) : cellText(v));
  if (format === 'tsv') {
    return renderTsvRows(
      table.columns,
      table.rows.map((r) => table.columns.map((c) => text(c, r[c]))),
    );
  }
  // pretty and topology: the cluster is named in the title, not in a column.
  const columns = table.columns.filter((c) => c !== 'Cluster');
  const rendered = renderPrettyTable(
    columns.map((c) => table.prettyHeaders[c] ?? c),
    table.rows.map((r) => columns.map((c) => text(c, r[c]))),
    {
      title: table.title,
      align: Object.fromEntries(
        columns.map(
          (c) => [table.prettyHeaders[c] ?? c, table.rightAligned.includes(c) ? 'right' : 'left'] as const,
        ),
      ),
    },
  );
  return table.serviceInfo.length > 0 ? `${rendered}\n ${table.serviceInfo.join('\n ')}` : rendered;
}
