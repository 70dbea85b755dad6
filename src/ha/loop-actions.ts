/**
 * The HA loop's action executor: runs a decision's actions by the contract in actions.ts (guards first, a DCS
 * error re-decides offline), keeps the lock's timing, and tracks the long action running in the background.
 * The cycle driver (loop.ts) extends it.
 */
import type { Dcs } from '../dcs/dcs.js';
import { DcsError } from '../dcs/dcs.js';
import type { Cluster, Member } from '../model/cluster.js';
import { formatLsn } from '../model/lsn.js';
import { pyJson } from '../model/pyjson.js';
import { errorText } from '../model/text.js';
import type {
  Action,
  ActionOf,
  AsyncAction,
  Decision,
  DemoteMode,
  FollowTarget,
  LogLine,
} from './actions.js';
import { REMOTE_MEMBER, isGuard } from './actions.js';
import { CycleDcsBudget } from './dcs-budget.js';
import { FailsafeState } from './loop-failsafe.js';
import { shutdownHook, waitForSuccessorStream } from './loop-shutdown.js';
import { syncStateValue } from './sync.js';
import { decide } from './decide.js';
import type {
  LocalNode,
  LoopClock,
  LoopDeps,
  LoopLogger,
  ResolvedTarget,
  TaskControl,
} from './loop-ports.js';
import { SYSTEM_CLOCK, parseConnUrl } from './loop-ports.js';
import {
  DEFAULT_HA_CONFIG,
  INITIAL_MEMORY,
  type AsyncKind,
  type HaConfig,
  type HaMemory,
  type HaSnapshot,
  type PendingAsync,
} from './snapshot.js';

interface RunningTask {
  readonly pending: PendingAsync;
  cancelled: boolean;
  readonly done: Promise<void>;
}

/** Thrown inside action execution to stop the remaining actions of a decision. */
class StopActions extends Error {}

/** Patroni's pause after releasing the lock in a demotion: time for somebody to take it. */
export const DEMOTE_LOCK_WAIT_MS = 2_000;

/** The state the executor keeps between cycles and the actions that change it; `HaLoop` (loop.ts) drives it. */
export abstract class LoopActions {
  /** The DCS as a cycle uses it: each call charged to the running cycle's budget (src/ha/dcs-budget.ts). */
  protected readonly dcs: Dcs;
  /** The DCS as a long action uses it: outside any cycle's budget (its calls are not part of the heartbeat). */
  private readonly taskDcs: Dcs;
  protected readonly node: LocalNode;
  protected readonly clock: LoopClock;
  protected readonly log: LoopLogger;
  protected memory: HaMemory = INITIAL_MEMORY;
  protected config: HaConfig = DEFAULT_HA_CONFIG;
  protected heldByMe = false;
  /** Monotonic ms from which the lock counts (its lease's last refresh, as known before the request). */
  protected lockRefreshedMono: number | undefined;
  /** How long the lock lives after a refresh, ms, as the DCS enforces it (lease TTL, negotiated session timeout). */
  protected lockLifetimeMs = DEFAULT_HA_CONFIG.ttl * 1000;
  /** Every DCS call of a cycle shares one retry_timeout (long actions are exempt). */
  protected readonly budget: CycleDcsBudget;
  protected cluster: Cluster | undefined;
  protected task: RunningTask | undefined;
  /** Failsafe mode's state, shared with POST /failsafe (loop-failsafe.ts). */
  protected readonly failsafe: FailsafeState;

  constructor(protected readonly deps: LoopDeps) {
    this.node = deps.node;
    this.clock = deps.clock ?? SYSTEM_CLOCK;
    this.budget = new CycleDcsBudget(() => this.clock.monotonic());
    this.dcs = this.budget.wrap(deps.dcs);
    this.taskDcs = deps.dcs;
    this.log = deps.log;
    this.failsafe = new FailsafeState(() => this.clock.monotonic());
  }

  /** Ends the current wait early (an async task finished, a REST request changed something). */
  abstract wake(): void;

  private ownName: string | undefined;

