/** `history`, `show-config`, `dsn` and `version`: small read-only views of a cluster. */
import { UserError } from '../config/errors.js';
import { textOf } from '../model/text.js';
import { isPrimaryRole, type Cluster, type Member } from '../model/cluster.js';
import { pyYaml, renderJsonRows, renderTsvRows, renderYamlRows, type Row } from '../render/formats.js';
import { renderPrettyTable } from '../render/table.js';
import { requestMember, type RestClientOptions } from '../api/client.js';

export type TableFormat = 'pretty' | 'tsv' | 'json' | 'yaml';

const HISTORY_COLUMNS = ['TL', 'LSN', 'Reason', 'Timestamp', 'New Leader'] as const;

export function renderHistory(cluster: Cluster, format: TableFormat): string {
  const lines = cluster.history?.lines ?? [];
  const rows: Row[] = lines.map((l) => ({
    TL: l.timeline,
    LSN: l.lsn,
    Reason: l.reason,
    Timestamp: l.timestamp ?? '',
    'New Leader': l.newLeader ?? '',
  }));
  if (format === 'json') return renderJsonRows(HISTORY_COLUMNS, rows, true);
  if (format === 'yaml') return renderYamlRows(HISTORY_COLUMNS, rows, true);
  const text = rows.map((r) => HISTORY_COLUMNS.map((c) => textOf(r[c])));
  if (format === 'tsv') return renderTsvRows(HISTORY_COLUMNS, text);
  return renderPrettyTable(HISTORY_COLUMNS, text, { align: { TL: 'right', LSN: 'right' } });
}

/** The dynamic configuration as YAML (sorted keys), or nothing when the key is absent. */
export function renderShowConfig(cluster: Cluster): string | undefined {
  if (!cluster.config) return undefined;
  return pyYaml(cluster.config.data);
}

export type MemberRole = 'leader' | 'primary' | 'master' | 'standby-leader' | 'replica' | 'standby' | 'any';

/** patronictl's member selection by role (`get_members`). */
export function membersWithRole(cluster: Cluster, role: MemberRole): Member[] {
  const leader = cluster.leader;
  if (role === 'leader' || role === 'primary' || role === 'master' || role === 'standby-leader') {
    if (!leader?.name) return [];
    const leaderRole = leader.member?.data.role;
    const ok =
      role === 'leader' ||
      (role === 'standby-leader' && !isPrimaryRole(leaderRole)) ||
      ((role === 'primary' || role === 'master') && leaderRole !== 'standby_leader');
    return ok && leader.member ? [leader.member] : [];
  }
  return cluster.members.filter((m) => role === 'any' || m.name !== leader?.name);
}

export function dsnFor(cluster: Cluster, role: MemberRole | undefined, member: string | undefined): string {
  if (member !== undefined && role !== undefined)
    throw new UserError('--role and --member are mutually exclusive options');
  const effective: MemberRole = member !== undefined ? 'any' : (role ?? 'leader');
  const m = membersWithRole(cluster, effective).find((x) => member === undefined || x.name === member);
  const conn = m?.data.connUrl;
  let host: string | undefined;
  let port = 5432;
  if (conn) {
    try {
      const u = new URL(conn);
      host = u.hostname || undefined;
      if (u.port) port = Number(u.port);
    } catch {
      host = undefined;
    }
  }
  if (!m || !host) throw new UserError('Can not find a suitable member');
  return `host=${host} port=${port}`;
}

/** `9.6.24` for old servers, `15.18` from 10 on. */
export function formatPgVersion(v: number): string {
  return v < 100000
    ? `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`
    : `${Math.floor(v / 10000)}.${v % 100}`;
}

/** One line per member with a REST API: its Patroni and PostgreSQL versions, or why they are unknown. */
export async function memberVersions(
  cluster: Cluster,
  memberNames: readonly string[],
  rest: RestClientOptions,
): Promise<string[]> {
  const members = cluster.members.filter(
    (m) => m.data.apiUrl && (memberNames.length === 0 || memberNames.includes(m.name)),
  );
  return Promise.all(
    members.map(async (m) => {
      try {
        const res = await requestMember(m.data.apiUrl!, 'patroni', rest);
        const data = JSON.parse(res.body) as { patroni?: { version?: string }; server_version?: number };
        const pg = data.server_version ? ` PostgreSQL ${formatPgVersion(data.server_version)}` : '';
        return `${m.name}: Patroni ${data.patroni?.version ?? 'None'}${pg}`;
      } catch (e) {
        return `${m.name}: failed to get version: ${describeError(e)}`;
      }
    }),
  );
}

function describeError(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code ?? (e.cause as NodeJS.ErrnoException | undefined)?.code;
    return code ? `${e.message} (${code})` : e.message;
  }
  return String(e);
}
