/**
 * The local member as the HA loop drives it (`LocalNode`) and the REST API asks about it: src/postgres's
 * LocalPostgres (lifecycle, configuration files, bootstrap and clone, rewind, slots, callbacks, history) wired to
 * the HA core's types: members resolved from their `conn_url`, synchronous mode's standby names, the ttl bounding
 * pre_promote, and the member key built from the instance's state.
 */
import type { AgentConfig } from '../config/agent-config.js';
import type { AsyncKind, HaConfig, PostgresInfo, PostgresState, SelfInfo } from '../ha/snapshot.js';
import { haConfigFromDynamic } from '../ha/snapshot.js';
import type { LocalNode, LoopLogger, ResolvedTarget, StartRole, TaskControl } from '../ha/loop.js';
import { standbyClusterOf } from '../model/standby-cluster.js';
import { isPaused, type Cluster, type JsonObject, type Member } from '../model/cluster.js';
import type { Lsn } from '../model/lsn.js';
import { pyJson } from '../model/pyjson.js';
import { walPosition } from '../postgres/inspect.js';
import { LocalPostgres } from '../postgres/local-postgres.js';
import { slotNameForMember } from '../postgres/config-writer.js';
import { memberSlotsTtl, permanentPhysicalSlotNames } from '../model/slot-config.js';
import { replicationStateOf, statReplication, type PgSession } from '../postgres/queries.js';
import { LeaderStatus } from './leader-status.js';
import { peerPostgres, remotePeer, selfOf } from './self-and-peers.js';
import { memberValue } from './member.js';
import { withStandbyNames } from './sync-replication.js';

export class PostgresNode implements LocalNode {
  private baseSelf: Omit<SelfInfo, 'canRewind'>;
  private config: AgentConfig;
  private readonly pg: LocalPostgres;
  /** A restart scheduled over POST /restart, published in the member key (set by src/agent/endpoints.ts). */
  scheduledRestart: JsonObject | undefined;
  private readonly leaderStatus = new LeaderStatus();

  constructor(
    config: AgentConfig,
    private readonly log: LoopLogger,
  ) {
    this.config = config;
    this.pg = new LocalPostgres(config, {
      log,
      standbyNames: withStandbyNames,
      prePromoteTimeoutMs: (dynamic) => haConfigFromDynamic(dynamic).ttl * 1000,
    });
    this.baseSelf = selfOf(config);
  }

  /** This member for the HA core; `canRewind` follows use_pg_rewind and the data directory's pg_controldata. */
  get self(): SelfInfo {
    return { ...this.baseSelf, canRewind: this.pg.rewinder.canRewind() };
  }

  /** The tags as published, from the configuration in effect (reloaded on SIGHUP). */
  get memberTags(): AgentConfig['memberTags'] {
    return this.config.memberTags;
  }

  /** SIGHUP: a reloaded local configuration (tags, parameters, pg_hba take effect on the next write). */
  updateConfig(config: AgentConfig): void {
    this.config = config;
    // Tags take effect on reload (SIGHUP, POST /reload), as in Patroni: the HA core reads them from here.
    this.baseSelf = selfOf(config);
    this.pg.updateConfig(config);
  }

  get pendingRestart(): boolean {
    return this.pg.files.applier.pendingRestart;
  }

  /** Patroni 4's `pending_restart_reason`: parameter -> old and new value. */
  get pendingRestartReason(): Readonly<Record<string, { old_value: string; new_value: string }>> {
    return this.pg.files.applier.pendingRestartReason;
  }

  /** After each cycle (Patroni's reload_config): apply a changed configuration to the running server. */
  applyConfiguration(): Promise<void> {
    this.pg.files.saveDynamicCache();
    return this.pg.files.applier.apply();
  }

  get currentState(): PostgresState {
    return this.pg.state.state;
  }

  get currentRole(): string {
    return this.pg.state.role;
  }

  /** For the REST status. */
  get sysidKnown(): string | undefined {
    return this.pg.control.knownSysid;
  }

  // ---- dynamic configuration --------------------------------------------------------------------------------

  localDynamicConfig(): JsonObject {
    return this.pg.files.localDynamicConfig();
  }

  dynamicConfigChanged(data: JsonObject): void {
    this.pg.files.dynamicConfigChanged(data);
  }

  dynamicConfigValue(): string {
    return pyJson(this.pg.files.dynamicConfig, true);
  }

  /** Synchronous mode (src/agent/sync-replication.ts): see ConfigFiles.setSynchronousStandbyNames. */
  setSynchronousStandbyNames(value: string | undefined): Promise<boolean> {
    return this.pg.files.setSynchronousStandbyNames(value);
  }

  // ---- the local connection ---------------------------------------------------------------------------------

  withSession<T>(fn: (s: PgSession) => Promise<T>): Promise<T> {
    return this.pg.session.withSession(fn);
  }

  async close(): Promise<void> {
    await this.pg.session.drop();
  }

  // ---- what the HA loop reads -------------------------------------------------------------------------------

