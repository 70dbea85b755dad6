/**
 * Divergence from the leader and pg_rewind (spec 6.9, Patroni's Rewind): whether a rewind can work, the check of
 * a stopped instance's timeline and LSN against the leader's history, and `Rewind.execute` with Patroni's
 * REWIND_STATUS bookkeeping and its remove-data-directory options on failure.
 */
import { existsSync } from 'node:fs';
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
import {
  checkpointEnd,
  leaderIsPrimary,
  localPositionFromControldata,
  pgRewind,
  primaryTimeline,
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

const lsnText = (v: bigint): string =>
  `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;

export class Rewinder {
  private status: RewindState = 'initial';

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

  /** PostgreSQL runs: a new check is due after its next stop, unless a rewind is known to be needed. */
  seenRunning(): void {
    if (this.status !== 'need') this.status = 'initial';
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
    const pg = this.d.files.config.postgresql;
    const canRewind = this.canRewind();
    if (!canRewind && !pg.removeDataDirectoryOnDivergedTimelines) return undefined;
    if (!leader || leader.name === this.d.files.config.name) return undefined;
    const remedy = canRewind ? 'rewind' : 'reinitialize';
    if (this.status === 'need') return { leader: leader.name, remedy };
    if (this.status === 'success' || this.status === 'failed') return undefined;
    this.status = 'check';
    const address = leader.address;
    if (!address || !['master', 'primary'].includes(leader.role ?? '')) return undefined;
    const local = localPositionFromControldata(data);
    if (!local) return undefined;
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
    if (!(await primaryNow())) return false;
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
