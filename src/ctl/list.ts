/**
 * `list` and `topology`: the member table patronictl prints, as data. Columns, roles, hosts and lag follow
 * patronictl's rules for the Patroni version the cluster runs (patronictl's `output_members`, `print_output`).
 */
import type { Cluster } from '../model/cluster.js';
import { clusterView, type ClusterView, type MemberView } from '../model/cluster-view.js';
import { formatLsn, type Lsn } from '../model/lsn.js';
import type { Cell, Row } from '../render/formats.js';
import type { ListFormat, MembersTable } from '../render/members.js';
import { textOf } from '../model/text.js';

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const MB = 1024 * 1024;
const lagInMb = (lag: bigint | 'unknown' | undefined): Cell =>
  lag === undefined ? '' : lag === 'unknown' ? 'unknown' : roundHalfEven(Number(lag) / MB);

const lsnCell = (lsn: Lsn | 'unknown' | undefined): Cell =>
  lsn === undefined ? '' : lsn === 'unknown' ? 'unknown' : formatLsn(lsn);

/** Roles are a handful of words: each is spelled once per process (`list --all` shows thousands of rows). */
const displayRoles = new Map<string, string>();

function displayRole(role: string): string {
  let shown = displayRoles.get(role);
  if (shown === undefined) {
    shown = role
      .replace(/_/g, ' ')
      .replace(/\w\S*/g, (w) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase());
    displayRoles.set(role, shown);
  }
  return shown;
}

/** Leader first, then each member under the one it replicates from (`replicatefrom`), indented with `+ `. */
export function topologyOrder(members: readonly MemberView[]): { member: MemberView; level: number }[] {
  const isLeader = (m: MemberView): boolean => m.role === 'leader' || m.role === 'standby_leader';
  const leader = members.find(isLeader);
  const replicas = new Set(members.filter((m) => !isLeader(m)).map((m) => m.name));
  const children = new Map<string | undefined, MemberView[]>();
  for (const m of members) {
    if (isLeader(m)) continue;
    const from = m.tags?.['replicatefrom'];
    const parent = typeof from === 'string' && from !== m.name && replicas.has(from) ? from : leader?.name;
    children.set(parent, [...(children.get(parent) ?? []), m]);
  }
  const out: { member: MemberView; level: number }[] = [];
  const seen = new Set<string>();
  const walk = (parent: string | undefined, level: number): void => {
    for (const m of children.get(parent) ?? []) {
      if (seen.has(m.name)) continue;
      seen.add(m.name);
      out.push({ member: m, level });
      walk(m.name, level + 1);
    }
  };
  if (leader) {
    seen.add(leader.name);
    out.push({ member: leader, level: 0 });
  }
  walk(leader?.name, 1);
  // Replication loops never reach the leader; show them rather than hide members.
  for (const m of members) if (!seen.has(m.name)) out.push({ member: m, level: 1 });
  return out;
}

/**
 * Every column a member table can have, in the order `buildMembersTable` puts them: a table's columns are a
 * subsequence of it (the flavour picks `Lag in MB` or the LSN columns; optional columns appear when used).
 */
export const MEMBER_COLUMNS = [
  'Cluster',
  'Member',
  'Host',
  'Role',
  'State',
  'TL',
  'Lag in MB',
  'Receive LSN',
  'Receive Lag',
  'Replay LSN',
  'Replay Lag',
  'Pending restart',
  'Pending restart reason',
  'Scheduled restart',
  'Tags',
] as const;

/**
 * Several clusters' tables as one document (`list --all -f json|yaml|tsv`): the union of their columns, and each
 * row with the cells of its own table's columns only, so a cluster's rows say what its own `list` says.
 */
export function mergeMembersTables(tables: readonly MembersTable[]): MembersTable {
  const used = new Set(tables.flatMap((t) => t.columns));
  const columns: string[] = MEMBER_COLUMNS.filter((c) => used.has(c));
  const rows = tables.flatMap((t) =>
    t.rows.map((r): Row => Object.fromEntries(columns.map((c) => [c, t.columns.includes(c) ? r[c] : '']))),
  );
  return {
    columns,
    rows,
    title: '',
    serviceInfo: [],
    rightAligned: [...new Set(tables.flatMap((t) => t.rightAligned))],
    prettyHeaders: {},
  };
}