  /** This member's name, fixed for the agent's life (`node.self` as a whole is read afresh: it checks pg_rewind). */
  protected get myName(): string {
    this.ownName ??= this.node.self.name;
    return this.ownName;
  }

  /** Patroni's `is_leader()`: we hold the lock and refreshed it within ttl. */
  abstract isLeader(): boolean;

  // ---- execution --------------------------------------------------------------------------------------------

  protected async execute(
    decision: Decision,
    snapshot: HaSnapshot,
  ): Promise<{ message: string; logs: LogLine[]; dcsOk: boolean }> {
    const logs: LogLine[] = [...(decision.logs ?? [])];
    try {
      for (const action of decision.actions) {
        if (isGuard(action)) {
          const won = await this.runGuard(action, snapshot);
          if (!won) {
            const other = await this.execute(action.otherwise, snapshot);
            return { message: other.message, logs: [...logs, ...other.logs], dcsOk: other.dcsOk };
          }
          continue;
        }
        await this.runAction(action, snapshot);
      }
      return { message: decision.message, logs, dcsOk: true };
    } catch (e) {
      if (e instanceof StopActions) return { message: e.message, logs, dcsOk: true };
      if (!(e instanceof DcsError)) {
        logs.push({ level: 'error', text: `${decision.message}: ${errorText(e)}` });
        return { message: decision.message, logs, dcsOk: true };
      }
      logs.push({ level: 'error', text: `Error communicating with DCS: ${e.message}` });
      // The contract: decide again as if the DCS could not be read, with the world as it is now: the failed call
      // may have taken retry_timeout, earlier actions of this cycle may have changed the lock or started a task.
      const again = await this.decideOffline(snapshot);
      return { message: again.message, logs: [...logs, ...again.logs], dcsOk: false };
    }
  }

  /** decide() as if the DCS could not be read, now, and run what it says (no guards: they need the DCS). */
  protected async decideOffline(
    stale: HaSnapshot,
  ): Promise<{ message: string; logs: LogLine[]; acted: boolean }> {
    const offline = await this.offlineSnapshot(stale);
    let again = decide(offline);
    const logs: LogLine[] = [...(again.logs ?? [])];
    try {
      // Guards need the DCS and are skipped, except the failsafe check, which needs only the members.
      for (let i = 0; i < again.actions.length; i++) {
        const a = again.actions[i];
        if (a?.type === 'FailsafeCheck' && !(await this.runGuard(a, offline))) {
          again = a.otherwise;
          logs.push(...(again.logs ?? []));
          i = -1;
        } else if (a !== undefined && !isGuard(a)) {
          await this.runAction(a, offline);
        }
      }
    } catch (e) {
      logs.push({ level: 'error', text: `${again.message}: ${errorText(e)}` });
    }
    return { message: again.message, logs, acted: again.actions.length > 0 };
  }

  /** The snapshot to re-decide with after a DCS error in the middle of a cycle: current time, lock, task, PG. */
  private async offlineSnapshot(stale: HaSnapshot): Promise<HaSnapshot> {
    let postgres = stale.postgres;
    try {
      postgres = await this.node.inspect(undefined);
    } catch (e) {
      this.log.warning(`could not inspect PostgreSQL again after the DCS error: ${errorText(e)}`);
    }
    const { pendingAsync: _stalePending, ...rest } = stale;
    const now = this.clock.now();
    return {
      ...rest,
      now,
      cluster: undefined,
      dcsReachable: false,
      postgres,
      lock: this.lockInfo(now),
      ...(this.task ? { pendingAsync: this.task.pending } : {}),
      memory: this.memory,
      ...(this.deps.watchdog ? { watchdog: this.deps.watchdog.view() } : {}),
      failsafe: this.failsafe.view(this.config.ttl),
    };
  }

