/**
 * Divergence from the leader and pg_rewind (spec 6.9, Patroni's Rewind): whether a rewind can work, the check of
 * a stopped instance's timeline and LSN against the leader's history, and `Rewind.execute` with Patroni's
 * REWIND_STATUS bookkeeping and its remove-data-directory options on failure.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { PgUser } from '../config/agent-config.js';
import type { PostgresInfo } from '../model/postgres-info.js';
import { pyBool } from '../model/python.js';
import { resolveBinary } from './binaries.js';
import type { ConfigFiles } from './config-files.js';
import { wipeDataDir, type ControlFile } from './data-dir.js';
import type { InstanceState } from './instance-state.js';
import { isRunning } from './pg-ctl.js';
import { errorText } from '../model/text.js';
import type { Cancellation, PeerPostgres, PgLog } from './ports.js';
import { localConnectOptions } from './local-session.js';
import {
  checkpointEnd,
  leaderIsPrimary,
  localPositionFromControldata,
  type LocalPosition,
  pgRewind,
  primaryTimeline,
  queryPrimary,
  rewindNeeded,
} from './rewind.js';

/** Patroni's REWIND_STATUS: where the divergence check and pg_rewind stand. */
type RewindState = 'initial' | 'check' | 'need' | 'not-need' | 'success' | 'failed';

export interface RewinderDeps {
  readonly files: ConfigFiles;
  readonly state: InstanceState;
  readonly control: ControlFile;
  readonly log: PgLog;
  readonly stop: (mode: 'fast') => Promise<void>;
}

/** Patroni's `check_leader_has_run_checkpoint`: a primary whose last checkpoint is on its current timeline. */
const HAS_RUN_CHECKPOINT =
  "SELECT NOT pg_catalog.pg_is_in_recovery() AND ('x' || pg_catalog.substr(pg_catalog.pg_walfile_name(" +
  'pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::int = timeline_id FROM pg_catalog.pg_control_checkpoint()';

