/**
 * The local member as the HA loop drives it (`LocalNode`): one PostgreSQL instance managed with src/postgres
 * (initdb, config files, pg_ctl, pg_basebackup, status queries), the state Patroni tracks for it (state, role,
 * post-promote checkpoint), and the member key and REST status built from it.
 */
import { spawn } from 'node:child_process';
import { childEnv } from '../postgres/child-env.js';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import type { AgentConfig, PgUser } from '../config/agent-config.js';
import type { AsyncKind, HaConfig, PostgresInfo, PostgresState, SelfInfo } from '../ha/snapshot.js';
import { haConfigFromDynamic } from '../ha/snapshot.js';
import type { LocalNode, LoopLogger, ResolvedTarget, TaskControl } from '../ha/loop.js';
import type { Cluster, JsonObject, Member } from '../model/cluster.js';
import { parseBool } from '../model/cluster.js';
import type { Lsn } from '../model/lsn.js';
import { pyJson } from '../model/pyjson.js';
import { parseConnUrl } from '../ha/loop.js';
import { resolveBinary, runPgTool, writePrivateFile, type PgBinariesConfig } from '../postgres/binaries.js';
import {
  checkpointEnd,
  configurationAllowsRewind,
  leaderIsPrimary,
  localPositionFromControldata,
  pgRewind,
  primaryTimeline,
  rewindNeeded,
} from '../postgres/rewind.js';
import {
  buildReplicaSettings,
  buildServerParameters,
  cmdlineArgs,
  installHbaFile,
  installPostgresqlConf,
  removeRecoverySignals,
  renderHbaLines,
  renderPostgresqlConf,
  slotNameForMember,
  writeStandbySignal,
  type ReplicationCredentials,
} from '../postgres/config-writer.js';
import { initdb } from '../postgres/initdb.js';
import {
  controldata,
  isRunning,
  promotePostgres,
  readMajorVersion,
  reloadPostgres,
  startPostgres,
  stopPostgres,
  summarizeControldata,
} from '../postgres/pg-ctl.js';
import {
  checkpoint,
  connect,
  createPhysicalSlot,
  dropSlot,
  instanceStatus,
  replicationSlots,
  withConnection,
  type ConnectOptions,
  type InstanceStatus,
  type PgSession,
  type SlotRow,
} from '../postgres/queries.js';
import { memberValue } from './member.js';
import { ConfigApplier } from './apply-config.js';
import type { EffectivePgConfig } from '../postgres/reload-plan.js';
import { withStandbyNames } from './sync-replication.js';
import { CallbackExecutor, runPrePromote, type CallbackAction } from './callbacks.js';
import { createReplica, worksWithoutLeader } from './replica-methods.js';
import { shellSplit } from './shell.js';

export { shellSplit };

const CONTROL_STATES = new Set([
  'in production',
  'in crash recovery',
  'shutting down',
  'shut down',
  'shut down in recovery',
  'in archive recovery',
  'starting up',
]);

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** SQL identifier quoting. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** SQL literal quoting (standard_conforming_strings on). */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** Python's `datetime.isoformat()` of a file's mtime in local time: `2026-11-22T04:55:01.123456+00:00`. */
export function isoLocal(mtimeNs: bigint): string {
  const ms = Number(mtimeNs / 1_000_000n);
  const micro = Number((mtimeNs / 1000n) % 1_000_000n);
  const d = new Date(ms);
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const tz = `${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` +
    `${micro > 0 ? `.${pad(micro, 6)}` : ''}${tz}`
  );
}