  private async runGuard(
    action: Extract<Action, { readonly otherwise: Decision }>,
    snapshot: HaSnapshot,
  ): Promise<boolean> {
    switch (action.type) {
      case 'AcquireLock': {
        const sentAt = this.clock.monotonic();
        const won = await this.dcs.attemptToAcquireLeader();
        if (won) this.lockRefreshed(sentAt);
        else this.heldByMe = false;
        return won;
      }
      case 'RefreshLock': {
        const cluster = this.cluster ?? snapshot.cluster;
        if (!cluster) return false;
        const sentAt = this.clock.monotonic();
        const held = await this.dcs.updateLeader(cluster);
        if (!held) {
          this.heldByMe = false;
          return false;
        }
        this.lockRefreshed(sentAt);
        if (action.writeStatus) {
          const status = await this.node.leaderStatusValue(cluster).catch(() => undefined);
          if (status !== undefined) await this.dcs.writeStatus(status);
        }
        return true;
      }
      case 'RaceInitialize':
        return this.dcs.initialize(true, '');
      case 'WatchdogActivate':
        return this.deps.watchdog ? this.deps.watchdog.activate(action.timing) : true;
      case 'FailsafeCheck': {
        const sentAt = this.clock.monotonic();
        if (!(await this.failsafe.check(action, this.deps.failsafe, this.log))) {
          this.failsafe.reset();
          return false;
        }
        // Patroni's set_is_leader(True): the lock counts as ours for another ttl, the DCS untouched.
        this.heldByMe = true;
        this.lockRefreshedMono = sentAt;
        this.failsafe.activate();
        return true;
      }
      case 'WriteSyncState': {
        const value = pyJson(syncStateValue(action.leader, action.syncStandby), true);
        return (await this.dcs.setSyncStateValue(value, action.version)) !== false;
      }
    }
  }

  /**
   * The lock is ours until its lease's refresh + the lease's lifetime at the latest. The DCS extended the lease when
   * it processed the request, after we sent it, so counting from the sending (not the answer) never overestimates
   * what we hold; and a lease the DCS client reused without refreshing it (etcd3 keeps one for ttl/3) counts from
   * its own last refresh, which is earlier.
   */
  private lockRefreshed(sentAt: number): void {
    this.heldByMe = true;
    const lease = this.dcs.leaseRefreshedAt();
    this.lockRefreshedMono = lease === undefined ? sentAt : Math.min(sentAt, lease);
    this.lockLifetimeMs = this.dcs.lockLifetime() * 1000;
  }

  private forgetLock(): void {
    this.heldByMe = false;
    this.lockRefreshedMono = undefined;
  }

  /** How long the lock lives from now, ms (after a refresh: for the watchdog's keepalive); undefined if not ours. */
  private lockLeftMs(): number | undefined {
    if (!this.heldByMe || this.lockRefreshedMono === undefined) return undefined;
    return this.lockRefreshedMono + this.lockLifetimeMs - this.clock.monotonic();
  }

  /** The lock as decide() sees it: monotonic times turned into the snapshot's `now` frame. */
  protected lockInfo(now: number): HaSnapshot['lock'] {
    if (this.lockRefreshedMono === undefined) return { heldByMe: this.heldByMe };
    const lastRefreshOk = now - (this.clock.monotonic() - this.lockRefreshedMono);
    return { heldByMe: this.heldByMe, lastRefreshOk, expiresAt: lastRefreshOk + this.lockLifetimeMs };
  }

  /**
   * Right before `pg_ctl promote`: refresh the lock and confirm it is still ours and not about to expire. A
   * candidate whose pre_promote ran long may have lost the DCS or the lock meanwhile.
   */
  private async confirmLock(dcs: Dcs): Promise<boolean> {
    const cluster = this.cluster;
    if (!this.heldByMe || cluster === undefined) return false;
    const sentAt = this.clock.monotonic();
    try {
      if (!(await dcs.updateLeader(cluster))) {
        this.forgetLock();
        this.log.warning('lost the leader lock before pg_ctl promote: not promoting');
        return false;
      }
    } catch (e) {
      this.log.warning(
        `cannot confirm the leader lock before pg_ctl promote, not promoting: ${errorText(e)}`,
      );
      return false;
    }
    this.lockRefreshed(sentAt);
    return this.isLeader();
  }

