/**
 * `restart`: member selection (table first) -> schedule prompt -> confirmation -> --any -> version prompt -> per
 * member POST /restart (patronictl 3.0.2's order). With --force and a new schedule, a member's existing scheduled
 * restart is deleted first.
 */
import { flavorOfMembers, versionAtLeast } from '../model/flavor.js';
import { postgresVersionToInt as versionToInt } from '../model/pg-version.js';
import { UserError } from '../config/errors.js';
import type { Dcs } from '../dcs/dcs.js';
import { isPaused } from '../model/cluster.js';
import {
  callMember,
  checkResponse,
  confirmMembersAction,
  describeError,
  nextHourExample,
  parseScheduled,
  selectMembers,
  type ActionIo,
} from './actions.js';
import type { MemberRole } from './read-commands.js';

export interface RestartRequest {
  readonly clusterName: string;
  readonly members: readonly string[];
  readonly role: MemberRole;
  readonly any: boolean;
  readonly scheduled?: string;
  readonly pgVersion?: string;
  readonly pending: boolean;
  readonly timeout?: string;
  readonly force: boolean;
  /** Picks the member for --any; defaults to Math.random. */
  readonly random?: () => number;
}

/** Patroni's `postgres_version_to_int`: validates X.Y (10+) or X.Y.Z. */
export function postgresVersionToInt(version: string): number {
  const n = versionToInt(version);
  if (typeof n === 'string') throw new UserError(n);
  return n;
}

/** A member's answer when the restart filters (pending flag, version) do not match it. */
const NOT_MATCHING = 'restart conditions are not satisfied';

/** How long one POST /restart may take: the restart runs synchronously on the member. */
const RESTART_TIMEOUT_MS = 15 * 60_000;

export async function restartMembers(dcs: Dcs, io: ActionIo, req: RestartRequest): Promise<boolean> {
  const cluster = await dcs.getCluster();
  let members = await selectMembers(
    cluster,
    req.clusterName,
    req.members,
    req.role,
    req.force,
    'restart',
    io,
  );
  let scheduled = req.scheduled;
  if (scheduled === undefined && !req.force) {
    scheduled = await io.prompts.input(
      `When should the restart take place (e.g. ${nextHourExample(io.now?.())})  `,
      {
        default: 'now',
        flag: '--scheduled',
      },
    );
  }
  const scheduledAt = parseScheduled(scheduled);
  // patronictl 4.x drops the members without pending_restart before asking (not for a scheduled restart: which
  // members need one is decided at the scheduled time); 3.0.2 asks every member and they answer 503.
  const v4 = versionAtLeast(flavorOfMembers(cluster.members.map((m) => m.data.version)).version, [4, 0, 0]);
  if (v4 && req.pending && !scheduledAt) members = members.filter((m) => m.data.pendingRestart);
  await confirmMembersAction(members, req.force, 'restart', io, scheduledAt?.iso);

  if (req.any) {
    const pick = Math.floor((req.random ?? Math.random)() * members.length);
    members = members.slice(pick, pick + 1);
  }

  let version = req.pgVersion;
  if (version === undefined && !req.force) {
    version = await io.prompts.input(
      'Restart if the PostgreSQL version is less than provided (e.g. 9.5.2)  ',
      {
        default: '',
        flag: '--pg-version',
      },
    );
  }

  const content: Record<string, unknown> = {};
  if (req.pending) content['restart_pending'] = true;
  if (version) {
    postgresVersionToInt(version);
    content['postgres_version'] = version;
  }
  if (scheduledAt) {
    if (isPaused(cluster)) throw new UserError("Can't schedule restart in the paused state");
    content['schedule'] = scheduledAt.iso;
  }
  if (req.timeout !== undefined) content['timeout'] = req.timeout;

  // With --pending or --pg-version a member that does not match answers 503 "restart conditions are not
  // satisfied": patronictl prints it as Failed (we print the same line) but that is the filter at work, not a
  // failure, so it does not make the exit code 1 (patronictl 3.0.2 exits 0 there too).
  const filtered = 'restart_pending' in content || 'postgres_version' in content;
  let ok = true;
  for (const member of members) {
    try {
      if ('schedule' in content && req.force && member.data.scheduledRestart) {
        const d = await callMember(member, 'DELETE', 'restart', io);
        checkResponse(d, member.name, 'flush scheduled restart', io, true);
      }
      // An immediate restart runs while the member answers: say so on a terminal (a scheduled one answers at once).
      if (!scheduledAt) {
        const limit = req.timeout === undefined ? '' : ` (--timeout ${req.timeout})`;
        io.progress?.show(`Waiting for ${member.name} to restart PostgreSQL${limit}`);
      }
      let r;
      try {
        r = await callMember(member, 'POST', 'restart', io, content, RESTART_TIMEOUT_MS);
      } finally {
        if (!scheduledAt) io.progress?.clear();
      }
      if (r.status === 200) io.out(`Success: restart on member ${member.name}`);
      else if (r.status === 202) io.out(`Success: restart scheduled on member ${member.name}`);
      else if (r.status === 409) {
        ok = false;
        io.out(`Failed: another restart is already scheduled on member ${member.name}`);
      } else {
        if (!(filtered && r.status === 503 && r.body === NOT_MATCHING)) ok = false;
        io.out(`Failed: restart for member ${member.name}, status code=${r.status}, (${r.body})`);
      }
    } catch (e) {
      ok = false;
      io.out(`Failed: restart for member ${member.name}, ${describeError(e)}`);
    }
  }
  return ok;
}
