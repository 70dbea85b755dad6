/**
 * The HA brain: one pure function from a snapshot of the world to the actions of one cycle and the line Patroni
 * would log for it (Patroni 3.0.2's `Ha._run_cycle`, with the newest rules where the spec marks them default).
 * No I/O, no clock: everything it needs is in the snapshot; whatever it needs to learn (peer health, whether a
 * compare-and-set won) is expressed as actions the loop executes (see actions.ts for the contract).
 */
import type { Cluster, Member } from '../model/cluster.js';
import { clusterTimeline, isFailoverEmpty, isValidSysid, syncStateMatches } from '../model/cluster.js';
import type { Lsn } from '../model/lsn.js';
import { tagCloneFrom, tagNoFailover } from '../model/tags.js';
import type { Action, Decision, DemoteMode, FollowTarget, LogLine } from './actions.js';
import type { HaSnapshot, PeerStatus } from './snapshot.js';

/**
 * The line the loop logs for a cycle. The `PAUSE: ` prefix is added here, on the loop's side of the contract
 * (as Patroni's `run_cycle` does), never inside `decide()`.
 */
export function cycleLogLine(snapshot: HaSnapshot, decision: Decision): string {
  return (snapshot.config.paused ? 'PAUSE: ' : '') + decision.message;
}

/** Thrown inside `decide` when a rule needs peer health that the snapshot does not carry yet. */
class NeedPeers extends Error {
  constructor() {
    super('peer statuses needed');
  }
}

/** Per-call scratch state: actions that run before the final branch's own actions, and extra log lines. */
interface Ctx {
  readonly s: HaSnapshot;
  readonly c: Cluster;
  readonly pre: Action[];
  readonly logs: LogLine[];
}

