/**
 * The etcd v3 DCS, request for request what Patroni's dcs/etcd3.py sends: one lease carries the leader lock
 * and our member key; the lock is refreshed by a lease keepalive once per HA cycle (no background timer, so an
 * agent that stops cycling loses the lock within ttl, like Patroni).
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
import {
  b64,
  EtcdGateway,
  type CallOutcome,
  fromB64,
  isLeaseNotFound,
  prefixRangeEnd,
  type KeyValue,
  type TxnResponse,
  type WatchEvent,
  type WatchResponse,
} from './gateway.js';
import { membersLifetimeMs } from './members.js';
import type { Etcd3Target } from '../target.js';
import { createAbsent, deleteOp, isRevision, modIs, nodeUnder, putOp, valueIs } from './requests.js';

/** Where and how to reach etcd: the `etcd3` section of the configuration. */
export type Etcd3Connection = Omit<Etcd3Target, 'kind'>;

/**
 * Longest a cached read waits for the watch stream to deliver what etcd had applied, at least: the change is queued
 * for the stream before its writer is answered, so it normally arrives within a round trip (twice the keepalive's
 * round trip when that is longer). Past it the revision etcd reported belongs to writes outside the cluster (other
 * clusters on the same etcd), or the stream lags; the cache is served then, and the watch wakes the loop as soon as
 * a change it had not seen arrives (docs/architecture.md, "The DCS").
 */
const STREAM_GRACE_MS = 100;

/**
 * The agent's watch stream on the cluster prefix, left open across HA cycles, and the cache it keeps: seeded by a
 * range read at `appliedRevision`, started right after it, so every later change reaches `nodes` (Patroni's
 * KVCache). An agent then reads its cluster from memory once the stream has delivered every revision etcd had
 * reached when the read began: the read's one round trip is the lease keepalive the cycle owes anyway, whose answer
 * names that revision (without a lease yet, a keys-only fingerprint of the range: count, newest revision). It reads
 * every value again after a write of its own that the stream has not delivered yet, and when the stream breaks.
 */
interface LiveWatch {
  /** Cluster keys (relative to the prefix) as the last range read and every event since left them. */
  readonly nodes: Map<string, DcsNode>;
  /** The latest revision reflected in `nodes`. */
  appliedRevision: bigint;
  /** The revision at which each full key last changed (deletes included), for watch() wake-ups. */
  readonly changedAt: Map<string, bigint>;
  readonly waiters: Set<() => void>;
  /** The cluster built from `nodes` at `revision`, reused while nothing changes. */
  built?: {
    readonly revision: bigint;
    readonly cluster: Cluster;
    readonly nodes: readonly DcsNode[];
    /** The newest mod_revision among `nodes`, to compare with etcd's fingerprint of the range. */
    readonly newest: bigint;
  };
  /** The stream is over (broken, or the DCS closed): the next read re-seeds a new one. */
  ended: boolean;
  /** etcd cancelled it or compacted past it: the cache may have missed changes. */
  stale: boolean;
}

export class Etcd3Dcs implements Dcs {
  readonly endpoints: readonly string[];
  private readonly gateway: EtcdGateway;
  private readonly prefix: string;
  private ttl: number;
  private lease?: string;
  /** When the lease was last granted or kept alive (monotonic ms, taken before the request). */
  private leaseRefreshedMs = 0;
  /** The TTL etcd granted our lease, seconds (it may differ from the one asked for). */
  private grantedTtl?: number;
  /** Header revision of the last cluster read: watches start right after it. */
  private lastRevision?: bigint;
  /** Whether the last cluster read showed us holding the lock (leaders are not woken by status writes). */
  private leaderIsMe = false;
  /** What touchMember last wrote, to skip unchanged rewrites while the key is still ours. */
  private memberWritten?: { readonly value: string; readonly lease: string; readonly revision: bigint };
  private lastStatus?: string;
  private lastFailsafe?: string;
  private closed = false;
  /** The agent's long-lived watch on the cluster prefix and its cache (never the CLI's). */
  private liveWatch?: LiveWatch;
  /** Revision of our latest successful write: the cache serves reads only once it has caught up with it. */
  private ownWriteRevision = 0n;
  /** Pending watch waits, ended early by close(). */
  private readonly wakeOnClose = new Set<() => void>();

