/**
 * Replication slot housekeeping on every running member, primary and replicas (Patroni 4.1.4's
 * `SlotsHandler.sync_replication_slots` and `copy_logical_slots`): what to do is planned by src/model/slot-plan.ts
 * from the slots src/model/slot-config.ts wants; this module reads pg_replication_slots, carries the plan out and
 * copies logical slots from the primary to a replica (its `pg_replslot/<name>/state` file, written while the
 * replica is stopped, as Patroni does: PostgreSQL before 16 cannot create a logical slot on a standby).
 */
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Cluster, JsonObject } from '../model/cluster.js';
import { formatLsn, type Lsn } from '../model/lsn.js';
import {
  desiredSlots,
  ignoreMatchers,
  publishedSlots,
  shouldEnforceHotStandbyFeedback,
  slotNameOnPrimary,
  type DesiredSlots,
  type SlotContext,
} from '../model/slot-config.js';
import { planSlotSync, slotPositions, type ExistingSlot, type SlotAction } from '../model/slot-plan.js';
import { stateFileRestartLsn, walHeld, type LocalWal } from '../model/slot-readiness.js';
import { errorText } from '../model/text.js';
import type { ConfigFiles } from './config-files.js';
import { slotNameForMember } from './config-writer.js';
import type { LocalSession } from './local-session.js';
import type { PgLog } from './ports.js';
import { connect, dropSlot, type ConnectOptions, type PgSession } from './queries.js';
import { SlotAdvancer } from './slot-advancer.js';
import {
  advanceSlot,
  createLogicalSlot,
  createReservedPhysicalSlot,
  localWal,
  managedSlots,
  primarySlotFiles,
  type PrimaryAddress,
  type PrimarySlotFile,
} from './slot-queries.js';
import { LogicalSlotReadiness } from './slot-readiness.js';

export interface SlotsSyncDeps {
  readonly files: ConfigFiles;
  readonly session: LocalSession;
  /** How to reach the local server as the superuser in `database`. */
  readonly connectTo: (database: string) => ConnectOptions;
  /** Stops PostgreSQL, runs `between`, starts it again with the files as written; false when the start failed. */
  readonly restartAround: (between: () => Promise<void>) => Promise<boolean>;
  /** Our member tags (nofailover, replicatefrom, nostream). */
  readonly tags: () => JsonObject;
  readonly log: PgLog;
}

export class SlotsSync {
  private reportedErrors = '';
  private readonly advancer: SlotAdvancer;
  readonly readiness: LogicalSlotReadiness;
  /** Copies not made because the replica lacks their WAL: slot -> restart_lsn, to say it once. */
  private readonly heldBack = new Map<string, Lsn>();

  constructor(private readonly d: SlotsSyncDeps) {
    this.advancer = new SlotAdvancer(d.connectTo, d.log);
    this.readiness = new LogicalSlotReadiness(d.session, d.log);
  }

  private context(cluster: Cluster, role: 'primary' | 'replica'): SlotContext {
    return {
      cluster,
      dynamic: cluster.config?.data,
      self: this.d.files.config.name,
      tags: this.d.tags(),
      role,
      canAdvanceSlots: this.d.files.majorVersion() >= 110000,
      slotName: slotNameForMember,
    };
  }

  /** The slot positions a leader publishes in the status key (before its own name at the optime). */
  async leaderPositions(cluster: Cluster): Promise<Record<string, Lsn>> {
    if (!cluster.config || this.d.files.majorVersion() < 110000) return {};
    const ctx = this.context(cluster, 'primary');
    const { slots } = desiredSlots(ctx);
    const existing = await this.d.session.withSession((s) => managedSlots(s, this.d.files.majorVersion()));
    return publishedSlots(ctx, slotPositions(slots, existing));
  }

  /**
   * The slots a leader sends in POST /failsafe's body while the DCS is down (Patroni's `Postgresql.slots()`): the
   * status key's positions (without a cluster: none) and our own name at the optime. Empty before PostgreSQL 11.
   */
  async failsafePositions(cluster: Cluster | undefined): Promise<Record<string, Lsn>> {
    if (this.d.files.majorVersion() < 110000) return {};
    // The cycle's status, as Patroni's cached cluster info: no extra round trip before the failsafe check.
    const st = this.d.session.lastStatus ?? (await this.d.session.queryStatus());
    const positions = cluster ? await this.leaderPositions(cluster) : {};
    if (st && !st.inRecovery && st.flushLsn)
      positions[slotNameForMember(this.d.files.config.name)] = st.flushLsn;
    return positions;
  }

