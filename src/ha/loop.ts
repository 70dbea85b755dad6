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
import type { Dcs } from '../dcs/dcs.js';
import { DcsError } from '../dcs/dcs.js';
import type { Cluster, Member } from '../model/cluster.js';
import { pyJson } from '../model/pyjson.js';
import { errorText } from '../model/text.js';
import type { Lsn } from '../model/lsn.js';
import type { Action, Decision, DemoteMode, FollowTarget, LogLine } from './actions.js';
import { isGuard } from './actions.js';
import { CycleDcsBudget } from './dcs-budget.js';
import { cycleLogLine, decide } from './decide.js';
import {
  DEFAULT_HA_CONFIG,
  INITIAL_MEMORY,
  haConfigFromDynamic,
  type AsyncKind,
  type HaConfig,
  type HaMemory,
  type HaSnapshot,
  type PeerStatus,
  type PendingAsync,
  type PostgresInfo,
  type SelfInfo,
} from './snapshot.js';

// ---------------------------------------------------------------------------------------------------------------
// Ports

export interface LoopClock {
  /** Epoch milliseconds: for what is shown or compared with dates (`scheduled_at`), never for a deadline. */
  now(): number;
  /** Milliseconds from an arbitrary origin that an NTP step does not move: every lock and cycle deadline. */
  monotonic(): number;
  sleep(ms: number): Promise<void>;
}

export const SYSTEM_CLOCK: LoopClock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
};

export interface LoopLogger {
  info(text: string): void;
  warning(text: string): void;
  error(text: string): void;
}

/** A member to stream from, resolved from its `conn_url`. */
export interface ResolvedTarget {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

/** Cooperative cancellation of a long action (`CancelAsync`): checked by the node between steps. */
export interface TaskControl {
  readonly cancelled: () => boolean;
}

/** The local member: its PostgreSQL instance and what it publishes. Implemented by src/agent. */
export interface LocalNode {
  readonly self: SelfInfo;
  /** The state of the local instance now. `cluster` is the view of this cycle (undefined: DCS down). */
  inspect(cluster: Cluster | undefined): Promise<PostgresInfo>;
  /** The member key value (compact JSON), as Patroni's `touch_member` builds it. */
  memberValue(ctx: {
    readonly isLeader: boolean;
    readonly pendingAsync?: AsyncKind;
    readonly paused?: boolean;
  }): Promise<string>;
  /** The primary's last WAL position for `status.optime`; undefined when unknown. */
  lastOperation(): Promise<Lsn | undefined>;
  /** The dynamic configuration to write to the `config` key (compact JSON). */
  dynamicConfigValue(): string;
  /** The dynamic configuration from the local file (bootstrap.dcs) used until the DCS has one. */
  localDynamicConfig(): Readonly<Record<string, unknown>>;
  /** A dynamic configuration was read from the DCS (the node keeps it for WriteConfig and parameters). */
  dynamicConfigChanged(data: Readonly<Record<string, unknown>>): void;

