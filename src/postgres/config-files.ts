/**
 * The configuration files of the local instance as Patroni writes them: postgresql.conf (local parameters over
 * the dynamic ones, synchronous_standby_names as synchronous mode manages it, the standby section), pg_hba.conf,
 * pg_ident.conf, standby.signal and the pgpass file; and, through ConfigApplier, a changed configuration applied to
 * the running server. Holds the local configuration (replaced on SIGHUP) and the dynamic one from the DCS.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AgentConfig } from '../config/agent-config.js';
import type { JsonObject } from '../model/cluster.js';
import { parseBool } from '../model/python.js';
import { standbyClusterOf } from '../model/standby-cluster.js';
import { ConfigApplier } from './apply-config.js';
import { writePrivateFile, type PgBinariesConfig } from './binaries.js';
import {
  RECOVERY_PARAMETERS,
  buildReplicaSettings,
  buildServerParameters,
  installHbaFile,
  installPostgresqlConf,
  removeRecoverySignals,
  renderHbaLines,
  renderPostgresqlConf,
  writeStandbySignal,
  type ReplicationCredentials,
  type ServerParameters,
} from './config-writer.js';
import { dataDirState } from './data-dir.js';
import { DynamicCache } from './dynamic-cache.js';
import { customRecoveryLines, hotStandbyOff, type CustomBootstrapStart } from './custom-bootstrap.js';
import type { InstanceState } from './instance-state.js';
import type { LocalSession } from './local-session.js';
import { isRunning, readMajorVersion, reloadPostgres } from './pg-ctl.js';
import type { PgLog, StandbyTarget } from './ports.js';
import type { EffectivePgConfig } from './reload-plan.js';

/**
 * The parameters of the replay after a custom bootstrap: the trust pg_hba.conf must be the one in use even when
 * hba_file points elsewhere, and hot_standby is off when Patroni turns it off (custom-bootstrap.ts).
 */
function customBootstrapParameters(params: ServerParameters, start: CustomBootstrapStart): ServerParameters {
  const parameters = new Map(params.parameters);
  parameters.delete('hba_file');
  if (!hotStandbyOff(start)) return { ...params, parameters };
  parameters.set('hot_standby', 'off');
  const cmdline = params.cmdline.map(([n, v]) => [n, n === 'hot_standby' ? 'off' : v] as const);
  return { ...params, parameters, cmdline };
}

/** Synchronous mode's say over synchronous_standby_names in the parameters PostgreSQL starts with. */
export type StandbyNamesRule = (
  params: ServerParameters,
  dynamic: JsonObject,
  managed: string | undefined,
) => ServerParameters;

export interface ConfigFilesDeps {
  readonly log: PgLog;
  readonly state: InstanceState;
  readonly session: LocalSession;
  readonly standbyNames: StandbyNamesRule;
}

type RecoveryLines = readonly (readonly [string, string])[];

export class ConfigFiles {
  private current: AgentConfig;
  readonly bins: PgBinariesConfig;
  private dynamic: JsonObject | undefined;
  /** synchronous_standby_names as synchronous mode manages it (Patroni's `_synchronous_standby_names`). */
  private managedStandbyNames: string | undefined;
  /** What the last write wrote (undefined: nothing yet in this process). */
  private lastWritten: { readonly standby: StandbyTarget } | undefined;
  /** The recovery settings last written, to reload only on a change. */
  private writtenRecovery: string | undefined;
  /** Dynamic/local configuration changes applied to the running server; `pending_restart`. */
  readonly applier: ConfigApplier;
  /** patroni.dynamic.json in the data directory. */
  private readonly dynamicCache: DynamicCache;
  /** A custom bootstrap's first start until post_bootstrap ends it, with the pg_hba.conf it replaced. */
  private custom: { readonly start: CustomBootstrapStart; readonly savedHba: string | undefined } | undefined;

  constructor(
    config: AgentConfig,
    private readonly deps: ConfigFilesDeps,
  ) {
    this.current = config;
    this.bins = { binDir: config.postgresql.binDir, binName: config.postgresql.binName };
    this.dynamicCache = new DynamicCache(() => this.dataDir, deps.log);
    const bootstrapDcs = config.bootstrap?.dcs;
    // As Patroni: without a cached configuration, bootstrap.dcs is the one in effect (and cached) until the DCS has one.
    if (this.dynamicCache.loaded === undefined && bootstrapDcs && Object.keys(bootstrapDcs).length > 0) {
      this.dynamicCache.set(bootstrapDcs);
    }
    this.applier = new ConfigApplier({
      effective: () => this.effectivePgConfig(),
      // Patroni skips configuration updates during a custom bootstrap (its files are the replay's).
      idleAndRunning: () =>
        this.custom === undefined &&
        !deps.state.busy &&
        deps.state.state === 'running' &&
        isRunning(this.dataDir) !== undefined,
      majorVersion: () => this.majorVersion(),
      withSession: (fn) => deps.session.withSession(fn),
      rewrite: () => void this.write(this.lastWritten?.standby),
      reload: () => reloadPostgres({ bins: this.bins, dataDir: this.dataDir }),
      log: deps.log,
    });
  }

