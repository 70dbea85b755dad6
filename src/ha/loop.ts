/**
 * The HA loop: the imperative shell around `decide()` (Patroni's `Ha.run_cycle` plus `Patroni.run`). Every cycle
 * it gathers a snapshot (DCS, local PostgreSQL, the state kept between cycles), asks `decide()` what to do,
 * executes the actions by the contract in actions.ts, logs Patroni's one line, and publishes the member key.
 *
 * This is the only module of src/ha that does I/O, and it does it only through injected ports: the DCS, the local
 * node (`LocalNode`, implemented by src/agent), a peer prober, a clock and a logger. Long actions (bootstrap,
 * clone, promote, start, demote, crash recovery) run as tracked background tasks off the heartbeat path; every
 * promise is awaited or has its rejection handled, and a finished task wakes the loop.
 */
import { DynamicConfigGuard } from '../config/config-check.js';
import { DcsError } from '../dcs/dcs.js';
import type { Cluster } from '../model/cluster.js';
import { errorText } from '../model/text.js';
import type { LogLine } from './actions.js';
import { cycleLogLine, decide } from './decide.js';
import { failsafeUpdatedCluster, withFailsafeLeader, withFailsafeSlots } from './failsafe.js';
import { LoopActions } from './loop-actions.js';
import { shutdownHook, type ShutdownHook } from './loop-shutdown.js';
import { watchdogHealthy } from './watchdog.js';
import type { CycleResult, TaskControl } from './loop-ports.js';
import {
  haConfigFromDynamic,
  type AsyncKind,
  type FailsafeLeader,
  type HaConfig,
  type HaMemory,
  type HaSnapshot,
  type PeerStatus,
  type PendingAsync,
  type PostgresInfo,
} from './snapshot.js';

// The ports live in loop-ports.ts; importers keep reading them from here.
export type {
  CycleResult,
  FailsafeAnswer,
  FailsafeCaller,
  LocalNode,
  LoopClock,
  LoopDeps,
  LoopLogger,
  PeerProber,
  ResolvedTarget,
  StartRole,
  SyncReplicationPort,
  TaskControl,
  WatchdogPort,
  WatchdogTiming,
} from './loop-ports.js';
export { SYSTEM_CLOCK, parseConnUrl } from './loop-ports.js';
export { DEMOTE_LOCK_WAIT_MS } from './loop-actions.js';

// ---------------------------------------------------------------------------------------------------------------
// The loop

export class HaLoop extends LoopActions {
  private configApplied = false;
  private absorbedConfig: unknown;
  /** Refused settings in the DCS config key: logged, and read the safe way (src/config/config-check.ts). */
  private readonly configGuard = new DynamicConfigGuard();
  private lastLockedCluster: Cluster | undefined;
  private lastDcsSeen = 0;
  private stopping = false;
  private wakeUp: (() => void) | undefined;
  private wakePending = false;
  /** Monotonic ms of the next cycle. */
  private nextRunMono = 0;
  private cyclePromise: Promise<void> | undefined;
  /** The last inspection of the local PostgreSQL (Patroni's `_last_wal_lsn` comes from it). */
  private lastPostgres: PostgresInfo | undefined;

  // ---- views for the REST API and shutdown ------------------------------------------------------------------

  /** The cluster view of the last successful read. */
  get lastCluster(): Cluster | undefined {
    return this.cluster;
  }

  get haConfig(): HaConfig {
    return this.config;
  }

  /** Patroni's `is_leader()`: we hold the lock and refreshed it within ttl. */
  isLeader(): boolean {
    return this.leaderLockUntil() !== undefined;
  }

  /** Epoch ms until which the lock is ours, or undefined. Measured on the monotonic clock, shown as a date. */
  leaderLockUntil(): number | undefined {
    if (!this.heldByMe || this.lockRefreshedMono === undefined) return undefined;
    const left = this.lockRefreshedMono + this.lockLifetimeMs - this.clock.monotonic();
    return left > 0 ? Math.floor(this.clock.now() + left) : undefined;
  }

  get dcsLastSeen(): number {
    return this.lastDcsSeen;
  }

  /** Epoch ms of the next cycle. */
  get nextRun(): number {
    return Math.round(this.clock.now() + (this.nextRunMono - this.clock.monotonic()));
  }

  get pendingAsync(): PendingAsync | undefined {
    return this.task?.pending;
  }

  get haMemory(): HaMemory {
    return this.memory;
  }

  // ---- failsafe mode (src/ha/failsafe.ts) ---------------------------------------------------------------------

  /** Patroni's `failsafe_is_active()`: GET /patroni's `failsafe_mode_is_active`. */
  failsafeIsActive(): boolean {
    return this.failsafe.isActive(this.config.ttl);
  }

