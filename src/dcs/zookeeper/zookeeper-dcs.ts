/**
 * ZooKeeper adapter (dcs/zookeeper.py) on node-zookeeper-client. TTL mechanics are the ZooKeeper session: its timeout
 * is `ttl`, `leader` and `members/<name>` are ephemeral znodes of it, CAS uses znode versions. The client library
 * retries connections forever and queues requests while disconnected, so every call here carries its own deadline
 * (`retryTimeout`) and a failure to reach the server surfaces as DcsError.
 */
import type { Event as ZkEvent, Stat } from 'node-zookeeper-client';
import type { Cluster } from '../../model/cluster.js';
import { byCodePoint, clusterFromNodes, clustersOfScopes } from '../codec.js';
import { KEYS, namespacePrefix, type Dcs, type DcsNode } from '../dcs.js';
import {
  ZooKeeperSession,
  type BatchedReads,
  type Session,
  hasCode,
  longToDecimal,
} from './zookeeper-session.js';

/** Keys whose changes wake the HA loop (data watches); creations and deletions come through child watches. */
const WATCHED_KEYS: ReadonlySet<string> = new Set([
  KEYS.leader,
  KEYS.config,
  KEYS.history,
  KEYS.sync,
  KEYS.failover,
  KEYS.failsafe,
  KEYS.status,
  KEYS.leaderOptime,
]);

/** Scopes `getClusters` reads at once: enough to keep the session's pipe full, few enough to keep the heap small. */
const SCOPES_IN_FLIGHT = 64;

