/**
 * One local PostgreSQL instance under control: the concerns of src/postgres assembled around one shared
 * InstanceState. The agent (src/agent/node.ts) adapts it to the HA loop and the REST API.
 */
import { resolve } from 'node:path';
import type { AgentConfig } from '../config/agent-config.js';
import type { Cluster, JsonObject } from '../model/cluster.js';
import { Bootstrapper } from './bootstrap.js';
import { CallbackExecutor, RoleCallbacks } from './callbacks.js';
import { Cloner } from './clone.js';
import { ConfigFiles, type StandbyNamesRule } from './config-files.js';
import { ControlFile, dataDirEmpty } from './data-dir.js';
import { Inspector } from './inspect.js';
import { InstanceState } from './instance-state.js';
import { Lifecycle } from './lifecycle.js';
import { LocalSession, localConnectOptions } from './local-session.js';
import { MemberSlots } from './member-slots.js';
import { SlotsSync } from './slots-sync.js';
import type { PgLog } from './ports.js';
import type { ConnectOptions } from './queries.js';
import { Rewinder } from './rewinder.js';
import { historyValue } from './timeline-history.js';

export interface LocalPostgresOptions {
  readonly log: PgLog;
  /** Synchronous mode's rule for synchronous_standby_names at start. */
  readonly standbyNames: StandbyNamesRule;
  /** How long pre_promote may run, from the dynamic configuration (Patroni: the ttl). */
  readonly prePromoteTimeoutMs: (dynamic: JsonObject) => number;
}

export class LocalPostgres {
  readonly state: InstanceState;
  readonly session: LocalSession;
  readonly files: ConfigFiles;
  readonly control: ControlFile;
  readonly callbacks: RoleCallbacks;
  readonly lifecycle: Lifecycle;
  readonly rewinder: Rewinder;
  readonly inspector: Inspector;
  readonly bootstrapper: Bootstrapper;
  readonly cloner: Cloner;
  readonly slotsSync: SlotsSync;

  constructor(config: AgentConfig, o: LocalPostgresOptions) {
    const log = o.log;
    const state = new InstanceState(
      dataDirEmpty(resolve(config.postgresql.dataDir)) ? 'uninitialized' : 'replica',
    );
    const session: LocalSession = new LocalSession((): ConnectOptions => {
      const pg = files.config.postgresql;
      return localConnectOptions(pg, pg.authentication.superuser);
    });
    const files: ConfigFiles = new ConfigFiles(config, { log, state, session, standbyNames: o.standbyNames });
    const control = new ControlFile(files.bins, () => files.dataDir);
    const callbacks = new RoleCallbacks(
      new CallbackExecutor({ scope: config.scope, commands: config.postgresql.callbacks, log }),
      () => state.role,
    );
    const slots = new MemberSlots(() => files.config.name, log);
    const lifecycle = new Lifecycle({
      files,
      state,
      session,
      callbacks,
      slots,
      log,
      prePromoteTimeoutMs: () => o.prePromoteTimeoutMs(files.dynamicConfig),
    });
    const rewinder = new Rewinder({ files, state, control, log, stop: (mode) => lifecycle.stop(mode) });
    this.state = state;
    this.session = session;
    this.files = files;
    this.control = control;
    this.callbacks = callbacks;
    this.slotsSync = new SlotsSync({
      files,
      session,
      connectTo: (database) => {
        const pg = files.config.postgresql;
        return { ...localConnectOptions(pg, pg.authentication.superuser), database };
      },
      restartAround: (between) => lifecycle.restartAround(between),
      tags: () => files.config.memberTags,
      log,
    });
    this.lifecycle = lifecycle;
    this.rewinder = rewinder;
    this.inspector = new Inspector({ files, state, session, callbacks, control, rewinder });
    this.bootstrapper = new Bootstrapper({ files, state, session, callbacks, lifecycle, control, log });
    this.cloner = new Cloner({ files, state, control, lifecycle, log });
  }

  /** SIGHUP: a reloaded local configuration. */
  updateConfig(config: AgentConfig): void {
    this.files.updateConfig(config);
    this.callbacks.setCommands(config.postgresql.callbacks);
  }

  /** The `history` value to write (compact JSON), or undefined when the key is up to date. */
  async historyValue(cluster: Cluster): Promise<string | undefined> {
    const st = this.session.lastStatus ?? (await this.session.queryStatus());
    return historyValue({
      timeline: st && !st.inRecovery ? st.timeline : undefined,
      cluster,
      dataDir: this.files.dataDir,
      name: this.files.config.name,
      maxTimelines: this.files.dcsDynamicConfig?.['max_timelines_history'],
    });
  }

  /**
   * Slot housekeeping on a running PostgreSQL, primary or replica (src/postgres/slots-sync.ts); `paused`: no slot
   * is dropped.
   */
  async syncSlots(cluster: Cluster, paused: boolean, copy = true): Promise<void> {
    const st = this.session.lastStatus;
    if (!st || this.state.busy) return;
    await this.slotsSync.sync(cluster, paused, copy);
  }
}
