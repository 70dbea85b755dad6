/**
 * Starting, stopping, restarting, reloading and promoting the local PostgreSQL with pg_ctl, with the state, role
 * and callbacks Patroni ties to each step; re-pointing a replica at another upstream; single-user crash recovery.
 */
import type { Lsn } from '../model/lsn.js';
import type { Cluster } from '../model/cluster.js';
import { runPgTool, type PgBinariesConfig } from './binaries.js';
import { join } from 'node:path';
import { archiveCommandOf, buildArchiverCommand, runShell } from './archive-checkpoint.js';
import { runBeforeStop } from './before-stop.js';
import { roleChanges, runPrePromote, type RoleCallbacks } from './callbacks.js';
import type { ConfigFiles } from './config-files.js';
import { cmdlineArgs } from './config-writer.js';
import type { InstanceState } from './instance-state.js';
import { waitForOrphanedBackends } from './lifecycle-orphans.js';
import type { LocalSession } from './local-session.js';
import type { MemberSlots } from './member-slots.js';
import {
  controldata,
  isRunning,
  promotePostgres,
  reloadPostgres,
  startPostgres,
  stopPostgres,
  summarizeControldata,
} from './pg-ctl.js';
import { errorText } from '../model/text.js';
import type { Cancellation, PgLog, StandbyTarget, StartRole, Upstream } from './ports.js';
import { checkpoint, withConnection } from './queries.js';

/** Patroni's STOP_POLLING_INTERVAL: how often a stopping primary's control file is read. */
const STOP_POLL_MS = 1_000;

export interface LifecycleDeps {
  readonly files: ConfigFiles;
  readonly state: InstanceState;
  readonly session: LocalSession;
  readonly callbacks: RoleCallbacks;
  readonly slots: MemberSlots;
  readonly log: PgLog;
  /** How long pre_promote may run (Patroni: the ttl). */
  readonly prePromoteTimeoutMs: () => number;
}

export class Lifecycle {
  /** Promoted, the CHECKPOINT that follows is still running (published as `checkpoint_after_promote: false`). */
  private checkpointPending = false;

  constructor(private readonly d: LifecycleDeps) {}

  get checkpointAfterPromotePending(): boolean {
    return this.checkpointPending;
  }

  private get dataDir(): string {
    return this.d.files.dataDir;
  }

  private get bins(): PgBinariesConfig {
    return this.d.files.bins;
  }

  /** `pg_ctl start` with the written postgresql.conf and the command-line GUCs; waits up to `timeoutSeconds`. */
  async startServer(timeoutSeconds: number | undefined): Promise<void> {
    const params = this.d.files.serverParameters();
    await startPostgres({
      bins: this.bins,
      dataDir: this.dataDir,
      configFile: this.d.files.postgresqlConf,
      postgresArgs: cmdlineArgs(params.cmdline),
      timeoutMs: (timeoutSeconds ?? this.d.files.config.postgresql.pgCtlTimeout) * 1000,
    });
  }

  /** Writes the configuration for `as` (a replica of `target`) and starts; false when the start failed. */
  async start(
    role: StartRole,
    target: Upstream | undefined,
    timeoutSeconds: number | undefined,
  ): Promise<boolean> {
    const { state, callbacks } = this.d;
    const as = role === 'primary' ? 'primary' : 'replica';
    const newRole = role === 'primary' ? 'master' : role;
    state.busy = true;
    const changeRole = callbacks.startBegins(as, state.role, newRole);
    let ok = false;
    try {
      this.d.files.writeForStart(as === 'replica' ? standbyTarget(role, target) : undefined);
      state.set('starting');
      state.role = newRole;
      if (isRunning(this.dataDir) === undefined)
        await waitForOrphanedBackends(this.dataDir, 10_000, this.d.log);
      await this.startServer(timeoutSeconds);
      state.set('running');
      ok = true;
    } catch (e) {
      this.d.log.error(`failed to start PostgreSQL: ${errorText(e)}`);
      state.set(isRunning(this.dataDir) !== undefined ? 'starting' : 'start failed');
    } finally {
      state.busy = false;
    }
    callbacks.startEnded(changeRole, ok);
    return ok;
  }

