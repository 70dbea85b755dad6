/**
 * What the write-side commands share (patronictl's helpers): the I/O they are given, the member table printed
 * before acting, member selection by role and name (`get_members`), scheduled timestamps, and result timestamps.
 */
import { UserError } from '../config/errors.js';
import type { LocalConfig } from '../config/local-config.js';
import type { Dcs } from '../dcs/dcs.js';
import { requestMember, type RestClientOptions, type RestResponse } from '../api/client.js';
import type { Cluster, Member } from '../model/cluster.js';
import { tagNoFailover } from '../model/tags.js';
import type { Prompter } from '../prompts/index.js';
import type { Progress } from '../render/progress.js';
import { renderMembersTable } from '../render/members.js';
import { buildMembersTable } from './list.js';
import { clusterNameOrScope, openDcs } from './context.js';
import { membersWithRole, type MemberRole } from './read-commands.js';

export interface ActionIo {
  /** One line (or block) of standard output. */
  readonly out: (text: string) => void;
  /** A warning on stderr (patronictl's `logging.warning`). */
  readonly warn: (text: string) => void;
  readonly prompts: Prompter;
  readonly rest: RestClientOptions;
  /** Injected for tests; defaults to setTimeout. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Injected for tests; defaults to the clock. */
  readonly now?: () => Date;
  /** What a long wait is waiting for, on stderr; only when stderr is a terminal (else undefined: no output). */
  readonly progress?: Progress;
}

export const sleepOf = (io: ActionIo): ((ms: number) => Promise<void>) =>
  io.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));

export const ROLE_CHOICES = [
  'leader',
  'primary',
  'standby-leader',
  'replica',
  'standby',
  'any',
  'master',
] as const;

/** The member table exactly as `list` prints it. */
export function membersTable(cluster: Cluster, name: string): string {
  return renderMembersTable(
    buildMembersTable(cluster, name, { extended: false, format: 'pretty' }),
    'pretty',
  );
}

/** Opens the DCS of the named cluster (default: scope), runs `use`, and always closes the client. */
export async function withDcs<T>(
  config: LocalConfig,
  clusterName: string | undefined,
  use: (dcs: Dcs, name: string) => Promise<T>,
): Promise<T> {
  const name = clusterNameOrScope(config, clusterName);
  const dcs = await openDcs(config, name);
  try {
    return await use(dcs, name);
  } finally {
    await dcs.close();
  }
}

/** patronictl's `Member.nofailover` (tags.py `Tags.nofailover`). */
export function isNoFailover(m: Member): boolean {
  return tagNoFailover(m.data.tags);
}

/**
 * patronictl's `get_members`: candidates by role; the table is printed (the default role is truthy, so always);
 * names intersected with the candidates; for reinitialize with no names, ask which member.
 */
export async function selectMembers(
  cluster: Cluster,
  clusterName: string,
  memberNames: readonly string[],
  role: MemberRole,
  force: boolean,
  action: string,
  io: ActionIo,
): Promise<Member[]> {
  const members = membersWithRole(cluster, role);
  const candidates = members.map((m) => m.name);
  if (memberNames.length === 0 && candidates.length === 0) {
    throw new UserError(`${clusterName} cluster doesn't have any members`);
  }
  io.out(membersTable(cluster, clusterName));

  let names: string[];
  if (memberNames.length > 0) {
    names = [...new Set(memberNames)].filter((n) => candidates.includes(n));
    if (names.length === 0) throw new UserError(`No ${role} among provided members`);
  } else if (action !== 'reinitialize') {
    names = candidates;
  } else {
    names = [];
  }

  if (names.length === 0 && !force) {
    const message = `Which member do you want to ${action} [${candidates.join(', ')}]? `;
    names = [
      await io.prompts.select(
        message,
        candidates.map((c) => ({ name: c, value: c })),
        { flag: 'MEMBER_NAMES', default: '' },
      ),
    ];
  }
  for (const n of names) {
    if (!candidates.includes(n)) throw new UserError(`${n} is not a member of cluster`);
  }
  return members.filter((m) => names.includes(m.name));
}

