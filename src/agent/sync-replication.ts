/**
 * Synchronous replication on the leader (ha.py `process_sync_replication`), the I/O side of src/ha/sync.ts: reads what
 * PostgreSQL reports (synchronous_standby_names, pg_stat_replication), sets synchronous_standby_names through the node
 * and writes `/sync` with compare-and-set, in the order src/ha/sync.ts plans. The HA loop calls it through its
 * `SyncReplicationPort`.
 */
import type { Dcs } from '../dcs/dcs.js';
import type { HaConfig } from '../ha/snapshot.js';
import type { LoopLogger, SyncReplicationPort } from '../ha/loop.js';
import {
  EMPTY_STANDBY_NAMES,
  currentState,
  formatQuorumStandbyNames,
  formatSynchronousStandbyNames,
  growSyncKey,
  lsnColumnFor,
  parseSynchronousStandbyNames,
  planSyncReplication,
  pruneReadyReplicas,
  quorumCurrentState,
  startupStandbyNames,
  syncSettingsFromDynamic,
  syncStateValue,
  type ParsedStandbyNames,
  type ReplicationInfo,
} from '../ha/sync.js';
import type { Cluster } from '../model/cluster.js';
import { parseIntLenient } from '../model/cluster.js';
import { QuorumError, resolveQuorum } from '../ha/quorum.js';
import type { Lsn } from '../model/lsn.js';
import { pyJson } from '../model/pyjson.js';
import type { buildServerParameters } from '../postgres/config-writer.js';
import { statReplication, type PgSession } from '../postgres/queries.js';
import { errorText } from '../model/text.js';

type ServerParameters = ReturnType<typeof buildServerParameters>;

/** Applies synchronous mode's synchronous_standby_names to a node's server parameters. */
export function withStandbyNames(
  params: ServerParameters,
  dynamic: Readonly<Record<string, unknown>>,
  managed: string | undefined,
): ServerParameters {
  const rule = startupStandbyNames(syncSettingsFromDynamic(dynamic), managed);
  if (rule === undefined) return params;
  const next = new Map(params.parameters);
  if ('set' in rule) next.set('synchronous_standby_names', rule.set);
  else next.delete('synchronous_standby_names');
  return { ...params, parameters: next };
}

/** What the sync bookkeeping needs from the local node. */
export interface SyncNode {
  withSession<T>(fn: (s: PgSession) => Promise<T>): Promise<T>;
  /**
   * Sets synchronous_standby_names (undefined: none), rewriting postgresql.conf and reloading; true when a running
   * PostgreSQL was reloaded with a new value (then it is read back).
   */
  setSynchronousStandbyNames(value: string | undefined): Promise<boolean>;
}

export interface SyncClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const SYSTEM: SyncClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

interface PgView {
  readonly standbyNames: string;
  readonly synchronousCommit: string;
  readonly flushLsn: Lsn;
  readonly inRecovery: boolean;
  readonly majorVersion: number;
}

function pyList(names: readonly string[]): string {
  return `[${names.map((n) => `'${n}'`).join(', ')}]`;
}