  /** In a standby cluster the timeline is checked against the remote primary (ha.py `get_remote_member`). */
  inspect(
    cluster: Cluster | undefined,
    standby?: { readonly remote: ResolvedTarget | undefined },
  ): Promise<PostgresInfo> {
    const leader = cluster?.leader?.member;
    let target = leader ? peerPostgres(leader) : undefined;
    if (standby) target = standby.remote ? remotePeer(standby.remote, leader?.data.timeline) : undefined;
    return this.pg.inspector.inspect(cluster ? { leader: target, paused: isPaused(cluster) } : undefined);
  }

  async memberValue(ctx: {
    readonly isLeader: boolean;
    readonly pendingAsync?: AsyncKind;
    readonly paused?: boolean;
    readonly nosync?: boolean;
  }): Promise<string> {
    const st = this.pg.session.lastStatus;
    const state = this.pg.state.state;
    const showWal =
      (ctx.pendingAsync === undefined || ctx.pendingAsync === 'promote') &&
      (state === 'running' || state === 'starting' || state === 'restarting') &&
      st !== undefined;
    const replicationState = st ? replicationStateOf(st) : undefined;
    const wal = showWal
      ? {
          location: walPosition(st),
          ...(st.timeline === undefined ? {} : { timeline: st.timeline }),
          ...(st.inRecovery && st.replayLsn !== undefined ? { replayLsn: st.replayLsn } : {}),
          ...(st.inRecovery && st.receiveLsn !== undefined ? { receiveLsn: st.receiveLsn } : {}),
          ...(replicationState ? { replicationState } : {}),
        }
      : undefined;
    return memberValue({
      connUrl: this.config.connUrl,
      apiUrl: this.config.apiUrl,
      ...(this.config.proxyUrl ? { proxyUrl: this.config.proxyUrl } : {}),
      state,
      role: this.pg.state.role,
      // A synchronous standby about to stop asks to leave `/sync` (Patroni's `_disable_sync`: tags['nosync'] = True).
      tags: ctx.nosync ? { ...this.config.memberTags, nosync: true } : this.config.memberTags,
      checkpointAfterPromotePending: ctx.isLeader && this.pg.lifecycle.checkpointAfterPromotePending,
      pendingRestart: this.pendingRestart,
      pendingRestartReason: this.pendingRestartReason,
      ...(wal ? { wal } : {}),
      ...(this.scheduledRestart ? { scheduledRestart: this.scheduledRestart } : {}),
      pause: ctx.paused === true,
    });
  }

  /** The `status` value of a leader cycle (src/agent/leader-status.ts); undefined while the optime is unknown. */
  async leaderStatusValue(cluster: Cluster): Promise<string | undefined> {
    const st = await this.pg.session.queryStatus();
    // A standby leader publishes the position it received or replayed (Patroni's `last_operation`).
    const optime = st && (st.inRecovery ? walPosition(st) || undefined : st.flushLsn);
    if (!optime) return undefined;
    const canAdvanceSlots = this.pg.files.majorVersion() >= 110000;
    const positions = canAdvanceSlots
      ? await this.pg.slotsSync.leaderPositions(cluster).catch(() => ({}))
      : {};
    const ctx = {
      cluster,
      dynamic: cluster.config?.data,
      self: this.config.name,
      tags: this.config.memberTags,
      role: 'primary' as const,
      canAdvanceSlots,
      slotName: slotNameForMember,
    };
    return this.leaderStatus.value({
      optime,
      ownSlot: slotNameForMember(this.config.name),
      positions,
      permanentPhysical: permanentPhysicalSlotNames(ctx),
      memberSlotsTtl: memberSlotsTtl(cluster.config?.data),
      cluster,
      self: this.config.name,
      slotName: slotNameForMember,
      now: Date.now() / 1000,
      canAdvanceSlots,
    });
  }

  /** The `status` value after a clean shutdown: its checkpoint as optime, the slots of the last leader cycle. */
  shutdownStatusValue(optime: Lsn): string {
    return this.leaderStatus.shutdownValue(optime);
  }

  historyValue(cluster: Cluster): Promise<string | undefined> {
    return this.pg.historyValue(cluster);
  }

  /** pg_controldata's latest checkpoint location (after a stop). */
  shutdownCheckpoint(): Promise<Lsn | undefined> {
    return this.pg.lifecycle.shutdownCheckpoint();
  }

  // ---- long actions -----------------------------------------------------------------------------------------

  bootstrap(task: TaskControl): Promise<boolean> {
    return this.pg.bootstrapper.bootstrap(task);
  }

  postBootstrap(_task: TaskControl): Promise<boolean> {
    return this.pg.bootstrapper.postBootstrap();
  }

  abandonBootstrap(): Promise<void> {
    return this.pg.bootstrapper.abandon();
  }

  clone(from: Member | undefined, task: TaskControl): Promise<boolean> {
    return this.pg.cloner.clone(from ? peerPostgres(from) : undefined, task, this.standbyCloneOptions());
  }