/** patronictl's `confirm_members_action`. */
export async function confirmMembersAction(
  members: readonly Member[],
  force: boolean,
  action: string,
  io: ActionIo,
  scheduledAt?: string,
): Promise<void> {
  if (force) return;
  const list = members.map((m) => m.name).join(', ');
  if (scheduledAt) {
    const ok = await io.prompts.confirm(
      `Are you sure you want to schedule ${action} of members ${list} at ${scheduledAt}?`,
      '--force',
    );
    if (!ok) throw new UserError(`Aborted scheduled ${action}`);
  } else {
    const ok = await io.prompts.confirm(`Are you sure you want to ${action} members ${list}?`, '--force');
    if (!ok) throw new UserError(`Aborted ${action}`);
  }
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** `%Y-%m-%d %H:%M:%S.%f` without its last digit, local time: patronictl's `timestamp()`. */
export function ctlTimestamp(d: Date = new Date(), precision = 6): string {
  const micro = d.getMilliseconds() * 1000 + (Math.floor(performance.now() * 1000) % 1000);
  const full = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(micro, 6)}`;
  return full.slice(0, full.length - (7 - precision));
}

/** `(now + 1 h).strftime('%Y-%m-%dT%H:%M')`, the example in the schedule prompts. */
export function nextHourExample(now: Date = new Date()): string {
  const d = new Date(now.getTime() + 3600_000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export interface Scheduled {
  /** Python's `datetime.isoformat()` of the parsed time, with its offset. */
  readonly iso: string;
  readonly epochMs: number;
}

const SCHEDULE_RE =
  /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6})\d*)?)?)?\s*(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?$/;

function offsetText(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const a = Math.abs(minutes);
  return `${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

/**
 * patronictl's `parse_scheduled`: `now`/empty is immediate (undefined); otherwise an ISO-8601-like timestamp, and a
 * naive one gets the local time zone.
 */
export function parseScheduled(text: string | undefined): Scheduled | undefined {
  if ((text || 'now') === 'now') return undefined;
  const fail = (): never => {
    throw new UserError(
      `Unable to parse scheduled timestamp (${text}). It should be in an unambiguous format (e.g. ISO 8601)`,
    );
  };
  const m = SCHEDULE_RE.exec(text!.trim());
  if (!m) return fail();
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((x) => Number(x ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const fracText = m[7] ?? '';
  const micro = fracText ? Number(fracText.padEnd(6, '0')) : 0;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) return fail();
  const ms = Math.floor(micro / 1000);
  let offsetMinutes: number;
  let epochMs: number;
  const tz = m[8];
  if (tz) {
    const digits = tz.replace(':', '').slice(1);
    offsetMinutes = /^(Z|UTC|GMT)$/i.test(tz)
      ? 0
      : (tz.startsWith('-') ? -1 : 1) * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || 0));
    epochMs = Date.UTC(y, mo - 1, d, h, mi, s, ms) - offsetMinutes * 60_000;
    const check = new Date(Date.UTC(y, mo - 1, d));
    if (check.getUTCDate() !== d) return fail();
  } else {
    const local = new Date(y, mo - 1, d, h, mi, s, ms);
    if (local.getDate() !== d) return fail();
    epochMs = local.getTime();
    offsetMinutes = -local.getTimezoneOffset();
  }
  const iso =
    `${pad(y, 4)}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(s)}` +
    (micro ? `.${pad(micro, 6)}` : '') +
    offsetText(offsetMinutes);
  return { iso, epochMs };
}

/** Describes a failed request the way a log line would. */
export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code ?? (e.cause as NodeJS.ErrnoException | undefined)?.code;
    return code && !e.message.includes(code) ? `${e.message} (${code})` : e.message;
  }
  return String(e);
}

/** A warning line shaped like patronictl's log format (`%(asctime)s - %(levelname)s - %(message)s`). */
export function warning(io: ActionIo, message: string): void {
  const d = (io.now ?? (() => new Date()))();
  const ts = `${ctlTimestamp(d).slice(0, 19)},${pad(d.getMilliseconds(), 3)}`;
  io.warn(`${ts} - WARNING - ${message}`);
}

export async function callMember(
  member: Member,
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
  endpoint: string,
  io: ActionIo,
  body?: unknown,
  timeoutMs?: number,
): Promise<RestResponse> {
  const apiUrl = member.data.apiUrl;
  if (!apiUrl) throw new Error(`member ${member.name} has no api_url`);
  const rest = timeoutMs === undefined ? io.rest : { ...io.rest, timeoutMs };
  const r = await requestMember(apiUrl, endpoint, rest, method, body);
  if (r.status === 401) authHint(member, r, io);
  return r;
}

const hinted = new WeakSet<ActionIo>();

/**
 * A 401 from a member: once per command, say on stderr what to configure (stdout keeps patronictl's lines).
 * Patroni answers `no auth header received` when we sent none, `not authenticated` when ours were wrong.
 */
export function authHint(member: Member, r: RestResponse, io: ActionIo): void {
  if (hinted.has(io)) return;
  hinted.add(io);
  const where =
    'ctl.authentication (username, password) or restapi.authentication in the configuration file, or PATRONI_RESTAPI_USERNAME and PATRONI_RESTAPI_PASSWORD';
  io.warn(
    io.rest.auth
      ? `Hint: the REST API of ${member.name} rejected the credentials for user ${io.rest.auth.username} (401 ${r.body}): check ${where}`
      : `Hint: the REST API of ${member.name} requires authentication (401 ${r.body}): set ${where}`,
  );
}

/** patronictl's `check_response`: `Failed: ...` for >= 400, `Success: ...` otherwise (unless silent). */
export function checkResponse(
  r: RestResponse,
  memberName: string,
  actionName: string,
  io: ActionIo,
  silentSuccess = false,
): boolean {
  if (r.status >= 400) {
    io.out(`Failed: ${actionName} for member ${memberName}, status code=${r.status}, (${r.body})`);
    return false;
  }
  if (!silentSuccess) io.out(`Success: ${actionName} for member ${memberName}`);
  return true;
}

/** The cluster's leader first, then the other members with an API (patronictl's `get_all_members_leader_first`). */
export function membersLeaderFirst(cluster: Cluster): Member[] {
  const leader = cluster.leader?.member?.data.apiUrl ? cluster.leader.member : undefined;
  const rest = cluster.members.filter((m) => m.data.apiUrl && m.name !== leader?.name);
  return leader ? [leader, ...rest] : rest;
}