/** `fn` over `items`, at most `limit` at a time, results in the order of `items`. */
async function mapWindowed<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export class ZooKeeperDcs extends ZooKeeperSession implements Dcs {
  private lastStatus?: string;
  private lastFailsafe?: string;

  /** Set by watch events and connection trouble, consumed by `watch` (Patroni's `event`). */
  private changed = false;
  private readonly waiters = new Set<(woken: boolean) => void>();
  /** The leader's own `status` writes must not wake it every cycle, as in Patroni. */
  private leaderIsMe = false;
  /**
   * The agent's last cluster view, the nodes it was made of, and the session whose watches guard it (Patroni's
   * `_fetch_cluster`). Read again after a watched key or the membership changed, after our writes other than our
   * member key and `status` (those are patched in), or connection trouble. As in Patroni, other members' keys are
   * not watched: their data (WAL positions) is as of the last read. The CLI always reads.
   */
  private view?: {
    readonly session: Session;
    readonly nodes: ReadonlyMap<string, DcsNode>;
    readonly cluster: Cluster;
  };
  /** Only `status` changed (the leader's WAL position): re-read that key alone (Patroni's `_fetch_status`). */
  private statusStale = false;

  // ---- the cluster view -------------------------------------------------------------------------------------

  async getCluster(options?: { readonly fresh?: boolean }): Promise<Cluster> {
    return this.op('getCluster', async (s, deadline) => {
      // Events from here on belong to the next cycle (Patroni clears its event before loading). A fresh read (REST)
      // leaves the flag alone: the loop has not seen what woke it yet.
      if (!options?.fresh) this.changed = false;
      const v = this.view;
      if (
        !options?.fresh &&
        !this.options.ctl &&
        !this.refetch &&
        v?.session === s &&
        this.armedFor === s &&
        !s.dead
      ) {
        // One round trip instead of a dozen reads: ZooKeeper delivers a watch event before the answer to any later
        // request of the session, so once this answers, every change the server had applied has marked us stale
        // (a read after another member's write sees it, and a leader cut off from ZooKeeper fails its cycle).
        if (this.statusStale) {
          this.statusStale = false;
          await this.rereadStatus(s, deadline, v);
        } else {
          await this.read<Stat | null>(s, deadline, `check ${this.base}`, (done) =>
            s.client.exists(this.base, done),
          );
        }
        const now = this.view;
        if (!this.refetch && now?.session === s && !s.dead) {
          this.leaderIsMe = !!this.options.name && now.cluster.leader?.name === this.options.name;
          return now.cluster;
        }
      }
      this.refetch = false;
      this.statusStale = false;
      this.view = undefined;
      const root = await this.getChildren(s, deadline, this.base, true);
      if (root === undefined) {
        // No cluster yet: wake when it is created.
        if (await this.existsWatch(s, deadline, this.base)) this.wake();
        else this.armedFor = s;
        this.leaderIsMe = false;
        return clusterFromNodes(this.options.scope, []);
      }
      const dirs = ['members', 'optime'].filter((d) => root.includes(d));
      const listed = await Promise.all(
        dirs.map(async (d) => {
          const children = await this.getChildren(s, deadline, this.path(d), d === 'members');
          return (children ?? []).map((c) => `${d}/${c}`);
        }),
      );
      const keys = [...root.filter((k) => !dirs.includes(k)), ...listed.flat()];
      const read = await Promise.all(
        keys.map(async (key): Promise<DcsNode | undefined> => {
          // Gone between list and read: simply absent. `initialize` does not wake the loop but invalidates the
          // view; member keys are not watched (Patroni's load_members), their comings and goings are.
          const watch = WATCHED_KEYS.has(key) ? true : key === KEYS.initialize ? 'quiet' : false;
          return this.readNode(s, deadline, key, watch);
        }),
      );
      const nodes = read.filter((n): n is DcsNode => n !== undefined);
      const leader = nodes.find((n) => n.key === KEYS.leader);
      this.leaderIsMe = !!this.options.name && leader?.value === this.options.name;
      this.armedFor = s;
      const cluster = clusterFromNodes(this.options.scope, nodes);
      if (!this.options.ctl)
        this.view = { session: s, nodes: new Map(nodes.map((n) => [n.key, n])), cluster };
      return cluster;
    });
  }

  /**
   * Every cluster of the namespace without watches. ZooKeeper has no recursive read: each scope's tree is read a
   * level at a time (its keys, then `members/` and `optime/`), up to SCOPES_IN_FLIGHT scopes at once, the next
   * scope starting as soon as one is done, so that the session pipelines the requests and the round trips do not
   * grow with the number of clusters. (All at once, ten thousand requests in flight would keep every one's
   * promises, closures and buffers alive through each young-generation GC, which then costs seconds.)
   */
  async getClusters(): Promise<readonly Cluster[]> {
    return this.op('getClusters', async (s, deadline) => {
      const ns = namespacePrefix(this.options.namespace);
      const root = ns === '/' ? '' : ns.slice(0, -1);
      return this.batchedReads(s, deadline, `read ${root || '/'}`, async (reads) => {
        // At the root of the tree ZooKeeper keeps its own `/zookeeper` node: no cluster.
        const scopes = ((await reads.getChildren(root || '/')) ?? []).filter(
          (c) => root !== '' || c !== 'zookeeper',
        );
        // Each scope's cluster is made as soon as its tree is read, so that its nodes die young.
        const clusters = await mapWindowed(scopes, SCOPES_IN_FLIGHT, async (scope) =>
          clustersOfScopes([[scope, await this.readTree(reads, `${root}/${scope}`)]]),
        );
        return clusters.flat().sort((a, b) => byCodePoint(a.scope, b.scope));
      });
    });
  }

  /** The keys under `base` (relative to it) as getCluster reads them, without watches. */
  private async readTree(reads: BatchedReads, base: string): Promise<DcsNode[]> {
    const root = await reads.getChildren(base);
    if (root === undefined) return [];
    const dirs = ['members', 'optime'].filter((d) => root.includes(d));
    const read = (key: string): Promise<DcsNode | undefined> =>
      reads.getNode(`${base}/${key}`).then((node) => node && this.dcsNode(key, node.value, node.stat));
    const levels = await Promise.all([
      Promise.all(root.filter((k) => !dirs.includes(k)).map(read)),
      ...dirs.map(async (d) => {
        const children = (await reads.getChildren(`${base}/${d}`)) ?? [];
        return Promise.all(children.map((c) => read(`${d}/${c}`)));
      }),
    ]);
    return levels.flat().filter((n): n is DcsNode => n !== undefined);
  }

  private async readNode(
    s: Session,
    deadline: number,
    key: string,
    watch: boolean | 'quiet',
  ): Promise<DcsNode | undefined> {
    const node = await this.getNode(s, deadline, this.path(key), watch);
    return node && this.dcsNode(key, node.value, node.stat);
  }

  private dcsNode(key: string, value: string, stat: Stat): DcsNode {
    const owner = longToDecimal(stat.ephemeralOwner);
    return {
      key,
      value,
      version: String(stat.version),
      modifyVersion: longToDecimal(stat.mzxid),
      session: owner === '0' ? undefined : owner,
    };
  }

  /** Re-reads `status` (and `optime/leader` when present) with their watches and patches them into the view. */
  private async rereadStatus(
    s: Session,
    deadline: number,
    v: NonNullable<ZooKeeperDcs['view']>,
  ): Promise<void> {
    const keys = [KEYS.status, ...(v.nodes.has(KEYS.leaderOptime) ? [KEYS.leaderOptime] : [])];
    const read = await Promise.all(keys.map((k) => this.readNode(s, deadline, k, true)));
    if (this.view === v)
      this.replaceNodes(
        v,
        keys.map((k, i) => [k, read[i]]),
      );
  }

  /** The view with `changes` applied (undefined: the key is gone), its cluster made again. */
  private replaceNodes(
    v: NonNullable<ZooKeeperDcs['view']>,
    changes: readonly (readonly [string, DcsNode | undefined])[],
  ): void {
    const nodes = new Map(v.nodes);
    for (const [k, n] of changes) {
      if (n) nodes.set(k, n);
      else nodes.delete(k);
    }
    this.view = {
      session: v.session,
      nodes,
      cluster: clusterFromNodes(this.options.scope, [...nodes.values()]),
    };
  }

  /**
   * Our own write of `key` (our member key, `status`) when the view holds it: set unconditionally and patched into
   * the view instead of reading it all again. False when the view does not hold it or the znode was gone.
   */
  private async setViewed(s: Session, deadline: number, key: string, value: string): Promise<boolean> {
    if (!this.viewed(s, key)) return false;
    let stat: Stat;
    try {
      stat = await this.setData(s, deadline, this.path(key), value, -1, false);
    } catch (e) {
      if (!hasCode(e, this.mod.Exception.NO_NODE)) throw e;
      return false;
    }
    const v = this.view;
    if (v?.session === s) this.replaceNodes(v, [[key, this.dcsNode(key, value, stat)]]);
    else this.refetch = true;
    return true;
  }

  /** The view's node for `key`, when the view is current for session `s`. */
  private viewed(s: Session, key: string): DcsNode | undefined {
    const v = this.view;
    return v && v.session === s && !this.refetch && !s.dead && this.isConnected(s)
      ? v.nodes.get(key)
      : undefined;
  }

  // ---- leader lock and member key ---------------------------------------------------------------------------

  async attemptToAcquireLeader(): Promise<boolean> {
    const name = this.name;
    return this.op('attemptToAcquireLeader', (s, deadline) => this.createLeader(s, deadline, name));
  }

  /** Creates our ephemeral lock; `false` when someone else's appeared first. */
  private async createLeader(s: Session, deadline: number, name: string): Promise<boolean> {
    try {
      await this.create(s, deadline, this.path(KEYS.leader), name, true);
      return true;
    } catch (e) {
      if (hasCode(e, this.mod.Exception.NODE_EXISTS)) return false;
      throw e;
    }
  }

  /** Deletes the lock znode at the version we read; `false` when it changed meanwhile. */
  private async removeAt(s: Session, deadline: number, path: string, version: number): Promise<boolean> {
    try {
      await this.remove(s, deadline, path, version);
      return true;
    } catch (e) {
      if (hasCode(e, this.mod.Exception.NO_NODE)) return true;
      if (hasCode(e, this.mod.Exception.BAD_VERSION)) return false;
      throw e;
    }
  }

  async updateLeader(_cluster: Cluster): Promise<boolean> {
    const name = this.name;
    return this.op('updateLeader', async (s, deadline) => {
      // Our ephemeral lock lives as long as this session, which getCluster's round trip just showed connected; a
      // deletion would have fired the lock's watch (Patroni's _update_leader reads nothing either).
      const viewed = this.viewed(s, KEYS.leader);
      if (viewed?.value === name && viewed.session === s.id) return true;
      const path = this.path(KEYS.leader);
      const node = await this.getNode(s, deadline, path);
      // Lost with an old session: take it back unless someone else was faster.
      if (!node) return this.createLeader(s, deadline, name);
      if (node.value !== name) return false;
      if (longToDecimal(node.stat.ephemeralOwner) === s.id) return true;
      // Ours by name but bound to another session ("Recreating the leader ZNode due to ownership mismatch").
      if (!(await this.removeAt(s, deadline, path, node.stat.version))) return false;
      return this.createLeader(s, deadline, name);
    });
  }

  async takeLeader(): Promise<boolean> {
    const name = this.name;
    return this.op('takeLeader', async (s, deadline) => {
      const path = this.path(KEYS.leader);
      if (await this.createLeader(s, deadline, name)) return true;
      const node = await this.getNode(s, deadline, path);
      if (node && longToDecimal(node.stat.ephemeralOwner) === s.id) {
        if (node.value !== name) await this.setData(s, deadline, path, name, node.stat.version);
        return true;
      }
      if (node && !(await this.removeAt(s, deadline, path, node.stat.version))) return false;
      return this.createLeader(s, deadline, name);
    });
  }

  async deleteLeader(_cluster: Cluster): Promise<boolean> {
    const name = this.name;
    return this.op('deleteLeader', async (s, deadline) => {
      const path = this.path(KEYS.leader);
      const node = await this.getNode(s, deadline, path);
      if (node?.value !== name) return false;
      // A lock of ours left behind by an older session does not go with this one.
      if (longToDecimal(node.stat.ephemeralOwner) !== s.id)
        await this.removeAt(s, deadline, path, node.stat.version);
      // Patroni releases the lock by restarting the session: the lock and our member key vanish together, and the
      // member key comes back with the next touchMember.
      await this.restartSession();
      return true;
    });
  }

  async touchMember(value: string): Promise<boolean> {
    const name = this.name;
    return this.op('touchMember', async (s, deadline) => {
      const key = KEYS.members + name;
      const path = this.path(key);
      // Bound to this session as the view shows it: compare with what we wrote last (Patroni's __last_member_data).
      const viewed = this.viewed(s, key);
      if (viewed && viewed.session === s.id) {
        if (viewed.value === value) return true;
        if (await this.setViewed(s, deadline, key, value)) return true;
        this.refetch = true;
      }
      for (let attempt = 0; attempt < 2; attempt++) {
        const node = await this.getNode(s, deadline, path);
        if (node && longToDecimal(node.stat.ephemeralOwner) === s.id) {
          if (node.value !== value) await this.setData(s, deadline, path, value, -1);
          return true;
        }
        // Left by another session of ours (or a namesake): replace it with one bound to this session.
        if (node) await this.removeAt(s, deadline, path, node.stat.version);
        try {
          await this.create(s, deadline, path, value, true);
          return true;
        } catch (e) {
          // Raced with another writer of the same name: look again once.
          if (!hasCode(e, this.mod.Exception.NODE_EXISTS)) throw e;
        }
      }
      return false;
    });
  }

  // ---- persistent keys --------------------------------------------------------------------------------------

  async initialize(createNew: boolean, sysid: string): Promise<boolean> {
    return this.op('initialize', async (s, deadline) => {
      const path = this.path(KEYS.initialize);
      if (createNew) {
        try {
          await this.create(s, deadline, path, sysid, false);
          return true;
        } catch (e) {
          if (hasCode(e, this.mod.Exception.NODE_EXISTS)) return false;
          throw e;
        }
      }
      return (await this.setOrCreate(s, deadline, path, sysid)) !== false;
    });
  }

  async cancelInitialization(): Promise<boolean> {
    return this.op('cancelInitialization', async (s, deadline) => {
      try {
        await this.remove(s, deadline, this.path(KEYS.initialize), -1);
      } catch (e) {
        if (!hasCode(e, this.mod.Exception.NO_NODE)) throw e;
      }
      return true;
    });
  }

  /**
   * `set` at `version` (missing node: false), or without one unconditionally (-1), creating the node when it is
   * missing. Returns the new znode version, or false when the version did not match. Unlike Patroni's
   * `version or -1`, version 0 is a real CAS on a freshly created node.
   */
  private async setOrCreate(
    s: Session,
    deadline: number,
    path: string,
    value: string,
    version?: string,
    createEmpty = true,
  ): Promise<number | false> {
    let expected = -1;
    if (version !== undefined) {
      if (!/^\d+$/.test(version)) return false;
      expected = Number(version);
    }
    const { NO_NODE, BAD_VERSION, NODE_EXISTS } = this.mod.Exception;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        return (await this.setData(s, deadline, path, value, expected)).version;
      } catch (e) {
        if (hasCode(e, BAD_VERSION)) return false;
        if (!hasCode(e, NO_NODE)) throw e;
        if (version !== undefined) return false;
        // Patroni's set_sync_state_value with an empty value does not create the key.
        if (value === '' && !createEmpty) return 0;
      }
      try {
        await this.create(s, deadline, path, value, false);
        return 0;
      } catch (e) {
        // Created by someone else meanwhile: set it.
        if (!hasCode(e, NODE_EXISTS)) throw e;
      }
    }
    return false;
  }

  private async write(what: string, rel: string, value: string, version?: string): Promise<number | false> {
    return this.op(what, (s, deadline) =>
      this.setOrCreate(s, deadline, this.path(rel), value, version, rel !== KEYS.sync),
    );
  }

  async setConfigValue(value: string, version?: string): Promise<boolean> {
    return (await this.write('setConfigValue', KEYS.config, value, version)) !== false;
  }

  async setFailoverValue(value: string, version?: string): Promise<boolean> {
    return (await this.write('setFailoverValue', KEYS.failover, value, version)) !== false;
  }

  async replaceFailoverValue(value: string, expectedVersion: string | undefined): Promise<boolean> {
    if (expectedVersion !== undefined) return this.setFailoverValue(value, expectedVersion);
    return this.op('replaceFailoverValue', async (s, deadline) => {
      try {
        await this.create(s, deadline, this.path(KEYS.failover), value, false);
        return true;
      } catch (e) {
        if (hasCode(e, this.mod.Exception.NODE_EXISTS)) return false;
        throw e;
      }
    });
  }

  async setSyncStateValue(value: string, version?: string): Promise<string | false> {
    const v = await this.write('setSyncStateValue', KEYS.sync, value, version);
    return v === false ? false : String(v);
  }

  /** ZooKeeper does not delete `sync`: it writes `{}` (zookeeper.py `delete_sync_state`). */
  async deleteSyncState(version?: string): Promise<boolean> {
    return (await this.write('deleteSyncState', KEYS.sync, '{}', version)) !== false;
  }

  async setHistoryValue(value: string): Promise<boolean> {
    return (await this.write('setHistoryValue', KEYS.history, value)) !== false;
  }

  async writeStatus(value: string): Promise<boolean> {
    if (value === this.lastStatus) return true;
    const ok = await this.op('writeStatus', async (s, deadline) => {
      // The leader writes `status` each time its WAL position moves: patch the view rather than read it all again.
      if (await this.setViewed(s, deadline, KEYS.status, value)) return true;
      return (await this.setOrCreate(s, deadline, this.path(KEYS.status), value)) !== false;
    });
    if (ok) this.lastStatus = value;
    return ok;
  }

  async writeFailsafe(value: string): Promise<boolean> {
    if (value === this.lastFailsafe) return true;
    const ok = (await this.write('writeFailsafe', KEYS.failsafe, value)) !== false;
    if (ok) this.lastFailsafe = value;
    return ok;
  }

  async deleteCluster(): Promise<boolean> {
    return this.op('deleteCluster', async (s, deadline) => {
      await this.removeTree(s, deadline, this.base);
      this.lastStatus = undefined;
      this.lastFailsafe = undefined;
      return true;
    });
  }

  /**
   * Deletes a subtree, leaves first. (The library's removeRecursive only lists one level with async 3.x.) A child
   * created meanwhile (a member joining) makes its parent NOT_EMPTY: look again.
   */
  private async removeTree(s: Session, deadline: number, path: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const children = await this.getChildren(s, deadline, path, false);
      if (children === undefined) return;
      await Promise.all(children.map((c) => this.removeTree(s, deadline, `${path}/${c}`)));
      try {
        await this.remove(s, deadline, path, -1);
        return;
      } catch (e) {
        if (hasCode(e, this.mod.Exception.NO_NODE)) return;
        if (!hasCode(e, this.mod.Exception.NOT_EMPTY) || attempt >= 2) throw e;
      }
    }
  }

  // ---- watching ---------------------------------------------------------------------------------------------

  /** One function for every watch: the library keeps a watcher once per path, so re-arming never piles up. */
  protected readonly onWatchEvent = (event: ZkEvent): void => {
    const path = event.getPath();
    const isStatus = path === this.path(KEYS.status) || path === this.path(KEYS.leaderOptime);
    if (isStatus && event.getType() === this.mod.Event.NODE_DATA_CHANGED) {
      // The leader's own writes are patched into its view; it re-arms this watch when it stops leading (the lock's
      // change makes it read everything).
      if (this.leaderIsMe) return;
      this.statusStale = true;
      this.notify();
      return;
    }
    this.armedFor = undefined;
    this.wake();
  };

  /** `initialize` changed: read again next time, without waking. */
  protected readonly onQuietDataEvent = (): void => {
    this.refetch = true;
  };

  /** Read everything again, and end the loop's wait. */
  protected wake(): void {
    this.refetch = true;
    this.notify();
  }

  private notify(): void {
    this.changed = true;
    for (const waiter of [...this.waiters]) waiter(true);
  }

  /** Puts the watches in place when getCluster did not (or one fired since). */
  private async arm(deadline: number): Promise<void> {
    const s = await this.session(deadline);
    const root = await this.getChildren(s, deadline, this.base, true);
    if (root === undefined) {
      if (await this.existsWatch(s, deadline, this.base)) this.wake();
    } else {
      const keys = [...WATCHED_KEYS].filter((k) => root.includes(k.split('/')[0] ?? k));
      await Promise.all([
        ...keys.map((k) => this.existsWatch(s, deadline, this.path(k))),
        root.includes('members') ? this.getChildren(s, deadline, this.path('members'), true) : undefined,
      ]);
    }
    if (this.current === s && !s.dead) this.armedFor ??= s;
  }

  async watch(timeoutMs: number): Promise<boolean> {
    if (this.changed) {
      this.changed = false;
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const done = (woken: boolean): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        if (woken) this.changed = false;
        resolve(woken);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.waiters.add(done);
      if (!this.closed && (!this.current || this.armedFor !== this.current)) {
        // Best effort: if ZooKeeper is unreachable this is simply a sleep, like Patroni's.
        this.arm(performance.now() + Math.min(timeoutMs, this.retryTimeout * 1000)).catch(() => undefined);
      }
    });
  }

  // ---- lifecycle --------------------------------------------------------------------------------------------

  /** The session timeout the server negotiated (capped by its maxSessionTimeout), as kazoo reports it to Patroni. */
  lockLifetime(): number {
    const s = this.current;
    if (!s || s.dead) return this.ttl;
    const negotiated = s.client.getSessionTimeout();
    return Number.isFinite(negotiated) && negotiated > 0 ? negotiated / 1000 : this.ttl;
  }

  leaseRefreshedAt(): number | undefined {
    const s = this.current;
    return s && !s.dead ? s.provenAt : undefined;
  }

  setTimings(ttl: number, retryTimeout: number): void {
    this.retryTimeout = retryTimeout;
    if (ttl === this.ttl) return;
    this.ttl = ttl;
    // The session timeout is fixed at connect: a new ttl needs a new session (our ephemerals go with the old one;
    // updateLeader and touchMember re-create them).
    if (this.current) {
      const restarting: Promise<void> = (this.restarting ?? Promise.resolve())
        .then(() => this.restartSession())
        .catch(() => undefined)
        .finally(() => {
          if (this.restarting === restarting) this.restarting = undefined;
        });
      this.restarting = restarting;
    }
  }

  /**
   * Ends the session. A member waits for the server to acknowledge the close, so that its ephemerals are gone when
   * this resolves. A ctl client owns no ephemerals (it has no member identity): its close request is sent and the
   * connection cut without waiting for the answer, which the server gives only after logging the close to disk (a
   * round trip and an fsync at the end of every `list`). patronictl sends none and leaves its session to expire.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of [...this.waiters]) waiter(false);
    if (this.restarting) await this.restarting.catch(() => undefined);
    if (this.connecting) await this.connecting.catch(() => undefined);
    const s = this.current;
    this.current = undefined;
    if (s) await this.shutdown(s, !this.options.ctl);
  }
}