  /**
   * In a standby cluster every clone uses `standby_cluster.create_replica_methods` (default basebackup), as
   * Patroni's clone from a `RemoteMember`.
   */
  private standbyCloneOptions(): { methods?: readonly string[] } {
    const sc = standbyClusterOf(this.pg.files.dynamicConfig);
    return sc ? { methods: sc.createReplicaMethods ?? ['basebackup'] } : {};
  }

  /** A new standby cluster (Patroni's `bootstrap_standby_leader`): clone the remote primary and follow it. */
  async bootstrapStandbyLeader(remote: ResolvedTarget | undefined, task: TaskControl): Promise<boolean> {
    const from = remote
      ? {
          name: remote.name,
          address: { host: remote.host, port: remote.port },
          dbname: undefined,
          role: undefined,
          checkpointAfterPromote: undefined,
        }
      : undefined;
    const ok = await this.pg.cloner.clone(from, task, {
      ...this.standbyCloneOptions(),
      as: 'standby_leader',
    });
    if (!ok)
      this.log.error(
        `failed to bootstrap clone from remote member ${remote ? `${remote.host}:${remote.port}` : '(archive)'}`,
      );
    return ok;
  }

  /** demote-cluster with archiving on: archive the WAL segment of the shutdown checkpoint (Patroni's rewind.py). */
  archiveShutdownCheckpoint(): Promise<void> {
    return this.pg.lifecycle.archiveShutdownCheckpoint();
  }

  /** archive_mode on and archive_command set: a demote-cluster keeps the lock to archive that segment. */
  archivesShutdownCheckpoint(): boolean {
    return this.pg.lifecycle.archivesShutdownCheckpoint();
  }

  /** POST /reinitialize and the loop: stop immediately, empty the data directory, clone anew from `from`. */
  reinitialize(from: Member, task: TaskControl): Promise<boolean> {
    return this.pg.cloner.reinitialize(peerPostgres(from), task);
  }

  start(
    as: StartRole,
    target: ResolvedTarget | undefined,
    timeoutSeconds: number | undefined,
    _task: TaskControl,
  ): Promise<boolean> {
    return this.pg.lifecycle.start(as, target, timeoutSeconds);
  }

  follow(target: ResolvedTarget | undefined, standbyLeader = false): Promise<void> {
    return this.pg.lifecycle.follow(target, standbyLeader);
  }

  promote(
    task: TaskControl,
    cluster: Cluster | undefined,
    confirmLock: () => Promise<boolean>,
  ): Promise<boolean | 'pre_promote_failed'> {
    return this.pg.lifecycle.promote(task, cluster, confirmLock);
  }

  stop(
    mode: 'fast' | 'immediate',
    demote?: string,
    onShutdown?: (checkpoint: Lsn) => Promise<void>,
  ): Promise<void> {
    return this.pg.lifecycle.stop(mode, demote, false, onShutdown);
  }

  checkpoint(): Promise<void> {
    return this.pg.lifecycle.checkpoint();
  }

  async streamingReplicas(): Promise<readonly string[]> {
    const rows = await this.pg.session.withSession((s) => statReplication(s));
    return rows.filter((r) => r.state === 'streaming').map((r) => r.applicationName ?? '');
  }

  markDemoted(): void {
    this.pg.lifecycle.markDemoted();
  }

  crashRecovery(_task: TaskControl): Promise<boolean> {
    return this.pg.lifecycle.crashRecovery();
  }

  rewind(leader: Member | ResolvedTarget, task: TaskControl): Promise<boolean> {
    const peer = 'data' in leader ? peerPostgres(leader) : remotePeer(leader, undefined);
    return this.pg.rewinder.rewind(peer, task);
  }

  syncSlots(cluster: Cluster, config: HaConfig, copy = true): Promise<void> {
    return this.pg.syncSlots(cluster, config.paused, copy);
  }

  /** POST /failsafe's `slots` (src/agent/failsafe.ts): our slot positions and our own name at the optime. */
  failsafeSlots(cluster: Cluster | undefined): Promise<Record<string, Lsn>> {
    return this.pg.slotsSync.failsafePositions(cluster);
  }

  /** The shutdown path: stop PostgreSQL fast (`onShutdown`: a leader's hook at the shutdown checkpoint). */
  async shutdown(onShutdown?: (checkpoint: Lsn) => Promise<void>): Promise<void> {
    await this.pg.lifecycle.stop('fast', undefined, false, onShutdown);
    await this.pg.session.drop();
  }

  // ---- REST API requests (src/agent/endpoints.ts) -------------------------------------------------------------

  /** POST /reload: `pg_ctl reload` when PostgreSQL runs. */
  reloadPostgresql(): Promise<void> {
    return this.pg.lifecycle.reload();
  }

  /** POST /restart: stop (fast) and start again in the same role; `false` when the start failed or timed out. */
  restartPostgresql(
    as: 'replica' | 'primary',
    target: ResolvedTarget | undefined,
    timeoutSeconds: number | undefined,
    _task: TaskControl,
  ): Promise<boolean> {
    // A standby leader restarts as one.
    const role = as === 'replica' && this.pg.state.role === 'standby_leader' ? 'standby_leader' : as;
    return this.pg.lifecycle.restart(role, target, timeoutSeconds);
  }
}