  constructor(
    readonly options: DcsOptions,
    conn: Etcd3Connection,
  ) {
    this.gateway = new EtcdGateway({
      endpoints: conn.hosts,
      protocol: conn.protocol,
      username: conn.username,
      password: conn.password,
      cacert: conn.cacert,
      cert: conn.cert,
      key: conn.key,
      keyPassword: conn.keyPassword,
      retryTimeout: options.retryTimeout,
      useProxies: conn.useProxies,
      membersLifetimeMs: membersLifetimeMs(options.ttl),
    });
    this.gateway.onWrite = (revision) => this.wrote(revision);
    this.endpoints = this.gateway.endpoints;
    this.prefix = clusterPrefix(options.namespace, options.scope);
    this.ttl = options.ttl;
  }

  /** The etcd endpoints in use now: the members' client URLs once learnt (unless use_proxies), the last good first. */
  get etcdEndpoints(): readonly string[] {
    return this.gateway.endpoints;
  }

  private key(rel: string): string {
    return this.prefix + rel;
  }

  private ensureOpen(): void {
    if (this.closed) throw new DcsError(`etcd3 client for ${this.endpoints.join(', ')} is closed`);
  }

  /** Our member name; the CLI (ctl mode) has none and never holds leases. */
  private identity(operation: string): string {
    this.ensureOpen();
    if (this.options.ctl || !this.options.name) {
      throw new DcsError(
        `etcd3 at ${this.endpoints.join(', ')}: ${operation} needs a member identity; ` +
          'the CLI never holds the leader lock or a lease',
      );
    }
    return this.options.name;
  }

  // ---- lease -----------------------------------------------------------------------------------------------

  private async grantLease(): Promise<string> {
    const sentAt = performance.now();
    const res = await this.gateway.leaseGrant(Math.max(1, Math.ceil(this.ttl)));
    if (!res.ID || res.ID === '0') {
      throw new DcsError(`etcd3 at ${this.endpoints.join(', ')} granted no lease (answer without ID)`);
    }
    this.lease = res.ID;
    this.leaseRefreshedMs = sentAt;
    const granted = Number(res.TTL);
    this.grantedTtl = Number.isFinite(granted) && granted > 0 ? granted : undefined;
    return res.ID;
  }

  /**
   * Our lease, granted when missing; kept alive when `force`d or stale. Without loop_wait at hand, "stale" is a
   * third of the ttl: often enough for a replica whose only refresh is touchMember, rare enough to be cheap.
   */
  private async refreshLease(force: boolean): Promise<string> {
    const lease = this.lease;
    if (lease === undefined) return this.grantLease();
    // Forced: unless this cycle's read has just kept it alive (a lock on it then lives as long, give or take that).
    const fresh = force ? Math.min(1000, this.ttl * 100) : (this.ttl * 1000) / 3;
    if (performance.now() - this.leaseRefreshedMs < fresh) return lease;
    const ka = await this.keepAlive(lease);
    if (this.lease !== lease) return this.refreshLease(false); // setTimings dropped it meanwhile
    return ka.alive ? lease : this.grantLease();
  }

  /** One lease keepalive; its bookkeeping (refresh time, a lease etcd no longer knows) as `refreshLease` needs it. */
  private async keepAlive(lease: string): Promise<{ readonly alive: boolean; readonly revision: bigint }> {
    const sentAt = performance.now();
    const ka = await this.gateway.leaseKeepAlive(lease);
    if (this.lease === lease) {
      if (ka.alive) this.leaseRefreshedMs = sentAt;
      else this.lease = undefined;
    }
    return { alive: ka.alive, revision: this.revisionOf(ka.revision) };
  }

  /** Runs `fn` with our lease; when etcd says the lease is gone, grants a new one and retries once. */
  private async withLease<T>(force: boolean, fn: (lease: string) => Promise<T>): Promise<T> {
    const lease = await this.refreshLease(force);
    try {
      return await fn(lease);
    } catch (e) {
      if (!isLeaseNotFound(e)) throw e;
      if (this.lease === lease) this.lease = undefined;
      return fn(await this.refreshLease(false));
    }
  }