export function decide(s: HaSnapshot): Decision {
  if (!s.dcsReachable || s.cluster === undefined) return handleDcsError(s);
  const ctx: Ctx = { s, c: s.cluster, pre: [], logs: [] };
  try {
    const d = runCycle(ctx);
    const logs = [...ctx.logs, ...(d.logs ?? [])];
    return {
      actions: [...ctx.pre, ...d.actions],
      message: d.message,
      ...(logs.length > 0 ? { logs } : {}),
    };
  } catch (e) {
    if (e instanceof NeedPeers) return probePeers(s, s.cluster);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// helpers over the snapshot

const done = (message: string, actions: readonly Action[] = [], logs?: readonly LogLine[]): Decision =>
  logs === undefined ? { actions, message } : { actions, message, logs };

function hasLock(ctx: Ctx): boolean {
  return ctx.c.leader?.name === ctx.s.me.name;
}

/** `nofailover`, or (4.x) a failover_priority of 0 or less: never promote. */
function iAmNoFailover(s: HaSnapshot): boolean {
  return s.me.tags.nofailover || s.me.tags.failoverPriority <= 0;
}

function isSyncMode(s: HaSnapshot): boolean {
  return s.config.synchronousMode !== 'off';
}

/** Patroni's `SyncState.matches`: the sync leader or one of the sync standbys. */
function syncMatches(c: Cluster, name: string): boolean {
  const leader = c.sync.leader?.trim().toLowerCase();
  return (leader !== undefined && leader === name.trim().toLowerCase()) || syncStateMatches(c.sync, name);
}

/** Synchronous mode is on and `/sync` names a leader. */
function syncModeActive(ctx: Ctx): boolean {
  return isSyncMode(ctx.s) && ctx.c.sync.leader !== undefined;
}

function peer(ctx: Ctx, name: string): PeerStatus | undefined {
  if (ctx.s.peers === undefined) throw new NeedPeers();
  return ctx.s.peers.get(name);
}

/** Patroni's `failover_limitation() is None`: reachable, may promote, watchdog fine. */
function peerCanPromote(st: PeerStatus): boolean {
  return st.reachable && !st.nofailover && st.failoverPriority > 0 && !st.watchdogFailed;
}

function isLagging(ctx: Ctx, wal: Lsn): boolean {
  return ctx.c.status.optime - wal > ctx.s.config.maximumLagOnFailover;
}

function probePeers(s: HaSnapshot, c: Cluster): Decision {
  const seen = new Map<string, string>();
  const add = (name: string, apiUrl: string | undefined): void => {
    if (name !== s.me.name && apiUrl && !seen.has(name)) seen.set(name, apiUrl);
  };
  for (const m of c.members) add(m.name, m.data.apiUrl);
  for (const m of s.lastLockedCluster?.members ?? []) add(m.name, m.data.apiUrl);
  for (const [name, url] of Object.entries(c.failsafe ?? {})) add(name, url);
  return done('probing members', [
    { type: 'ProbePeers', members: [...seen].map(([name, apiUrl]) => ({ name, apiUrl })) },
  ]);
}

/** Members other than us that may promote and have a REST API (the probe set of Patroni's health checks). */
function promotable(ctx: Ctx, members: readonly Member[]): Member[] {
  return members.filter((m) => m.name !== ctx.s.me.name && !tagNoFailover(m.data.tags) && m.data.apiUrl);
}

/** Python's `{:.0f}`: round half to even. */
function formatSeconds(x: number): string {
  const f = Math.floor(x);
  const diff = x - f;
  const r = diff > 0.5 || (diff === 0.5 && f % 2 !== 0) ? f + 1 : f;
  return String(Object.is(r, -0) ? 0 : r);
}

function nodeToFollow(ctx: Ctx): FollowTarget {
  const { c, s } = ctx;
  const rf = s.me.tags.replicatefrom;
  let name: string | undefined;
  let connUrl: string | undefined;
  const fromMember = rf && rf !== s.me.name ? c.members.find((m) => m.name === rf) : undefined;
  if (fromMember) {
    name = fromMember.name;
    connUrl = fromMember.data.connUrl;
  } else if (c.leader?.name) {
    name = c.leader.name;
    connUrl = c.leader.member?.data.connUrl;
  }
  if (name === undefined || name === s.me.name) return { kind: 'none' };
  return connUrl === undefined ? { kind: 'member', name } : { kind: 'member', name, connUrl };
}

function demote(mode: DemoteMode, async: boolean, description = `demote (${mode})`): Action {
  return { type: 'Demote', mode, async, kind: 'demote', description };
}

// ---------------------------------------------------------------------------------------------------------------
// DCS unreachable without failsafe_mode (Patroni's ha.py `_run_cycle` on a DCSError)

function handleDcsError(s: HaSnapshot): Decision {
  const pg = s.postgres;
  if (!s.config.paused && pg.isRunning && pg.isPrimary) {
    // Patroni's DCS client retries for retry_timeout before reporting the error; our loop may report sooner, so a
    // primary that refreshed its lock within retry_timeout keeps running and the loop retries. Demoting by then still
    // leaves loop_wait + retry_timeout of margin before the lock (ttl) can expire (config.py
    // `_validate_and_adjust_timeouts`). The grace also ends retry_timeout before the lock can expire (a ZooKeeper
    // session timeout capped by the server's maxSessionTimeout may be far shorter than ttl): the demotion needs that
    // time to finish.
    const last = s.lock.lastRefreshOk;
    const retryMs = s.config.retryTimeout * 1000;
    const expiresAt = s.lock.expiresAt ?? Number.POSITIVE_INFINITY;
    if (last !== undefined && s.now - last < retryMs && s.now + retryMs <= expiresAt) {
      return done('DCS is not accessible');
    }
    // Failsafe mode (POST /failsafe to every member) is not implemented: always demote.
    // A demote already under way (this one, or a switchover's) brings PostgreSQL down: never start a second one.
    if (s.pendingAsync?.kind === 'demote') return done(`${s.pendingAsync.description} in progress`);
    if (s.pendingAsync !== undefined) {
      return done('demoted self because DCS is not accessible and I was a leader', [
        demote('offline', false),
      ]);
    }
    return done('demoting self because DCS is not accessible and I was a leader', [
      demote('offline', true, 'demoting self because DCS is not accessible and I was a leader'),
    ]);
  }
  return done('DCS is not accessible');
}

// ---------------------------------------------------------------------------------------------------------------
// the cycle

function runCycle(ctx: Ctx): Decision {
  const { s, c } = ctx;
  const pg = s.postgres;
  const paused = s.config.paused;
  const locked = c.leader?.name !== undefined && c.leader.name !== '';

  if (locked && hasLock(ctx)) {
    if (!isValidSysid(c.initialize) && pg.sysid !== undefined) {
      ctx.pre.push({ type: 'WriteInitialize', createNew: c.initialize === undefined, sysid: pg.sysid });
    }
    if (!c.config || Object.keys(c.config.data).length === 0) ctx.pre.push({ type: 'WriteConfig' });
  }

  if (s.pendingAsync !== undefined) return handleLongActionInProgress(ctx);

  if (pg.state === 'starting' && !paused) {
    const d = handleStartingInstance(ctx);
    if (d !== undefined) return d;
  }

  if (s.memory.bootstrapping) return postBootstrap(ctx);

  if (s.memory.recovering) {
    if (!pg.isRunning) {
      ctx.pre.push({ type: 'UpdateMemory', patch: { recovering: false } });
      if (hasLock(ctx)) {
        return done('removed leader key after trying and failing to start postgres', [
          { type: 'ReleaseLock', voluntarily: false },
        ]);
      }
      return done('failed to start postgres');
    }
    ctx.pre.push({ type: 'UpdateMemory', patch: { recovering: false, crashRecoveryExecuted: false } });
  }

  if (!pg.dataDirectoryAccessible || pg.dataDirectoryEmpty) {
    if (pg.isRunning) ctx.pre.push({ type: 'StopPostgres', mode: 'immediate' });
    if (hasLock(ctx)) {
      return done(
        `released leader key voluntarily as data dir ${pg.dataDirectoryAccessible ? 'empty' : 'not accessible'} and currently leader`,
        [{ type: 'ReleaseLock', voluntarily: true }],
      );
    }
    if (!pg.dataDirectoryAccessible) return done('data directory is not accessible');
    if (paused) return done('running with empty data directory');
    return bootstrap(ctx);
  }

  if (!isValidSysid(pg.sysid)) {
    // Deliberately safer than Patroni: a running primary while someone else holds the lock still demotes.
    if (pg.isRunning && pg.isPrimary && locked && !hasLock(ctx) && !paused) {
      return done('demoting self because I do not have the lock and I was a leader', [
        demote('immediate-nolock', false),
      ]);
    }
    return done(
      'data dir for the cluster is not empty, but system ID is invalid; consider doing reinitialize',
    );
  }
  if (isValidSysid(c.initialize)) {
    if (c.initialize !== pg.sysid) {
      if (paused) {
        ctx.logs.push({
          level: 'warning',
          text: `system ID has changed while in paused mode. Patroni will exit when resuming unless system ID is reset: ${c.initialize} != ${pg.sysid}`,
        });
        if (hasLock(ctx)) {
          return done('released leader key voluntarily due to the system ID mismatch', [
            { type: 'ReleaseLock', voluntarily: true },
          ]);
        }
      } else {
        const reason = `system ID mismatch, node ${s.me.name} belongs to a different cluster: ${c.initialize} != ${pg.sysid}`;
        return done(reason, [{ type: 'Exit', code: 1, reason }]);
      }
    }
  } else if (!locked && !paused) {
    // An existing data directory but no initialize key: adopt it (a running primary then wins the race).
    if (pg.isRunning && !pg.isPrimary && !s.memory.onStartCalled) {
      const reason = 'No initialize key in DCS and PostgreSQL is running as replica, aborting start';
      return done(reason, [{ type: 'Exit', code: 1, reason }]);
    }
    ctx.pre.push({ type: 'WriteInitialize', createNew: c.initialize === undefined, sysid: pg.sysid });
  }

  if (!pg.isRunning) {
    if (paused) {
      if (hasLock(ctx)) {
        return done('removed leader lock because postgres is not running', [
          { type: 'ReleaseLock', voluntarily: false },
        ]);
      }
      return done('postgres is not running');
    }
    return recover(ctx);
  }

  return locked ? processHealthyCluster(ctx) : processUnhealthyCluster(ctx);
}

// ---------------------------------------------------------------------------------------------------------------
// long actions, starting instances, crash recovery (Patroni's ha.py `recover`)

function handleLongActionInProgress(ctx: Ctx): Decision {
  const { s } = ctx;
  const job = s.pendingAsync;
  if (job === undefined) throw new Error('no long action');
  const withoutLock = (): Decision => {
    if (!s.memory.bootstrapping && !s.config.paused) {
      // Patroni cancels a promote that has not happened yet; one that already made PostgreSQL primary is demoted.
      if (job.kind === 'promote' && !s.postgres.isPrimary) {
        return done('lost leader before promote', [{ type: 'CancelAsync', kind: 'promote' }]);
      }
      if (s.postgres.isPrimary) {
        const actions: Action[] = [];
        if (job.kind === 'restart' || job.kind === 'promote')
          actions.push({ type: 'CancelAsync', kind: job.kind });
        actions.push(demote('immediate-nolock', false));
        return done(`lost leader lock during ${job.description}`, actions);
      }
    }
    return done(`${job.description} in progress`);
  };
  if (!hasLock(ctx)) return withoutLock();

  if (job.kind === 'crash_recovery' && s.memory.crashRecoveryStartedAt !== undefined) {
    const left = s.config.primaryStartTimeout - (s.now - s.memory.crashRecoveryStartedAt) / 1000;
    if (left <= 0 && isFailoverPossible(ctx, ctx.c.members)) {
      return done('terminated crash recovery because of startup timeout', [
        refreshLock(false, withoutLock()),
        { type: 'CancelAsync', kind: 'crash_recovery' },
        demote('immediate', false),
      ]);
    }
  }
  return done(`updated leader lock during ${job.description}`, [refreshLock(false, withoutLock())]);
}

function refreshLock(writeStatus: boolean, otherwise: Decision): Action {
  return { type: 'RefreshLock', writeStatus, otherwise };
}

function handleStartingInstance(ctx: Ctx): Decision | undefined {
  const { s } = ctx;
  if (!hasLock(ctx)) return undefined; // a starting replica is handled as usual
  const lost = done('stopped PostgreSQL while starting up because leader key was lost', [
    demote('immediate-nolock', false),
  ]);
  const timeout = s.memory.startTimeout ?? s.config.primaryStartTimeout;
  const left = timeout - s.postgres.msInState / 1000;
  if (left <= 0) {
    if (isFailoverPossible(ctx, ctx.c.members)) {
      return done('stopped PostgreSQL because of startup timeout', [
        refreshLock(false, lost),
        demote('immediate', false),
      ]);
    }
    return done('primary start has timed out, but continuing to wait because failover is not possible', [
      refreshLock(false, lost),
    ]);
  }
  const manual = manualFailoverFromLeader(ctx);
  const rest =
    manual ?? done(`PostgreSQL is still starting up, ${formatSeconds(left)} seconds until timeout`);
  return { ...rest, actions: [refreshLock(false, lost), ...rest.actions] };
}

function recover(ctx: Ctx): Decision {
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

  if (!hasLock(ctx)) {
    const d = handleRewindOrReinitialize(ctx);
    if (d !== undefined) return { ...d, actions: [...actions, ...d.actions] };
  }

  if (hasLock(ctx)) {
    return done('starting as readonly because i had the session lock', [
      ...actions,
      startPostgres('replica', { kind: 'none' }, timeout),
      { type: 'UpdateMemory', patch: { recovering: true, startTimeout: timeout } },
    ]);
  }
  const d = asSecondary(nodeToFollow(ctx), timeout);
  return { ...d, actions: [...actions, ...d.actions] };
}

/**
 * Patroni's ha.py `_handle_rewind_or_reinitialize`: the node found our timeline diverged from the leader's.
 * pg_rewind needs a cleanly shut down data directory, so an instance left `in archive recovery` gets single-user
 * crash recovery first.
 */
function handleRewindOrReinitialize(ctx: Ctx): Decision | undefined {
  const { s, c } = ctx;
  const d = s.postgres.diverged;
  const leader = c.leader?.name;
  if (d === undefined || leader === undefined || leader === '' || d.leader !== leader) return undefined;
  if (leader === s.me.name || !c.leader?.member?.data.connUrl) return undefined;
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
    return done(msg, [{ type: 'Rewind', member: leader, async: true, kind: 'rewind', description: msg }]);
  }
  const msg = 'reinitializing due to diverged timelines';
  return done(msg, [
    { type: 'Reinitialize', member: leader, async: true, kind: 'reinitialize', description: msg },
  ]);
}

function startPostgres(as: 'replica' | 'primary', target: FollowTarget, timeout: number | undefined): Action {
  return {
    type: 'StartPostgres',
    as,
    target,
    ...(timeout === undefined ? {} : { timeout }),
    async: true,
    kind: 'start',
    description: 'restarting after failure',
  };
}

// ---------------------------------------------------------------------------------------------------------------
// bootstrap and joining (Patroni's ha.py `bootstrap`)

function bootstrap(ctx: Ctx): Decision {
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
  return done('waiting for leader to bootstrap');
}

function postBootstrap(ctx: Ctx): Decision {
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

function follow(ctx: Ctx, demoteReason: string, followReason: string, target?: FollowTarget): Decision {
  const { s } = ctx;
  const to = target ?? nodeToFollow(ctx);
  if (s.config.paused) {
    if (s.postgres.isPrimary) return done('continue to run as primary without lock');
    if (to.kind === 'none') return done(`no action. I am (${s.me.name})`);
  } else if (s.postgres.isPrimary) {
    return done(demoteReason, [demote('immediate-nolock', false)]);
  }
  if (s.postgres.state !== 'starting') {
    const d = handleRewindOrReinitialize(ctx);
    if (d !== undefined) return d;
  }
  return done(followReason, [{ type: 'FollowLeader', target: to }]);
}

function enforcePrimaryRole(ctx: Ctx, message: string, promoteMessage: string): Decision {
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
  if (isSyncMode(s)) {
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

// ---------------------------------------------------------------------------------------------------------------
// locked cluster (ha.py `process_healthy_cluster`) and the leader's side of a switchover (the `failover` key)

function processHealthyCluster(ctx: Ctx): Decision {
  const { s, c } = ctx;
  const pg = s.postgres;
  if (hasLock(ctx)) {
    if (s.config.paused && !pg.isPrimary) {
      if (c.failover?.member === s.me.name) return done('waiting to become primary after promote...');
      return done('removed leader lock because postgres is not running as primary', [
        { type: 'ReleaseLock', voluntarily: false },
      ]);
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
function manualFailoverFromLeader(ctx: Ctx): Decision | undefined {
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

/** Patroni's `is_failover_possible`: some other member could take over now. */
function isFailoverPossible(ctx: Ctx, members: readonly Member[], checkSynchronous = true): boolean {
  const { s, c } = ctx;
  let candidates = promotable(ctx, members);
  if (checkSynchronous && isSyncMode(s)) candidates = candidates.filter((m) => syncMatches(c, m.name));
  if (candidates.length === 0) {
    ctx.logs.push({ level: 'warning', text: 'manual failover: members list is empty' });
    return false;
  }
  const tl = clusterTimeline(c);
  let possible = false;
  for (const m of candidates) {
    const st = peer(ctx, m.name);
    if (st === undefined || !peerCanPromote(st)) continue;
    if (isLagging(ctx, st.walPosition)) continue;
    if (s.config.checkTimeline && (!st.timeline || st.timeline < tl)) continue;
    possible = true;
  }
  return possible;
}

// ---------------------------------------------------------------------------------------------------------------
// unlocked cluster: the leader race (ha.py `process_unhealthy_cluster`) and the others' side of a switchover

function processUnhealthyCluster(ctx: Ctx): Decision {
  const { s, c } = ctx;
  if (isHealthiestNode(ctx)) {
    const actions: Action[] = [
      {
        type: 'AcquireLock',
        otherwise: follow(
          ctx,
          'demoted self after trying and failing to obtain lock',
          'following new leader after trying and failing to obtain lock',
          { kind: 'lock-holder' },
        ),
      },
    ];
    const f = c.failover;
    if (f && !isFailoverEmpty(f)) {
      if (s.config.paused && f.leader && f.member) {
        actions.push({
          type: 'RewriteFailoverKey',
          candidate: f.member,
          ...(f.scheduledAt === undefined ? {} : { scheduledAt: f.scheduledAt }),
          version: f.version,
        });
      } else {
        actions.push({ type: 'ClearFailoverKey' });
      }
    }
    const rest = enforcePrimaryRole(
      ctx,
      'acquired session lock as a leader',
      'promoted self to leader by acquiring session lock',
    );
    return { ...rest, actions: [...actions, ...rest.actions] };
  }
  const waits: Action[] =
    !isFailoverEmpty(c.failover) || iAmNoFailover(s) ? [{ type: 'Wait', ms: 2000 }] : [];
  const d = iAmNoFailover(s)
    ? follow(
        ctx,
        'demoting self because I am not allowed to become primary',
        'following a different leader because I am not allowed to promote',
      )
    : follow(
        ctx,
        'demoting self because i am not the healthiest node',
        'following a different leader because i am not the healthiest node',
      );
  return { ...d, actions: [...waits, ...d.actions] };
}

function isHealthiestNode(ctx: Ctx): boolean {
  const { s, c } = ctx;
  const pg = s.postgres;
  const paused = s.config.paused;
  const f = c.failover;
  const hasFailover = f !== undefined && !isFailoverEmpty(f);

  const released = s.memory.releasedLeaderKeyAt;
  if (released !== undefined && s.now - released < s.config.ttl * 1000) {
    ctx.logs.push({
      level: 'info',
      text: 'backoff: skip leader race after pre_promote script failure and releasing the lock voluntarily',
    });
    return false;
  }
  // Deliberately stricter than Patroni, which lets a nofailover node that already runs as primary take the lock:
  // a nofailover member never acquires the lock.
  if (iAmNoFailover(s)) return false;
  if (paused && hasFailover && !f.scheduledAt) {
    const r = manualFailoverProcessNoLeader(ctx);
    if (r !== undefined) return r;
  }
  if (pg.state === 'starting') return false;
  if (pg.isPrimary) {
    if (paused) return !c.initialize || pg.sysid === c.initialize;
    // A primary that froze while another node was promoted must not grab the lock back (newest rule).
    return (pg.timeline ?? 0) >= clusterTimeline(c);
  }
  if (paused) return false;
  if (hasFailover) {
    if (isSyncMode(s) && f.leader && !syncMatches(c, s.me.name)) return false;
    return manualFailoverProcessNoLeader(ctx) ?? false;
  }

  const byName = new Map<string, Member>();
  for (const m of s.lastLockedCluster?.members ?? []) byName.set(m.name, m);
  if (s.config.failsafeMode && c.failsafe) {
    const names = Object.keys(c.failsafe);
    if (names.length > 0 && !names.includes(s.me.name)) return false;
    for (const [name, url] of Object.entries(c.failsafe)) byName.set(name, failsafeMember(name, url));
  }
  for (const m of c.members) byName.set(m.name, m);
  let candidates = [...byName.values()];
  // In synchronous mode only the last known primary and its sync standbys may be promoted automatically.
  // Quorum mode's vote counting is not implemented: it is treated like priority mode (stricter).
  if (syncModeActive(ctx)) {
    if (!syncMatches(c, s.me.name)) return false;
    candidates = candidates.filter((m) => syncMatches(c, m.name));
  }
  return isHealthiest(ctx, candidates, true);
}

function failsafeMember(name: string, apiUrl: string): Member {
  return {
    name,
    version: '',
    data: { raw: {}, apiUrl, state: 'unknown', tags: {}, pendingRestart: false, pause: false },
  };
}

/** Patroni's `_is_healthiest_node` (newest rules: timeline must be known, failover_priority breaks WAL ties). */
function isHealthiest(ctx: Ctx, members: readonly Member[], checkReplicationLag: boolean): boolean {
  const { s, c } = ctx;
  const myWal = s.postgres.walPosition;
  if (checkReplicationLag) {
    if (isLagging(ctx, myWal)) {
      ctx.logs.push({ level: 'info', text: 'My wal position exceeds maximum replication lag' });
      return false;
    }
    if (s.config.checkTimeline) {
      const tl = clusterTimeline(c);
      const mine = s.postgres.timeline;
      if (mine === undefined) {
        ctx.logs.push({ level: 'info', text: 'Can not figure out my timeline' });
        return false;
      }
      if (mine < tl) {
        ctx.logs.push({
          level: 'info',
          text: `My timeline ${mine} is behind last known cluster timeline ${tl}`,
        });
        return false;
      }
    }
  }
  const formerLeader = syncModeActive(ctx) ? c.sync.leader : s.lastLockedCluster?.leader?.name;
  for (const m of promotable(ctx, members)) {
    const st = peer(ctx, m.name);
    if (st === undefined || !peerCanPromote(st)) continue;
    if (st.isPrimary) {
      ctx.logs.push({ level: 'warning', text: `Primary (${m.name}) is still alive` });
      return false;
    }
    if (myWal < st.walPosition) {
      ctx.logs.push({ level: 'info', text: `Wal position of ${m.name} is ahead of my wal position` });
      if (!syncModeActive(ctx) || c.sync.leader !== m.name) return false;
      ctx.logs.push({ level: 'info', text: 'Ignoring the former leader being ahead of us' });
    } else if (
      st.walPosition > 0n &&
      myWal === st.walPosition &&
      s.me.tags.failoverPriority < st.failoverPriority
    ) {
      if (formerLeader === m.name) {
        ctx.logs.push({
          level: 'info',
          text: `Ignoring former leader ${m.name} having priority ${st.failoverPriority} higher than this nodes ${s.me.tags.failoverPriority} priority`,
        });
      } else {
        ctx.logs.push({
          level: 'info',
          text: `${m.name} has equally tolerable WAL position and priority ${st.failoverPriority}, while this node has priority ${s.me.tags.failoverPriority}`,
        });
        return false;
      }
    }
  }
  return true;
}

/**
 * Patroni's `manual_failover_process_no_leader`: whether we should take the lock while a `failover` key exists and
 * nobody holds the lock. Undefined means "the key was stale and is being removed; carry on with the usual race".
 */
function manualFailoverProcessNoLeader(ctx: Ctx): boolean | undefined {
  const { s, c } = ctx;
  const f = c.failover;
  if (!f) return false;
  if (f.member) {
    if (f.member === s.me.name) return true;
    if (s.config.paused) {
      if (!c.members.some((m) => m.name === f.member) && s.postgres.isPrimary) {
        ctx.logs.push({
          level: 'warning',
          text: 'manual failover: removing failover key because failover candidate is not running',
        });
        ctx.pre.push({ type: 'ClearFailoverKey', version: f.version });
        return undefined;
      }
      return false;
    }
    // In synchronous mode a node outside /sync never acts, even when the candidate is unhealthy.
    if (isSyncMode(s) && !syncMatches(c, s.me.name)) return false;
    const member = c.members.find((m) => m.name === f.member);
    if (member) {
      const st: PeerStatus | undefined = peer(ctx, member.name);
      if (st !== undefined && peerCanPromote(st)) {
        ctx.logs.push({ level: 'info', text: `manual failover: to ${member.name}, i am ${s.me.name}` });
        return false;
      }
      const why =
        st === undefined || !st.reachable
          ? 'not reachable'
          : st.nofailover || st.failoverPriority <= 0
            ? 'not allowed to promote'
            : 'not watchdog capable';
      ctx.logs.push({ level: 'warning', text: `manual failover: member ${member.name} is ${why}` });
    }
    // From here on the named candidate is out of the picture: any healthy member may take over.
  } else if (s.config.paused) {
    return false;
  }

  if (f.leader) {
    if (s.me.name === f.leader) {
      // The former leader takes the lock back only when nobody else can.
      const others = c.members.filter((m) => m.name !== f.member && m.name !== f.leader);
      return !isFailoverPossible(ctx, others);
    }
  }
  const members = c.members.filter((m) => m.name !== f.leader);
  return isHealthiest(ctx, members, false);
}