  /**
   * One non-guard action, by concern. The switch names every action type (lint checks it exhaustive): a new type
   * must be given a home here or it does not compile.
   */
  private async runAction(action: Action, snapshot: HaSnapshot): Promise<void> {
    const cluster = this.cluster ?? snapshot.cluster;
    switch (action.type) {
      case 'AcquireLock':
      case 'RefreshLock':
      case 'RaceInitialize':
      case 'WriteSyncState':
      case 'WatchdogActivate':
      case 'FailsafeCheck':
        throw new Error(`${action.type} is a guard`);
      case 'WatchdogKeepalive':
        await this.deps.watchdog?.keepalive(action.timing, this.lockLeftMs());
        return;
      case 'WatchdogDisable':
        await this.deps.watchdog?.disable();
        return;
      case 'MarkDemoted':
        this.node.markDemoted();
        return;
      case 'ReleaseLock':
      case 'TakeLeader':
        return this.runLockAction(action, cluster);
      case 'Promote':
      case 'StartPostgres':
      case 'CrashRecovery':
      case 'Bootstrap':
      case 'PostBootstrap':
      case 'CloneFrom':
      case 'Rewind':
      case 'Reinitialize':
        return this.startLongAction(action, cluster);
      case 'Demote':
      case 'FollowLeader':
      case 'StopPostgres':
      case 'ProcessSyncReplication':
      case 'SetSynchronousStandbyNames':
        return this.controlPostgres(action, cluster, snapshot);
      case 'ClearFailoverKey':
      case 'RewriteFailoverKey':
      case 'WriteHistory':
      case 'WriteInitialize':
      case 'CancelInitialization':
      case 'WriteConfig':
        return this.writeClusterKey(action, cluster);
      case 'WriteFailsafe':
        await this.dcs.writeFailsafe(pyJson(action.topology, true));
        this.failsafe.topology = action.topology;
        return;
      case 'CancelAsync':
      case 'ProbePeers':
      case 'Wait':
      case 'Exit':
      case 'UpdateMemory':
        return this.controlLoop(action);
    }
  }

  /** The leader lock outside the guards: released on demand, or put plainly after a bootstrap. */
  private async runLockAction(
    action: ActionOf<'ReleaseLock' | 'TakeLeader'>,
    cluster: Cluster | undefined,
  ): Promise<void> {
    switch (action.type) {
      case 'ReleaseLock':
        if (cluster) await this.dcs.deleteLeader(cluster);
        this.forgetLock();
        return;
      case 'TakeLeader': {
        const sentAt = this.clock.monotonic();
        await this.dcs.takeLeader();
        this.lockRefreshed(sentAt);
        return;
      }
    }
  }

  /** The long actions: each starts a background task off the heartbeat path (see startTask). */
  private async startLongAction(action: AsyncAction, cluster: Cluster | undefined): Promise<void> {
    switch (action.type) {
      case 'Promote':
        this.failsafe.reset(); // Patroni resets the failsafe state when it promotes
        this.startTask(action.kind, action.description, async (t) => {
          const ok = await this.node.promote(t, cluster, () => this.confirmLock(this.taskDcs));
          // decide() releases the lock on the next cycle and backs off the race for ttl.
          if (ok === 'pre_promote_failed' && !t.cancelled())
            this.memory = { ...this.memory, prePromoteFailed: true };
          else if (!ok && !t.cancelled()) this.log.error('failed to promote PostgreSQL');
        });
        return;
      case 'StartPostgres': {
        const target = await this.resolve(action.target, this.dcs);
        const as = action.standbyLeader && action.as === 'replica' ? 'standby_leader' : action.as;
        this.startTask(action.kind, action.description, async (t) => {
          const ok = await this.node.start(as, target, action.timeout, t);
          if (!ok) this.log.error('failed to start PostgreSQL');
        });
        return;
      }
      case 'CrashRecovery':
        this.startTask(action.kind, action.description, async (t) => {
          const ok = await this.node.crashRecovery(t);
          if (!ok) this.log.error('crash recovery in single user mode failed');
        });
        return;
      case 'Bootstrap':
        if (action.standbyLeader) {
          const remote = await this.resolve({ kind: 'remote' }, this.dcs);
          // No post_bootstrap for a standby leader: its result is the bootstrap's (Patroni's bootstrap_standby_leader).
          this.startTask(action.kind, action.description, async (t) => {
            const ok = (await this.node.bootstrapStandbyLeader?.(remote, t)) ?? false;
            this.memory = { ...this.memory, bootstrapResult: ok };
          });
          return;
        }
        this.startTask(action.kind, action.description, async (t) => {
          const ok = await this.node.bootstrap(t);
          if (!ok) this.memory = { ...this.memory, bootstrapResult: false };
        });
        return;
      case 'PostBootstrap':
        this.startTask(action.kind, action.description, async (t) => {
          const ok = await this.node.postBootstrap(t);
          this.memory = { ...this.memory, bootstrapResult: ok };
        });
        return;
      case 'CloneFrom':
        return this.startClone(action, cluster);
      case 'Rewind':
      case 'Reinitialize':
        return this.startRewindOrReinitialize(action, cluster);
    }
  }