/** `<timeline>.history` text -> `[[parent_tli, switch_lsn, reason], ...]`. */
export function parseHistoryFile(text: string): [number, bigint, string][] {
  const out: [number, bigint, string][] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const [tli, lsn, ...reason] = t.split(/\s+/);
    const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(lsn ?? '');
    const n = Number.parseInt(tli ?? '', 10);
    if (!m || !Number.isInteger(n)) continue;
    out.push([n, (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`), reason.join(' ')]);
  }
  return out;
}

export interface NodeStatusSnapshot {
  readonly running: boolean;
  readonly status?: InstanceStatus;
  readonly state: PostgresState;
  readonly role: string;
}

/** Patroni's REWIND_STATUS: where the divergence check and pg_rewind stand (spec 6.9). */
type RewindState = 'initial' | 'check' | 'need' | 'not-need' | 'success' | 'failed';

export class PostgresNode implements LocalNode {
  private readonly baseSelf: SelfInfo;
  private rewindState: RewindState = 'initial';
  /** pg_controldata says wal_log_hints was on or data checksums are enabled (cached per pg_control inode). */
  private rewindAllowedByControl = false;
  private config: AgentConfig;
  private readonly bins: PgBinariesConfig;
  private dynamic: JsonObject | undefined;
  private state: PostgresState = 'stopped';
  private stateSince = Date.now();
  private role = 'uninitialized';
  private busy = false;
  private session: Promise<PgSession> | undefined;
  private lastStatus: InstanceStatus | undefined;
  private sysidCache: { readonly dataDirKey: string; readonly sysid: string } | undefined;
  private checkpointAfterPromote = false;
  /** The recovery settings last written, to reload only on a change. */
  private writtenRecovery: string | undefined;
  /** How postgresql.conf was last written (standby section or not), for a rewrite with new parameters. */
  private lastStandby: { readonly primary?: ResolvedTarget } | undefined;
  /** Dynamic/local configuration changes applied to the running server; `pending_restart` (apply-config.ts). */
  private readonly configApplier = new ConfigApplier({
    effective: () => this.effectivePgConfig(),
    idleAndRunning: () => !this.busy && this.state === 'running' && isRunning(this.dataDir) !== undefined,
    majorVersion: () => this.majorVersion(),
    withSession: (fn) => this.withSession(fn),
    rewrite: () => void this.writeConfigFiles(this.lastStandby),
    reload: () => reloadPostgres({ bins: this.bins, dataDir: this.dataDir }),
    log: {
      info: (t) => this.log.info(t),
      warning: (t) => this.log.warning(t),
      error: (t) => this.log.error(t),
    },
  });
  /** What the last writeConfigFiles wrote (undefined: nothing yet in this process). */
  private lastWritten: { readonly standby: { readonly primary?: ResolvedTarget } | undefined } | undefined;
  /** synchronous_standby_names as synchronous mode manages it (Patroni's `_synchronous_standby_names`). */
  private managedStandbyNames: string | undefined;
  /** postgresql.callbacks (src/agent/callbacks.ts). */
  private readonly callbacks: CallbackExecutor;
  /** Patroni's `cb_called`: a start/stop/restart/role change callback was due once in this process. */
  private cbCalled = false;
  /** Patroni's `__cb_pending`: the callback to fire when the start under way completes (undefined: on_start). */
  private cbPending: CallbackAction | 'noop' | undefined;
  /** A new cluster is being initialized: no callbacks until post_bootstrap is done (Patroni's `bootstrapping`). */
  private bootstrapping = false;

  constructor(
    config: AgentConfig,
    private readonly log: LoopLogger,
  ) {
    this.config = config;
    this.bins = {
      binDir: config.postgresql.binDir,
      binName: config.postgresql.binName,
    };
    this.baseSelf = {
      name: config.name,
      tags: {
        nofailover: config.tags.nofailover,
        failoverPriority: config.tags.failoverPriority,
        nosync: config.tags.nosync,
        clonefrom: config.tags.clonefrom,
        ...(config.tags.replicatefrom === undefined ? {} : { replicatefrom: config.tags.replicatefrom }),
      },
      hasBootstrapConfig: config.bootstrap !== undefined,
      canCloneWithoutLeader: config.postgresql.createReplicaMethods.some((m) =>
        worksWithoutLeader(m, config.postgresql.replicaMethods[m]),
      ),
      canRewind: false,
    };
    const dir = this.dataDir;
    this.role = this.dataDirEmpty(dir) ? 'uninitialized' : 'replica';
    this.callbacks = new CallbackExecutor({
      scope: config.scope,
      commands: config.postgresql.callbacks,
      log,
    });
  }

  /** Patroni's `call_nowait`: fires the callback for `action` with the current role, never waiting for it. */
  private callback(action: CallbackAction): void {
    if (this.bootstrapping) return;
    if (action !== 'on_reload') this.cbCalled = true;
    this.callbacks.call(action, this.role);
  }

  /** This member for the HA core; `canRewind` follows use_pg_rewind and the data directory's pg_controldata. */
  get self(): SelfInfo {
    return { ...this.baseSelf, canRewind: this.canRewind() };
  }

  /** `use_pg_rewind` on (local setting over dynamic), pg_rewind present, wal_log_hints or data checksums. */
  private canRewind(): boolean {
    const use =
      this.config.postgresql.usePgRewind ?? parseBool(this.dynamicPostgresql()['use_pg_rewind']) ?? false;
    if (!use || !this.rewindAllowedByControl) return false;
    const bin = resolveBinary(this.bins, 'pg_rewind');
    return !bin.includes('/') || existsSync(bin);
  }

  /** The tags as published, from the configuration in effect (reloaded on SIGHUP). */
  get memberTags(): AgentConfig['memberTags'] {
    return this.config.memberTags;
  }

  /** SIGHUP: a reloaded local configuration (tags, parameters, pg_hba take effect on the next write). */
  updateConfig(config: AgentConfig): void {
    this.config = config;
    this.callbacks.setCommands(config.postgresql.callbacks);
    this.configApplier.localConfigReloaded();
  }

  get pendingRestart(): boolean {
    return this.configApplier.pendingRestart;
  }

  /** After each cycle (Patroni's reload_config): apply a changed configuration to the running server. */
  applyConfiguration(): Promise<void> {
    return this.configApplier.apply();
  }

  /** postgresql.conf parameters and pg_hba/pg_ident lines as Patroni merges them (local over dynamic). */
  private effectivePgConfig(): EffectivePgConfig {
    const pg = this.config.postgresql;
    const dyn = this.dynamicPostgresql();
    const lines = (v: unknown): readonly string[] | undefined =>
      Array.isArray(v) && v.every((l) => typeof l === 'string') ? v : undefined;
    return {
      parameters: this.serverParameters().parameters,
      pgHba: pg.pgHba ?? lines(dyn['pg_hba']) ?? this.config.bootstrap?.pgHba,
      pgIdent: pg.pgIdent ?? lines(dyn['pg_ident']),
    };
  }

  private get dataDir(): string {
    return resolve(this.config.postgresql.dataDir);
  }

  private get configDir(): string {
    return resolve(this.config.postgresql.configDir);
  }

  private setState(state: PostgresState): void {
    if (state !== this.state) {
      this.state = state;
      this.stateSince = Date.now();
    }
  }

  get currentState(): PostgresState {
    return this.state;
  }

  get currentRole(): string {
    return this.role;
  }

  // ---- configuration ----------------------------------------------------------------------------------------

  localDynamicConfig(): JsonObject {
    return this.config.bootstrap?.dcs ?? {};
  }

  dynamicConfigChanged(data: JsonObject): void {
    this.dynamic = data;
  }

  dynamicConfigValue(): string {
    return pyJson(this.dynamic ?? this.localDynamicConfig(), true);
  }

  private dynamicPostgresql(): JsonObject {
    const pg = (this.dynamic ?? this.localDynamicConfig())['postgresql'];
    return typeof pg === 'object' && pg !== null && !Array.isArray(pg) ? (pg as JsonObject) : {};
  }

  private useSlots(): boolean {
    return parseBool(this.dynamicPostgresql()['use_slots']) ?? true;
  }

  private majorVersion(): number {
    return readMajorVersion(this.dataDir);
  }

  private serverParameters(): ReturnType<typeof buildServerParameters> {
    const pg = this.config.postgresql;
    const dynParams = this.dynamicPostgresql()['parameters'];
    const built = buildServerParameters({
      scope: this.config.scope,
      listen: `${pg.listen.listenAddresses}:${pg.listen.port}`,
      majorVersion: this.majorVersion(),
      dynamicParameters:
        typeof dynParams === 'object' && dynParams !== null && !Array.isArray(dynParams)
          ? (dynParams as JsonObject)
          : {},
      localParameters: pg.parameters,
    });
    return withStandbyNames(built, this.dynamic ?? this.localDynamicConfig(), this.managedStandbyNames);
  }

  /**
   * Synchronous mode: sets synchronous_standby_names (undefined: Patroni's default for the mode), rewriting
   * postgresql.conf and reloading when PostgreSQL runs. True when a running PostgreSQL was reloaded with a new value.
   */
  async setSynchronousStandbyNames(value: string | undefined): Promise<boolean> {
    if (value === this.managedStandbyNames) return false;
    this.managedStandbyNames = value;
    const written = this.lastWritten;
    // Before this process wrote the files only a primary's can be rewritten safely (a replica keeps its own).
    const standby = written ? written.standby : this.lastStatus?.inRecovery === false ? undefined : null;
    if (isRunning(this.dataDir) === undefined || standby === null) return false;
    this.writeConfigFiles(standby);
    await reloadPostgres({ bins: this.bins, dataDir: this.dataDir });
    return true;
  }

  private replicationCredentials(): ReplicationCredentials {
    const r = this.config.postgresql.authentication.replication;
    return { username: r.username, password: r.password, ...r.connectionParams };
  }

  /** The standby settings for `standby` (undefined: run as a primary) and the pgpass text they need. */
  private recoveryFor(standby: { readonly primary?: ResolvedTarget } | undefined): {
    readonly recovery: readonly (readonly [string, string])[] | undefined;
    readonly pgpass: string;
  } {
    if (!standby) return { recovery: undefined, pgpass: '' };
    if (!standby.primary) return { recovery: [['recovery_target_timeline', 'latest']], pgpass: '' };
    const pg = this.config.postgresql;
    const settings = buildReplicaSettings({
      memberName: this.config.name,
      primary: { host: standby.primary.host, port: standby.primary.port },
      replication: this.replicationCredentials(),
      majorVersion: this.majorVersion(),
      useSlots: this.useSlots(),
      pgpassPath: pg.pgpass,
      recoveryConf: pg.recoveryConf ?? null,
    });
    return { recovery: settings.recovery, pgpass: settings.pgpass };
  }

  /** Writes postgresql.conf (with the standby section when `standby` is given), pg_hba and the pgpass file. */
  private writeConfigFiles(standby: { readonly primary?: ResolvedTarget } | undefined): EffectivePgConfig {
    const pg = this.config.postgresql;
    const effective = this.configApplier.effective();
    const { recovery, pgpass } = this.recoveryFor(standby);
    this.lastWritten = { standby };
    if (pgpass !== '') writePrivateFile(pg.pgpass, pgpass + '\n');
    if (standby) writeStandbySignal(this.dataDir);
    else removeRecoverySignals(this.dataDir);
    this.writtenRecovery = JSON.stringify(recovery ?? null);
    this.lastStandby = standby;
    const hbaLines = effective.pgHba;
    const text = renderPostgresqlConf({
      parameters: effective.parameters,
      include: pg.customConf ?? 'postgresql.base.conf',
      hbaFile: join(this.configDir, 'pg_hba.conf'),
      identFile: join(this.configDir, 'pg_ident.conf'),
      ...(recovery ? { recovery } : {}),
    });
    mkdirSync(this.configDir, { recursive: true });
    installPostgresqlConf(this.configDir, text, { customConf: pg.customConf !== undefined });
    if (hbaLines) installHbaFile(this.configDir, 'pg_hba.conf', renderHbaLines(hbaLines));
    if (effective.pgIdent) installHbaFile(this.configDir, 'pg_ident.conf', renderHbaLines(effective.pgIdent));
    return effective;
  }

  private async startServer(timeoutSeconds: number | undefined): Promise<void> {
    const params = this.serverParameters();
    await startPostgres({
      bins: this.bins,
      dataDir: this.dataDir,
      configFile: join(this.configDir, 'postgresql.conf'),
      postgresArgs: cmdlineArgs(params.cmdline),
      timeoutMs: (timeoutSeconds ?? this.config.postgresql.pgCtlTimeout) * 1000,
    });
  }

  // ---- connections ------------------------------------------------------------------------------------------

  private connectOptions(user: PgUser = this.config.postgresql.authentication.superuser): ConnectOptions {
    const pg = this.config.postgresql;
    const socketDirs = pg.parameters['unix_socket_directories'];
    const firstSocket = typeof socketDirs === 'string' ? socketDirs.split(',')[0]?.trim() : undefined;
    let host = pg.listen.hosts[0] ?? '127.0.0.1';
    if (host === '*' || host === '' || host === '0.0.0.0') host = '127.0.0.1';
    if (host === '::') host = '::1';
    if (pg.useUnixSocket && firstSocket) host = firstSocket;
    return {
      host,
      port: pg.listen.port,
      user: user.username,
      password: user.password,
      database: pg.database,
      applicationName: 'Patroni',
    };
  }

  /**
   * Runs `fn` on the shared local connection, reconnecting once when it broke. Concurrent callers share one
   * connection attempt (no connection leaks) and the session runs their queries one at a time.
   */
  async withSession<T>(fn: (s: PgSession) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let pending = this.session;
      if (!pending) {
        pending = connect(this.connectOptions());
        this.session = pending;
        pending.catch(() => {
          if (this.session === pending) this.session = undefined;
        });
      }
      const s = await pending;
      try {
        return await fn(s);
      } catch (e) {
        if (this.session === pending) this.session = undefined;
        await s.close().catch(() => undefined);
        if (attempt >= 1) throw e;
      }
    }
  }

  private async dropSession(): Promise<void> {
    const pending = this.session;
    this.session = undefined;
    if (pending) await pending.then((s) => s.close()).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.dropSession();
  }

  // ---- inspection -------------------------------------------------------------------------------------------

  private dataDirEmpty(dir: string): boolean {
    return this.dataDirState(dir) === 'empty';
  }

  /** One readdir: missing (as empty), empty, populated, or inaccessible (permissions, not a directory). */
  private dataDirState(dir: string): 'empty' | 'populated' | 'inaccessible' {
    try {
      return readdirSync(dir).length === 0 ? 'empty' : 'populated';
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'empty' : 'inaccessible';
    }
  }

  private async sysid(): Promise<string | undefined> {
    let key: string;
    try {
      key = `${statSync(join(this.dataDir, 'global', 'pg_control')).ino}`;
    } catch {
      return undefined;
    }
    if (this.sysidCache?.dataDirKey === key) return this.sysidCache.sysid;
    const data = await controldata(this.bins, this.dataDir);
    this.rewindAllowedByControl = configurationAllowsRewind(data);
    const summary = summarizeControldata(data);
    if (summary.systemIdentifier === undefined) return undefined;
    this.sysidCache = { dataDirKey: key, sysid: summary.systemIdentifier };
    return summary.systemIdentifier;
  }

  /** The running instance's status, or undefined when it does not answer. */
  async queryStatus(): Promise<InstanceStatus | undefined> {
    try {
      const st = await this.withSession((s) => instanceStatus(s));
      this.lastStatus = st;
      return st;
    } catch {
      return undefined;
    }
  }

  async inspect(cluster: Cluster | undefined): Promise<PostgresInfo> {
    const dir = this.dataDir;
    const dirState = this.dataDirState(dir);
    const accessible = dirState !== 'inaccessible';
    const empty = dirState === 'empty';
    const running = !empty && isRunning(dir) !== undefined;
    let status: InstanceStatus | undefined;
    if (running) {
      status = await this.queryStatus();
      if (status) {
        if (!this.busy && this.state !== 'running') this.setState('running');
        this.role = status.inRecovery ? 'replica' : 'master';
        // Patroni's run_cycle: PostgreSQL seen running (a start that outlived its wait, or found running at
        // agent start) fires the pending callback, by default on_start.
        if (!this.busy && !this.bootstrapping && (!this.cbCalled || this.cbPending !== undefined)) {
          const pending = this.cbPending;
          this.cbPending = undefined;
          if (pending !== 'noop') this.callback(pending ?? 'on_start');
        }
      } else if (!this.busy && this.state !== 'starting') {
        if (this.state === 'running') throw new Error('PostgreSQL is running but does not answer queries');
        this.setState('starting');
      }
    } else {
      await this.dropSession();
      this.lastStatus = undefined;
      if (!this.busy && (this.state === 'running' || this.state === 'starting')) this.setState('crashed');
    }
    let controlState: PostgresInfo['controlState'];
    let diverged: PostgresInfo['diverged'];
    const sysid = empty ? undefined : await this.sysid().catch(() => undefined);
    if (empty) this.rewindState = 'initial';
    if (!running && !empty && sysid !== undefined) {
      try {
        const data = await controldata(this.bins, dir);
        const cs = summarizeControldata(data).clusterState;
        controlState =
          cs !== undefined && CONTROL_STATES.has(cs) ? (cs as PostgresInfo['controlState']) : 'unknown';
        if (!this.busy && cluster) diverged = await this.checkDiverged(cluster, data);
      } catch {
        controlState ??= 'unknown';
      }
    } else if (running && this.rewindState !== 'need') {
      this.rewindState = 'initial';
    }
    const isPrimary = status !== undefined && !status.inRecovery;
    const wal = status
      ? isPrimary
        ? (status.flushLsn ?? 0n)
        : [status.receiveLsn ?? 0n, status.replayLsn ?? 0n].reduce((a, b) => (a > b ? a : b))
      : 0n;
    return {
      state: this.state,
      isRunning: running,
      isPrimary,
      ...(status?.timeline === undefined ? {} : { timeline: status.timeline }),
      walPosition: wal,
      dataDirectoryEmpty: empty,
      dataDirectoryAccessible: accessible,
      ...(sysid === undefined ? {} : { sysid }),
      ...(controlState === undefined ? {} : { controlState }),
      ...(diverged === undefined ? {} : { diverged }),
      msInState: Date.now() - this.stateSince,
    };
  }

  // ---- divergence and pg_rewind (spec 6.9) --------------------------------------------------------------------

  private rewindCredentials(): PgUser {
    const auth = this.config.postgresql.authentication;
    return auth.rewind ?? auth.superuser;
  }

  /**
   * The stopped instance's divergence from the leader (Patroni's `trigger_check_diverged_lsn` on recover, then
   * `_check_timeline_and_lsn`): compares the local timeline/LSN from pg_controldata with the leader's timeline
   * history. Only a cleanly shut down directory can be compared (crash recovery runs first).
   */
  private async checkDiverged(
    cluster: Cluster,
    data: ReadonlyMap<string, string>,
  ): Promise<PostgresInfo['diverged']> {
    const leader = cluster.leader?.member;
    const canRewind = this.canRewind();
    if (!canRewind && !this.config.postgresql.removeDataDirectoryOnDivergedTimelines) return undefined;
    if (!leader || leader.name === this.config.name) return undefined;
    const remedy = canRewind ? 'rewind' : 'reinitialize';
    if (this.rewindState === 'need') return { leader: leader.name, remedy };
    if (this.rewindState === 'success' || this.rewindState === 'failed') return undefined;
    this.rewindState = 'check';
    const address = parseConnUrl(leader.data.connUrl);
    if (!address || !['master', 'primary'].includes(leader.data.role ?? '')) return undefined;
    const local = localPositionFromControldata(data);
    if (!local) return undefined;
    const fmt = (v: bigint): string =>
      `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;
    this.log.info(`Local timeline=${local.timeline} lsn=${fmt(local.lsn)}`);
    const pg = this.config.postgresql;
    try {
      if (!(await leaderIsPrimary(address, this.rewindCredentials(), pg.database))) {
        this.log.info("Leader is still in_recovery and therefore can't be used for rewind");
        return undefined;
      }
      const r = pg.authentication.replication;
      const primary = await primaryTimeline(address, r, local.timeline, pg.database);
      this.log.info(`primary_timeline=${primary.timeline}`);
      const need = await rewindNeeded(local, primary, (tli, lsn) =>
        checkpointEnd(this.bins, this.dataDir, tli, lsn),
      );
      this.rewindState = need ? 'need' : 'not-need';
    } catch (e) {
      this.log.warning(`Exception when working with leader ${leader.name}: ${errorText(e)}`);
      return undefined;
    }
    return this.rewindState === 'need' ? { leader: leader.name, remedy } : undefined;
  }

  /** Patroni's `Rewind.execute`: stop, wait for the leader's post-promote checkpoint, run pg_rewind. */
  async rewind(leader: Member, task: TaskControl): Promise<boolean> {
    const address = parseConnUrl(leader.data.connUrl);
    if (!address) {
      this.log.warning(`Can not use ${leader.name} for rewind: no usable conn_url`);
      return false;
    }
    if (isRunning(this.dataDir) !== undefined) await this.stop('fast');
    if (task.cancelled()) return false;
    const pg = this.config.postgresql;
    const user = this.rewindCredentials();
    if (leader.data.checkpointAfterPromote === false) {
      this.log.info(`Waiting for checkpoint on ${leader.name} before rewind`);
      return false;
    }
    const primaryNow = (): Promise<boolean> =>
      leaderIsPrimary(address, user, pg.database).catch((e: unknown) => {
        this.log.warning(`Exception when working with leader ${leader.name}: ${errorText(e)}`);
        return false;
      });
    if (!(await primaryNow())) return false;
    this.busy = true;
    try {
      this.log.info(
        `running pg_rewind from ${leader.name} (${address.host}:${address.port} as ${user.username})`,
      );
      const result = await pgRewind({
        bins: this.bins,
        dataDir: this.dataDir,
        source: address,
        user,
        database: pg.database,
        pgpassPath: pg.pgpass,
      });
      this.log.info('pg_rewind exit code=0');
      if (result.stdout.trim() !== '') this.log.info(` stdout=${result.stdout.trim()}`);
      if (result.stderr.trim() !== '') this.log.info(` stderr=${result.stderr.trim()}`);
      this.rewindState = 'success';
      this.sysidCache = undefined;
      return true;
    } catch (e) {
      this.log.error(`pg_rewind failed: ${errorText(e)}`);
      if (!(await primaryNow())) {
        this.log.warning(`Failed to rewind because primary ${leader.name} become unreachable`);
        this.sysidCache = undefined;
        await this.sysid().catch(() => undefined);
        if (!this.canRewind()) this.rewindState = 'failed';
      } else {
        this.log.error(`Failed to rewind from healty primary: ${leader.name}`);
        this.rewindState = 'failed';
      }
      if (this.rewindState === 'failed') {
        for (const [name, on] of [
          ['remove_data_directory_on_rewind_failure', pg.removeDataDirectoryOnRewindFailure],
          ['remove_data_directory_on_diverged_timelines', pg.removeDataDirectoryOnDivergedTimelines],
        ] as const) {
          if (!on) continue;
          this.log.warning(`${name} is set. removing...`);
          this.wipeDataDir();
          this.rewindState = 'initial';
          break;
        }
      }
      return false;
    } finally {
      this.busy = false;
    }
  }

  /** A restart scheduled over POST /restart, published in the member key (set by src/agent/endpoints.ts). */
  scheduledRestart: JsonObject | undefined;

  async memberValue(ctx: {
    readonly isLeader: boolean;
    readonly pendingAsync?: AsyncKind;
    readonly paused?: boolean;
  }): Promise<string> {
    const st = this.lastStatus;
    const showWal =
      (ctx.pendingAsync === undefined || ctx.pendingAsync === 'promote') &&
      (this.state === 'running' || this.state === 'starting' || this.state === 'restarting') &&
      st !== undefined;
    let wal: { location: Lsn; timeline?: number } | undefined;
    if (showWal) {
      const location = st.inRecovery
        ? [st.receiveLsn ?? 0n, st.replayLsn ?? 0n].reduce((a, b) => (a > b ? a : b))
        : (st.flushLsn ?? 0n);
      wal = { location, ...(st.timeline === undefined ? {} : { timeline: st.timeline }) };
    }
    return memberValue({
      connUrl: this.config.connUrl,
      apiUrl: this.config.apiUrl,
      ...(this.config.proxyUrl ? { proxyUrl: this.config.proxyUrl } : {}),
      state: this.state,
      role: this.role,
      tags: this.config.memberTags,
      checkpointAfterPromotePending: ctx.isLeader && this.checkpointAfterPromote,
      pendingRestart: this.configApplier.pendingRestart,
      ...(wal ? { wal } : {}),
      ...(this.scheduledRestart ? { scheduledRestart: this.scheduledRestart } : {}),
      pause: ctx.paused === true,
    });
  }

  async lastOperation(): Promise<Lsn | undefined> {
    const st = await this.queryStatus();
    return st && !st.inRecovery ? st.flushLsn : undefined;
  }

  // ---- long actions -----------------------------------------------------------------------------------------

  async bootstrap(_task: TaskControl): Promise<boolean> {
    const boot = this.config.bootstrap;
    if (boot === undefined) return false;
    if (boot.method !== 'initdb') {
      this.log.error(`custom bootstrap method ${boot.method} is not implemented yet; only initdb is`);
      this.setState('custom bootstrap failed');
      return false;
    }
    this.busy = true;
    this.bootstrapping = true;
    this.setState('initializing new cluster');
    this.role = 'uninitialized';
    try {
      mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
      const su = this.config.postgresql.authentication.superuser;
      await initdb({
        bins: this.bins,
        dataDir: this.dataDir,
        options: boot.initdb ?? null,
        superuser: { username: su.username, password: su.password },
      });
      this.configApplier.starting(this.writeConfigFiles(undefined));
      this.setState('starting');
      await this.startServer(undefined);
      this.setState('running');
      this.role = 'master';
      return true;
    } catch (e) {
      this.log.error(`bootstrap (initdb) failed: ${errorText(e)}`);
      this.bootstrapping = false;
      this.setState('initdb failed');
      return false;
    } finally {
      this.busy = false;
    }
  }

  private async createOrUpdateRole(
    s: PgSession,
    name: string,
    password: string | undefined,
    options: readonly string[],
  ): Promise<void> {
    const opts = options.map((o) => o.toUpperCase());
    if (!opts.includes('NOLOGIN') && !opts.includes('LOGIN')) opts.push('LOGIN');
    if (password) opts.push('PASSWORD', quoteLiteral(password));
    const sql = `DO $$
BEGIN
    SET local synchronous_commit = 'local';
    PERFORM * FROM pg_catalog.pg_authid WHERE rolname = ${quoteLiteral(name)};
    IF FOUND THEN
        ALTER ROLE ${quoteIdent(name)} WITH ${opts.join(' ')};
    ELSE
        CREATE ROLE ${quoteIdent(name)} WITH ${opts.join(' ')};
    END IF;
END;$$`;
    await s.query('SET log_statement TO none');
    await s.query('SET log_min_duration_statement TO -1');
    try {
      await s.query(sql);
    } finally {
      await s.query('RESET log_min_duration_statement');
      await s.query('RESET log_statement');
    }
  }

  async postBootstrap(_task: TaskControl): Promise<boolean> {
    const auth = this.config.postgresql.authentication;
    const boot = this.config.bootstrap;
    try {
      await this.withSession(async (s) => {
        if (auth.superuser.password) {
          await this.createOrUpdateRole(s, auth.superuser.username, auth.superuser.password, ['SUPERUSER']);
        }
      });
      if (boot?.postBootstrap) await this.runPostBootstrap(boot.postBootstrap);
      await this.withSession(async (s) => {
        await this.createOrUpdateRole(s, auth.replication.username, auth.replication.password, [
          'REPLICATION',
        ]);
        const rewind = auth.rewind;
        if (rewind && rewind.username !== auth.superuser.username) {
          await this.createOrUpdateRole(s, rewind.username, rewind.password, []);
          for (const f of [
            'pg_ls_dir(text, boolean, boolean)',
            'pg_stat_file(text, boolean)',
            'pg_read_binary_file(text)',
            'pg_read_binary_file(text, bigint, bigint, boolean)',
          ]) {
            await s.query(`DO $$
BEGIN
    SET local synchronous_commit = 'local';
    GRANT EXECUTE ON function pg_catalog.${f} TO ${quoteIdent(rewind.username)};
END;$$`);
          }
        }
        for (const [name, user] of Object.entries(boot?.users ?? {})) {
          if ([auth.superuser.username, auth.replication.username, rewind?.username].includes(name)) continue;
          await this.createOrUpdateRole(s, name, user.password, user.options);
        }
      });
      this.bootstrapping = false;
      this.cbPending = undefined;
      this.callback('on_start');
      return true;
    } catch (e) {
      this.log.error(`post_bootstrap failed: ${errorText(e)}`);
      this.bootstrapping = false;
      return false;
    }
  }

  /** `bootstrap.post_bootstrap`: the script gets the superuser connection string as its last argument. */
  private async runPostBootstrap(command: string): Promise<void> {
    const [cmd, ...args] = shellSplit(command);
    if (!cmd) return;
    const o = this.connectOptions();
    const url = `postgres://${encodeURIComponent(o.user)}@${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}/${o.database ?? 'postgres'}`;
    const env: Record<string, string | undefined> = childEnv();
    if (o.password !== undefined) env['PGPASSWORD'] = o.password;
    this.log.info(`running post_bootstrap: ${command}`);
    const code = await new Promise<number>((resolveCode, reject) => {
      const child = spawn(cmd, [...args, url], { stdio: 'inherit', env });
      child.once('error', reject);
      child.once('exit', (c) => resolveCode(c ?? 1));
    });
    if (code !== 0) throw new Error(`post_bootstrap script ${command} exited with code ${code}`);
  }

  async clone(from: Member | undefined, task: TaskControl): Promise<boolean> {
    const pg = this.config.postgresql;
    const address = parseConnUrl(from?.data.connUrl);
    if (from && !address) {
      this.log.error(`cannot clone from ${from.name}: its member key has no usable conn_url`);
      return false;
    }
    let dbname = pg.database;
    try {
      const path = from?.data.connUrl ? new URL(from.data.connUrl).pathname.replace(/^\//, '') : '';
      if (path !== '') dbname = decodeURIComponent(path);
    } catch {
      /* keep the local database name */
    }
    this.busy = true;
    this.setState('creating replica');
    this.role = 'uninitialized';
    let method: string | undefined;
    try {
      mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
      method = await createReplica({
        scope: this.config.scope,
        dataDir: this.dataDir,
        methods: pg.createReplicaMethods,
        sections: pg.replicaMethods,
        basebackupOptions: pg.basebackup,
        source: address ? { ...address, dbname } : undefined,
        replication: pg.authentication.replication,
        pgpassPath: pg.pgpass,
        database: pg.database,
        bins: this.bins,
        log: this.log,
        cancelled: task.cancelled,
        dataDirEmpty: () => this.dataDirEmpty(this.dataDir),
        wipe: () => this.wipeDataDir(),
      });
    } catch (e) {
      this.log.error(`Error creating replica: ${errorText(e)}`);
    }
    this.sysidCache = undefined;
    if (method === undefined) {
      this.wipeDataDir();
      this.setState('stopped');
      this.busy = false;
      return false;
    }
    this.setState('stopped');
    this.busy = false;
    if (task.cancelled()) return false;
    return this.start(
      'replica',
      from && address ? { name: from.name, ...address } : undefined,
      undefined,
      task,
    );
  }

  /** Empties the data directory; a symlinked pg_wal (pg_basebackup --waldir) has its target emptied too. */
  private wipeDataDir(): void {
    try {
      const wal = join(this.dataDir, 'pg_wal');
      if (lstatSync(wal).isSymbolicLink()) {
        const target = realpathSync(wal);
        for (const entry of readdirSync(target))
          rmSync(join(target, entry), { recursive: true, force: true });
      }
    } catch {
      /* no pg_wal, or its target is gone */
    }
    try {
      for (const entry of readdirSync(this.dataDir)) {
        rmSync(join(this.dataDir, entry), { recursive: true, force: true });
      }
    } catch {
      /* nothing to remove */
    }
    this.sysidCache = undefined;
  }

  async start(
    as: 'replica' | 'primary',
    target: ResolvedTarget | undefined,
    timeoutSeconds: number | undefined,
    _task: TaskControl,
  ): Promise<boolean> {
    this.busy = true;
    // Patroni's follow(): a former primary (or demoted one) coming back as a replica fires on_role_change instead
    // of on_start / on_restart.
    const changeRole =
      this.cbCalled && as === 'replica' && ['master', 'primary', 'demoted'].includes(this.role);
    if (changeRole) this.cbPending = 'noop';
    else if (this.cbPending === 'noop' || this.cbPending === undefined) this.cbPending = 'on_start';
    let ok = false;
    try {
      this.configApplier.starting(
        this.writeConfigFiles(as === 'replica' ? (target ? { primary: target } : {}) : undefined),
      );
      this.setState('starting');
      this.role = as === 'replica' ? 'replica' : 'master';
      await this.startServer(timeoutSeconds);
      this.setState('running');
      ok = true;
    } catch (e) {
      this.log.error(`failed to start PostgreSQL: ${errorText(e)}`);
      this.setState(isRunning(this.dataDir) !== undefined ? 'starting' : 'start failed');
    } finally {
      this.busy = false;
    }
    if (changeRole) {
      this.cbPending = undefined;
      this.callback('on_role_change');
    } else if (ok) {
      const pending = this.cbPending;
      this.cbPending = undefined;
      this.callback(pending === undefined || pending === 'noop' ? 'on_start' : pending);
    }
    return ok;
  }

  async follow(target: ResolvedTarget | undefined): Promise<void> {
    if (isRunning(this.dataDir) === undefined) return;
    const wanted = target ? { primary: target } : {};
    // Rewrite and reload only on a change.
    if (JSON.stringify(this.recoveryFor(wanted).recovery ?? null) === this.writtenRecovery) return;
    this.writeConfigFiles(wanted);
    if (this.majorVersion() >= 130000) {
      await reloadPostgres({ bins: this.bins, dataDir: this.dataDir });
      this.callback('on_reload');
      this.log.info(`following ${target ? `${target.name} (${target.host}:${target.port})` : 'nobody'}`);
      return;
    }
    this.log.info('restarting PostgreSQL to change primary_conninfo (PostgreSQL < 13)');
    await this.restartPostgresql('replica', target, undefined, { cancelled: () => false });
  }

  async promote(
    task: TaskControl,
    cluster: Cluster | undefined,
    confirmLock: () => Promise<boolean>,
  ): Promise<boolean | 'pre_promote_failed'> {
    if (task.cancelled()) return false;
    const prePromote = this.config.postgresql.prePromote;
    if (prePromote !== undefined && prePromote.trim() !== '') {
      // Synchronous, but in the promote task: the loop keeps refreshing the lock meanwhile. Bounded by ttl.
      const ttl = haConfigFromDynamic(this.dynamic ?? this.localDynamicConfig()).ttl;
      const r = await runPrePromote(prePromote, {
        timeoutMs: ttl * 1000,
        cancelled: task.cancelled,
        log: this.log,
      });
      if (r.cancelled || task.cancelled()) return false;
      if (!r.ok) return 'pre_promote_failed';
    }
    if (task.cancelled()) {
      this.log.info('PostgreSQL promote cancelled.');
      return false;
    }
    // The replicas follow us as soon as they see our lock; a slot they ask for that does not exist yet costs them
    // wal_retrieve_retry_interval (5 s) of streaming. A standby can create physical slots, so do it now.
    if (cluster && this.useSlots()) {
      try {
        await this.withSession((s) => this.createMemberSlots(s, cluster));
      } catch (e) {
        this.log.warning(`creating replication slots before promote failed: ${errorText(e)}`);
      }
    }
    // Never promote without the lock at this moment: pre_promote may have run for up to ttl.
    if (!(await confirmLock())) return false;
    this.busy = true;
    try {
      await promotePostgres({ bins: this.bins, dataDir: this.dataDir });
      this.role = 'master';
      this.callback('on_role_change');
      this.checkpointAfterPromote = true;
      this.writeConfigFiles(undefined);
    } catch (e) {
      this.log.error(`pg_ctl promote failed: ${errorText(e)}`);
      return false;
    } finally {
      this.busy = false;
    }
    try {
      // Its own connection, as Patroni: a long CHECKPOINT must not hold up the status queries.
      await withConnection(this.connectOptions(), (s) => checkpoint(s));
    } catch (e) {
      this.log.warning(`CHECKPOINT after promote failed: ${errorText(e)}`);
    } finally {
      this.checkpointAfterPromote = false;
    }
    return true;
  }

  /**
   * Stops PostgreSQL; on_stop fires when it was running. `demote` (the loop's demote modes): the role becomes
   * `demoted`, and a graceful demote reports on_stop as `demoted` (Patroni releases the lock during the stop).
   */
  async stop(mode: 'fast' | 'immediate', demote?: string, blockCallbacks = false): Promise<void> {
    if (isRunning(this.dataDir) === undefined) {
      if (this.state !== 'stopped') this.setState('stopped');
      if (demote !== undefined) this.role = 'demoted';
      return;
    }
    this.busy = true;
    await this.dropSession();
    this.setState('stopping');
    try {
      await stopPostgres({ bins: this.bins, dataDir: this.dataDir, mode });
      this.setState('stopped');
      if (demote === 'graceful') this.role = 'demoted';
      if (!blockCallbacks) this.callback('on_stop');
      if (demote !== undefined) this.role = 'demoted';
    } catch (e) {
      this.setState('running');
      throw e;
    } finally {
      this.busy = false;
      this.lastStatus = undefined;
    }
  }

  async checkpoint(): Promise<void> {
    await withConnection(this.connectOptions(), (s) => checkpoint(s));
  }

  async shutdownCheckpoint(): Promise<Lsn | undefined> {
    return summarizeControldata(await controldata(this.bins, this.dataDir)).latestCheckpointLocation;
  }

  async crashRecovery(_task: TaskControl): Promise<boolean> {
    this.busy = true;
    try {
      this.writeConfigFiles(undefined);
      const params = this.serverParameters();
      await runPgTool(
        this.bins,
        'postgres',
        [
          '--single',
          '-D',
          this.dataDir,
          `--config-file=${join(this.configDir, 'postgresql.conf')}`,
          ...cmdlineArgs(params.cmdline),
          '-c',
          'archive_mode=on',
          '-c',
          'archive_command=false',
          this.config.postgresql.database,
        ],
        { timeoutMs: 3_600_000 },
      );
      this.setState('stopped');
      return true;
    } catch (e) {
      this.log.error(`crash recovery failed: ${errorText(e)}`);
      return false;
    } finally {
      this.busy = false;
    }
  }

  async historyValue(cluster: Cluster): Promise<string | undefined> {
    const st = this.lastStatus ?? (await this.queryStatus());
    const tl = st && !st.inRecovery ? st.timeline : undefined;
    if (tl === undefined) return undefined;
    const lines = cluster.history?.lines ?? [];
    if (tl === 1) return lines.length > 0 ? '[]' : undefined;
    const last = lines[lines.length - 1];
    if (last && last.timeline === tl - 1 && last.newLeader !== undefined) return undefined;
    const file = join(this.dataDir, 'pg_wal', `${tl.toString(16).toUpperCase().padStart(8, '0')}.history`);
    let text: string;
    let mtimeNs: bigint;
    try {
      text = readFileSync(file, 'utf8');
      mtimeNs = statSync(file, { bigint: true }).mtimeNs;
    } catch {
      return undefined;
    }
    const known = new Map(lines.map((l) => [l.timeline, l]));
    const history: unknown[][] = parseHistoryFile(text).map(([t, lsn, reason]) => {
      const row: unknown[] = [t, lsn, reason];
      const k = known.get(t);
      if (k && k.lsn === lsn && k.timestamp !== undefined) {
        row.push(k.timestamp);
        if (k.newLeader !== undefined) row.push(k.newLeader);
      }
      return row;
    });
    const lastRow = history[history.length - 1];
    if (lastRow && lastRow[0] === tl - 1 && lastRow.length === 3) {
      lastRow.push(isoLocal(mtimeNs), this.config.name);
    }
    const max = Number((this.dynamic ?? {})['max_timelines_history'] ?? 0);
    const kept = Number.isInteger(max) && max > 0 ? history.slice(-max) : history;
    return pyJson(kept, true);
  }

  /** The physical slots the other members stream from when we are the primary (those replicating from us). */
  private memberSlotNames(cluster: Cluster): ReadonlySet<string> {
    return new Set(
      cluster.members
        .filter((m) => m.name !== this.config.name)
        .filter((m) => {
          const rf = m.data.tags['replicatefrom'];
          return typeof rf !== 'string' || rf === this.config.name;
        })
        .map((m) => slotNameForMember(m.name)),
    );
  }

  /** Creates the members' missing slots; returns the slots that existed before. */
  private async createMemberSlots(s: PgSession, cluster: Cluster): Promise<readonly SlotRow[]> {
    const existing = await replicationSlots(s);
    for (const name of this.memberSlotNames(cluster)) {
      if (existing.some((e) => e.slotName === name)) continue;
      if (await createPhysicalSlot(s, name)) this.log.info(`created physical replication slot ${name}`);
    }
    return existing;
  }

  async syncSlots(cluster: Cluster, _config: HaConfig): Promise<void> {
    if (!this.useSlots() || this.role !== 'master') return;
    const st = this.lastStatus;
    if (!st || st.inRecovery) return;
    const wanted = this.memberSlotNames(cluster);
    await this.withSession(async (s) => {
      const existing = await this.createMemberSlots(s, cluster);
      for (const slot of existing) {
        if (slot.slotType !== 'physical' || wanted.has(slot.slotName) || slot.active) continue;
        const r = await dropSlot(s, slot.slotName);
        if (r.dropped) this.log.info(`dropped unknown replication slot '${slot.slotName}'`);
      }
    });
  }

  async abandonBootstrap(): Promise<void> {
    await this.stop('immediate').catch(() => undefined);
    const d = new Date();
    const pad = (n: number): string => String(n).padStart(2, '0');
    const suffix = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}-${pad(d.getHours())}-${pad(d.getMinutes())}-${pad(d.getSeconds())}`;
    try {
      renameSync(this.dataDir, `${this.dataDir}_${suffix}`);
      this.log.info(`moved data directory aside to ${this.dataDir}_${suffix}`);
    } catch (e) {
      this.log.error(`could not move the data directory aside: ${errorText(e)}`);
    }
    this.sysidCache = undefined;
  }

  /** The shutdown path: stop PostgreSQL fast. */
  async shutdown(): Promise<void> {
    await this.stop('fast');
    await this.dropSession();
  }

  /** For the REST status. */
  get sysidKnown(): string | undefined {
    return this.sysidCache?.sysid;
  }

  // ---- REST API requests (src/agent/endpoints.ts) -------------------------------------------------------------

  /** POST /reload: `pg_ctl reload` when PostgreSQL runs. */
  async reloadPostgresql(): Promise<void> {
    if (isRunning(this.dataDir) === undefined) return;
    await reloadPostgres({ bins: this.bins, dataDir: this.dataDir });
    this.callback('on_reload');
  }

  /** POST /restart: stop (fast) and start again in the same role; `false` when the start failed or timed out. */
  async restartPostgresql(
    as: 'replica' | 'primary',
    target: ResolvedTarget | undefined,
    timeoutSeconds: number | undefined,
    task: TaskControl,
  ): Promise<boolean> {
    this.setState('restarting');
    this.cbPending = 'on_restart';
    await this.stop('fast', undefined, true);
    return this.start(as, target, timeoutSeconds, task);
  }

  /** POST /reinitialize (Patroni's `_do_reinitialize`): stop immediately, empty the data directory, clone anew. */
  async reinitialize(from: Member, task: TaskControl): Promise<boolean> {
    await this.stop('immediate');
    if (task.cancelled()) return false;
    this.wipeDataDir();
    return this.clone(from, task);
  }
}
