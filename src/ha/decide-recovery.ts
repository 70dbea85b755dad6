/**
 * `decide`'s crash recovery, rewind or reinitialize, bootstrap and following a leader (Patroni's ha.py `recover`,
 * `bootstrap`, `follow`).
 */
import { tagCloneFrom } from '../model/tags.js';
import type { Action, Decision, FollowTarget } from './actions.js';
import { REMOTE_MEMBER } from './actions.js';
import type { Ctx } from './decide-helpers.js';
import type { HaSnapshot } from './snapshot.js';
import {
  demote,
  done,
  hasLock,
  iAmNoFailover,
  isFailoverPossible,
  isStandbyCluster,
  isSyncMode,
  nodeToFollow,
  refreshLock,
  startPostgres,
} from './decide-helpers.js';

export function recover(ctx: Ctx): Decision {
  const { s, c } = ctx;
  const pg = s.postgres;
  const actions: Action[] = [];
  let timeout: number | undefined;
  // When the lock refresh fails we start as a replica of whoever holds the lock after a re-read.
  const asSecondary = (target: FollowTarget, t: number | undefined): Decision =>
    done('starting as a secondary', [
      ...(isSyncMode(s) ? [{ type: 'SetSynchronousStandbyNames', names: [] } as const] : []),
      startPostgres('replica', target, t),
      { type: 'UpdateMemory', patch: { recovering: true, startTimeout: t } },
    ]);

  if (hasLock(ctx)) {
    actions.push(refreshLock(false, asSecondary({ kind: 'lock-holder' }, undefined)));
    timeout = s.config.primaryStartTimeout;
    if (timeout === 0 && isFailoverPossible(ctx, c.members)) {
      return done(
        'stopped PostgreSQL to fail over after a crash',
        [...actions, demote('immediate', false)],
        [{ level: 'info', text: 'Primary crashed. Failing over.' }],
      );
    }
  }

  // Patroni 4.x: the lock is ours and was just refreshed, and PostgreSQL was running as a primary moments ago (it
  // crashed under us, no recovery files): start it as a primary again, on the same timeline, waiting up to
  // primary_start_timeout. A timeout of 0 that found nobody to fail over to falls through to the read-only start.
  const standby = isStandbyCluster(s);
  if (timeout !== undefined && timeout > 0 && !standby && crashedPrimary(pg)) {
    const msg = 'starting primary after failure';
    return done(msg, [
      ...actions,
      startPostgres('primary', { kind: 'none' }, timeout, msg),
      { type: 'UpdateMemory', patch: { recovering: true, startTimeout: timeout } },
    ]);
  }

  const unclean =
    pg.controlState === 'in production' ||
    pg.controlState === 'shutting down' ||
    pg.controlState === 'in crash recovery';
  const locked = c.leader?.name !== undefined && c.leader.name !== '';
  if (unclean && !s.memory.crashRecoveryExecuted && (!locked || s.me.canRewind)) {
    const msg = 'doing crash recovery in a single user mode';
    return done(msg, [
      ...actions,
      { type: 'UpdateMemory', patch: { crashRecoveryExecuted: true, crashRecoveryStartedAt: s.now } },
      { type: 'CrashRecovery', async: true, kind: 'crash_recovery', description: msg },
    ]);
  }

  // ha.py `recover`: every member but a primary cluster's lock holder (the standby leader too) checks for a rewind.
  if (!hasLock(ctx) || standby) {
    const d = handleRewindOrReinitialize(ctx);
    if (d !== undefined) return { ...d, actions: [...actions, ...d.actions] };
  }

  if (hasLock(ctx) && standby) {
    // The standby leader starts following the remote primary (or its archive) again.
    return done('starting as a standby leader because i had the session lock', [
      ...actions,
      startPostgres('replica', { kind: 'remote' }, timeout, undefined, true),
      { type: 'UpdateMemory', patch: { recovering: true, startTimeout: timeout } },
    ]);
  }
  if (hasLock(ctx)) {
    return done('starting as readonly because i had the session lock', [
      ...actions,
      startPostgres('replica', { kind: 'none' }, timeout),
      { type: 'UpdateMemory', patch: { recovering: true, startTimeout: timeout } },
    ]);
  }
  const d = asSecondary(nodeToFollow(ctx), timeout);
  if (standby && !locked) {
    const msg = 'trying to follow a remote member because standby cluster is unhealthy';
    return { ...d, message: msg, actions: [...actions, ...d.actions] };
  }
  return { ...d, actions: [...actions, ...d.actions] };
}

