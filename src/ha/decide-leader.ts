/**
 * `decide` for a locked cluster: the primary's role, ha.py `process_healthy_cluster`, and the leader's side of a
 * switchover.
 */
import type { Member } from '../model/cluster.js';
import { isFailoverEmpty } from '../model/cluster.js';
import type { Action, Decision } from './actions.js';
import type { Ctx } from './decide-helpers.js';
import {
  demote,
  done,
  formatSeconds,
  hasLock,
  isFailoverPossible,
  isQuorumMode,
  isStandbyCluster,
  isSyncMode,
  quorumModeActive,
  syncQuorum,
  syncVoters,
  refreshLock,
  syncMatches,
} from './decide-helpers.js';
import { enforceFollowRemoteMember, follow } from './decide-recovery.js';
import { withActivation } from './watchdog.js';

export function enforcePrimaryRole(ctx: Ctx, message: string, promoteMessage: string): Decision {
  // Outside pause the watchdog is activated first; failing that, no primary (src/ha/watchdog.ts).
  return withActivation(ctx.s, primaryRole(ctx, message, promoteMessage));
}

function primaryRole(ctx: Ctx, message: string, promoteMessage: string): Decision {
  const { s, c } = ctx;
  if (!s.config.paused && s.memory.prePromoteFailed) {
    return done(
      'Promotion cancelled because the pre-promote script failed',
      [
        { type: 'UpdateMemory', patch: { prePromoteFailed: false, releasedLeaderKeyAt: s.now } },
        { type: 'ReleaseLock', voluntarily: true },
      ],
      [
        {
          level: 'warning',
          text: 'Releasing the leader key voluntarily because the pre-promote script failed',
        },
      ],
    );
  }
  if (s.postgres.isPrimary) {
    return done(message, [{ type: 'ProcessSyncReplication' }, { type: 'WriteHistory' }]);
  }
  const actions: Action[] = [];
  if (isQuorumMode(s)) {
    actions.push(quorumPrePromote(ctx));
  } else if (isSyncMode(s)) {
    actions.push(
      {
        type: 'WriteSyncState',
        leader: s.me.name,
        syncStandby: [],
        ...(c.sync.version === undefined ? {} : { version: c.sync.version }),
        otherwise: done(
          'Postponing promotion because synchronous replication state was updated by somebody else',
        ),
      },
      { type: 'SetSynchronousStandbyNames', names: s.config.synchronousModeStrict ? ['*'] : [] },
    );
  }
  actions.push({ type: 'Promote', async: true, kind: 'promote', description: 'promote' });
  return done(promoteMessage, actions);
}

/**
 * Patroni's `process_sync_replication_prepromote` in quorum commit mode: before promoting, require as many
 * acknowledgements as the `/sync` quorum guarantees (`ANY k` of the other voters, the old leader among them), so
 * that the state stays safe until the resolver takes `/sync` over; `/sync` itself is left to the resolver. Without
 * an active quorum: no synchronous standby yet (`*` in strict mode).
 */
function quorumPrePromote(ctx: Ctx): Action {
  const { s, c } = ctx;
  if (!quorumModeActive(ctx)) {
    return { type: 'SetSynchronousStandbyNames', names: [], num: s.config.synchronousModeStrict ? 1 : 0 };
  }
  const voters = syncVoters(c);
  const me = s.me.name.toLowerCase();
  const others = voters.filter((n) => n.toLowerCase() !== me);
  // Outside the voters (won the race on votes): one more acknowledgement, as the voters keep their count.
  const num = voters.length - syncQuorum(c) - 1 + (others.length === voters.length ? 1 : 0);
  return { type: 'SetSynchronousStandbyNames', names: others, num };
}

// ---------------------------------------------------------------------------------------------------------------
// locked cluster (ha.py `process_healthy_cluster`) and the leader's side of a switchover (the `failover` key)