  private startClone(action: ActionOf<'CloneFrom'>, cluster: Cluster | undefined): void {
    const from =
      action.member === undefined ? undefined : cluster?.members.find((m) => m.name === action.member);
    if (action.member !== undefined && from === undefined) {
      this.log.warning(`cannot clone from ${action.member}: it has no member key`);
      return;
    }
    this.startTask(action.kind, action.description, async (t) => {
      const ok = await this.node.clone(from, t);
      if (ok) this.log.info(`bootstrapped ${from ? `from leader '${from.name}'` : '(without leader)'}`);
      else this.log.error(`failed to bootstrap ${from ? `from '${from.name}'` : '(without leader)'}`);
    });
  }

  private startRewindOrReinitialize(
    action: ActionOf<'Rewind' | 'Reinitialize'>,
    cluster: Cluster | undefined,
  ): void {
    // A standby cluster rewinds from its remote primary (ha.py `_handle_rewind_or_reinitialize`, get_remote_member).
    const source: Member | ResolvedTarget | undefined =
      action.type === 'Rewind' && action.remote
        ? this.remoteTarget()
        : cluster?.members.find((m) => m.name === action.member);
    if (source === undefined) {
      this.log.warning(`cannot ${action.description}: ${action.member} has no member key`);
      return;
    }
    this.startTask(action.kind, action.description, async (t) => {
      let ok: boolean;
      if (action.type === 'Rewind') ok = await this.node.rewind(source, t);
      else ok = 'data' in source && (await this.node.reinitialize(source, t));
      if (ok && action.type === 'Rewind') this.memory = { ...this.memory, rewindSucceeded: true };
      if (!ok && !t.cancelled()) this.log.error(`${action.description} did not succeed`);
    });
  }

  /** The local PostgreSQL, within the cycle (a demotion may run as a task): follow, stop, demote, sync standbys. */
  private async controlPostgres(
    action: ActionOf<
      'Demote' | 'FollowLeader' | 'StopPostgres' | 'ProcessSyncReplication' | 'SetSynchronousStandbyNames'
    >,
    cluster: Cluster | undefined,
    snapshot: HaSnapshot,
  ): Promise<void> {
    switch (action.type) {
      case 'Demote':
        if (action.async) {
          this.startTask(action.kind, action.description, async () => {
            if (await this.demote(action.mode, this.taskDcs, snapshot))
              await this.followAfterDemote(action.mode, this.taskDcs);
          });
        } else if (await this.demote(action.mode, this.dcs, snapshot)) {
          // Patroni's demote: an immediate stop is followed by an asynchronous 'starting after demotion'.
          this.startTask('start', 'starting after demotion', () =>
            this.followAfterDemote(action.mode, this.taskDcs),
          );
        }
        return;
      case 'FollowLeader': {
        const target = await this.resolve(action.target, this.dcs);
        await this.node.follow(target, action.standbyLeader === true);
        return;
      }
      case 'StopPostgres':
        await this.node.stop(action.mode);
        return;
      case 'ProcessSyncReplication':
        await this.processSyncReplication(cluster);
        return;
      case 'SetSynchronousStandbyNames':
        await this.deps.sync.setStandbyNames(action.names, action.num);
        return;
    }
  }