const CRASHED_PRIMARY_CONTROL_STATES = new Set([
  'in production',
  'in crash recovery',
  'shutting down',
  'shut down',
]);

/** The instance crashed while it ran as a primary and nothing would start it in recovery (ha.py `recover`). */
function crashedPrimary(pg: HaSnapshot['postgres']): boolean {
  return (
    pg.state === 'crashed' &&
    pg.wasPrimary === true &&
    pg.recoveryConfExists !== true &&
    pg.controlState !== undefined &&
    CRASHED_PRIMARY_CONTROL_STATES.has(pg.controlState)
  );
}

/**
 * Patroni's ha.py `_handle_rewind_or_reinitialize`: the node found our timeline diverged from the leader's.
 * pg_rewind needs a cleanly shut down data directory, so an instance left `in archive recovery` gets single-user
 * crash recovery first.
 */
function handleRewindOrReinitialize(ctx: Ctx): Decision | undefined {
  const { s, c } = ctx;
  const d = s.postgres.diverged;
  const sc = s.config.standby;
  // A standby cluster compares every member with its remote primary, and never removes the data directory for it.
  const remote = sc !== undefined;
  const leader = remote ? REMOTE_MEMBER : c.leader?.name;
  if (d === undefined || leader === undefined || leader === '' || d.leader !== leader) return undefined;
  if (remote) {
    if (d.remedy !== 'rewind' || (sc.host === undefined && sc.port === undefined)) return undefined;
  } else if (leader === s.me.name || !c.leader?.member?.data.connUrl) return undefined;
  if (d.remedy === 'rewind') {
    if (
      !s.postgres.isRunning &&
      s.postgres.controlState === 'in archive recovery' &&
      !s.memory.crashRecoveryExecuted
    ) {
      const msg = 'doing crash recovery in a single user mode';
      return done(msg, [
        { type: 'UpdateMemory', patch: { crashRecoveryExecuted: true, crashRecoveryStartedAt: s.now } },
        { type: 'CrashRecovery', async: true, kind: 'crash_recovery', description: msg },
      ]);
    }
    const msg = `running pg_rewind from ${leader}`;
    return done(msg, [
      {
        type: 'Rewind',
        member: leader,
        ...(remote ? { remote: true as const } : {}),
        async: true,
        kind: 'rewind',
        description: msg,
      },
    ]);
  }
  const msg = 'reinitializing due to diverged timelines';
  return done(msg, [
    { type: 'Reinitialize', member: leader, async: true, kind: 'reinitialize', description: msg },
  ]);
}

// ---------------------------------------------------------------------------------------------------------------
// bootstrap and joining (Patroni's ha.py `bootstrap`)