  get config(): AgentConfig {
    return this.current;
  }

  /** SIGHUP: a reloaded local configuration (tags, parameters, pg_hba take effect on the next write). */
  updateConfig(config: AgentConfig): void {
    this.current = config;
    this.applier.localConfigReloaded();
  }

  get dataDir(): string {
    return resolve(this.current.postgresql.dataDir);
  }

  get configDir(): string {
    return resolve(this.current.postgresql.configDir);
  }

  get postgresqlConf(): string {
    return join(this.configDir, 'postgresql.conf');
  }

  majorVersion(): number {
    return readMajorVersion(this.dataDir);
  }

  // ---- dynamic configuration --------------------------------------------------------------------------------

  /** Used until the DCS has a configuration: patroni.dynamic.json as read at start, else bootstrap.dcs. */
  localDynamicConfig(): JsonObject {
    return this.dynamicCache.loaded ?? this.current.bootstrap?.dcs ?? {};
  }

  /** The dynamic configuration from the DCS, or the local bootstrap.dcs until the DCS has one. */
  get dynamicConfig(): JsonObject {
    return this.dynamic ?? this.localDynamicConfig();
  }

  /** The dynamic configuration exactly as read from the DCS (undefined before the first read). */
  get dcsDynamicConfig(): JsonObject | undefined {
    return this.dynamic;
  }

  dynamicConfigChanged(data: JsonObject): void {
    this.dynamic = data;
    this.dynamicCache.set(data);
  }

  /** After each cycle (Patroni's save_cache): patroni.dynamic.json once the data directory is initialized. */
  saveDynamicCache(): void {
    if (!this.dynamicCache.pending) return;
    if (this.deps.state.role === 'uninitialized' || dataDirState(this.dataDir) !== 'populated') return;
    this.dynamicCache.save();
  }

  dynamicPostgresql(): JsonObject {
    const pg = this.dynamicConfig['postgresql'];
    return typeof pg === 'object' && pg !== null && !Array.isArray(pg) ? (pg as JsonObject) : {};
  }

  useSlots(): boolean {
    // global_config.use_slots: parse_bool(get('use_slots', True)); a value it cannot read (or null) turns slots off.
    const value = this.dynamicPostgresql()['use_slots'];
    return parseBool(value === undefined ? true : value) === true;
  }

  // ---- what is written --------------------------------------------------------------------------------------

  /** Patroni's `enforce_hot_standby_feedback`: hot_standby_feedback is written as `on` (set by the slot sync). */
  enforceHotStandbyFeedback = false;

  serverParameters(): ServerParameters {
    const pg = this.current.postgresql;
    const dynParams = this.dynamicPostgresql()['parameters'];
    const built = buildServerParameters({
      scope: this.current.scope,
      listen: `${pg.listen.listenAddresses}:${pg.listen.port}`,
      majorVersion: this.majorVersion(),
      dynamicParameters:
        typeof dynParams === 'object' && dynParams !== null && !Array.isArray(dynParams)
          ? (dynParams as JsonObject)
          : {},
      localParameters: pg.parameters,
    });
    let params = this.deps.standbyNames(built, this.dynamicConfig, this.managedStandbyNames);
    // Permanent logical slots on this node or on a member cascading from it (src/postgres/slots-sync.ts).
    if (this.enforceHotStandbyFeedback)
      params = { ...params, parameters: new Map([...params.parameters, ['hot_standby_feedback', 'on']]) };
    return this.custom ? customBootstrapParameters(params, this.custom.start) : params;
  }

  /** postgresql.conf parameters and pg_hba/pg_ident lines as Patroni merges them (local over dynamic). */
  effectivePgConfig(): EffectivePgConfig {
    const pg = this.current.postgresql;
    const dyn = this.dynamicPostgresql();
    const lines = (v: unknown): readonly string[] | undefined =>
      Array.isArray(v) && v.every((l) => typeof l === 'string') ? v : undefined;
    return {
      parameters: this.serverParameters().parameters,
      pgHba: pg.pgHba ?? lines(dyn['pg_hba']) ?? this.current.bootstrap?.pgHba,
      pgIdent: pg.pgIdent ?? lines(dyn['pg_ident']),
    };
  }

  private replicationCredentials(): ReplicationCredentials {
    const r = this.current.postgresql.authentication.replication;
    return { username: r.username, password: r.password, ...r.connectionParams };
  }