export function processHealthyCluster(ctx: Ctx): Decision {
  const { s, c } = ctx;
  const pg = s.postgres;
  if (hasLock(ctx)) {
    if (s.config.paused && !pg.isPrimary) {
      if (c.failover?.member === s.me.name) return done('waiting to become primary after promote...');
      if (!isStandbyCluster(s)) {
        return done('removed leader lock because postgres is not running as primary', [
          { type: 'ReleaseLock', voluntarily: false },
        ]);
      }
    }
    const failed: Decision = pg.isPrimary
      ? s.config.paused
        ? done('continue to run as primary after failing to update leader lock in DCS')
        : done('demoted self because failed to update leader lock in DCS', [
            demote('immediate-nolock', false),
          ])
      : done('not promoting because failed to update leader lock in DCS');
    const lock = refreshLock(true, {
      ...failed,
      logs: [{ level: 'error', text: 'failed to update leader lock' }],
    });
    const manual = manualFailoverFromLeader(ctx);
    const rest =
      manual ??
      (isStandbyCluster(s)
        ? // The standby leader is never promoted: it keeps following the remote primary.
          enforceFollowRemoteMember(
            ctx,
            pg.isStandbyLeader === true
              ? `no action. I am (${s.me.name}), the standby leader with the lock`
              : 'promoted self to a standby leader because i had the session lock',
          )
        : undefined) ??
      enforcePrimaryRole(
        ctx,
        `no action. I am (${s.me.name}), the leader with the lock`,
        'promoted self to leader because I had the session lock',
      );
    // The failover key's clean-up (in ctx.pre) runs after the refresh, as in Patroni.
    const cleanup = ctx.pre.splice(0, ctx.pre.length);
    const housekeeping = cleanup.filter((a) => a.type === 'WriteInitialize' || a.type === 'WriteConfig');
    const afterLock = cleanup.filter((a) => a.type !== 'WriteInitialize' && a.type !== 'WriteConfig');
    return { ...rest, actions: [...housekeeping, lock, ...afterLock, ...rest.actions] };
  }
  if (isStandbyCluster(s)) {
    return follow(
      ctx,
      'cannot be a real primary in a standby cluster',
      `no action. I am (${s.me.name}), a secondary, and following a standby leader (${c.leader?.name ?? ''})`,
    );
  }
  return follow(
    ctx,
    'demoting self because I do not have the lock and I was a leader',
    `no action. I am (${s.me.name}), a secondary, and following a leader (${c.leader?.name ?? ''})`,
  );
}

/** Parses `scheduled_at`; undefined when it is not an ISO-8601 time with a zone (Patroni cannot compare those). */
function parseScheduledAt(text: string): number | undefined {
  if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(text.trim())) return undefined;
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * The leader's handling of a non-empty `failover` key. Returns a decision when a graceful demote starts; otherwise
 * undefined, possibly after queueing the key's clean-up in `ctx.pre`.
 */
export function manualFailoverFromLeader(ctx: Ctx): Decision | undefined {
  const { s, c } = ctx;
  const f = c.failover;
  if (!f || isFailoverEmpty(f) || (s.config.paused && !s.postgres.isPrimary)) return undefined;
  const cleanup = (): undefined => {
    ctx.logs.push({ level: 'info', text: 'Cleaning up failover key' });
    ctx.pre.push({ type: 'ClearFailoverKey', version: f.version });
    return undefined;
  };

  if (f.scheduledAt) {
    if (s.config.paused) return undefined; // scheduled actions never run in pause
    const at = parseScheduledAt(f.scheduledAt);
    if (at === undefined) {
      ctx.logs.push({ level: 'warning', text: `Incorrect value of scheduled_at: ${f.scheduledAt}` });
      ctx.pre.push({ type: 'ClearFailoverKey', version: f.version });
      return undefined;
    }
    const delta = (at - s.now) / 1000;
    if (delta > s.config.loopWait) {
      ctx.logs.push({
        level: 'info',
        text: `Awaiting switchover at ${f.scheduledAt} (in ${formatSeconds(delta)} seconds)`,
      });
      return undefined;
    }
    if (delta < -Math.trunc(s.config.loopWait * 1.5)) {
      ctx.logs.push({
        level: 'warning',
        text: `Found a stale switchover value, cleaning up: ${f.scheduledAt}`,
      });
      ctx.pre.push({ type: 'ClearFailoverKey', version: f.version });
      return undefined;
    }
    if (delta > 0) ctx.pre.push({ type: 'Wait', ms: Math.round(delta * 1000) });
    ctx.logs.push({ level: 'info', text: `Manual scheduled switchover at ${f.scheduledAt}` });
  }

  if (f.leader && f.leader !== s.me.name) {
    ctx.logs.push({
      level: 'warning',
      text: `manual failover: leader name does not match: ${f.leader} != ${s.me.name}`,
    });
    return cleanup();
  }
  if (f.member === s.me.name) {
    ctx.logs.push({
      level: 'warning',
      text: 'manual failover: I am already the leader, no need to failover',
    });
    return cleanup();
  }
  if (!f.member && s.config.paused) {
    ctx.logs.push({
      level: 'warning',
      text: 'Failover is possible only to a specific candidate in a paused state',
    });
    return cleanup();
  }
  let members: readonly Member[];
  if (isSyncMode(s)) {
    if (f.member && !syncMatches(c, f.member)) {
      ctx.logs.push({
        level: 'warning',
        text: `Failover candidate=${f.member} does not match with sync_standbys=${c.sync.syncStandby ?? 'None'}`,
      });
      members = [];
    } else {
      members = c.members.filter((m) => syncMatches(c, m.name));
    }
  } else {
    members = c.members.filter((m) => !f.member || m.name === f.member);
  }
  if (isFailoverPossible(ctx, members, false)) {
    const kind = f.leader ? 'switchover' : 'failover';
    return done(`${kind}: demoting myself`, [demote('graceful', true, `${kind}: demote`)]);
  }
  ctx.logs.push({
    level: 'warning',
    text: 'manual failover: no healthy members found, failover is not possible',
  });
  return cleanup();
}