  bootstrap(task: TaskControl): Promise<boolean>;
  postBootstrap(task: TaskControl): Promise<boolean>;
  clone(from: Member | undefined, task: TaskControl): Promise<boolean>;
  start(
    as: 'replica' | 'primary',
    target: ResolvedTarget | undefined,
    timeoutSeconds: number | undefined,
    task: TaskControl,
  ): Promise<boolean>;
  /** Point primary_conninfo at `target` (undefined: no upstream); reload or restart as needed. */
  follow(target: ResolvedTarget | undefined): Promise<void>;
  /**
   * pre_promote, the other members' slots (`cluster`), then `pg_ctl promote`; `'pre_promote_failed'` when the
   * pre_promote script refused. `confirmLock` is awaited right before `pg_ctl promote`: false (the lock could not be
   * confirmed, e.g. lost while pre_promote ran) aborts the promotion.
   */
  promote(
    task: TaskControl,
    cluster: Cluster | undefined,
    confirmLock: () => Promise<boolean>,
  ): Promise<boolean | 'pre_promote_failed'>;
  /** `demote`: the stop is part of a demotion in that mode (the role becomes `demoted`, for callbacks). */
  stop(mode: 'fast' | 'immediate', demote?: DemoteMode): Promise<void>;
  /** CHECKPOINT before a graceful demote; the shutdown checkpoint LSN is read after the stop. */
  checkpoint(): Promise<void>;
  /** pg_controldata's latest checkpoint location (after a stop). */
  shutdownCheckpoint(): Promise<Lsn | undefined>;
  crashRecovery(task: TaskControl): Promise<boolean>;
  /** The `history` value to write (compact JSON), or undefined when the key is up to date. */
  historyValue(cluster: Cluster): Promise<string | undefined>;
  /** Leader housekeeping: physical slots for the other members. */
  syncSlots(cluster: Cluster, config: HaConfig): Promise<void>;
  /** Stop PostgreSQL and move the data directory aside after a failed bootstrap. */
  abandonBootstrap(): Promise<void>;
  /** pg_rewind from the leader `leader` (rewind.py); PostgreSQL is left stopped. False when it did not happen. */
  rewind(leader: Member, task: TaskControl): Promise<boolean>;
  /** Stop immediately, empty the data directory and clone anew from `from`. */
  reinitialize(from: Member, task: TaskControl): Promise<boolean>;
  /** After each cycle: apply a changed dynamic or local configuration to PostgreSQL (Patroni's reload_config). */
  applyConfiguration?(): Promise<void>;
}

export type PeerProber = (
  members: readonly { readonly name: string; readonly apiUrl: string }[],
) => Promise<ReadonlyMap<string, PeerStatus>>;

/**
 * Synchronous replication bookkeeping on the leader (ha.py `process_sync_replication`); src/agent/sync-replication.ts
 * implements it.
 */
export interface SyncReplicationPort {
  /** Maintain synchronous_standby_names and `/sync` for this cycle (or remove them when the mode is off). */
  process(cluster: Cluster, config: HaConfig): Promise<void>;
  /** Set synchronous_standby_names to `names` (`['*']`: any standby; none: the mode's default). */
  setStandbyNames(names: readonly string[]): Promise<void>;
}

export interface LoopDeps {
  readonly dcs: Dcs;
  readonly node: LocalNode;
  /** Synchronous mode: synchronous_standby_names and `/sync` (src/agent/sync-replication.ts). */
  readonly sync: SyncReplicationPort;
  readonly probe: PeerProber;
  readonly clock?: LoopClock;
  readonly log: LoopLogger;
  /** A fatal decision (`Exit`, failed bootstrap): the agent shuts down with this code. */
  readonly onFatal: (code: number, reason: string) => void;
}

export interface CycleResult {
  readonly message: string;
  readonly dcsOk: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** `postgres://host:port/db` -> host and port; undefined when it cannot be parsed. */
export function parseConnUrl(connUrl: string | undefined): { host: string; port: number } | undefined {
  if (!connUrl) return undefined;
  try {
    const u = new URL(connUrl);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = u.port === '' ? 5432 : Number(u.port);
    if (host === '' || !Number.isInteger(port)) return undefined;
    return { host, port };
  } catch {
    return undefined;
  }
}

interface RunningTask {
  readonly pending: PendingAsync;
  cancelled: boolean;
  readonly done: Promise<void>;
}

/** Thrown inside action execution to stop the remaining actions of a decision. */
class StopActions extends Error {}

// ---------------------------------------------------------------------------------------------------------------
// The loop

export class HaLoop {
  private readonly dcs: Dcs;
  private readonly node: LocalNode;
  private readonly clock: LoopClock;
  private readonly log: LoopLogger;
  private memory: HaMemory = INITIAL_MEMORY;
  private config: HaConfig = DEFAULT_HA_CONFIG;
  private configApplied = false;
  /** Refused settings in the DCS config key: logged, and read the safe way (src/config/config-check.ts). */
  private readonly configGuard = new DynamicConfigGuard();
  private heldByMe = false;
  /** Monotonic ms from which the lock counts (its lease's last refresh, as known before the request). */
  private lockRefreshedMono: number | undefined;
  /** How long the lock lives after a refresh, ms, as the DCS enforces it (lease TTL, negotiated session timeout). */
  private lockLifetimeMs = DEFAULT_HA_CONFIG.ttl * 1000;
  /** Every DCS call of a cycle shares one retry_timeout (long actions are exempt). */
  private readonly budget: CycleDcsBudget;
  private cluster: Cluster | undefined;
  private lastLockedCluster: Cluster | undefined;
  private lastDcsSeen = 0;
  private task: RunningTask | undefined;
  private stopping = false;
  private wakeUp: (() => void) | undefined;
  private wakePending = false;
  /** Monotonic ms of the next cycle. */
  private nextRunMono = 0;
  private cyclePromise: Promise<void> | undefined;