export function bootstrap(ctx: Ctx): Decision {
  const { s, c } = ctx;
  const leaderName = c.leader?.name;
  if (leaderName) {
    const clone = c.members.find(
      (m) =>
        tagCloneFrom(m.data.tags) &&
        m.data.connUrl &&
        m.data.state === 'running' &&
        m.name !== s.me.name &&
        m.name !== leaderName,
    );
    const from = clone ? `from replica '${clone.name}'` : `from leader '${leaderName}'`;
    return done(`trying to bootstrap ${from}`, [
      {
        type: 'CloneFrom',
        member: clone ? clone.name : leaderName,
        async: true,
        kind: 'clone',
        description: `bootstrap ${from}`,
      },
    ]);
  }
  if (c.initialize === undefined && !iAmNoFailover(s) && s.me.hasBootstrapConfig && isStandbyCluster(s)) {
    // A new standby cluster: its first member clones the remote primary and follows it (bootstrap_standby_leader).
    return done('trying to bootstrap a new standby leader', [
      { type: 'RaceInitialize', otherwise: done('failed to acquire initialize lock') },
      { type: 'UpdateMemory', patch: { bootstrapping: true, bootstrapResult: undefined } },
      {
        type: 'Bootstrap',
        standbyLeader: true,
        async: true,
        kind: 'bootstrap',
        description: 'bootstrap_standby_leader',
      },
    ]);
  }
  if (c.initialize === undefined && !iAmNoFailover(s) && s.me.hasBootstrapConfig) {
    return done('trying to bootstrap a new cluster', [
      { type: 'RaceInitialize', otherwise: done('failed to acquire initialize lock') },
      { type: 'UpdateMemory', patch: { bootstrapping: true, bootstrapResult: undefined } },
      { type: 'Bootstrap', async: true, kind: 'bootstrap', description: 'bootstrap' },
    ]);
  }
  if (s.me.canCloneWithoutLeader && c.initialize !== '') {
    const msg = 'bootstrap (without leader)';
    return done(`trying to ${msg}`, [{ type: 'CloneFrom', async: true, kind: 'clone', description: msg }]);
  }
  return done(`waiting for ${isStandbyCluster(s) ? 'standby_' : ''}leader to bootstrap`);
}

export function postBootstrap(ctx: Ctx): Decision {
  const { s, c } = ctx;
  const pg = s.postgres;
  if (!pg.isRunning || s.memory.bootstrapResult === false) {
    return done('removing initialize key after failed attempt to bootstrap the cluster', [
      { type: 'CancelInitialization' },
    ]);
  }
  if (s.memory.bootstrapResult === undefined) {
    if (!pg.isPrimary) return done('waiting for end of recovery after bootstrap');
    return done('running post_bootstrap', [
      { type: 'PostBootstrap', async: true, kind: 'post_bootstrap', description: 'post_bootstrap' },
    ]);
  }
  const actions: Action[] = [
    { type: 'UpdateMemory', patch: { bootstrapping: false, bootstrapResult: undefined } },
  ];
  if (pg.sysid !== undefined) {
    actions.push({ type: 'WriteInitialize', createNew: c.initialize === undefined, sysid: pg.sysid });
  }
  actions.push({ type: 'WriteConfig' }, { type: 'TakeLeader' });
  return done('initialized a new cluster', actions);
}

// ---------------------------------------------------------------------------------------------------------------
// follow / enforce primary role

export function follow(
  ctx: Ctx,
  demoteReason: string,
  followReason: string,
  target?: FollowTarget,
  asStandbyLeader = false,
): Decision {
  const { s } = ctx;
  const to = target ?? nodeToFollow(ctx);
  const standby = isStandbyCluster(s);
  if (s.config.paused) {
    if (s.postgres.isPrimary) return done('continue to run as primary without lock');
    if (to.kind === 'none') return done(`no action. I am (${s.me.name})`);
  } else if (s.postgres.isPrimary) {
    // A primary in a standby cluster stops and comes back as the standby leader (Patroni's demote-cluster).
    if (standby) return done(demoteReason, [demote('demote-cluster', true, 'demoting to a standby cluster')]);
    return done(demoteReason, [demote('immediate-nolock', false)]);
  }
  if (s.postgres.state !== 'starting') {
    const d = handleRewindOrReinitialize(ctx);
    if (d !== undefined) return d;
  }
  const standbyLeader = to.kind === 'remote' && (asStandbyLeader || hasLock(ctx));
  // A standby cluster's lock may name a member without a key (or conn_url): keep following whom we follow.
  if (standby && !standbyLeader && (to.kind === 'none' || (to.kind === 'member' && !to.connUrl))) {
    return done('continue following the old known standby leader');
  }
  return done(followReason, [
    { type: 'FollowLeader', target: to, ...(standbyLeader ? { standbyLeader: true as const } : {}) },
  ]);
}

/** A standby cluster's lock holder follows the remote primary (Patroni's `enforce_follow_remote_member`). */
export function enforceFollowRemoteMember(ctx: Ctx, message: string): Decision {
  return follow(ctx, 'cannot be a real primary in standby cluster', message, { kind: 'remote' }, true);
}