  /** The standby settings for `standby` (undefined: run as a primary) and the pgpass text they need. */
  private recoveryFor(standby: StandbyTarget): {
    readonly recovery: RecoveryLines | undefined;
    readonly pgpass: string;
  } {
    if (!standby) return { recovery: undefined, pgpass: '' };
    const pg = this.current.postgresql;
    const sc = standbyClusterOf(this.dynamicConfig);
    const remote = sc !== undefined && (standby.remote === true || standby.primary?.remote === true);
    // config.py `build_recovery_params`: a standby cluster's restore_command and archive_cleanup_command apply to
    // every member, recovery_min_apply_delay only when following the remote primary.
    const overrides: Record<string, string> = {};
    if (sc?.restoreCommand !== undefined) overrides['restore_command'] = sc.restoreCommand;
    if (sc?.archiveCleanupCommand !== undefined)
      overrides['archive_cleanup_command'] = sc.archiveCleanupCommand;
    if (remote && sc.recoveryMinApplyDelay !== undefined)
      overrides['recovery_min_apply_delay'] = sc.recoveryMinApplyDelay;
    const settings = buildReplicaSettings({
      ...(remote ? { remote: sc.primarySlotName === undefined ? {} : { slot: sc.primarySlotName } } : {}),
      overrides,
      memberName: this.current.name,
      primary: standby.primary ? { host: standby.primary.host, port: standby.primary.port } : undefined,
      replication: this.replicationCredentials(),
      majorVersion: this.majorVersion(),
      useSlots: this.useSlots(),
      pgpassPath: pg.pgpass,
      recoveryConf: this.recoveryConf(),
    });
    return { recovery: settings.recovery, pgpass: settings.pgpass };
  }

  /**
   * config.py `_adjust_recovery_parameters`: recovery settings given among the server parameters (e.g. a
   * `restore_command` in the dynamic `postgresql.parameters`) replace `postgresql.recovery_conf`.
   */
  private recoveryConf(): Readonly<Record<string, unknown>> | null {
    const fromParameters: Record<string, string> = {};
    for (const [name, value] of this.serverParameters().parameters) {
      if (RECOVERY_PARAMETERS.has(name.toLowerCase())) fromParameters[name] = value;
    }
    if (Object.keys(fromParameters).length > 0) return fromParameters;
    return this.current.postgresql.recoveryConf ?? null;
  }

  // ---- custom bootstrap -------------------------------------------------------------------------------------

  /** From now until endCustomBootstrap, writes are those of the first start after a custom bootstrap method. */
  beginCustomBootstrap(start: CustomBootstrapStart): void {
    let savedHba: string | undefined;
    try {
      savedHba = readFileSync(join(this.configDir, 'pg_hba.conf'), 'utf8');
    } catch {
      savedHba = undefined;
    }
    this.custom = { start, savedHba };
  }

  get inCustomBootstrap(): boolean {
    return this.custom !== undefined;
  }

  /**
   * post_bootstrap done: pg_hba.conf back to the configured lines (or, without any, to the restored file), the
   * recovery settings and signal files gone; the caller writes postgresql.conf as a primary and reloads.
   */
  endCustomBootstrap(): void {
    const custom = this.custom;
    if (!custom) return;
    this.custom = undefined;
    const hba = join(this.configDir, 'pg_hba.conf');
    if (this.effectivePgConfig().pgHba === undefined) {
      if (custom.savedHba === undefined) rmSync(hba, { force: true });
      else writeFileSync(hba, custom.savedHba, { mode: 0o600 });
    }
    removeRecoverySignals(this.dataDir);
  }

  /** The custom bootstrap's own settings over what `write` would write otherwise. */
  private customOverlay(effective: EffectivePgConfig): {
    readonly effective: EffectivePgConfig;
    readonly recovery: RecoveryLines | undefined;
  } {
    const start = this.custom?.start;
    if (!start) return { effective, recovery: undefined };
    const recovery = start.recoveryParams ? customRecoveryLines(start.recoveryParams) : undefined;
    return { effective: { ...effective, pgHba: start.trustHba }, recovery };
  }

  /** The standby settings for `standby` differ from those last written. */
  recoveryChanged(standby: StandbyTarget): boolean {
    return JSON.stringify(this.recoveryFor(standby).recovery ?? null) !== this.writtenRecovery;
  }

  /** Writes postgresql.conf (with the standby section when `standby` is given), pg_hba and the pgpass file. */
  write(standby: StandbyTarget): EffectivePgConfig {
    const pg = this.current.postgresql;
    const custom = this.customOverlay(this.applier.effective());
    const effective = custom.effective;
    const { recovery: standbyRecovery, pgpass } = this.custom
      ? { recovery: undefined, pgpass: '' }
      : this.recoveryFor(standby);
    const recovery = standbyRecovery ?? custom.recovery;
    this.lastWritten = { standby };
    if (pgpass !== '') writePrivateFile(pg.pgpass, pgpass + '\n');
    // During a custom bootstrap the signal files are the method's (written by the bootstrap).
    if (this.custom) {
      /* left as they are */
    } else if (standby) writeStandbySignal(this.dataDir);
    else removeRecoverySignals(this.dataDir);
    this.writtenRecovery = JSON.stringify(recovery ?? null);
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

  /** Writes the files for a start as `standby`: what the running server then has is what changes compare with. */
  writeForStart(standby: StandbyTarget): void {
    this.applier.starting(this.write(standby));
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
    const standby = written
      ? written.standby
      : this.deps.session.lastStatus?.inRecovery === false
        ? undefined
        : null;
    if (isRunning(this.dataDir) === undefined || standby === null) return false;
    this.write(standby);
    await reloadPostgres({ bins: this.bins, dataDir: this.dataDir });
    return true;
  }
}