  constructor(private readonly deps: LoopDeps) {
    this.node = deps.node;
    this.clock = deps.clock ?? SYSTEM_CLOCK;
    this.budget = new CycleDcsBudget(() => this.clock.monotonic());
    this.dcs = this.budget.wrap(deps.dcs);
    this.log = deps.log;
  }

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
    if (cluster) this.absorbCluster(cluster);

    let postgres: PostgresInfo;
    try {
      postgres = await this.node.inspect(cluster);
    } catch (e) {
      this.log.error(`Error communicating with PostgreSQL. Will try again later (${errorText(e)})`);
      if (dcsOk) await this.touchMember();
      return { message: 'Error communicating with PostgreSQL. Will try again later', dcsOk };
    }

    if (cluster && dcsOk && !cluster.members.some((m) => m.name === this.node.self.name)) {
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
    this.writeLogs(outcome.logs);
    this.log.info(cycleLogLine(snapshot, { ...decision, message: outcome.message }));
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
    const name = this.node.self.name;
    this.heldByMe = cluster.leader?.name === name;
    if (cluster.leader?.name) this.lastLockedCluster = cluster;
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

  /** Slot housekeeping on the leader, then `touch_member`. Returns whether the DCS stayed reachable. */
  private async afterCycle(snapshot: HaSnapshot): Promise<boolean> {
    const cluster = this.cluster;
    if (cluster && this.heldByMe && !this.task && snapshot.postgres.isRunning) {
      try {
        await this.node.syncSlots(cluster, this.config);
      } catch (e) {
        this.log.warning(`replication slot housekeeping failed: ${errorText(e)}`);
      }
    }
    return this.touchMember();
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

  // ---- execution --------------------------------------------------------------------------------------------

  private async execute(
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
  private async decideOffline(
    stale: HaSnapshot,
  ): Promise<{ message: string; logs: LogLine[]; acted: boolean }> {
    const offline = await this.offlineSnapshot(stale);
    const again = decide(offline);
    const logs: LogLine[] = [...(again.logs ?? [])];
    try {
      for (const a of again.actions) if (!isGuard(a)) await this.runAction(a, offline);
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
          const optime = await this.node.lastOperation().catch(() => undefined);
          if (optime !== undefined) await this.dcs.writeStatus(pyJson({ optime }, true));
        }
        return true;
      }
      case 'RaceInitialize':
        return this.dcs.initialize(true, '');
      case 'WriteSyncState': {
        const value = pyJson(
          {
            leader: action.leader,
            sync_standby: action.syncStandby.length > 0 ? [...action.syncStandby].sort().join(',') : null,
          },
          true,
        );
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

  /** The lock as decide() sees it: monotonic times turned into the snapshot's `now` frame. */
  private lockInfo(now: number): HaSnapshot['lock'] {
    if (this.lockRefreshedMono === undefined) return { heldByMe: this.heldByMe };
    const lastRefreshOk = now - (this.clock.monotonic() - this.lockRefreshedMono);
    return { heldByMe: this.heldByMe, lastRefreshOk, expiresAt: lastRefreshOk + this.lockLifetimeMs };
  }

  /**
   * Right before `pg_ctl promote`: refresh the lock and confirm it is still ours and not about to expire. A
   * candidate whose pre_promote ran long may have lost the DCS or the lock meanwhile.
   */
  private async confirmLock(): Promise<boolean> {
    const cluster = this.cluster;
    if (!this.heldByMe || cluster === undefined) return false;
    const sentAt = this.clock.monotonic();
    try {
      if (!(await this.dcs.updateLeader(cluster))) {
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

  private async runAction(action: Action, snapshot: HaSnapshot): Promise<void> {
    const cluster = this.cluster ?? snapshot.cluster;
    switch (action.type) {
      case 'AcquireLock':
      case 'RefreshLock':
      case 'RaceInitialize':
      case 'WriteSyncState':
        throw new Error(`${action.type} is a guard`);
      case 'ReleaseLock': {
        if (cluster) await this.dcs.deleteLeader(cluster);
        this.forgetLock();
        return;
      }
      case 'Promote':
        this.startTask(action.kind, action.description, async (t) => {
          const ok = await this.node.promote(t, cluster, () => this.confirmLock());
          // decide() releases the lock on the next cycle and backs off the race for ttl.
          if (ok === 'pre_promote_failed' && !t.cancelled())
            this.memory = { ...this.memory, prePromoteFailed: true };
          else if (!ok && !t.cancelled()) this.log.error('failed to promote PostgreSQL');
        });
        return;
      case 'Demote':
        if (action.async) {
          this.startTask(action.kind, action.description, () => this.demote(action.mode));
        } else {
          await this.demote(action.mode);
        }
        return;
      case 'FollowLeader': {
        const target = await this.resolve(action.target);
        await this.node.follow(target);
        return;
      }
      case 'StartPostgres': {
        const target = await this.resolve(action.target);
        this.startTask(action.kind, action.description, async (t) => {
          const ok = await this.node.start(action.as, target, action.timeout, t);
          if (!ok) this.log.error('failed to start PostgreSQL');
        });
        return;
      }
      case 'StopPostgres':
        await this.node.stop(action.mode);
        return;
      case 'CrashRecovery':
        this.startTask(action.kind, action.description, async (t) => {
          const ok = await this.node.crashRecovery(t);
          if (!ok) this.log.error('crash recovery in single user mode failed');
        });
        return;
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
      case 'ProcessSyncReplication':
        await this.processSyncReplication(cluster);
        return;
      case 'SetSynchronousStandbyNames':
        await this.deps.sync.setStandbyNames(action.names);
        return;
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
      case 'TakeLeader': {
        const sentAt = this.clock.monotonic();
        await this.dcs.takeLeader();
        this.lockRefreshed(sentAt);
        return;
      }
      case 'Bootstrap':
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
      case 'CloneFrom': {
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
        return;
      }
      case 'Rewind':
      case 'Reinitialize': {
        const leader = cluster?.members.find((m) => m.name === action.member);
        if (leader === undefined) {
          this.log.warning(`cannot ${action.description}: ${action.member} has no member key`);
          return;
        }
        this.startTask(action.kind, action.description, async (t) => {
          const ok =
            action.type === 'Rewind'
              ? await this.node.rewind(leader, t)
              : await this.node.reinitialize(leader, t);
          if (!ok && !t.cancelled()) this.log.error(`${action.description} did not succeed`);
        });
        return;
      }
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
   * Stop PostgreSQL as the mode says, then start it again as a replica: of the lock holder, or (offline: the DCS
   * cannot be read) of nobody, read-only with standby settings, as Patroni's `demote('offline')` does.
   */
  private async demote(mode: DemoteMode): Promise<void> {
    const stopMode = mode === 'immediate' || mode === 'immediate-nolock' ? 'immediate' : 'fast';
    if (mode === 'graceful') {
      await this.node.checkpoint().catch((e: unknown) => {
        this.log.warning(`checkpoint before demote failed: ${errorText(e)}`);
      });
    }
    await this.node.stop(stopMode, mode);
    // As Patroni: synchronous_standby_names is cleared on demotion.
    if (this.config.synchronousMode !== 'off') await this.deps.sync?.setStandbyNames([]);
    if (mode === 'graceful' || mode === 'immediate') {
      const cluster = this.cluster;
      if (mode === 'graceful') {
        const lsn = await this.node.shutdownCheckpoint().catch(() => undefined);
        if (lsn !== undefined) await this.dcs.writeStatus(pyJson({ optime: lsn }, true));
      }
      if (cluster && this.heldByMe) await this.dcs.deleteLeader(cluster);
      this.forgetLock();
    }
    if (mode === 'offline') {
      // Patroni's set_is_leader(False): the lock is not released (the DCS is out of reach) but no longer claimed.
      this.lockRefreshedMono = undefined;
      await this.node.start('replica', undefined, undefined, { cancelled: () => false });
      return;
    }
    // After an immediate stop the timelines may have diverged: with pg_rewind usable, PostgreSQL stays stopped and
    // the next cycles run crash recovery, the divergence check and pg_rewind before starting it as a replica.
    if (mode !== 'graceful' && this.node.self.canRewind) return;
    const target = await this.resolve({ kind: 'lock-holder' });
    await this.node.start('replica', target, undefined, { cancelled: () => false });
  }

  private async resolve(target: FollowTarget): Promise<ResolvedTarget | undefined> {
    let name: string | undefined;
    let connUrl: string | undefined;
    if (target.kind === 'none') return undefined;
    if (target.kind === 'member') {
      name = target.name;
      connUrl = target.connUrl ?? this.cluster?.members.find((m) => m.name === target.name)?.data.connUrl;
    } else {
      // Re-read the cluster and follow whoever holds the lock now.
      try {
        const c = await this.dcs.getCluster();
        this.cluster = c;
        this.heldByMe = c.leader?.name === this.node.self.name;
        name = c.leader?.name;
        connUrl = c.leader?.member?.data.connUrl;
      } catch (e) {
        if (!(e instanceof DcsError)) throw e;
        name = this.cluster?.leader?.name;
        connUrl = this.cluster?.leader?.member?.data.connUrl;
      }
    }
    if (!name || name === this.node.self.name) return undefined;
    const addr = parseConnUrl(connUrl);
    if (!addr) {
      this.log.warning(`cannot follow ${name}: its member key has no usable conn_url`);
      return undefined;
    }
    return { name, ...addr };
  }

  /** Starts a long action off the heartbeat path; it wakes the loop when it ends. */
  private startTask(kind: AsyncKind, description: string, body: (t: TaskControl) => Promise<void>): void {
    if (this.task) {
      this.log.warning(`not starting ${description}: ${this.task.pending.description} is still running`);
      return;
    }
    const pending: PendingAsync = { kind, description, startedAt: this.clock.now() };
    const holder: { cancelled: boolean } = { cancelled: false };
    const control: TaskControl = { cancelled: () => holder.cancelled };
    // Outside the cycle's DCS budget: a long action's DCS calls are not part of the heartbeat.
    const done = this.budget.exempt(async (): Promise<void> => {
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
    });
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

  /** Resolves when the cycle in progress (if any) has finished. */
  async idle(): Promise<void> {
    if (this.cyclePromise) await this.cyclePromise;
  }
}
