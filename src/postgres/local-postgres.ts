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
import { slotsMayBeDropped } from '../config/config-check.js';
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
  private readonly slots: MemberSlots;

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
    const slots = new MemberSlots(
      () => files.config.name,
      log,
      () => slotsMayBeDropped(files.dynamicConfig),
    );
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
    this.slots = slots;
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
   * Slot housekeeping (with use_slots): on a running primary the other members' physical slots; on a running
   * replica the slots of the members cascading from it (their `replicatefrom` tag names us).
   */
  async syncSlots(cluster: Cluster): Promise<void> {
    if (!this.files.useSlots()) return;
    const st = this.session.lastStatus;
    if (!st) return;
    if (this.state.role === 'master' && !st.inRecovery) {
      await this.session.withSession((s) => this.slots.sync(s, cluster));
    } else if (this.state.role === 'replica' && st.inRecovery) {
      await this.session.withSession((s) => this.slots.syncCascade(s, cluster));
    }
  }
}