const lsnText = (v: bigint): string =>
  `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;

/** This cycle's running replica, as the divergence check needs it. */
export interface RunningReplica {
  /** The postmaster's pid: a new one means PostgreSQL was (re)started. */
  readonly pid: number;
  /** From the status query (WAL receiver's or checkpoint's timeline); a hint, IDENTIFY_SYSTEM is asked first. */
  readonly timeline: number | undefined;
  readonly replayLsn: bigint | undefined;
}

/** What the previous cycles saw of a running instance: the triggers below are edges, not levels. */
export interface SeenRunning {
  readonly pid?: number;
  readonly leader?: string;
  /** `leaderTimeline/localTimeline` when last seen. */
  readonly timelines?: string;
  /** The leader timeline for which `historyAhead` was last seen (see `runningCheckTrigger`). */
  readonly historyFor?: number;
}

/**
 * Why a running replica's timeline must be compared with the leader's now, or undefined (Patroni's
 * `trigger_check_diverged_lsn` call sites): `started` (a new postmaster running as a replica: after a demotion,
 * offline or not, after a crash or a restart; ha.py's on_start), `new leader` (we follow another member: ha.py's
 * `follow` when primary_conninfo changes), `leader timeline ahead` (the leader published a later timeline than ours:
 * ha.py's `_last_timeline < _leader_timeline`; once per change of either timeline), `timeline history ahead` (a
 * standby cluster: pg_wal holds the history file of the timeline after the lock holder's, i.e. the remote primary
 * moved to a new timeline: ha.py `follow`'s `get_history(_leader_timeline + 1)`; once per leader timeline).
 */
export function runningCheckTrigger(
  seen: SeenRunning,
  now: {
    readonly pid: number;
    readonly leader: string | undefined;
    readonly leaderTimeline: number | undefined;
    readonly localTimeline: number | undefined;
    readonly historyAhead?: boolean;
  },
): 'started' | 'new leader' | 'leader timeline ahead' | 'timeline history ahead' | undefined {
  if (seen.pid !== now.pid) return 'started';
  if (now.leader !== undefined && seen.leader !== undefined && now.leader !== seen.leader)
    return 'new leader';
  if (now.historyAhead === true && seen.historyFor !== now.leaderTimeline) return 'timeline history ahead';
  const ahead =
    now.leaderTimeline !== undefined &&
    now.localTimeline !== undefined &&
    now.leaderTimeline > now.localTimeline;
  if (ahead && seen.timelines !== `${now.leaderTimeline}/${now.localTimeline}`)
    return 'leader timeline ahead';
  return undefined;
}

export class Rewinder {
  private status: RewindState = 'initial';
  private seen: SeenRunning = {};

  constructor(private readonly d: RewinderDeps) {}

  /** `use_pg_rewind` on (local setting over dynamic), pg_rewind present, wal_log_hints or data checksums. */
  canRewind(): boolean {
    const { files } = this.d;
    const use = files.config.postgresql.usePgRewind ?? pyBool(files.dynamicPostgresql()['use_pg_rewind']);
    if (!use || !this.d.control.allowsRewind) return false;
    const bin = resolveBinary(files.bins, 'pg_rewind');
    return !bin.includes('/') || existsSync(bin);
  }

  /** The data directory is empty: nothing to compare. */
  dataDirEmptied(): void {
    this.status = 'initial';
  }

  private credentials(): PgUser {
    const auth = this.d.files.config.postgresql.authentication;
    return auth.rewind ?? auth.superuser;
  }

  /**
   * The stopped instance's divergence from the leader (Patroni's `trigger_check_diverged_lsn` on recover, then
   * `_check_timeline_and_lsn`): compares the local timeline/LSN from pg_controldata with the leader's timeline
   * history. Only a cleanly shut down directory can be compared (crash recovery runs first).
   */
  async checkDiverged(
    leader: PeerPostgres | undefined,
    data: ReadonlyMap<string, string>,
  ): Promise<PostgresInfo['diverged']> {
    const remedy = this.remedy();
    if (remedy === undefined) return undefined;
    if (!leader || leader.name === this.d.files.config.name) return undefined;
    if (this.status === 'need') return { leader: leader.name, remedy };
    if (this.status === 'success' || this.status === 'failed') return undefined;
    this.status = 'check';
    const local = localPositionFromControldata(data);
    if (!local) return undefined;
    return this.compare(leader, local, remedy);
  }

  /**
   * A running replica's divergence from the leader (Patroni checks a running replica too: `_get_local_timeline_lsn`
   * from a replication connection and the replayed LSN). The check runs once per trigger (see `runningCheckTrigger`)
   * and is kept pending until a leader can answer it; a divergence found stays known until pg_rewind or a reinit.
   */
  async checkRunning(
    leader: PeerPostgres | undefined,
    replica: RunningReplica,
  ): Promise<PostgresInfo['diverged']> {
    const remedy = this.remedy();
    // The remote primary of a standby cluster is known by its address: a new one is a new leader to check against.
    const key =
      leader?.remote && leader.address
        ? `${leader.name}@${leader.address.host}:${leader.address.port}`
        : leader?.name;
    const historyAhead =
      leader?.remote === true && leader.timeline !== undefined && this.hasHistory(leader.timeline + 1);
    const trigger = runningCheckTrigger(this.seen, {
      pid: replica.pid,
      leader: key,
      leaderTimeline: leader?.timeline,
      localTimeline: replica.timeline,
      historyAhead,
    });
    this.seen = {
      pid: replica.pid,
      leader: key ?? this.seen.leader,
      timelines: `${leader?.timeline}/${replica.timeline}`,
      ...(historyAhead ? { historyFor: leader.timeline } : {}),
    };
    if (remedy === undefined) return undefined;
    if (trigger !== undefined && this.status !== 'need') this.status = 'check';
    if (!leader || leader.name === this.d.files.config.name) return undefined;
    if (this.status === 'need') return { leader: leader.name, remedy };
    if (this.status !== 'check' || replica.replayLsn === undefined) return undefined;
    const timeline = (await this.localReplicaTimeline()) ?? replica.timeline;
    if (timeline === undefined) return undefined;
    return this.compare(leader, { inRecovery: true, timeline, lsn: replica.replayLsn }, remedy);
  }

  /** pg_wal holds `<timeline>.history` (Patroni's `get_history`, which a standby's WAL receiver fetches). */
  private hasHistory(timeline: number): boolean {
    const name = `${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`;
    return existsSync(join(this.d.files.dataDir, 'pg_wal', name));
  }

  /** A running primary: no divergence to check; a later stop or start as a replica checks anew. */
  seenPrimary(pid: number): void {
    this.seen = { ...this.seen, pid };
    if (this.status !== 'need') this.status = 'initial';
  }

  /** What can be done about a divergence, or undefined when neither pg_rewind nor removing the data is allowed. */
  private remedy(): 'rewind' | 'reinitialize' | undefined {
    if (this.canRewind()) return 'rewind';
    return this.d.files.config.postgresql.removeDataDirectoryOnDivergedTimelines ? 'reinitialize' : undefined;
  }

  /** The timeline a running replica replays, from IDENTIFY_SYSTEM on a local replication connection (as Patroni). */
  private async localReplicaTimeline(): Promise<number | undefined> {
    const pg = this.d.files.config.postgresql;
    const local = localConnectOptions(pg, pg.authentication.replication);
    try {
      const r = await primaryTimeline(
        { host: local.host, port: local.port },
        pg.authentication.replication,
        Number.MAX_SAFE_INTEGER,
        pg.database,
      );
      return r.timeline;
    } catch (e) {
      this.d.log.warning(`Can not fetch local timeline from replication connection: ${errorText(e)}`);
      return undefined;
    }
  }

  /**
   * Patroni's `_check_timeline_and_lsn` against the leader: `need` or `not-need` once the leader answered as a
   * primary; the status stays as it was (the check is retried) when it could not.
   */
  private async compare(
    leader: PeerPostgres,
    local: LocalPosition,
    remedy: 'rewind' | 'reinitialize',
  ): Promise<PostgresInfo['diverged']> {
    const pg = this.d.files.config.postgresql;
    const address = leader.address;
    // A remote primary has no member key to tell its role (Patroni checks a `Leader`'s only): pg_is_in_recovery says.
    if (!address || (!leader.remote && !['master', 'primary'].includes(leader.role ?? ''))) return undefined;
    this.d.log.info(`Local timeline=${local.timeline} lsn=${lsnText(local.lsn)}`);
    try {
      if (!(await leaderIsPrimary(address, this.credentials(), pg.database))) {
        this.d.log.info("Leader is still in_recovery and therefore can't be used for rewind");
        return undefined;
      }
      const primary = await primaryTimeline(
        address,
        pg.authentication.replication,
        local.timeline,
        pg.database,
      );
      this.d.log.info(`primary_timeline=${primary.timeline}`);
      const need = await rewindNeeded(local, primary, (tli, lsn) =>
        checkpointEnd(this.d.files.bins, this.d.files.dataDir, tli, lsn),
      );
      this.status = need ? 'need' : 'not-need';
    } catch (e) {
      this.d.log.warning(`Exception when working with leader ${leader.name}: ${errorText(e)}`);
      return undefined;
    }
    return this.status === 'need' ? { leader: leader.name, remedy } : undefined;
  }

  /** Patroni's `Rewind.execute`: stop, wait for the leader's post-promote checkpoint, run pg_rewind. */
  async rewind(leader: PeerPostgres, task: Cancellation): Promise<boolean> {
    const { files, log } = this.d;
    const address = leader.address;
    if (!address) {
      log.warning(`Can not use ${leader.name} for rewind: no usable conn_url`);
      return false;
    }
    if (isRunning(files.dataDir) !== undefined) await this.d.stop('fast');
    if (task.cancelled()) return false;
    const pg = files.config.postgresql;
    const user = this.credentials();
    if (leader.checkpointAfterPromote === false) {
      log.info(`Waiting for checkpoint on ${leader.name} before rewind`);
      return false;
    }
    const primaryNow = (): Promise<boolean> =>
      leaderIsPrimary(address, user, pg.database).catch((e: unknown) => {
        log.warning(`Exception when working with leader ${leader.name}: ${errorText(e)}`);
        return false;
      });
    if (leader.remote) {
      const problem = await this.remoteCheckpoint(address, user);
      if (problem !== undefined) {
        log.warning(`Can not use ${leader.name} for rewind: ${problem}`);
        return false;
      }
    } else if (!(await primaryNow())) return false;
    this.d.state.busy = true;
    try {
      log.info(`running pg_rewind from ${leader.name} (${address.host}:${address.port} as ${user.username})`);
      const result = await pgRewind({
        bins: files.bins,
        dataDir: files.dataDir,
        source: address,
        user,
        database: pg.database,
        pgpassPath: pg.pgpass,
      });
      log.info('pg_rewind exit code=0');
      if (result.stdout.trim() !== '') log.info(` stdout=${result.stdout.trim()}`);
      if (result.stderr.trim() !== '') log.info(` stderr=${result.stderr.trim()}`);
      this.status = 'success';
      this.d.control.forget();
      return true;
    } catch (e) {
      log.error(`pg_rewind failed: ${errorText(e)}`);
      await this.rewindFailed(leader, await primaryNow());
      return false;
    } finally {
      this.d.state.busy = false;
    }
  }

  /**
   * A remote primary publishes no `checkpoint_after_promote` (Patroni's `Rewind.execute` for a `RemoteMember`): with
   * the superuser's credentials CHECKPOINT runs there, so that its pg_control names its new timeline; with a
   * dedicated rewind user it must have run one already. Undefined when pg_rewind can go on, else why not.
   */
  private async remoteCheckpoint(
    address: { readonly host: string; readonly port: number },
    user: PgUser,
  ): Promise<string | undefined> {
    const pg = this.d.files.config.postgresql;
    try {
      if (pg.authentication.rewind === undefined) {
        if (!(await leaderIsPrimary(address, user, pg.database))) return 'is_in_recovery=true';
        await queryPrimary(address, user, 'CHECKPOINT', pg.database, 0);
        return undefined;
      }
      const ran = await queryPrimary(address, user, HAS_RUN_CHECKPOINT, pg.database);
      return ran === true ? undefined : 'leader has not run a checkpoint yet';
    } catch (e) {
      this.d.log.warning(`Exception when working with leader: ${errorText(e)}`);
      return 'not accessible or not healthy';
    }
  }

  /** After a failed pg_rewind: failed for good unless the leader went away; the remove-data-directory options. */
  private async rewindFailed(leader: PeerPostgres, leaderStillPrimary: boolean): Promise<void> {
    const { files, log } = this.d;
    const pg = files.config.postgresql;
    if (!leaderStillPrimary) {
      log.warning(`Failed to rewind because primary ${leader.name} become unreachable`);
      this.d.control.forget();
      await this.d.control.sysid().catch(() => undefined);
      if (!this.canRewind()) this.status = 'failed';
    } else {
      log.error(`Failed to rewind from healty primary: ${leader.name}`);
      this.status = 'failed';
    }
    if (this.status !== 'failed') return;
    for (const [name, on] of [
      ['remove_data_directory_on_rewind_failure', pg.removeDataDirectoryOnRewindFailure],
      ['remove_data_directory_on_diverged_timelines', pg.removeDataDirectoryOnDivergedTimelines],
    ] as const) {
      if (!on) continue;
      log.warning(`${name} is set. removing...`);
      wipeDataDir(files.dataDir);
      this.d.control.forget();
      this.status = 'initial';
      break;
    }
  }
}
