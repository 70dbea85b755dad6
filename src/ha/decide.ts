/**
 * The HA brain: one pure function from a snapshot of the world to the actions of one cycle and the line Patroni
 * would log for it (Patroni 3.0.2's `Ha._run_cycle`, with the newest rules where the spec marks them default).
 * No I/O, no clock: everything it needs is in the snapshot; whatever it needs to learn (peer health, whether a
 * compare-and-set won) is expressed as actions the loop executes (see actions.ts for the contract).
 * The rules of each phase live in decide-*.ts; this module is the cycle's entry and dispatch.
 */
import { isValidSysid } from '../model/cluster.js';
import type { Action, Decision } from './actions.js';
import type { HaSnapshot } from './snapshot.js';
import type { Ctx } from './decide-helpers.js';
import {
  NeedPeers,
  demote,
  done,
  formatSeconds,
  hasLock,
  isFailoverPossible,
  probePeers,
  refreshLock,
} from './decide-helpers.js';
import { processUnhealthyCluster } from './decide-leader-race.js';
import { manualFailoverFromLeader, processHealthyCluster } from './decide-leader.js';
import { bootstrap, postBootstrap, recover } from './decide-recovery.js';
import { withWatchdog } from './watchdog.js';
import { failsafeOnDcsError, withFailsafeWrites } from './failsafe.js';

/**
 * The line the loop logs for a cycle. The `PAUSE: ` prefix is added here, on the loop's side of the contract
 * (as Patroni's `run_cycle` does), never inside `decide()`.
 */
export function cycleLogLine(snapshot: HaSnapshot, decision: Decision): string {
  return (snapshot.config.paused ? 'PAUSE: ' : '') + decision.message;
}

export function decide(s: HaSnapshot): Decision {
  // The watchdog's pings and disarming follow from the decision (src/ha/watchdog.ts).
  // The /failsafe key follows every lock refresh (src/ha/failsafe.ts).
  return withWatchdog(s, withFailsafeWrites(s, decideCycle(s)));
}

function decideCycle(s: HaSnapshot): Decision {
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
// DCS unreachable (Patroni's ha.py `_run_cycle` on a DCSError, `_handle_dcs_error`)

function handleDcsError(s: HaSnapshot): Decision {
  const withoutFailsafe = handleDcsErrorWithoutFailsafe(s);
  const pg = s.postgres;
  if (s.config.paused || !pg.isRunning || !pg.isPrimary || s.pendingAsync?.kind === 'demote') {
    return withoutFailsafe;
  }
  // failsafe_mode: stay primary while every member of the /failsafe topology accepts us, else as without it.
  return failsafeOnDcsError(s, withoutFailsafe) ?? withoutFailsafe;
}

function handleDcsErrorWithoutFailsafe(s: HaSnapshot): Decision {
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
          ...(pg.wasPrimary === true ? [{ type: 'MarkDemoted' } as const] : []),
          { type: 'ReleaseLock', voluntarily: false },
        ]);
      }
      return done('failed to start postgres');
    }
    ctx.pre.push({
      type: 'UpdateMemory',
      patch: { recovering: false, crashRecoveryExecuted: false, rewindSucceeded: false },
    });
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
      // Patroni starts nothing while paused, except a former primary that a demotion left diverged (ha.py
      // `_run_cycle`): recover() then rewinds it (or reinitializes it, where allowed) and starts it as a replica.
      // A failed pg_rewind reports no divergence any more (src/postgres/rewinder.ts), so it is not retried.
      const divergedFromLeader = pg.diverged !== undefined && pg.diverged.leader === c.leader?.name;
      if (!s.memory.rewindSucceeded && !divergedFromLeader) return done('postgres is not running');
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