  /** The cluster's shared keys besides the lock: failover, history, initialize, config. */
  private async writeClusterKey(
    action: ActionOf<
      | 'ClearFailoverKey'
      | 'RewriteFailoverKey'
      | 'WriteHistory'
      | 'WriteInitialize'
      | 'CancelInitialization'
      | 'WriteConfig'
    >,
    cluster: Cluster | undefined,
  ): Promise<void> {
    switch (action.type) {
      case 'ClearFailoverKey':
        await this.dcs.setFailoverValue('{}', action.version);
        return;
      case 'RewriteFailoverKey':
        await this.dcs.setFailoverValue(
          pyJson(
            {
              member: action.candidate,
              ...(action.scheduledAt === undefined ? {} : { scheduled_at: action.scheduledAt }),
            },
            true,
          ),
          action.version,
        );
        return;
      case 'WriteHistory': {
        if (!cluster) return;
        const value = await this.node.historyValue(cluster);
        if (value !== undefined) await this.dcs.setHistoryValue(value);
        return;
      }
      case 'WriteInitialize':
        await this.dcs.initialize(action.createNew, action.sysid);
        return;
      case 'CancelInitialization': {
        await this.dcs.cancelInitialization();
        await this.node.abandonBootstrap();
        this.deps.onFatal(1, 'removed initialize key after failed attempt to bootstrap the cluster');
        throw new StopActions('removing initialize key after failed attempt to bootstrap the cluster');
      }
      case 'WriteConfig':
        await this.dcs.setConfigValue(this.node.dynamicConfigValue());
        return;
    }
  }

  /** The loop itself: the running task, waits, the agent's exit, the memory carried between cycles. */
  private async controlLoop(
    action: ActionOf<'CancelAsync' | 'ProbePeers' | 'Wait' | 'Exit' | 'UpdateMemory'>,
  ): Promise<void> {
    switch (action.type) {
      case 'CancelAsync': {
        const task = this.task;
        if (task && task.pending.kind === action.kind) {
          task.cancelled = true;
          this.log.warning(
            `cancelling ${task.pending.description}: it stops at its next step (a running program is not killed)`,
          );
        }
        return;
      }
      case 'ProbePeers':
        this.log.warning('ProbePeers is only valid as the sole action of a decision; ignored');
        return;
      case 'Wait':
        await this.clock.sleep(action.ms);
        return;
      case 'Exit':
        this.log.error(action.reason);
        this.deps.onFatal(action.code, action.reason);
        throw new StopActions(action.reason);
      case 'UpdateMemory':
        this.memory = { ...this.memory, ...action.patch };
        return;
    }
  }

  private async processSyncReplication(cluster: Cluster | undefined): Promise<void> {
    if (cluster) await this.deps.sync.process(cluster, this.config);
  }

  /**
   * Stop PostgreSQL as the mode says (ha.py `demote`); graceful and immediate also release the lock. True when
   * PostgreSQL is then to start again as a replica of the lock holder (`followAfterDemote`); the offline mode (the
   * DCS cannot be read) has already started it read-only, following nobody, as Patroni's `demote('offline')` does.
   */
  private async demote(mode: DemoteMode, dcs: Dcs, snapshot: HaSnapshot): Promise<boolean> {
    if (mode === 'demote-cluster') return this.demoteCluster(dcs, snapshot);
    const stopMode = mode === 'immediate' || mode === 'immediate-nolock' ? 'immediate' : 'fast';
    if (mode === 'graceful' && this.cluster) {
      const waitFor = { node: this.node, clock: this.clock, log: this.log, snapshot, cluster: this.cluster };
      await waitForSuccessorStream(waitFor);
    }
    if (mode === 'graceful') {
      await this.node.checkpoint().catch((e: unknown) => {
        this.log.warning(`checkpoint before demote failed: ${errorText(e)}`);
      });
    }
    let released = false;
    // Patroni's `on_shutdown` of a graceful demotion: the lock goes early only to a member with our checkpoint.
    const onShutdown =
      mode === 'graceful'
        ? this.lockReleaseAtCheckpoint(dcs, snapshot, () => {
            released = true;
          })
        : undefined;
    await this.node.stop(stopMode, mode, onShutdown);
    // As Patroni: synchronous_standby_names is cleared on demotion.
    if (this.config.synchronousMode !== 'off') await this.deps.sync?.setStandbyNames([]);
    const checkpoint =
      mode === 'graceful' ? await this.node.shutdownCheckpoint().catch(() => undefined) : undefined;
    if (checkpoint !== undefined) this.log.info(`demoted: shutdown checkpoint at ${formatLsn(checkpoint)}`);
    if ((mode === 'graceful' || mode === 'immediate') && !released) {
      const cluster = this.cluster;
      if (checkpoint !== undefined) await dcs.writeStatus(this.node.shutdownStatusValue(checkpoint));
      if (cluster && this.heldByMe) await dcs.deleteLeader(cluster);
      this.forgetLock();
    }
    if (mode === 'offline') {
      // Patroni's set_is_leader(False): the lock is not released (the DCS is out of reach) but no longer claimed.
      this.lockRefreshedMono = undefined;
      await this.node.start('replica', undefined, undefined, { cancelled: () => false });
      return false;
    }
    return true;
  }

