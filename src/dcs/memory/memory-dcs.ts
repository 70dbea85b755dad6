/**
 * In-memory DCS for unit tests: a shared `MemoryStore` plays the server, each `MemoryDcs` one client. Ephemeral
 * keys belong to a session that expires `ttl` seconds after its last refresh, like an etcd lease.
 */
import type { Cluster } from '../../model/cluster.js';
import { clusterFromNodes, clustersFromNamespaceNodes } from '../codec.js';
import {
  clusterPrefix,
  DcsError,
  KEYS,
  namespacePrefix,
  type Dcs,
  type DcsNode,
  type DcsOptions,
} from '../dcs.js';

interface StoredKey {
  readonly value: string;
  readonly modRevision: number;
  readonly session?: string;
}

export class MemoryStore {
  private readonly keys = new Map<string, StoredKey>();
  private readonly sessions = new Map<string, NodeJS.Timeout>();
  private readonly listeners = new Set<(key: string) => void>();
  private revision = 0;
  /** The revision of each key's latest put or delete (deleted keys included). */
  private readonly changedAt = new Map<string, number>();
  private nextSession = 1;
  /** While false every call throws DcsError, as if the server were down. */
  reachable = true;

  check(endpoint: string): void {
    if (!this.reachable) throw new DcsError(`memory DCS ${endpoint} is unreachable`);
  }

  get(key: string): StoredKey | undefined {
    return this.keys.get(key);
  }

  get currentRevision(): number {
    return this.revision;
  }

  lastChange(key: string): number {
    return this.changedAt.get(key) ?? 0;
  }

  list(prefix: string): [string, StoredKey][] {
    return [...this.keys].filter(([k]) => k.startsWith(prefix));
  }

  put(key: string, value: string, session?: string): number {
    const modRevision = ++this.revision;
    this.keys.set(key, { value, modRevision, session });
    this.changedAt.set(key, modRevision);
    this.notify(key);
    return modRevision;
  }

  delete(key: string): boolean {
    const existed = this.keys.delete(key);
    if (existed) {
      this.changedAt.set(key, ++this.revision);
      this.notify(key);
    }
    return existed;
  }

  grantSession(ttlSeconds: number): string {
    const id = String(this.nextSession++);
    this.refreshSession(id, ttlSeconds);
    return id;
  }

  /** Returns false when the session already expired. */
  refreshSession(id: string, ttlSeconds: number): boolean {
    const old = this.sessions.get(id);
    if (old) clearTimeout(old);
    else if (Number(id) >= this.nextSession) return false;
    const timer = setTimeout(() => this.expireSession(id), ttlSeconds * 1000);
    timer.unref();
    this.sessions.set(id, timer);
    return true;
  }

  sessionAlive(id: string): boolean {
    return this.sessions.has(id);
  }

  /** Drops a session and every key bound to it (lease expiry / session close). */
  expireSession(id: string): void {
    const timer = this.sessions.get(id);
    if (timer) clearTimeout(timer);
    this.sessions.delete(id);
    for (const [k, v] of [...this.keys]) if (v.session === id) this.delete(k);
  }