  /** Patroni's `dcs.failsafe` (GET /failsafe): the `/failsafe` topology last read or written. */
  get failsafeTopology(): Readonly<Record<string, string>> | undefined {
    return this.failsafe.topology;
  }

  /**
   * POST /failsafe from a leader (Patroni's `update_failsafe`; the caller checked that PostgreSQL is no running
   * primary): remember the leader for ttl. Returns our last known received/replayed position (the `lsn` header).
   */
  failsafeContactedBy(leader: FailsafeLeader): bigint | undefined {
    this.failsafe.contactedBy(leader);
    const pg = this.lastPostgres;
    return pg !== undefined && !pg.isPrimary && pg.walPosition > 0n ? pg.walPosition : undefined;
  }

  /**
   * The agent's shutdown of a leader (Patroni's `_on_shutdown` in `Ha.shutdown`): the hook its stop of PostgreSQL
   * calls at the shutdown checkpoint; undefined when we hold no lock or know too little to decide.
   */
  shutdownHook(released: () => void): ShutdownHook | undefined {
    const cluster = this.cluster;
    const pg = this.lastPostgres;
    if (!cluster || !pg || !this.heldByMe) return undefined;
    return shutdownHook({
      dcs: this.deps.dcs,
      node: this.node,
      probe: this.deps.probe,
      clock: this.clock,
      log: this.log,
      snapshot: this.snapshot(this.clock.now(), cluster, true, pg),
      cluster,
      holdsLock: () => this.isLeader(),
      released,
      writeOptimeOtherwise: true,
    });
  }

  /** GET /patroni's `watchdog_failed`: a `required` watchdog that cannot be used (src/ha/watchdog.ts). */
  get watchdogFailed(): boolean {
    return !watchdogHealthy(this.deps.watchdog?.view(), this.config);
  }

  // ---- running ----------------------------------------------------------------------------------------------

  /** Runs cycles until `stop()`. Resolves after the last cycle (a running long action may still be going). */
  async run(): Promise<void> {
    this.nextRunMono = this.clock.monotonic();
    while (!this.stopping) {
      this.cyclePromise = this.runCycle().then(
        () => undefined,
        (e: unknown) => this.log.error(`unexpected error in the HA cycle: ${errorText(e)}`),
      );
      await this.cyclePromise;
      this.cyclePromise = undefined;
      if (this.stopping) break;
      this.nextRunMono += this.config.loopWait * 1000;
      const now = this.clock.monotonic();
      if (this.nextRunMono <= now) {
        this.log.warning('Loop time exceeded, rescheduling immediately.');
        this.nextRunMono = now;
        continue;
      }
      const woken = await this.waitUntil(this.nextRunMono);
      if (woken) this.nextRunMono = this.clock.monotonic();
    }
  }

  /** Asks `run()` to finish after the current cycle. */
  stop(): void {
    this.stopping = true;
    this.wake();
  }