  /**
   * Patroni's `on_shutdown` hook for a stop that may hand the lock over: at the shutdown checkpoint the lock is
   * released when a member that may take over has received it. Undefined when we hold no lock to hand over.
   */
  private lockReleaseAtCheckpoint(dcs: Dcs, snapshot: HaSnapshot, onReleased: () => void) {
    const cluster = this.cluster;
    if (!cluster || !this.heldByMe) return undefined;
    return shutdownHook({
      dcs,
      node: this.node,
      probe: this.deps.probe,
      clock: this.clock,
      log: this.log,
      snapshot,
      cluster,
      holdsLock: () => this.heldByMe,
      released: () => {
        onReleased();
        this.forgetLock();
      },
      writeOptimeOtherwise: false,
    });
  }

  /**
   * Patroni's `demote('demote-cluster')`: the cluster became a standby cluster. Stop fast; at the shutdown checkpoint
   * the lock goes to the cluster when a member that may take over has received it (`on_shutdown`, as a graceful
   * demotion), except with archiving on, where the lock is kept and the checkpoint's WAL segment archived. Kept: the
   * lock is refreshed and PostgreSQL starts as the standby leader following the remote primary. Released: after
   * `DEMOTE_LOCK_WAIT_MS` it starts as a replica of the new lock holder (of the remote primary while nobody holds it).
   */
  private async demoteCluster(dcs: Dcs, snapshot: HaSnapshot): Promise<boolean> {
    let released = false;
    const archiving = this.node.archivesShutdownCheckpoint?.() === true;
    const onShutdown = archiving
      ? undefined
      : this.lockReleaseAtCheckpoint(dcs, snapshot, () => {
          released = true;
        });
    await this.node.stop('fast', 'demote-cluster', onShutdown);
    const cluster = this.cluster;
    let held = false;
    if (!released && cluster && this.heldByMe) {
      const sentAt = this.clock.monotonic();
      held = await dcs.updateLeader(cluster).catch(() => false);
      if (held) this.lockRefreshed(sentAt);
      else this.forgetLock();
    }
    // Patroni's `time.sleep(2)`: time for a member to take the lock released at the shutdown checkpoint.
    if (released) await this.clock.sleep(DEMOTE_LOCK_WAIT_MS);
    await this.node.archiveShutdownCheckpoint?.().catch((e: unknown) => {
      this.log.warning(`archiving the shutdown checkpoint WAL failed: ${errorText(e)}`);
    });
    if (this.config.synchronousMode !== 'off') await this.deps.sync?.setStandbyNames([]);
    if (held) {
      await this.node.start('standby_leader', this.remoteTarget(), undefined, { cancelled: () => false });
      return false;
    }
    // ha.py `_get_node_to_follow`: the new standby leader, or the remote primary while the cluster is unlocked.
    const target = await this.resolve({ kind: 'lock-holder' }, dcs);
    const unlocked = this.cluster?.leader === undefined && !this.config.paused;
    const to = target ?? (unlocked ? this.remoteTarget() : undefined);
    await this.node.start('replica', to, undefined, { cancelled: () => false });
    return false;
  }

