import type { Cluster } from '../model/cluster.js';

/** The DCS could not be reached or answered with an error; distinct from losing a race (a `false` result). */
export class DcsError extends Error {
  override readonly name = 'DcsError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** One key under the cluster prefix as a backend read it, handed to the shared parser. */
export interface DcsNode {
  /** Path relative to `/<namespace>/<scope>/`, e.g. `members/pg1`. */
  readonly key: string;
  readonly value: string;
  /** CAS token (etcd mod_revision, ZooKeeper version). */
  readonly version: string;
  /** Change-detection token (etcd mod_revision, ZooKeeper mzxid). */
  readonly modifyVersion: string;
  /** Owner of an ephemeral key (etcd lease id, ZooKeeper ephemeralOwner), decimal. */
  readonly session?: string;
}

export interface DcsOptions {
  readonly namespace: string;
  readonly scope: string;
  /** Member name: needed for the leader lock and member key, absent for the CLI. */
  readonly name?: string;
  /** Lifetime of the leader lock and member key, seconds. */
  readonly ttl: number;
  /** How long a DCS call may be retried before it fails, seconds. */
  readonly retryTimeout: number;
  /**
   * The CLI reads linearizably and never creates leases or sessions of its own for ephemeral keys
   * (patronictl mode). The agent sets this to false.
   */
  readonly ctl: boolean;
}

/**
 * Everything pgwarden needs from a DCS, with Patroni's semantics (docs/architecture.md). Values are wire strings: the
 * codec encodes and parses them at the edge. Conditional writes return `false` when the condition does not hold (a lost
 * race: never retry blindly); a DCS that cannot be reached throws `DcsError`.
 */
export interface Dcs {
  readonly options: DcsOptions;
  /** Human-readable endpoints, for error messages. */
  readonly endpoints: readonly string[];

  /**
   * The cluster as stored. An agent's adapter may answer from a watch-guarded view; `fresh` reads the DCS anyway
   * (Patroni's `get_cluster(force=True)`, used for REST GET /cluster).
   */
  getCluster(options?: { readonly fresh?: boolean }): Promise<Cluster>;

  /**
   * Every cluster of the namespace (`options.scope` plays no part): one per scope holding at least one key, in
   * scope order, each as `getCluster` of that scope would read it. The CLI's `list --all`: one range read on
   * etcd3; ZooKeeper has no recursive read, so it reads the tree a level at a time, each level's requests at once.
   */
  getClusters(): Promise<readonly Cluster[]>;

  /** Create `leader` = own name iff it does not exist, bound to our lease/session. */
  attemptToAcquireLeader(): Promise<boolean>;
  /** Prove we still hold the lock (refresh the lease / check the ephemeral owner); `false`: we lost it. */
  updateLeader(cluster: Cluster): Promise<boolean>;
  /** Unconditional write of `leader` with our lease (only after bootstrap). */
  takeLeader(): Promise<boolean>;
  /** Release the lock if it still holds our name. */
  deleteLeader(cluster: Cluster): Promise<boolean>;
  /** Write our own ephemeral `members/<name>`; skipped when unchanged and still ours. */
  touchMember(value: string): Promise<boolean>;

  /** `createNew`: create-if-absent; otherwise overwrite. */
  initialize(createNew: boolean, sysid: string): Promise<boolean>;
  cancelInitialization(): Promise<boolean>;

  /** CAS on `version` when given. */
  setConfigValue(value: string, version?: string): Promise<boolean>;
  setFailoverValue(value: string, version?: string): Promise<boolean>;
  /**
   * Compare-and-set of `failover` against the state the caller validated: `expectedVersion` is the version it read
   * (undefined: the key was absent, so it is created only if still absent). `false`: someone wrote it meanwhile.
   */
  replaceFailoverValue(value: string, expectedVersion: string | undefined): Promise<boolean>;
  /** Returns the new version, or `false` when the CAS failed. */
  setSyncStateValue(value: string, version?: string): Promise<string | false>;
  deleteSyncState(version?: string): Promise<boolean>;
  setHistoryValue(value: string): Promise<boolean>;
  /** Unconditional; skipped when equal to the last value written. */
  writeStatus(value: string): Promise<boolean>;
  writeFailsafe(value: string): Promise<boolean>;
  /** Recursive delete of the whole cluster prefix. */
  deleteCluster(): Promise<boolean>;

  /**
   * Wait until something relevant to the HA loop changes (the leader key, config; for non-leaders also status),
   * or `timeoutMs` passes. Resolves `true` when woken by a change.
   */
  watch(timeoutMs: number): Promise<boolean>;

  /**
   * Seconds our lock lives after the last refresh as the DCS enforces it: the lease's granted TTL (etcd), the
   * session timeout the server negotiated (ZooKeeper, capped by its maxSessionTimeout), else the configured ttl.
   */
  lockLifetime(): number;
  /**
   * Monotonic ms (`performance.now()`) at which the lease/session our lock rides on was last proven alive: the
   * moment the last successful grant, keepalive or request on it was sent. Undefined when there is none.
   */
  leaseRefreshedAt(): number | undefined;

  /** Apply new timings from the dynamic configuration (a changed ttl renews the lease/session). */
  setTimings(ttl: number, retryTimeout: number): void;

  close(): Promise<void>;
}

/** `'/' + ns + '/' + scope + '/'` with runs of `/` collapsed (`service`, `/service`, `/service/` are the same). */
export function clusterPrefix(namespace: string, scope: string): string {
  return `/${namespace}/${scope}/`.replace(/\/+/g, '/');
}

/** `'/' + ns + '/'` with runs of `/` collapsed: the prefix every cluster of the namespace lives under. */
export function namespacePrefix(namespace: string): string {
  return `/${namespace}/`.replace(/\/+/g, '/');
}

export const KEYS = {
  initialize: 'initialize',
  config: 'config',
  leader: 'leader',
  members: 'members/',
  status: 'status',
  leaderOptime: 'optime/leader',
  history: 'history',
  sync: 'sync',
  failover: 'failover',
  failsafe: 'failsafe',
} as const;