  subscribe(listener: (key: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(key: string): void {
    for (const l of [...this.listeners]) l(key);
  }
}

export class MemoryDcs implements Dcs {
  readonly endpoints = ['memory'];
  private readonly prefix: string;
  private session?: string;
  /** Store revision at the last getCluster: watch() wakes at once for anything changed after it. */
  private readRevision = 0;
  private ttl: number;
  private lastStatus?: string;
  private lastFailsafe?: string;
  /** Monotonic ms at which our session was last granted or refreshed. */
  private sessionRefreshedAt?: number;

  constructor(
    private readonly store: MemoryStore,
    readonly options: DcsOptions,
    /** The monotonic clock the session times are read from (a test's hand-moved one). */
    private readonly monotonic: () => number = () => performance.now(),
  ) {
    this.prefix = clusterPrefix(options.namespace, options.scope);
    this.ttl = options.ttl;
  }

  private key(rel: string): string {
    return this.prefix + rel;
  }

  private check(): void {
    this.store.check(this.endpoints[0] ?? 'memory');
  }

  private ownSession(): string {
    if (this.options.ctl || !this.options.name) throw new DcsError('this DCS client has no member identity');
    this.sessionRefreshedAt = this.monotonic();
    if (!this.session || !this.store.sessionAlive(this.session))
      this.session = this.store.grantSession(this.ttl);
    else this.store.refreshSession(this.session, this.ttl);
    return this.session;
  }

  private get name(): string {
    if (!this.options.name) throw new DcsError('this DCS client has no member identity');
    return this.options.name;
  }

  async getClusters(): Promise<readonly Cluster[]> {
    this.check();
    const ns = namespacePrefix(this.options.namespace);
    return clustersFromNamespaceNodes(
      this.store.list(ns).map(([k, v]) => ({
        key: k.slice(ns.length),
        value: v.value,
        version: String(v.modRevision),
        modifyVersion: String(v.modRevision),
        session: v.session,
      })),
    );
  }

  async getCluster(options?: { readonly fresh?: boolean }): Promise<Cluster> {
    this.check();
    // A fresh read (REST) must not move the point the loop's watch() compares with: the loop would miss a change.
    if (!options?.fresh) this.readRevision = this.store.currentRevision;
    const nodes: DcsNode[] = this.store.list(this.prefix).map(([k, v]) => ({
      key: k.slice(this.prefix.length),
      value: v.value,
      version: String(v.modRevision),
      modifyVersion: String(v.modRevision),
      session: v.session,
    }));
    return clusterFromNodes(this.options.scope, nodes);
  }

  async attemptToAcquireLeader(): Promise<boolean> {
    this.check();
    const session = this.ownSession();
    if (this.store.get(this.key(KEYS.leader))) return false;
    this.store.put(this.key(KEYS.leader), this.name, session);
    return true;
  }

  async updateLeader(_cluster: Cluster): Promise<boolean> {
    this.check();
    const session = this.ownSession();
    const current = this.store.get(this.key(KEYS.leader));
    if (current?.value !== this.name) {
      // Repair a lock that expired with the old session, but never steal one held by another member.
      if (current) return false;
      this.store.put(this.key(KEYS.leader), this.name, session);
    } else if (current.session !== session) {
      this.store.put(this.key(KEYS.leader), this.name, session);
    }
    return true;
  }

  async takeLeader(): Promise<boolean> {
    this.check();
    this.store.put(this.key(KEYS.leader), this.name, this.ownSession());
    return true;
  }

  async deleteLeader(_cluster: Cluster): Promise<boolean> {
    this.check();
    const current = this.store.get(this.key(KEYS.leader));
    if (current?.value !== this.name) return false;
    return this.store.delete(this.key(KEYS.leader));
  }

  async touchMember(value: string): Promise<boolean> {
    this.check();
    const session = this.ownSession();
    const key = this.key(KEYS.members + this.name);
    const current = this.store.get(key);
    if (current?.value !== value || current.session !== session) this.store.put(key, value, session);
    return true;
  }

  async initialize(createNew: boolean, sysid: string): Promise<boolean> {
    this.check();
    const key = this.key(KEYS.initialize);
    if (createNew && this.store.get(key)) return false;
    this.store.put(key, sysid);
    return true;
  }

  async cancelInitialization(): Promise<boolean> {
    this.check();
    return this.store.delete(this.key(KEYS.initialize));
  }

  private casPut(rel: string, value: string, version?: string): number | false {
    this.check();
    const key = this.key(rel);
    if (version !== undefined && String(this.store.get(key)?.modRevision ?? 0) !== version) return false;
    return this.store.put(key, value);
  }

  async setConfigValue(value: string, version?: string): Promise<boolean> {
    return this.casPut(KEYS.config, value, version) !== false;
  }

  async setFailoverValue(value: string, version?: string): Promise<boolean> {
    return this.casPut(KEYS.failover, value, version) !== false;
  }

  async replaceFailoverValue(value: string, expectedVersion: string | undefined): Promise<boolean> {
    this.check();
    const key = this.key(KEYS.failover);
    const current = this.store.get(key);
    if (
      expectedVersion === undefined ? current !== undefined : String(current?.modRevision) !== expectedVersion
    )
      return false;
    this.store.put(key, value);
    return true;
  }

  async setSyncStateValue(value: string, version?: string): Promise<string | false> {
    const rev = this.casPut(KEYS.sync, value, version);
    return rev === false ? false : String(rev);
  }

  async deleteSyncState(version?: string): Promise<boolean> {
    this.check();
    const key = this.key(KEYS.sync);
    if (version !== undefined && String(this.store.get(key)?.modRevision ?? 0) !== version) return false;
    this.store.delete(key);
    return true;
  }

  async setHistoryValue(value: string): Promise<boolean> {
    return this.casPut(KEYS.history, value) !== false;
  }

  async writeStatus(value: string): Promise<boolean> {
    if (value === this.lastStatus) return true;
    this.casPut(KEYS.status, value);
    this.lastStatus = value;
    return true;
  }

  async writeFailsafe(value: string): Promise<boolean> {
    if (value === this.lastFailsafe) return true;
    this.casPut(KEYS.failsafe, value);
    this.lastFailsafe = value;
    return true;
  }

  async deleteCluster(): Promise<boolean> {
    this.check();
    for (const [k] of this.store.list(this.prefix)) this.store.delete(k);
    return true;
  }

  async watch(timeoutMs: number): Promise<boolean> {
    this.check();
    const relevant = new Set(
      [KEYS.leader, KEYS.config, KEYS.status, KEYS.leaderOptime].map((k) => this.key(k)),
    );
    // A change after the last read wakes at once, as etcd's watch from the read's revision does.
    if ([...relevant].some((k) => this.store.lastChange(k) > this.readRevision)) return true;
    return new Promise((resolve) => {
      const done = (woken: boolean): void => {
        clearTimeout(timer);
        unsubscribe();
        resolve(woken);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const unsubscribe = this.store.subscribe((key) => {
        if (relevant.has(key)) done(true);
      });
    });
  }

  lockLifetime(): number {
    return this.ttl;
  }

  leaseRefreshedAt(): number | undefined {
    return this.session === undefined ? undefined : this.sessionRefreshedAt;
  }

  setTimings(ttl: number, _retryTimeout: number): void {
    if (ttl !== this.ttl && this.session) {
      // A new ttl needs a new lease: drop the old one, as Patroni does on etcd3.
      this.store.expireSession(this.session);
      this.session = undefined;
    }
    this.ttl = ttl;
  }

  async close(): Promise<void> {
    return;
  }
}