  /**
   * Stops PostgreSQL; on_stop fires when it was running. `demote` (the loop's demote modes): the role becomes
   * `demoted`, and a graceful demote reports on_stop as `demoted` (Patroni releases the lock during the stop).
   */
  async stop(
    mode: 'fast' | 'immediate',
    demote?: string,
    blockCallbacks = false,
    onShutdown?: (checkpoint: Lsn) => Promise<void>,
  ): Promise<void> {
    const { state } = this.d;
    if (isRunning(this.dataDir) === undefined) {
      if (state.state !== 'stopped') state.set('stopped');
      if (demote !== undefined) state.role = 'demoted';
      return;
    }
    state.busy = true;
    await this.d.session.drop();
    state.set('stopping');
    try {
      // Patroni's `_before_stop`: the user's script runs once the state is `stopping`, before `pg_ctl stop`.
      await runBeforeStop(this.d.files.config.postgresql.beforeStop, this.d.log);
      const stopping = stopPostgres({ bins: this.bins, dataDir: this.dataDir, mode });
      if (onShutdown && mode === 'fast') await this.watchShutdown(stopping, onShutdown);
      await stopping;
      state.set('stopped');
      if (demote === 'graceful') state.role = 'demoted';
      if (!blockCallbacks) this.d.callbacks.fire('on_stop');
      if (demote !== undefined) state.role = 'demoted';
    } catch (e) {
      state.set('running');
      throw e;
    } finally {
      state.busy = false;
      this.d.session.lastStatus = undefined;
    }
  }

