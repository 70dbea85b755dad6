/**
 * What the HA loop learns about the local instance each cycle (Patroni's `run_cycle` preamble): data directory
 * state, whether the postmaster runs and answers, its role, timeline and WAL position, pg_controldata's cluster
 * state and system identifier when it is stopped, and the divergence from the leader.
 */
import type { PostgresInfo } from '../model/postgres-info.js';
import type { RoleCallbacks } from './callbacks.js';
import type { ConfigFiles } from './config-files.js';
import { dataDirState, type ControlFile } from './data-dir.js';
import type { InstanceState } from './instance-state.js';
import type { LocalSession } from './local-session.js';
import { recoveryConfExists } from './config-writer.js';
import { controldata, isRunning, summarizeControldata } from './pg-ctl.js';
import type { PeerPostgres } from './ports.js';
import type { InstanceStatus } from './queries.js';
import type { Rewinder } from './rewinder.js';

const CONTROL_STATES = new Set([
  'in production',
  'in crash recovery',
  'shutting down',
  'shut down',
  'shut down in recovery',
  'in archive recovery',
  'starting up',
]);

export interface InspectorDeps {
  readonly files: ConfigFiles;
  readonly state: InstanceState;
  readonly session: LocalSession;
  readonly callbacks: RoleCallbacks;
  readonly control: ControlFile;
  readonly rewinder: Rewinder;
}

/** The DCS view of this cycle as the inspection needs it (undefined: DCS down). */
export interface InspectView {
  readonly leader: PeerPostgres | undefined;
  /** The cluster is paused: a postmaster found dead is `stopped`, not `crashed` (Patroni 4's run_cycle). */
  readonly paused?: boolean;
}

/** A primary's flush position, a replica's furthest received or replayed position. */
export function walPosition(status: InstanceStatus): bigint {
  if (!status.inRecovery) return status.flushLsn ?? 0n;
  const receive = status.receiveLsn ?? 0n;
  const replay = status.replayLsn ?? 0n;
  return receive > replay ? receive : replay;
}

export class Inspector {
  constructor(private readonly d: InspectorDeps) {}

  async inspect(view: InspectView | undefined): Promise<PostgresInfo> {
    const dir = this.d.files.dataDir;
    const dirState = dataDirState(dir);
    const empty = dirState === 'empty';
    const pid = empty ? undefined : isRunning(dir);
    const running = pid !== undefined;
    const status = running
      ? await this.runningStatus()
      : await this.seenStopped(!empty && view?.paused === true);
    const sysid = empty ? undefined : await this.d.control.sysid().catch(() => undefined);
    if (empty) this.d.rewinder.dataDirEmptied();
    let stopped: Pick<PostgresInfo, 'controlState' | 'diverged'> = {};
    if (!running && !empty && sysid !== undefined) stopped = await this.stoppedControlState(view);
    const { controlState } = stopped;
    let diverged = stopped.diverged;
    if (pid !== undefined && status && !this.d.state.busy)
      diverged = await this.runningDivergence(view, pid, status);
    return {
      state: this.d.state.state,
      isRunning: running,
      isPrimary: status !== undefined && !status.inRecovery,
      ...(status?.timeline === undefined ? {} : { timeline: status.timeline }),
      walPosition: status ? walPosition(status) : 0n,
      dataDirectoryEmpty: empty,
      dataDirectoryAccessible: dirState !== 'inaccessible',
      ...(sysid === undefined ? {} : { sysid }),
      ...(controlState === undefined ? {} : { controlState }),
      ...(diverged === undefined ? {} : { diverged }),
      wasPrimary: this.d.state.role === 'master' || this.d.state.role === 'primary',
      isStandbyLeader: this.d.state.role === 'standby_leader',
      ...(running || empty ? {} : { recoveryConfExists: recoveryConfExists(dir) }),
      msInState: this.d.state.msInState(),
    };
  }

  /** The postmaster runs: its status, the state and role it implies, and the callback a start left pending. */
  private async runningStatus(): Promise<InstanceStatus | undefined> {
    const { state } = this.d;
    const status = await this.d.session.queryStatus();
    if (status) {
      if (!state.busy && state.state !== 'running') state.set('running');
      // In recovery the role is replica, or the standby leader it was made (Patroni keeps `standby_leader`).
      if (!status.inRecovery) state.role = 'master';
      else if (state.role !== 'standby_leader') state.role = 'replica';
      if (!state.busy) this.d.callbacks.seenRunning();
    } else if (!state.busy && state.state !== 'starting') {
      if (state.state === 'running') throw new Error('PostgreSQL is running but does not answer queries');
      state.set('starting');
    }
    return status;
  }

  /**
   * A running replica's divergence from the leader (a primary has none). Without the DCS (view undefined) a check
   * that is due waits for the leader to be known again.
   */
  private async runningDivergence(
    view: InspectView | undefined,
    pid: number,
    status: InstanceStatus,
  ): Promise<PostgresInfo['diverged']> {
    if (!status.inRecovery) {
      this.d.rewinder.seenPrimary(pid);
      return undefined;
    }
    return this.d.rewinder.checkRunning(view?.leader, {
      pid,
      timeline: status.timeline,
      replayLsn: status.replayLsn,
    });
  }

  /** No postmaster: a running or starting instance has crashed; while paused, any instance is just `stopped`. */
  private async seenStopped(paused: boolean): Promise<undefined> {
    const { state } = this.d;
    await this.d.session.drop();
    this.d.session.lastStatus = undefined;
    if (state.busy) return undefined;
    if (paused) {
      if (state.state !== 'stopped') state.set('stopped');
    } else if (state.state === 'running' || state.state === 'starting') state.set('crashed');
    return undefined;
  }

  /** A stopped, initialized instance: pg_controldata's cluster state and the divergence from the leader. */
  private async stoppedControlState(
    view: InspectView | undefined,
  ): Promise<Pick<PostgresInfo, 'controlState' | 'diverged'>> {
    let controlState: PostgresInfo['controlState'];
    let diverged: PostgresInfo['diverged'];
    try {
      const data = await controldata(this.d.files.bins, this.d.files.dataDir);
      const cs = summarizeControldata(data).clusterState;
      controlState =
        cs !== undefined && CONTROL_STATES.has(cs) ? (cs as PostgresInfo['controlState']) : 'unknown';
      if (!this.d.state.busy && view) diverged = await this.d.rewinder.checkDiverged(view.leader, data);
    } catch {
      controlState ??= 'unknown';
    }
    return {
      ...(controlState === undefined ? {} : { controlState }),
      ...(diverged === undefined ? {} : { diverged }),
    };
  }
}