  /**
   * One cycle of housekeeping on a running PostgreSQL. `paused`: no slot is dropped. `copyLogical` false: logical slots
   * are not copied from the primary (Patroni does not while the DCS is down or failsafe mode is active).
   */
  async sync(cluster: Cluster, paused: boolean, copyLogical = true): Promise<void> {
    const major = this.d.files.majorVersion();
    const st = this.d.session.lastStatus;
    if (major < 90400 || !cluster.config || !st) return;
    const isPrimary = !st.inRecovery;
    const ctx = this.context(cluster, isPrimary ? 'primary' : 'replica');
    // Applied with the next configuration check (a reload), as Patroni's set_enforce_hot_standby_feedback.
    this.d.files.enforceHotStandbyFeedback = ctx.canAdvanceSlots && shouldEnforceHotStandbyFeedback(ctx);
    const { slots: desired, errors } = desiredSlots(ctx);
    this.reportErrors(errors);
    const existing = await this.d.session.withSession((s) => managedSlots(s, major));
    const wal = await this.replicaWal(isPrimary, desired);
    const self = this.d.files.config.name;
    const actions = planSlotSync({
      desired,
      existing,
      isPrimary,
      paused,
      ignore: ignoreMatchers(ctx.dynamic),
      canAdvanceSlots: ctx.canAdvanceSlots,
      majorVersion: major,
      cleanInactivePhysical: cluster.leader !== undefined && (cluster.leader.name !== self || isPrimary),
      replayLsn: st.replayLsn,
      wal,
    });
    const copies: string[] = [];
    const advances: { name: string; database: string; lsn: Lsn }[] = [];
    for (const a of actions) {
      if (a.kind === 'copy_logical') copies.push(a.name);
      else if (a.kind === 'advance_logical') advances.push(a);
      else await this.apply(a, existing);
    }
    if (isPrimary) {
      this.readiness.asPrimary();
      await this.advancer.stop(async (pid) => {
        await this.d.session.withSession((s) => s.query('SELECT pg_catalog.pg_cancel_backend($1)', [pid]));
      });
      return;
    }
    this.readiness.asReplica(existing);
    await this.readiness.check(
      this.leaderAddress(cluster),
      slotNameOnPrimary(ctx, self, ctx.tags),
      existing,
      wal,
    );
    // Advancing can wait for WAL on a standby: it runs in the background (Patroni's SlotsAdvanceThread).
    const { copy } = this.advancer.schedule(advances);
    for (const name of copy) if (!copies.includes(name)) copies.push(name);
    if (copyLogical && copies.length > 0) await this.copyFromPrimary(cluster, desired, copies, wal);
  }

  /** A replica's pg_wal, when it wants logical slots (undefined: unknown, or not needed). */
  private async replicaWal(isPrimary: boolean, desired: DesiredSlots): Promise<LocalWal | undefined> {
    if (isPrimary || ![...desired.values()].some((d) => d.type === 'logical')) return undefined;
    try {
      return await this.d.session.withSession((s) => localWal(s));
    } catch (e) {
      this.d.log.warning(`could not list pg_wal: ${errorText(e)}`);
      return undefined;
    }
  }

  private reportErrors(errors: readonly string[]): void {
    const text = errors.join('\n');
    if (text === this.reportedErrors) return;
    this.reportedErrors = text;
    for (const e of errors) this.d.log.error(e);
  }

  /** One action on the local server (logical advances and copies are collected by `sync`). */
  private async apply(a: SlotAction, existing: readonly ExistingSlot[]): Promise<void> {
    const { log } = this.d;
    try {
      switch (a.kind) {
        case 'drop':
          await this.drop(a.name, a.why, existing);
          return;
        case 'create_physical':
          await this.d.session.withSession((s) => createReservedPhysicalSlot(s, a.name));
          log.info(`created physical replication slot ${a.name}`);
          return;
        case 'advance_physical':
          await this.d.session.withSession((s) => advanceSlot(s, a.name, a.lsn));
          return;
        case 'create_logical':
          await this.inDatabase(a.database, (s) => createLogicalSlot(s, a.name, a.plugin));
          log.info(`created logical replication slot ${a.name} (database ${a.database}, plugin ${a.plugin})`);
          return;
        case 'advance_logical':
        case 'copy_logical':
          return;
      }
    } catch (e) {
      log.error(`replication slot ${a.name}: ${a.kind.replace('_', ' ')} failed: ${errorText(e)}`);
    }
  }

  private async drop(name: string, why: string, existing: readonly ExistingSlot[]): Promise<void> {
    const { log } = this.d;
    const was = existing.find((e) => e.name === name);
    const reason: Record<string, string> = {
      unknown: 'it is not wanted',
      lost: 'its WAL is lost (wal_status=lost)',
      changed: 'its type, database or plugin is changing',
      xmin: `nobody should stream from it and it holds xmin ${was?.xmin ?? ''}`,
      no_restart_lsn: 'it has no restart_lsn (not created by pgwarden), it will be created again',
    };
    log.info(`dropping replication slot '${name}': ${reason[why] ?? why}`);
    const r = await this.d.session.withSession((s) => dropSlot(s, name));
    if (r.dropped) log.info(`dropped replication slot '${name}'`);
    else if (r.active) log.warning(`unable to drop replication slot '${name}', slot is active`);
    else if (r.existed) log.error(`failed to drop replication slot '${name}'`);
  }