  /**
   * After a demotion, PostgreSQL starts as a replica of whoever holds the lock after a re-read (ha.py `demote`, which
   * first gives the other members `DEMOTE_LOCK_WAIT_MS` to take a lock it released), so that the former primary comes
   * back with primary_conninfo. A diverged timeline is not checked here, as in Patroni: the running replica's
   * divergence check that follows every start finds it, and pg_rewind runs then.
   */
  private async followAfterDemote(mode: DemoteMode, dcs: Dcs): Promise<void> {
    if (mode === 'graceful' || mode === 'immediate') await this.clock.sleep(DEMOTE_LOCK_WAIT_MS);
    const target = await this.resolve({ kind: 'lock-holder' }, dcs);
    await this.node.start('replica', target, undefined, { cancelled: () => false });
  }

  private async resolve(target: FollowTarget, dcs: Dcs): Promise<ResolvedTarget | undefined> {
    let name: string | undefined;
    let connUrl: string | undefined;
    if (target.kind === 'none') return undefined;
    if (target.kind === 'remote') return this.remoteTarget();
    if (target.kind === 'member') {
      name = target.name;
      connUrl = target.connUrl ?? this.cluster?.members.find((m) => m.name === target.name)?.data.connUrl;
    } else {
      // Re-read the cluster and follow whoever holds the lock now.
      try {
        const c = await dcs.getCluster();
        this.cluster = c;
        this.heldByMe = c.leader?.name === this.myName;
        name = c.leader?.name;
        connUrl = c.leader?.member?.data.connUrl;
      } catch (e) {
        if (!(e instanceof DcsError)) throw e;
        name = this.cluster?.leader?.name;
        connUrl = this.cluster?.leader?.member?.data.connUrl;
      }
    }
    // A `nostream` member follows nobody, also after a lost race or a demotion (ha.py `_get_node_to_follow`).
    if (!name || name === this.myName || this.node.self.tags.nostream) return undefined;
    const addr = parseConnUrl(connUrl);
    if (!addr) {
      this.log.warning(`cannot follow ${name}: its member key has no usable conn_url`);
      return undefined;
    }
    return { name, ...addr };
  }

  /**
   * The standby cluster's remote primary from `standby_cluster` (Patroni's `get_remote_member`); undefined when it
   * names neither host nor port (archive recovery only) or this is no standby cluster.
   */
  protected remoteTarget(): ResolvedTarget | undefined {
    const sc = this.config.standby;
    if (sc === undefined || this.node.self.tags.nostream) return undefined;
    if (sc.host === undefined && sc.port === undefined) return undefined;
    return { name: REMOTE_MEMBER, host: sc.host ?? 'localhost', port: sc.port ?? 5432, remote: true };
  }

  /** Starts a long action off the heartbeat path; it wakes the loop when it ends. */
  protected startTask(kind: AsyncKind, description: string, body: (t: TaskControl) => Promise<void>): void {
    if (this.task) {
      this.log.warning(`not starting ${description}: ${this.task.pending.description} is still running`);
      return;
    }
    const pending: PendingAsync = { kind, description, startedAt: this.clock.now() };
    const holder: { cancelled: boolean } = { cancelled: false };
    const control: TaskControl = { cancelled: () => holder.cancelled };
    // A long action's DCS calls go through taskDcs, outside the cycle's budget: they are not part of the heartbeat.
    const done = (async (): Promise<void> => {
      // Let the cycle that started the task finish first.
      await Promise.resolve();
      try {
        await body(control);
      } catch (e) {
        this.log.error(`${description} failed: ${errorText(e)}`);
        if (kind === 'bootstrap') this.memory = { ...this.memory, bootstrapResult: false };
        if (kind === 'post_bootstrap') this.memory = { ...this.memory, bootstrapResult: false };
      } finally {
        this.task = undefined;
        this.wake();
      }
    })();
    const task: RunningTask = {
      pending,
      get cancelled() {
        return holder.cancelled;
      },
      set cancelled(v: boolean) {
        holder.cancelled = v;
      },
      done,
    };
    this.task = task;
  }
}