  /**
   * Patroni's wait in `_do_stop` for a clean stop with `on_shutdown`: while the postmaster runs, the control file is
   * read every second; once it says `shut down` (the shutdown checkpoint is written, the postmaster still waits for
   * its WAL senders or its archiver), `onShutdown` gets the checkpoint's LSN. `shut down in recovery` (a replica) or
   * the postmaster's exit ends the wait without it.
   */
  private async watchShutdown(
    stopping: Promise<unknown>,
    onShutdown: (checkpoint: Lsn) => Promise<void>,
  ): Promise<void> {
    let exited = false;
    const settled = stopping.then(
      () => (exited = true),
      () => (exited = true),
    );
    while (!exited) {
      const data = await controldata(this.bins, this.dataDir).catch(() => undefined);
      const summary = data === undefined ? undefined : summarizeControldata(data);
      const clusterState = summary?.clusterState ?? '';
      if (clusterState === 'shut down') {
        const lsn = summary?.latestCheckpointLocation;
        if (!exited && lsn !== undefined) await onShutdown(lsn);
        return;
      }
      if (clusterState.startsWith('shut down')) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        settled,
        new Promise<void>((r) => {
          timer = setTimeout(r, STOP_POLL_MS);
        }),
      ]);
      clearTimeout(timer);
    }
  }

  /** Stop (fast) and start again in the same role; `false` when the start failed or timed out. */
  async restart(
    as: StartRole,
    target: Upstream | undefined,
    timeoutSeconds: number | undefined,
  ): Promise<boolean> {
    this.d.state.set('restarting');
    this.d.callbacks.restartBegins();
    await this.stop('fast', undefined, true);
    return this.start(as, target, timeoutSeconds);
  }

  /**
   * Stop (fast), run `between` (e.g. write slot files), start again with the configuration files as written, in
   * the same role (Patroni's stop()/start() around `copy_logical_slots`); false when the start failed. A failure of
   * `between` is logged, PostgreSQL is started all the same.
   */
  async restartAround(between: () => Promise<void>): Promise<boolean> {
    const { state } = this.d;
    state.set('restarting');
    await this.stop('fast', undefined, true);
    state.busy = true;
    try {
      await between();
    } catch (e) {
      this.d.log.error(`while PostgreSQL was stopped: ${errorText(e)}`);
    }
    try {
      state.set('starting');
      await this.startServer(undefined);
      state.set('running');
      return true;
    } catch (e) {
      this.d.log.error(`failed to start PostgreSQL: ${errorText(e)}`);
      state.set(isRunning(this.dataDir) !== undefined ? 'starting' : 'start failed');
      return false;
    } finally {
      state.busy = false;
    }
  }

  /** A start as primary failed while we held the lock (Patroni's `post_recover`): demoted, on_role_change fires. */
  markDemoted(): void {
    const { state } = this.d;
    if (state.role !== 'master' && state.role !== 'primary') return;
    state.role = 'demoted';
    this.d.callbacks.fire('on_role_change');
  }

  /** `pg_ctl reload` when PostgreSQL runs (on_reload fires). */
  async reload(): Promise<void> {
    if (isRunning(this.dataDir) === undefined) return;
    await reloadPostgres({ bins: this.bins, dataDir: this.dataDir });
    this.d.callbacks.fire('on_reload');
  }

  /** Point primary_conninfo at `target`: a reload from PostgreSQL 13 on, a restart before; nothing when unchanged. */
  async follow(target: Upstream | undefined, standbyLeader = false): Promise<void> {
    if (isRunning(this.dataDir) === undefined) return;
    const { state, callbacks } = this.d;
    const role: StartRole = standbyLeader ? 'standby_leader' : 'replica';
    const wanted = standbyTarget(role, target);
    // Patroni's follow: becoming (or ceasing to be) the standby leader fires on_role_change instead of on_reload.
    const changeRole = callbacks.wasCalled && roleChanges(state.role, role);
    if (!this.d.files.recoveryChanged(wanted)) {
      if (standbyLeader && state.role !== 'standby_leader') {
        state.role = 'standby_leader';
        callbacks.fire('on_role_change');
      }
      return;
    }
    this.d.files.write(wanted);
    if (this.d.files.majorVersion() >= 130000) {
      await reloadPostgres({ bins: this.bins, dataDir: this.dataDir });
      if (!changeRole) callbacks.fire('on_reload');
      this.d.log.info(`following ${target ? `${target.name} (${target.host}:${target.port})` : 'nobody'}`);
      if (state.role !== role && (changeRole || standbyLeader)) {
        state.role = role;
        callbacks.fire('on_role_change');
      }
      return;
    }
    this.d.log.info('restarting PostgreSQL to change primary_conninfo (PostgreSQL < 13)');
    await this.restart(role, target, undefined);
  }

  /** pre_promote; false when it refused, undefined to go ahead (cancelled: false too). */
  private async prePromote(task: Cancellation): Promise<false | 'pre_promote_failed' | undefined> {
    const command = this.d.files.config.postgresql.prePromote;
    if (command === undefined || command.trim() === '') return undefined;
    // Synchronous, but in the promote task: the loop keeps refreshing the lock meanwhile. Bounded by ttl.
    const r = await runPrePromote(command, {
      timeoutMs: this.d.prePromoteTimeoutMs(),
      cancelled: task.cancelled,
      log: this.d.log,
    });
    if (r.cancelled || task.cancelled()) return false;
    return r.ok ? undefined : 'pre_promote_failed';
  }

  /** pre_promote, the other members' slots, `pg_ctl promote`, then a CHECKPOINT on a connection of its own. */
  async promote(
    task: Cancellation,
    cluster: Cluster | undefined,
    confirmLock: () => Promise<boolean>,
  ): Promise<boolean | 'pre_promote_failed'> {
    if (task.cancelled()) return false;
    const refused = await this.prePromote(task);
    if (refused !== undefined) return refused;
    if (task.cancelled()) {
      this.d.log.info('PostgreSQL promote cancelled.');
      return false;
    }
    // The replicas follow us as soon as they see our lock; a slot they ask for that does not exist yet costs them
    // wal_retrieve_retry_interval (5 s) of streaming. A standby can create physical slots, so do it now.
    if (cluster && this.d.files.useSlots()) {
      try {
        await this.d.session.withSession((s) => this.d.slots.create(s, cluster));
      } catch (e) {
        this.d.log.warning(`creating replication slots before promote failed: ${errorText(e)}`);
      }
    }
    // Never promote without the lock at this moment: pre_promote may have run for up to ttl.
    if (!(await confirmLock())) return false;
    const { state } = this.d;
    state.busy = true;
    try {
      await promotePostgres({ bins: this.bins, dataDir: this.dataDir });
      state.role = 'master';
      this.d.callbacks.fire('on_role_change');
      this.checkpointPending = true;
      this.d.files.write(undefined);
    } catch (e) {
      this.d.log.error(`pg_ctl promote failed: ${errorText(e)}`);
      return false;
    } finally {
      state.busy = false;
    }
    try {
      // Its own connection, as Patroni: a long CHECKPOINT must not hold up the status queries.
      await this.checkpoint();
    } catch (e) {
      this.d.log.warning(`CHECKPOINT after promote failed: ${errorText(e)}`);
    } finally {
      this.checkpointPending = false;
    }
    return true;
  }

  /** CHECKPOINT on a connection of its own. */
  async checkpoint(): Promise<void> {
    await withConnection(this.d.session.options(), (s) => checkpoint(s));
  }

  /** pg_controldata's latest checkpoint location (after a stop). */
  /** archive_mode on and archive_command set (Patroni's `get_archive_command`). */
  archivesShutdownCheckpoint(): boolean {
    return archiveCommandOf(this.d.files.serverParameters().parameters) !== undefined;
  }

  /** demote-cluster: archive the WAL segment of the shutdown checkpoint when archiving is on (archive-checkpoint.ts). */
  async archiveShutdownCheckpoint(): Promise<void> {
    const command = archiveCommandOf(this.d.files.serverParameters().parameters);
    if (command === undefined) {
      this.d.log.info('Not archiving latest checkpoint WAL file. Archiving is not configured.');
      return;
    }
    const walFile = (await controldata(this.bins, this.dataDir)).get("Latest checkpoint's REDO WAL file");
    if (!walFile) {
      this.d.log.error("Cannot extract latest checkpoint's WAL file name");
      return;
    }
    const cmd = buildArchiverCommand(command, join(this.dataDir, 'pg_wal'), walFile);
    if (!(await runShell(cmd, this.dataDir, this.d.log))) {
      this.d.log.error('Failed to archive WAL file with the shutdown checkpoint');
    }
  }

  async shutdownCheckpoint(): Promise<Lsn | undefined> {
    return summarizeControldata(await controldata(this.bins, this.dataDir)).latestCheckpointLocation;
  }

  /** Single-user mode with archiving off, so that a crashed primary's data directory is consistent for pg_rewind. */
  async crashRecovery(): Promise<boolean> {
    const { state } = this.d;
    state.busy = true;
    try {
      this.d.files.write(undefined);
      const params = this.d.files.serverParameters();
      await runPgTool(
        this.bins,
        'postgres',
        [
          '--single',
          '-D',
          this.dataDir,
          `--config-file=${this.d.files.postgresqlConf}`,
          ...cmdlineArgs(params.cmdline),
          '-c',
          'archive_mode=on',
          '-c',
          'archive_command=false',
          this.d.files.config.postgresql.database,
        ],
        { timeoutMs: 3_600_000 },
      );
      state.set('stopped');
      return true;
    } catch (e) {
      this.d.log.error(`crash recovery failed: ${errorText(e)}`);
      return false;
    } finally {
      state.busy = false;
    }
  }
}

/** postgresql.conf's standby settings for a start or re-point in `role` with upstream `target`. */
function standbyTarget(role: StartRole, target: Upstream | undefined): StandbyTarget {
  if (role === 'primary') return undefined;
  return {
    ...(target ? { primary: target } : {}),
    ...(role === 'standby_leader' || target?.remote === true ? { remote: true } : {}),
  };
}