  private async inDatabase<T>(database: string, fn: (s: PgSession) => Promise<T>): Promise<T> {
    const s = await connect({ ...this.d.connectTo(database), statementTimeoutMs: 0, queryTimeoutMs: 60_000 });
    try {
      return await fn(s);
    } finally {
      await s.close().catch(() => undefined);
    }
  }

  /** How to reach the leader's PostgreSQL as the rewind user (else the superuser); undefined without a leader. */
  private leaderAddress(cluster: Cluster): PrimaryAddress | undefined {
    const leader = cluster.leader?.member;
    const address = leader?.data.connUrl ? parseAddress(leader.data.connUrl) : undefined;
    if (!address) return undefined;
    const pg = this.d.files.config.postgresql;
    const user = pg.authentication.rewind ?? pg.authentication.superuser;
    return {
      ...address,
      user: user.username,
      password: user.password,
      database: pg.database,
      connectionParams: user.connectionParams,
    };
  }

  /**
   * Copies logical slots from the primary: their state files, written while PostgreSQL is stopped. A slot whose
   * restart_lsn is older than the oldest WAL this replica has is not copied (it could never decode here); it is
   * copied once the primary's slot has moved past it.
   */
  private async copyFromPrimary(
    cluster: Cluster,
    desired: DesiredSlots,
    names: readonly string[],
    wal: LocalWal | undefined,
  ): Promise<void> {
    const at = this.leaderAddress(cluster);
    if (!at) return;
    let files: PrimarySlotFile[];
    try {
      files = await primarySlotFiles(at, names, this.d.files.majorVersion());
    } catch (e) {
      this.d.log.error(
        `failed to copy logical slots from ${cluster.leader?.name ?? 'the leader'}: ${errorText(e)}`,
      );
      return;
    }
    const copies = files.filter((f) => {
      const want = desired.get(f.name);
      const same = want?.type === f.type && want.database === f.database && want.plugin === f.plugin;
      if (!same)
        this.d.log.warning(
          `will not copy the logical slot "${f.name}": the primary's slot differs from the configuration`,
        );
      return same && this.walForCopy(f, wal);
    });
    if (copies.length === 0) return;
    this.d.log.info(`copying logical slots ${copies.map((f) => f.name).join(', ')} from the primary`);
    this.advancer.clean();
    if (await this.d.restartAround(() => writeSlotFiles(this.d.files.dataDir, copies)))
      this.readiness.copied(copies.map((f) => f.name));
  }

  /** Whether this replica still has the WAL from the restart_lsn of the primary's slot (said once per position). */
  private walForCopy(f: PrimarySlotFile, wal: LocalWal | undefined): boolean {
    const restart = stateFileRestartLsn(f.state);
    if (restart === undefined || walHeld(restart, wal)) {
      this.heldBack.delete(f.name);
      return true;
    }
    if (this.heldBack.get(f.name) !== restart)
      this.d.log.warning(
        `not copying the logical slot "${f.name}" yet: its restart_lsn ${formatLsn(restart)} is older than the ` +
          'oldest WAL this replica has; waiting for the slot on the primary to move on',
      );
    this.heldBack.set(f.name, restart);
    return false;
  }
}

function parseAddress(connUrl: string): { host: string; port: number } | undefined {
  try {
    const u = new URL(connUrl);
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    return host ? { host, port: u.port ? Number(u.port) : 5432 } : undefined;
  } catch {
    return undefined;
  }
}

/** Writes each slot's state file under pg_replslot (through a `.tmp` directory, fsynced), with the data dir's modes. */
async function writeSlotFiles(dataDir: string, files: readonly PrimarySlotFile[]): Promise<void> {
  const groupAccess = ((await stat(dataDir)).mode & 0o050) !== 0;
  const dirMode = groupAccess ? 0o750 : 0o700;
  const fileMode = groupAccess ? 0o640 : 0o600;
  const root = join(dataDir, 'pg_replslot');
  for (const f of files) {
    const dir = join(root, f.name);
    const tmp = `${dir}.tmp`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { mode: dirMode });
    const fh = await open(join(tmp, 'state'), 'w', fileMode);
    try {
      await fh.writeFile(f.state);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsyncDir(tmp);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    await fsyncDir(dir);
  }
  await fsyncDir(root);
}

async function fsyncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