  // ---- reads -----------------------------------------------------------------------------------------------

  async getCluster(options?: { readonly fresh?: boolean }): Promise<Cluster> {
    this.ensureOpen();
    if (options?.fresh) return this.freshCluster();
    const live = this.liveWatch;
    if (live && this.cacheServes(live)) {
      const cached = await this.confirmedCache(live);
      if (cached) return this.clusterRead(cached, live.appliedRevision);
    }
    // The CLI reads linearizably (fails without quorum, like patronictl); the agent serializably.
    const res = await this.gateway.range(this.prefix, prefixRangeEnd(this.prefix), !this.options.ctl);
    const nodes: DcsNode[] = [];
    for (const kv of res.kvs ?? []) {
      const node = this.nodeOf(kv);
      if (node) nodes.push(node);
    }
    const revision = this.revisionOf(res.header?.revision);
    if (!this.options.ctl && (live === undefined || live.ended || live.stale)) {
      this.liveWatch = this.openLiveWatch(nodes, revision);
    }
    return this.clusterRead({ cluster: clusterFromNodes(this.options.scope, nodes), nodes }, revision);
  }

  /** One range read of the whole namespace (linearizable for the CLI), split by scope. */
  async getClusters(): Promise<readonly Cluster[]> {
    this.ensureOpen();
    const ns = namespacePrefix(this.options.namespace);
    const res = await this.gateway.range(ns, prefixRangeEnd(ns), !this.options.ctl);
    const nodes: DcsNode[] = [];
    for (const kv of res.kvs ?? []) {
      const node = nodeUnder(ns, kv);
      if (node) nodes.push(node);
    }
    return clustersFromNamespaceNodes(nodes);
  }

  /**
   * A read from etcd for the REST API, leaving the HA loop's state alone: moving the revision its watch() compares
   * with would swallow a change that arrived since the loop's own read (a failover delayed by loop_wait).
   */
  private async freshCluster(): Promise<Cluster> {
    const res = await this.gateway.range(this.prefix, prefixRangeEnd(this.prefix), !this.options.ctl);
    const nodes: DcsNode[] = [];
    for (const kv of res.kvs ?? []) {
      const node = this.nodeOf(kv);
      if (node) nodes.push(node);
    }
    return clusterFromNodes(this.options.scope, nodes);
  }

  /** Our prefix's key/value as a DcsNode (key relative to the prefix); undefined for a key outside it. */
  private nodeOf(kv: KeyValue | undefined): DcsNode | undefined {
    return nodeUnder(this.prefix, kv);
  }

  /** The stream is up and has delivered our own latest write. */
  private cacheServes(live: LiveWatch): boolean {
    return !live.ended && !live.stale && live.appliedRevision >= this.ownWriteRevision;
  }

  /**
   * The cache, once it holds every write etcd had applied when this read began (another member's just made write
   * too); undefined when etcd must be read instead. One round trip: the lease keepalive (Patroni refreshes the lease
   * every loop_wait; here the read does it, and touchMember / updateLeader find it fresh), whose answer names the
   * revision etcd had reached; the stream, which etcd feeds before it answers a writer, delivers up to it.
   */
  private async confirmedCache(live: LiveWatch): Promise<NonNullable<LiveWatch['built']> | undefined> {
    const lease = this.lease;
    if (lease !== undefined) {
      const sentAt = performance.now();
      const ka = await this.keepAlive(lease);
      if (ka.alive) {
        const grace = Math.max(STREAM_GRACE_MS, 2 * (performance.now() - sentAt));
        await this.streamReaches(live, ka.revision, grace);
        return this.cacheServes(live) ? this.cachedCluster(live) : undefined;
      }
    }
    // No lease (yet): a keys-only fingerprint (count and newest revision) instead of every value; when it matches
    // the cache, the stream has delivered every change etcd has applied to the cluster.
    const probe = await this.gateway.rangeFingerprint(this.prefix, prefixRangeEnd(this.prefix), true);
    const cached = this.cachedCluster(live);
    const newest = this.revisionOf(probe.kvs?.[0]?.mod_revision);
    const matches = Number(probe.count ?? '0') === cached.nodes.length && newest === cached.newest;
    return matches && this.cacheServes(live) ? cached : undefined;
  }