export function buildMembersTable(
  cluster: Cluster,
  clusterName: string,
  options: { readonly extended: boolean; readonly format: ListFormat },
  view: ClusterView = clusterView(cluster),
): MembersTable {
  const fl = view.flavor;
  const columns = ['Cluster', 'Member', 'Host', 'Role', 'State', 'TL'];
  if (fl.lsnColumns) columns.push('Receive LSN', 'Receive Lag', 'Replay LSN', 'Replay Lag');
  else columns.push('Lag in MB');

  const withHost = view.members.filter((m) => m.host !== undefined);
  const optional: [string, (m: MemberView) => unknown][] = [
    ['Pending restart', (m) => m.pendingRestart],
    ...(fl.pendingRestartReason
      ? ([
          [
            'Pending restart reason',
            (m: MemberView) => m.pendingRestartReason && Object.keys(m.pendingRestartReason).length,
          ],
        ] as [string, (m: MemberView) => unknown][])
      : []),
    ['Scheduled restart', (m) => m.scheduledRestart],
    ['Tags', (m) => m.tags && Object.keys(m.tags).length > 0],
  ];
  for (const [col, has] of optional) if (options.extended || withHost.some((m) => has(m))) columns.push(col);

  const appendPort =
    withHost.some((m) => m.port !== undefined && m.port !== 5432) ||
    new Set(withHost.map((m) => m.host)).size < withHost.length;

  const ordered =
    options.format === 'topology'
      ? topologyOrder(view.members)
      : view.members.map((member) => ({ member, level: 0 }));

  const rows = ordered.map(({ member: m, level }): Row => {
    let host = m.host ?? '';
    if (appendPort && host && m.port) host = `${host}:${m.port}`;
    let scheduled: Cell = '';
    if (m.scheduledRestart) {
      scheduled = textOf(m.scheduledRestart['schedule']);
      const v = m.scheduledRestart['postgres_version'];
      if (v !== undefined) scheduled += ` if version < ${textOf(v)}`;
    }
    const reason = m.pendingRestartReason
      ? Object.entries(m.pendingRestartReason)
          .map(([k, v]) => {
            const r = v as { old_value?: unknown; new_value?: unknown };
            return `${k}: ${textOf(r.old_value)}->${textOf(r.new_value)}`;
          })
          .join('\n')
      : '';
    return {
      Cluster: clusterName,
      Member: level > 0 ? `${' '.repeat((level - 1) * 2)}+ ${m.name}` : m.name,
      Host: host,
      Role: displayRole(m.role),
      State: m.state,
      TL: m.timeline ?? '',
      'Lag in MB': lagInMb(m.lag),
      'Receive LSN': lsnCell(m.receiveLsn),
      'Receive Lag': m.receiveLag === 'unknown' ? '' : lagInMb(m.receiveLag),
      'Replay LSN': lsnCell(m.replayLsn),
      'Replay Lag': m.replayLag === 'unknown' ? '' : lagInMb(m.replayLag),
      'Pending restart': m.pendingRestart ? '*' : '',
      'Pending restart reason': reason,
      'Scheduled restart': scheduled,
      Tags: m.tags && Object.keys(m.tags).length > 0 ? m.tags : '',
    };
  });

  const init =
    cluster.initialize === undefined
      ? 'uninitialized'
      : cluster.initialize === ''
        ? 'initializing'
        : cluster.initialize;
  const serviceInfo: string[] = [];
  if (view.pause) serviceInfo.push('Maintenance mode: on');
  if (view.scheduledSwitchover) {
    let info = `Switchover scheduled at: ${view.scheduledSwitchover.at}`;
    if (view.scheduledSwitchover.from) info += `\n${'from'.padStart(24)}: ${view.scheduledSwitchover.from}`;
    if (view.scheduledSwitchover.to) info += `\n${'to'.padStart(24)}: ${view.scheduledSwitchover.to}`;
    serviceInfo.push(info);
  }
  return {
    columns,
    rows,
    title: ` Cluster: ${clusterName}${fl.titleWithSysid ? ` (${init})` : ''} `,
    serviceInfo,
    rightAligned: ['TL', 'Lag in MB', 'Receive LSN', 'Receive Lag', 'Replay LSN', 'Replay Lag'],
    prettyHeaders: { 'Receive Lag': 'Lag', 'Replay Lag': 'Lag' },
  };
}