  /** Ends the current wait early (an async task finished, a REST request changed something). */
  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    if (w) w();
    else this.wakePending = true;
  }

  /**
   * Runs a long action asked for over the REST API (restart, reinitialize) as the loop's tracked task, so that
   * decide() sees it as in progress. Returns the running action's description instead when one is going on;
   * otherwise a promise of the action's result.
   */
  startRequested(
    kind: AsyncKind,
    description: string,
    body: (t: TaskControl) => Promise<boolean>,
  ): Promise<boolean> | string {
    if (this.task) return this.task.pending.description;
    return new Promise<boolean>((resolve) => {
      this.startTask(kind, description, async (t) => {
        let ok = false;
        try {
          ok = await body(t);
        } finally {
          resolve(ok);
        }
      });
    });
  }

  /** Asks the running long action (if any) to stop at its next step (`force` of POST /reinitialize). */
  cancelTask(): void {
    if (this.task) this.task.cancelled = true;
  }

  /** Resolves when the running long action (if any) has finished. */
  async waitForTask(): Promise<void> {
    while (this.task) await this.task.done;
  }

  /** Waits for the DCS watch, an internal wake-up or the (monotonic) deadline; true when woken early. */
  private async waitUntil(deadline: number): Promise<boolean> {
    if (this.wakePending) {
      this.wakePending = false;
      return true;
    }
    const timeout = Math.max(0, deadline - this.clock.monotonic());
    const internal = new Promise<boolean>((resolve) => {
      this.wakeUp = () => resolve(true);
    });
    const watched = this.dcs.watch(timeout).then(
      (changed) => changed,
      (e: unknown) => {
        this.log.warning(`DCS watch failed: ${errorText(e)}`);
        return false;
      },
    );
    // A timer too: a DCS watch that ignores its timeout must not stall the loop.
    const timer = this.clock.sleep(timeout + 1000).then(() => false);
    const woken = await Promise.race([internal, watched, timer]);
    this.wakeUp = undefined;
    return woken;
  }

  /** One HA cycle. Public for tests. */
  async runCycle(): Promise<CycleResult> {
    return this.budget.run(this.config.retryTimeout * 1000, () => this.cycle());
  }

  private async cycle(): Promise<CycleResult> {
    let cluster: Cluster | undefined;
    let dcsOk = true;
    try {
      cluster = await this.dcs.getCluster();
      this.lastDcsSeen = Math.floor(this.clock.now() / 1000);
    } catch (e) {
      if (!(e instanceof DcsError)) throw e;
      dcsOk = false;
      this.log.error(`Error communicating with DCS: ${e.message}`);
    }
    if (cluster) {
      this.absorbCluster(cluster);
      // An unlocked cluster shows the leader that contacted us by POST /failsafe within ttl (Patroni's
      // load_cluster_from_dcs).
      cluster = withFailsafeLeader(cluster, this.config, this.failsafe.activeLeader(this.config.ttl));
      this.cluster = cluster;
    }

    let postgres: PostgresInfo;
    try {
      postgres = await this.node.inspect(
        cluster,
        this.config.standby === undefined ? undefined : { remote: this.remoteTarget() },
      );
      this.lastPostgres = postgres;
    } catch (e) {
      this.log.error(`Error communicating with PostgreSQL. Will try again later (${errorText(e)})`);
      if (dcsOk) await this.touchMember();
      return { message: 'Error communicating with PostgreSQL. Will try again later', dcsOk };
    }

    if (cluster && dcsOk && !cluster.members.some((m) => m.name === this.myName)) {
      dcsOk = await this.touchMember();
    }

    // The decision time is taken after the DCS read (and PostgreSQL's inspection): a read that hung for
    // retry_timeout must not make a lock refreshed long ago look fresh.
    let snapshot = this.snapshot(this.clock.now(), cluster, dcsOk, postgres);
    let decision = decide(snapshot);
    const [first] = decision.actions;
    if (first?.type === 'ProbePeers' && cluster) {
      const peers = await this.safeProbe(first.members);
      snapshot = { ...snapshot, now: this.clock.now(), peers };
      decision = decide(snapshot);
    }

    const outcome = await this.execute(decision, snapshot);
    if (!outcome.dcsOk) dcsOk = false;
    // Patroni's `finally`: a leader that could use the DCS is not in failsafe mode.
    if (dcsOk && this.isLeader()) this.failsafe.reset();
    this.writeLogs(outcome.logs);
    this.log.info(cycleLogLine(snapshot, { ...decision, message: outcome.message }));
    if (!dcsOk) await this.syncSlotsWithoutDcs(snapshot);
    await this.node.applyConfiguration?.().catch((e: unknown) => {
      this.log.warning(`applying the configuration to PostgreSQL failed: ${errorText(e)}`);
    });

    if (dcsOk) {
      dcsOk = await this.afterCycle(snapshot);
      if (!dcsOk) {
        // The member key could not be written (the DCS went away after the lock refresh): decide now rather than
        // after the next cycle's read has timed out too, so a primary cut off gives up retry_timeout sooner.
        const again = await this.decideOffline(snapshot);
        this.writeLogs(again.logs);
        if (again.acted) this.log.info(cycleLogLine(snapshot, { actions: [], message: again.message }));
      }
    }
    return { message: outcome.message, dcsOk };
  }

  private absorbCluster(cluster: Cluster): void {
    this.cluster = cluster;
    this.heldByMe = cluster.leader?.name === this.myName;
    if (cluster.leader?.name) this.lastLockedCluster = cluster;
    this.failsafe.topology = cluster.failsafe;
    // The config key as last absorbed (its text; the object itself for a cluster built without one): an unchanged
    // key, nearly every cycle, is neither validated nor applied again, as its data is parsed from that text alone.
    const config = cluster.config;
    const seen: unknown = config?.valid ? config.raw || config.data : undefined;
    if (this.configApplied && seen === this.absorbedConfig) return;
    this.absorbedConfig = seen;
    const data = cluster.config?.valid ? cluster.config.data : undefined;
    const dynamic =
      data && Object.keys(data).length > 0 ? this.configGuard.absorb(data, this.log) : undefined;
    if (dynamic) this.node.dynamicConfigChanged(dynamic);
    this.applyConfig(dynamic ?? (this.configApplied ? undefined : this.node.localDynamicConfig()));
  }

  private applyConfig(data: Readonly<Record<string, unknown>> | undefined): void {
    if (data === undefined) return;
    const next = haConfigFromDynamic(data);
    const old = this.config;
    this.config = next;
    if (!this.configApplied || old.ttl !== next.ttl || old.retryTimeout !== next.retryTimeout) {
      this.dcs.setTimings(next.ttl, next.retryTimeout);
    }
    this.configApplied = true;
  }

  private snapshot(
    now: number,
    cluster: Cluster | undefined,
    dcsOk: boolean,
    postgres: PostgresInfo,
  ): HaSnapshot {
    return {
      now,
      me: this.node.self,
      config: this.config,
      cluster,
      dcsReachable: dcsOk,
      ...(this.lastLockedCluster ? { lastLockedCluster: this.lastLockedCluster } : {}),
      postgres,
      lock: this.lockInfo(now),
      ...(this.task ? { pendingAsync: this.task.pending } : {}),
      memory: this.memory,
      ...(this.deps.watchdog ? { watchdog: this.deps.watchdog.view() } : {}),
      failsafe: this.failsafe.view(this.config.ttl),
    };
  }

  private async safeProbe(
    members: readonly { readonly name: string; readonly apiUrl: string }[],
  ): Promise<ReadonlyMap<string, PeerStatus>> {
    try {
      return await this.deps.probe(members);
    } catch (e) {
      this.log.warning(`probing members failed: ${errorText(e)}`);
      return new Map();
    }
  }

  /**
   * Slot housekeeping on any running member, primary or replica (Patroni syncs slots on every node once no long
   * action runs and PostgreSQL is not starting), then `touch_member`. Returns whether the DCS stayed reachable.
   */
  private async afterCycle(snapshot: HaSnapshot): Promise<boolean> {
    const cluster = this.cluster;
    const pg = snapshot.postgres;
    if (
      cluster &&
      !this.task &&
      pg.isRunning &&
      pg.state !== 'starting' &&
      (this.heldByMe || !pg.isPrimary)
    ) {
      await this.syncSlots(cluster);
    }
    return this.touchMember();
  }

  /**
   * Patroni's `_handle_dcs_error` (not paused) with failsafe mode on: slot housekeeping with the last known cluster
   * on a running replica, so permanent slots follow the positions a leader sent by POST /failsafe, and on a primary
   * whose check passed, with the positions its members sent back (cascading members' slots advance).
   */
  private async syncSlotsWithoutDcs(snapshot: HaSnapshot): Promise<void> {
    const pg = snapshot.postgres;
    const cluster = this.cluster;
    if (!cluster || !this.config.failsafeMode || this.config.paused || this.task) return;
    if (!pg.isRunning || pg.state === 'starting') return;
    if (!pg.isPrimary) await this.syncSlots(cluster, false);
    else if (this.heldByMe && this.failsafe.isActive(this.config.ttl))
      await this.syncSlots(withFailsafeSlots(cluster, this.failsafe.memberLsns), false);
  }

  /**
   * Patroni's `_sync_replication_slots`: with failsafe mode on, the cluster as a leader's POST /failsafe updates it
   * (src/ha/failsafe.ts `failsafeUpdatedCluster`); no logical slot is copied while the DCS is down or failsafe mode
   * is active.
   */
  private async syncSlots(cluster: Cluster, dcsOk = true): Promise<void> {
    const leader = this.failsafe.activeLeader(this.config.ttl);
    const view = this.config.failsafeMode ? failsafeUpdatedCluster(cluster, leader) : cluster;
    const copy = dcsOk && !this.failsafe.isActive(this.config.ttl);
    try {
      await this.node.syncSlots(view, this.config, copy);
    } catch (e) {
      this.log.warning(`replication slot housekeeping failed: ${errorText(e)}`);
    }
  }

  private async touchMember(): Promise<boolean> {
    try {
      const kind = this.task?.pending.kind;
      const value = await this.node.memberValue({
        isLeader: this.heldByMe,
        ...(kind === undefined ? {} : { pendingAsync: kind }),
        paused: this.config.paused,
      });
      await this.dcs.touchMember(value);
      return true;
    } catch (e) {
      if (e instanceof DcsError) {
        this.log.error(`failed to update member key: ${e.message}`);
        return false;
      }
      this.log.warning(`could not build the member key: ${errorText(e)}`);
      return true;
    }
  }

  private writeLogs(lines: readonly LogLine[]): void {
    for (const l of lines) {
      if (l.level === 'info') this.log.info(l.text);
      else if (l.level === 'warning') this.log.warning(l.text);
      else this.log.error(l.text);
    }
  }

  /** Resolves when the cycle in progress (if any) has finished. */
  async idle(): Promise<void> {
    if (this.cyclePromise) await this.cyclePromise;
  }
}