  /** Resolves once the stream has applied `revision`, ended, or `graceMs` passed. */
  private streamReaches(live: LiveWatch, revision: bigint, graceMs: number): Promise<void> {
    if (live.appliedRevision >= revision || live.ended) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        live.waiters.delete(check);
        this.wakeOnClose.delete(done);
        resolve();
      };
      const check = (): void => {
        if (live.appliedRevision >= revision || live.ended) done();
      };
      const timer = setTimeout(done, graceMs);
      live.waiters.add(check);
      this.wakeOnClose.add(done);
    });
  }

  private cachedCluster(live: LiveWatch): NonNullable<LiveWatch['built']> {
    if (live.built?.revision !== live.appliedRevision) {
      const nodes = [...live.nodes.values()];
      let newest = 0n;
      for (const n of nodes) {
        const r = this.revisionOf(n.modifyVersion);
        if (r > newest) newest = r;
      }
      live.built = {
        revision: live.appliedRevision,
        cluster: clusterFromNodes(this.options.scope, nodes),
        nodes,
        newest,
      };
    }
    return live.built;
  }

  /** Bookkeeping of every cluster read, from etcd or from the cache. */
  private clusterRead(read: { cluster: Cluster; nodes: readonly DcsNode[] }, revision: bigint): Cluster {
    if (revision > 0n) this.lastRevision = revision;
    const name = this.options.name;
    this.leaderIsMe = name !== undefined && read.cluster.leader?.name === name;
    this.forgetMemberIfChanged(read.nodes);
    return read.cluster;
  }

  /** A successful write of ours at `revision` (a response header's): reads wait for the cache to see it. */
  private wrote(revision: string | undefined): void {
    const r = this.revisionOf(revision);
    if (r > this.ownWriteRevision) this.ownWriteRevision = r;
  }

  /** A read at or after our last member write that shows the key gone or different invalidates the skip cache. */
  private forgetMemberIfChanged(nodes: readonly DcsNode[]): void {
    const written = this.memberWritten;
    if (!written || this.lastRevision === undefined || this.lastRevision < written.revision) return;
    const mine = nodes.find((n) => n.key === KEYS.members + (this.options.name ?? ''));
    if (mine?.value !== written.value || mine.session !== written.lease) this.memberWritten = undefined;
  }

  // ---- leader lock -----------------------------------------------------------------------------------------

  async attemptToAcquireLeader(): Promise<boolean> {
    const name = this.identity('attemptToAcquireLeader');
    const key = this.key(KEYS.leader);
    // A forced keepalive: a lock on a lease last refreshed up to ttl/3 ago would expire that much early.
    const won = await this.withLease(true, async (lease) => {
      const res = await this.gateway.txn({
        compare: [createAbsent(key)],
        success: [putOp(key, name, lease)],
      });
      return res.succeeded === true;
    });
    if (won) this.leaderIsMe = true;
    return won;
  }

  async updateLeader(cluster: Cluster): Promise<boolean> {
    const name = this.identity('updateLeader');
    const key = this.key(KEYS.leader);
    // The forced keepalive is the lock refresh; only a key on another lease needs a write.
    const held = await this.withLease(true, async (lease) => {
      if (cluster.leader?.session === lease && cluster.leader.name === name) return true;
      // Re-attach our key to our lease, or re-create it if it expired; never take another member's lock.
      const res = await this.gateway.txn({
        compare: [valueIs(key, name)],
        success: [putOp(key, name, lease)],
        failure: [{ request_txn: { compare: [createAbsent(key)], success: [putOp(key, name, lease)] } }],
      });
      return res.succeeded === true || res.responses?.[0]?.response_txn?.succeeded === true;
    });
    this.leaderIsMe = held;
    return held;
  }

  async takeLeader(): Promise<boolean> {
    const name = this.identity('takeLeader');
    await this.withLease(false, (lease) => this.gateway.put(this.key(KEYS.leader), name, lease));
    this.leaderIsMe = true;
    return true;
  }

  async deleteLeader(_cluster: Cluster): Promise<boolean> {
    const name = this.identity('deleteLeader');
    const key = this.key(KEYS.leader);
    const res = await this.gateway.txn({ compare: [valueIs(key, name)], success: [deleteOp(key)] });
    const deleted = res.succeeded === true;
    if (deleted) this.leaderIsMe = false;
    return deleted;
  }

  async touchMember(value: string): Promise<boolean> {
    const name = this.identity('touchMember');
    const key = this.key(KEYS.members + name);
    return this.withLease(false, async (lease) => {
      const written = this.memberWritten;
      if (written && written.value === value && written.lease === lease) return true;
      const res = await this.gateway.put(key, value, lease);
      this.memberWritten = { value, lease, revision: this.revisionOf(res.header?.revision) };
      return true;
    });
  }

  private revisionOf(revision: string | undefined): bigint {
    return revision !== undefined && isRevision(revision) ? BigInt(revision) : 0n;
  }

  // ---- persistent keys -------------------------------------------------------------------------------------

  async initialize(createNew: boolean, sysid: string): Promise<boolean> {
    this.ensureOpen();
    const key = this.key(KEYS.initialize);
    if (!createNew) {
      await this.gateway.put(key, sysid);
      return true;
    }
    // Our member key, rewritten unchanged in the same transaction, marks the write as ours: should the answer be
    // lost and the retry on another endpoint find the key taken, the two share a revision only if it was us.
    const member = this.memberWritten;
    let marker = !this.options.ctl && member && member.lease === this.lease ? member : undefined;
    const memberKey = this.key(KEYS.members + (this.options.name ?? ''));
    const outcome: CallOutcome = { uncertain: false };
    const race = (mark: boolean): Promise<TxnResponse> =>
      this.gateway.txn(
        {
          compare: [createAbsent(key)],
          success: [
            putOp(key, sysid),
            ...(mark && marker ? [putOp(memberKey, marker.value, marker.lease)] : []),
          ],
        },
        outcome,
      );
    let res: TxnResponse;
    try {
      res = await race(true);
    } catch (e) {
      // Our lease expired meanwhile: race without the marker rather than not at all.
      if (!marker || !isLeaseNotFound(e)) throw e;
      marker = undefined;
      res = await race(false);
    }
    if (res.succeeded === true) {
      if (marker) this.memberWritten = { ...marker, revision: this.revisionOf(res.header?.revision) };
      return true;
    }
    if (!outcome.uncertain) return false;
    return this.initializeWasOurs(key, memberKey, marker !== undefined);
  }

  /**
   * After a create of `initialize` whose answer was lost and whose retry found the key taken: was it our first
   * attempt? Reporting an applied write as lost would leave a cluster that nobody bootstraps.
   */
  private async initializeWasOurs(key: string, memberKey: string, marked: boolean): Promise<boolean> {
    const [init, member] = await Promise.all([
      this.gateway.range(key, undefined, false),
      this.gateway.range(memberKey, undefined, false),
    ]);
    const created = init.kvs?.[0]?.create_revision;
    if (marked && created !== undefined && member.kvs?.[0]?.mod_revision === created) return true;
    if (!marked) {
      throw new DcsError(
        `etcd3 at ${this.endpoints.join(', ')}: creating ${key} timed out and a retry found it taken; ` +
          'whether the first attempt wrote it cannot be told',
      );
    }
    return false;
  }

  async cancelInitialization(): Promise<boolean> {
    this.ensureOpen();
    await this.gateway.deleteRange(this.key(KEYS.initialize));
    return true;
  }

  /** Put, CAS on mod_revision when `version` is given; the new revision, or false when the CAS failed. */
  private async casPut(rel: string, value: string, version?: string): Promise<string | false> {
    this.ensureOpen();
    const key = this.key(rel);
    if (version === undefined) {
      const res = await this.gateway.put(key, value);
      return res.header?.revision ?? '0';
    }
    if (!isRevision(version)) return false;
    const res = await this.gateway.txn({ compare: [modIs(key, version)], success: [putOp(key, value)] });
    return res.succeeded === true ? (res.header?.revision ?? '0') : false;
  }

  async setConfigValue(value: string, version?: string): Promise<boolean> {
    return (await this.casPut(KEYS.config, value, version)) !== false;
  }

  async setFailoverValue(value: string, version?: string): Promise<boolean> {
    return (await this.casPut(KEYS.failover, value, version)) !== false;
  }

  async replaceFailoverValue(value: string, expectedVersion: string | undefined): Promise<boolean> {
    if (expectedVersion !== undefined)
      return (await this.casPut(KEYS.failover, value, expectedVersion)) !== false;
    this.ensureOpen();
    const key = this.key(KEYS.failover);
    const res = await this.gateway.txn({ compare: [createAbsent(key)], success: [putOp(key, value)] });
    return res.succeeded === true;
  }

  async setSyncStateValue(value: string, version?: string): Promise<string | false> {
    return this.casPut(KEYS.sync, value, version);
  }

  async deleteSyncState(version?: string): Promise<boolean> {
    this.ensureOpen();
    const key = this.key(KEYS.sync);
    if (version === undefined) {
      await this.gateway.deleteRange(key);
      return true;
    }
    if (!isRevision(version)) return false;
    const res = await this.gateway.txn({ compare: [modIs(key, version)], success: [deleteOp(key)] });
    return res.succeeded === true;
  }

  async setHistoryValue(value: string): Promise<boolean> {
    return (await this.casPut(KEYS.history, value)) !== false;
  }

  async writeStatus(value: string): Promise<boolean> {
    if (value === this.lastStatus) return true;
    await this.casPut(KEYS.status, value);
    this.lastStatus = value;
    return true;
  }

  async writeFailsafe(value: string): Promise<boolean> {
    if (value === this.lastFailsafe) return true;
    await this.casPut(KEYS.failsafe, value);
    this.lastFailsafe = value;
    return true;
  }

  async deleteCluster(): Promise<boolean> {
    this.ensureOpen();
    await this.gateway.deleteRange(this.prefix, prefixRangeEnd(this.prefix));
    return true;
  }

  // ---- watch -----------------------------------------------------------------------------------------------

  async watch(timeoutMs: number): Promise<boolean> {
    this.ensureOpen();
    const until = performance.now() + timeoutMs;
    const relevant = new Set([this.key(KEYS.leader), this.key(KEYS.config)]);
    if (!this.leaderIsMe) {
      relevant.add(this.key(KEYS.status));
      relevant.add(this.key(KEYS.leaderOptime));
    }
    // The CLI watches once and exits; an agent keeps one watch stream open for its lifetime (as Patroni's KV
    // cache does) instead of opening and tearing down a connection every cycle.
    if (this.options.ctl) return this.watchOnce(until, relevant);
    return this.watchLive(until, relevant);
  }

  /** A watch stream of its own from just after the last read, closed when something relevant changes. */
  private async watchOnce(until: number, relevant: ReadonlySet<string>): Promise<boolean> {
    const isWakeUp = (result: WatchResponse): boolean => {
      // Cancelled or compacted past our revision: what we read is stale, so re-read now.
      if (result.canceled === true || (result.compact_revision ?? '0') !== '0') return true;
      return (result.events ?? []).some((ev) => relevant.has(fromB64(ev.kv?.key)));
    };
    try {
      return await this.gateway.watch(this.watchCreateRequest(), until, isWakeUp);
    } catch (e) {
      if (!(e instanceof DcsError)) throw e;
      if (this.closed) return false;
      // etcd is unreachable: keep the caller's pace instead of letting an HA loop spin; its next read reports it.
      await this.sleepUntil(until);
      return false;
    }
  }

  /** A watch of the whole cluster prefix from just after `revision` (default: the last read's), so nothing is missed. */
  private watchCreateRequest(revision = this.lastRevision): Record<string, unknown> {
    return {
      key: b64(this.prefix),
      range_end: prefixRangeEnd(this.prefix),
      ...(revision === undefined ? {} : { start_revision: String(revision + 1n) }),
    };
  }

  /**
   * Waits on the agent's long-lived watch stream: true as soon as a relevant key has changed after the last read
   * (also when that change arrived before this call), false at `until`. Without a live stream (none yet, or it
   * broke; the next read opens one) it watches once.
   */
  private async watchLive(until: number, relevant: ReadonlySet<string>): Promise<boolean> {
    const live = this.liveWatch;
    if (live === undefined || live.ended) return this.watchOnce(until, relevant);
    const changedSinceRead = (): boolean => {
      if (live.stale) return true;
      const since = this.lastRevision ?? -1n;
      for (const key of relevant) if ((live.changedAt.get(key) ?? -1n) > since) return true;
      return false;
    };
    if (changedSinceRead()) return true;
    const woken = await new Promise<boolean>((resolve) => {
      const done = (value: boolean): void => {
        clearTimeout(timer);
        live.waiters.delete(check);
        this.wakeOnClose.delete(onClose);
        resolve(value);
      };
      const check = (): void => {
        if (changedSinceRead()) done(true);
        else if (live.ended) done(false);
      };
      const onClose = (): void => done(false);
      const timer = setTimeout(() => done(false), Math.max(0, until - performance.now()));
      live.waiters.add(check);
      this.wakeOnClose.add(onClose);
    });
    if (woken) return true;
    if (live.ended && !this.closed && performance.now() < until) {
      // The stream broke (etcd restarted or unreachable): keep the caller's pace; its next read reports it.
      await this.sleepUntil(until);
    }
    return false;
  }

  /** Opens the agent's watch stream right after a range read of `nodes` at `revision`, with them as its cache. */
  private openLiveWatch(nodes: readonly DcsNode[], revision: bigint): LiveWatch {
    const stream: LiveWatch = {
      nodes: new Map(nodes.map((n) => [n.key, n])),
      appliedRevision: revision,
      changedAt: new Map(),
      waiters: new Set(),
      ended: false,
      stale: false,
    };
    const notify = (): void => {
      for (const w of [...stream.waiters]) w();
    };
    const apply = (ev: WatchEvent): void => {
      const rev = this.revisionOf(ev.kv?.mod_revision);
      const fullKey = fromB64(ev.kv?.key);
      stream.changedAt.set(fullKey, rev);
      if (rev > stream.appliedRevision) stream.appliedRevision = rev;
      if (!fullKey.startsWith(this.prefix)) return;
      const key = fullKey.slice(this.prefix.length);
      const old = stream.nodes.get(key);
      if (old !== undefined && BigInt(old.modifyVersion ?? '0') >= rev) return;
      if (ev.type === 'DELETE') stream.nodes.delete(key);
      else {
        const node = this.nodeOf(ev.kv);
        if (node) stream.nodes.set(key, node);
      }
    };
    const onResult = (result: WatchResponse): boolean => {
      if (stream.ended) return true;
      if (result.canceled === true || (result.compact_revision ?? '0') !== '0') {
        stream.stale = true;
        stream.ended = true;
        notify();
        return true;
      }
      const events = result.events ?? [];
      for (const ev of events) apply(ev);
      if (events.length > 0) notify();
      return false;
    };
    const ended = (): void => {
      stream.ended = true;
      notify();
    };
    // Far enough ahead to be "until it breaks", within what setTimeout accepts.
    const forever = performance.now() + 2 ** 31 - 1;
    this.gateway.watch(this.watchCreateRequest(revision), forever, onResult).then(ended, ended);
    return stream;
  }

  private sleepUntil(until: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeOnClose.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, until - performance.now()));
      this.wakeOnClose.add(done);
    });
  }

  // ---- lifecycle -------------------------------------------------------------------------------------------

  lockLifetime(): number {
    return this.lease !== undefined && this.grantedTtl !== undefined ? this.grantedTtl : this.ttl;
  }

  leaseRefreshedAt(): number | undefined {
    return this.lease === undefined ? undefined : this.leaseRefreshedMs;
  }

  setTimings(ttl: number, retryTimeout: number): void {
    if (ttl !== this.ttl) {
      // A new ttl needs a new lease. Not revoked: the next updateLeader re-attaches the lock via the repair txn.
      this.lease = undefined;
      this.grantedTtl = undefined;
    }
    this.ttl = ttl;
    this.gateway.retryTimeout = retryTimeout;
    this.gateway.membersLifetimeMs = membersLifetimeMs(ttl);
  }

  /** Stops using the lease without revoking it: our keys expire by ttl, exactly as after a crash. */
  async close(): Promise<void> {
    this.closed = true;
    this.lease = undefined;
    this.gateway.close();
    for (const wake of [...this.wakeOnClose]) wake();
  }
}
