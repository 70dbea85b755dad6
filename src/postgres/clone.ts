/**
 * A replica made from another member (Patroni's `clone`): the create_replica_methods tried in order, each creating
 * the data directory itself (the agent does not), then a start as a replica of that member (of nobody with the
 * `nostream` tag); reinitialize removes
 * the directory and clones anew.
 */
import type { ConfigFiles } from './config-files.js';
import { dataDirEmpty, removeDataDir, type ControlFile } from './data-dir.js';
import type { InstanceState } from './instance-state.js';
import type { Lifecycle } from './lifecycle.js';
import { errorText } from '../model/text.js';
import type { Cancellation, PeerPostgres, PgLog, StartRole } from './ports.js';
import { createReplica } from './replica-methods.js';

export interface CloneDeps {
  readonly files: ConfigFiles;
  readonly state: InstanceState;
  readonly control: ControlFile;
  readonly lifecycle: Lifecycle;
  readonly log: PgLog;
}

export interface CloneOptions {
  /** The methods to try instead of `postgresql.create_replica_methods` (a standby cluster's own list). */
  readonly methods?: readonly string[];
  /** Start as this role once cloned (`standby_leader`: a new standby cluster's first member). */
  readonly as?: StartRole;
}

export class Cloner {
  constructor(private readonly d: CloneDeps) {}

  /** Clones from `from` (undefined: only the methods that need no leader) and starts as its replica. */
  async clone(from: PeerPostgres | undefined, task: Cancellation, opts: CloneOptions = {}): Promise<boolean> {
    const { files, state, log } = this.d;
    const pg = files.config.postgresql;
    const address = from?.address;
    if (from && !address) {
      log.error(`cannot clone from ${from.name}: its member key has no usable conn_url`);
      return false;
    }
    const dbname = from?.dbname ?? pg.database;
    state.busy = true;
    state.set('creating replica');
    state.role = 'uninitialized';
    let method: string | undefined;
    try {
      method = await createReplica({
        scope: files.config.scope,
        dataDir: files.dataDir,
        methods: opts.methods ?? pg.createReplicaMethods,
        sections: pg.replicaMethods,
        basebackupOptions: pg.basebackup,
        source: address ? { ...address, dbname } : undefined,
        replication: pg.authentication.replication,
        pgpassPath: pg.pgpass,
        database: pg.database,
        bins: files.bins,
        log,
        cancelled: task.cancelled,
        dataDirEmpty: () => dataDirEmpty(files.dataDir),
        wipe: () => this.wipe(),
      });
    } catch (e) {
      log.error(`Error creating replica: ${errorText(e)}`);
    }
    this.d.control.forget();
    if (method === undefined) this.wipe();
    state.set('stopped');
    state.busy = false;
    if (method === undefined || task.cancelled()) return false;
    // A `nostream` replica follows nobody once cloned (ha.py `clone` starts it via `_get_node_to_follow`).
    const streamFrom = files.config.tags.nostream ? undefined : from;
    return this.d.lifecycle.start(
      opts.as ?? 'replica',
      streamFrom && address
        ? {
            name: streamFrom.name,
            ...address,
            ...(opts.as === 'standby_leader' ? { remote: true as const } : {}),
          }
        : undefined,
      undefined,
    );
  }

  /** Patroni's `_do_reinitialize`: stop immediately, empty the data directory, clone anew. */
  async reinitialize(from: PeerPostgres, task: Cancellation): Promise<boolean> {
    await this.d.lifecycle.stop('immediate');
    if (task.cancelled()) return false;
    this.wipe();
    return this.clone(from, task);
  }

  private wipe(): void {
    removeDataDir(this.d.files.dataDir);
    this.d.control.forget();
  }
}