function lsn(v: unknown): Lsn {
  if (typeof v !== 'string') return 0n;
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(v);
  return m ? (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`) : 0n;
}

/** The `/sync` value Patroni 4.1.4 writes: `{"leader":..,"quorum":n,"sync_standby":"a,b"|null}`, names sorted. */
function quorumSyncValue(leader: string, voters: readonly string[], quorum: number): string {
  return pyJson(
    { leader, quorum, sync_standby: voters.length > 0 ? [...voters].sort().join(',') : null },
    true,
  );
}

/** Patroni's `SyncHandler` plus `Ha.process_sync_replication`, for one leader. */
export class SyncReplication implements SyncReplicationPort {
  /** The SSN PostgreSQL ran with when last looked at (Patroni's `_synchronous_standby_names`). */
  private seenStandbyNames = '';
  private parsed: ParsedStandbyNames = EMPTY_STANDBY_NAMES;
  private primaryFlushLsn: Lsn = 0n;
  private ready: ReadonlyMap<string, number> = new Map();
  private majorVersion = 0;
  /** synchronous_standby_names has been set by this process (undefined after an agent restart). */
  private managed = false;
  /** Quorum commit: when the resolver first ran since the last promotion or demotion (0: not yet). */
  private quorumSince = 0;

  constructor(
    private readonly name: string,
    private readonly node: SyncNode,
    private readonly dcs: Dcs,
    private readonly log: LoopLogger,
    private readonly clock: SyncClock = SYSTEM,
    /** How long to wait for a new standby to become synchronous before `/sync` is left for the next cycle. */
    private readonly syncWaitMs = 2000,
  ) {}

  private async pgView(): Promise<PgView> {
    const row = await this.node.withSession(async (s) => {
      const rows = await s.query(
        `SELECT pg_catalog.current_setting('synchronous_standby_names') AS ssn,
                pg_catalog.current_setting('synchronous_commit') AS sc,
                pg_catalog.current_setting('server_version_num')::int AS v,
                pg_catalog.pg_is_in_recovery() AS r,
                CASE WHEN pg_catalog.pg_is_in_recovery() THEN NULL
                     ELSE pg_catalog.pg_current_wal_flush_lsn()::text END AS flush`,
      );
      return rows[0] ?? {};
    });
    this.majorVersion = Number(row['v'] ?? 0);
    return {
      standbyNames: typeof row['ssn'] === 'string' ? row['ssn'] : '',
      synchronousCommit: typeof row['sc'] === 'string' ? row['sc'] : 'on',
      flushLsn: lsn(row['flush']),
      inRecovery: row['r'] === true,
      majorVersion: this.majorVersion,
    };
  }

  /** Patroni's `_handle_synchronous_standby_names_change`. */
  private async noticeStandbyNamesChange(view: PgView): Promise<void> {
    if (view.standbyNames === this.seenStandbyNames) return;
    this.seenStandbyNames = view.standbyNames;
    try {
      this.parsed = parseSynchronousStandbyNames(view.standbyNames);
    } catch (e) {
      this.log.warning(errorText(e));
      this.parsed = EMPTY_STANDBY_NAMES;
    }
    this.ready = pruneReadyReplicas(this.ready, this.parsed);
    // Newly listed standbys count as synchronous only once they reach this position.
    this.primaryFlushLsn = view.flushLsn;
    // Some WAL traffic, so that replicas report a position past it soon. The commit must not wait for a
    // synchronous standby (strict mode without one would block the HA loop): synchronous_commit=local for it.
    await this.node.withSession((s) =>
      s.query(
        `SELECT pg_catalog.txid_current()
           FROM (SELECT pg_catalog.set_config('synchronous_commit', 'local', true)) AS local_commit`,
      ),
    );
  }

  private async replication(synchronousCommit: string): Promise<ReplicationInfo[]> {
    const column = lsnColumnFor(synchronousCommit);
    const rows = await this.node.withSession((s) => statReplication(s));
    return rows.map((r) => ({
      pid: r.pid ?? 0,
      applicationName: r.applicationName ?? '',
      syncState: r.syncState ?? '',
      lsn: column === 'replay' ? r.replayLsn : column === 'write' ? r.writeLsn : r.flushLsn,
    }));
  }

  /** Patroni's `SyncHandler.current_state`. */
  private async state(
    cluster: Cluster,
  ): Promise<{ readonly picked: readonly string[]; readonly allowPromote: readonly string[] }> {
    const view = await this.pgView();
    await this.noticeStandbyNamesChange(view);
    const settings = syncSettingsFromDynamic(cluster.config?.data);
    const cs = currentState({
      members: cluster.members,
      replication: await this.replication(view.synchronousCommit),
      syncKeyMembers: cluster.sync.leader === undefined ? [] : cluster.sync.members,
      standbyNames: this.parsed,
      readyReplicas: this.ready,
      primaryFlushLsn: this.primaryFlushLsn,
      lastOperation: view.flushLsn,
      nodeCount: settings.nodeCount,
      maxLagOnSyncnode: settings.maxLagOnSyncnode,
      majorVersion: view.majorVersion,
    });
    this.ready = cs.readyReplicas;
    return { picked: cs.candidates, allowPromote: cs.syncNodes };
  }

  async setStandbyNames(names: readonly string[], num?: number): Promise<void> {
    // A promotion or a demotion: quorum commit's resolver starts over and waits a loop_wait after its first run.
    this.quorumSince = 0;
    await this.applyStandbyNames(names, num);
  }

  private async applyStandbyNames(names: readonly string[], num?: number): Promise<void> {
    const value =
      num === undefined
        ? formatSynchronousStandbyNames(names, this.majorVersion)
        : formatQuorumStandbyNames(names, num, this.majorVersion);
    this.managed = value !== undefined;
    const changed = await this.node.setSynchronousStandbyNames(value);
    const star = names.includes('*') || (num !== undefined && num >= 1 && names.length === 0);
    if (!changed || star) return;
    // Wait (with a deadline) until PostgreSQL runs with the new value, then note the change.
    let view: PgView | undefined;
    const deadline = this.clock.now() + 1000;
    try {
      for (;;) {
        view = await this.pgView();
        if (view.inRecovery) return;
        if (view.standbyNames === (value ?? '') || this.clock.now() >= deadline) break;
        await this.clock.sleep(20);
      }
      await this.noticeStandbyNamesChange(view);
    } catch (e) {
      this.log.warning(`could not read synchronous_standby_names back: ${errorText(e)}`);
    }
  }

  /** Quorum commit's view: Patroni 4.1.4's `current_state` in quorum mode. */
  private async quorumState(
    cluster: Cluster,
    nodeCount: number,
  ): Promise<ReturnType<typeof quorumCurrentState>> {
    const view = await this.pgView();
    await this.noticeStandbyNamesChange(view);
    const settings = syncSettingsFromDynamic(cluster.config?.data);
    const qs = quorumCurrentState({
      members: cluster.members.filter((m) => m.name.toLowerCase() !== this.name.toLowerCase()),
      replication: await this.replication(view.synchronousCommit),
      syncKeyMembers: [],
      standbyNames: this.parsed,
      readyReplicas: this.ready,
      primaryFlushLsn: this.primaryFlushLsn,
      lastOperation: view.flushLsn,
      nodeCount,
      maxLagOnSyncnode: settings.maxLagOnSyncnode,
      majorVersion: view.majorVersion,
    });
    this.ready = qs.readyReplicas;
    return qs;
  }

  /**
   * Patroni 4.1.4's `_process_quorum_replication`: runs the resolver's transitions in order, each `/sync` write a
   * compare-and-set on the version last read or written (losing it ends the cycle), each SSN change applied before
   * the next step; after `restart` (the SSN grew from nothing and no standby caught up yet) it looks again a second
   * later, all within one loop_wait.
   */
  private async processQuorum(cluster: Cluster, config: HaConfig): Promise<void> {
    const start = this.clock.now();
    const timedOut = (extraMs = 0): boolean => this.clock.now() - start + extraMs >= config.loopWait * 1000;
    const minSync = config.synchronousModeStrict ? 1 : 0;
    const count = parseIntLenient(cluster.config?.data['synchronous_node_count']);
    const syncWanted = Math.max(count ?? 1, minSync);
    let sync = {
      version: cluster.sync.version,
      leader: cluster.sync.leader,
      quorum: cluster.sync.leader === undefined ? 0 : (cluster.sync.quorum ?? 0),
      voters: cluster.sync.leader === undefined ? [] : cluster.sync.members,
    };
    if (sync.leader === undefined) {
      const version = await this.dcs.setSyncStateValue(quorumSyncValue(this.name, [], 0), sync.version);
      if (version === false) {
        this.log.warning('Updating sync state failed');
        return;
      }
      this.log.info('Enabled synchronous replication');
      sync = { version, leader: this.name, quorum: 0, voters: [] };
    }
    let leader = sync.leader ?? this.name;
    for (;;) {
      const state = await this.quorumState(cluster, syncWanted);
      let transitions;
      try {
        transitions = resolveQuorum({
          leader,
          quorum: sync.quorum,
          voters: sync.voters,
          numsync: state.numsync,
          sync: state.sync,
          numsyncConfirmed: state.syncConfirmed.length,
          active: state.active,
          syncWanted,
          leaderWanted: this.name,
        });
      } catch (e) {
        if (!(e instanceof QuorumError)) throw e;
        this.log.warning(e.message);
        return;
      }
      let last = 'break';
      for (const t of transitions) {
        if (timedOut()) return;
        last = t.type;
        leader = t.leader;
        if (t.type === 'quorum') {
          this.log.info(
            `Setting leader to ${t.leader}, quorum to ${t.num} of ${t.names.length} (${t.names.join(', ')})`,
          );
          const version = await this.dcs.setSyncStateValue(
            quorumSyncValue(t.leader, t.names, t.num),
            sync.version,
          );
          if (version === false) {
            this.log.info('Synchronous replication key updated by someone else.');
            return;
          }
          sync = { version, leader: t.leader, quorum: t.num, voters: t.names };
        } else if (t.type === 'sync') {
          this.log.info(
            `Setting synchronous replication to ${t.num} of ${t.names.length} (${t.names.join(', ')})`,
          );
          let num = t.num;
          if (num < minSync) {
            // Commits wait until enough standbys are there (strict mode).
            this.log.warning(
              `Replication factor ${minSync + 1} requested, but ${num} synchronous standbys available. Commits will be delayed.`,
            );
            num = minSync;
          }
          await this.applyStandbyNames(t.names, num);
        }
      }
      if (last !== 'restart' || timedOut(1000)) return;
      // The SSN just went from nothing to some standbys: look again soon, to name voters before the next cycle.
      await this.clock.sleep(1000);
    }
  }

  private async writeSync(names: readonly string[], version: string | undefined): Promise<boolean> {
    const value = pyJson(syncStateValue(this.name, names), true);
    return (await this.dcs.setSyncStateValue(value, version)) !== false;
  }

  async process(cluster: Cluster, config: HaConfig): Promise<void> {
    if (config.synchronousMode === 'quorum') {
      // Right after a promotion the SSN set before it is reflected in `/sync` once, then changes wait a loop_wait,
      // so that standbys have time to reconnect instead of being dropped from the quorum (Patroni 4.1.4).
      const now = this.clock.now();
      if (this.quorumSince === 0 || now - this.quorumSince > config.loopWait * 1000) {
        await this.processQuorum(cluster, config);
      }
      if (this.quorumSince === 0) this.quorumSince = now;
      return;
    }
    if (config.synchronousMode !== 'on') {
      if (cluster.sync.leader !== undefined && (await this.dcs.deleteSyncState(cluster.sync.version))) {
        this.log.info('Disabled synchronous replication');
      }
      await this.setStandbyNames([]);
      return;
    }
    let syncVersion = cluster.sync.version;
    if (cluster.sync.leader === undefined) {
      // Patroni 4's _maybe_enable_synchronous_mode: /sync names the leader (no standby) before any standby is
      // confirmed, so that no replica is promoted meanwhile: commits are not synchronous yet (docs/faults.md).
      const version = await this.dcs.setSyncStateValue(
        pyJson(syncStateValue(this.name, []), true),
        syncVersion,
      );
      if (version === false) {
        this.log.warning('Updating sync state failed');
        return;
      }
      this.log.info('Enabled synchronous replication');
      syncVersion = version;
    }
    const current = cluster.sync.leader === undefined ? [] : cluster.sync.members;
    const first = await this.state(cluster);
    const picked = first.picked;
    let allowPromote = first.allowPromote;
    const plan = planSyncReplication({ current, picked, allowPromote, strict: config.synchronousModeStrict });
    if (plan.kind === 'keep') {
      // `/sync` already lists the picked standbys: make sure the managed value says so too (after an agent restart
      // PostgreSQL still runs with it but a later configuration write must not drop it).
      if (picked.length > 0 && !this.managed) await this.setStandbyNames(picked);
      return;
    }

    if (plan.shrinkTo !== undefined) {
      this.log.info(
        `Updating synchronous privilege temporarily from ${pyList(current)} to ${pyList(plan.shrinkTo)}`,
      );
      if (!(await this.writeSync(plan.shrinkTo, syncVersion))) {
        this.log.info('Synchronous replication key updated by someone else.');
        return;
      }
    }
    if (plan.noStandbys) this.log.warning('No standbys available!');
    this.log.info(`Assigning synchronous standby status to ${pyList(plan.standbyNames)}`);
    await this.setStandbyNames(plan.standbyNames);

    if (plan.waitForSync) {
      // Patroni sleeps 2 s and looks once; polling returns as soon as PostgreSQL reports the standby synchronous.
      const deadline = this.clock.now() + this.syncWaitMs;
      for (;;) {
        ({ allowPromote } = await this.state(cluster));
        if (allowPromote.length > 0 || this.clock.now() >= deadline) break;
        await this.clock.sleep(100);
      }
    }
    const grow = growSyncKey(plan.syncCommon, allowPromote);
    if (grow === undefined) return;
    let fresh: Cluster;
    try {
      fresh = await this.dcs.getCluster();
    } catch {
      this.log.warning('Could not get cluster state from DCS during process_sync_replication()');
      return;
    }
    if (fresh.sync.leader !== undefined && fresh.sync.leader !== this.name) {
      this.log.info('Synchronous replication key updated by someone else');
      return;
    }
    if (!(await this.writeSync(grow, fresh.sync.version))) {
      this.log.info('Synchronous replication key updated by someone else');
      return;
    }
    this.log.info(`Synchronous standby status assigned to ${pyList(grow)}`);
  }
}
