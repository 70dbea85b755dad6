/**
 * The ZooKeeper adapter's sessions and requests (dcs/zookeeper.py's client side): opening, watching over and
 * closing the session, and the znode requests, each with its own deadline so that an unreachable server surfaces as
 * DcsError. `ZooKeeperDcs` (zookeeper-dcs.ts) builds the Dcs interface on it.
 */
import type {
  ACL,
  Client,
  Event as ZkEvent,
  Exception as ZkException,
  Module as ZkModule,
  Stat,
} from 'node-zookeeper-client';
import { clusterPrefix, DcsError, type DcsOptions } from '../dcs.js';
import { errorText } from '../../model/text.js';
import type { ZooKeeperTarget } from '../target.js';
import { addAuth, secureContextFor, useTls, znodeAcl, type TlsProbe } from './zk-security.js';
import { batchWrites, frameReplies, installFastJute } from './zk-wire.js';

/** TLS, `auth_data` and `set_acls` of the `zookeeper` section (zk-security.ts). */
export type ZooKeeperSecurity = Pick<ZooKeeperTarget, 'tls' | 'acls' | 'auth'>;

let loading: Promise<ZkModule> | undefined;

/** The client library is loaded on first use only, so importing this module costs nothing. */
async function loadZooKeeper(): Promise<ZkModule> {
  loading ??= Promise.all([
    import('node-zookeeper-client'),
    import('node-zookeeper-client/lib/jute/index.js'),
  ]).then(([m, jute]) => {
    installFastJute(jute.default);
    return m.default;
  });
  return loading;
}

/** ConnectionManager state once the client stopped for good (no more reconnects). */
const CM_CLOSED = -2;
/** Pause between reads retried after a lost connection. */
const READ_RETRY_MS = 100;
/** Pause between connection rounds once every host was tried (the library's default is 1 s). */
const SPIN_DELAY_MS = 200;
/** Longest wait for the server to acknowledge a session close before the socket is cut. */
const CLOSE_GRACE_MS = 3000;

export interface Session {
  readonly client: Client;
  /** ZooKeeper session id, decimal, as znodes report it in `ephemeralOwner`. */
  readonly id: string;
  /** Expired or closed: the next operation opens a new session. */
  dead: boolean;
  /** Rejecters of requests in flight, failed at once when the session dies (the library would leave them queued). */
  readonly inflight: Set<(e: Error) => void>;
  /** Monotonic ms at which the last request the server answered was sent: the session was alive then. */
  provenAt: number;
}

/** The reads `batchedReads` gives its body. */
export interface BatchedReads {
  getNode(path: string): Promise<{ value: string; stat: Stat } | undefined>;
  getChildren(path: string): Promise<string[] | undefined>;
}

/** A 64-bit value (zxid, session id) from the wire as a signed decimal, like Java's `long` and kazoo print it. */
export function longToDecimal(buf: Buffer): string {
  return buf.length === 8 ? buf.readBigInt64BE(0).toString() : '0';
}

function isZkException(e: unknown): e is ZkException {
  return e instanceof Error && typeof (e as Partial<ZkException>).getCode === 'function';
}

export function hasCode(e: unknown, code: number): boolean {
  return isZkException(e) && e.getCode() === code;
}

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/')) || '/';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sessions, requests and deadlines; the cluster view, the writes and the watch are `ZooKeeperDcs`'s. */
export abstract class ZooKeeperSession {
  readonly endpoints: readonly string[];
  /** `/<ns>/<scope>`, the cluster's znode. */
  protected readonly base: string;
  protected ttl: number;
  protected retryTimeout: number;
  private zk?: ZkModule;
  protected current?: Session;
  protected connecting?: Promise<Session>;
  /** A session being closed (ttl change, lock release); the next operation waits for it, so ephemerals are gone. */
  protected restarting?: Promise<void>;
  protected closed = false;
  /** The cluster view must be read again (connection trouble; see `view` in zookeeper-dcs.ts). */
  protected refetch = true;
  /** The session whose watches are all in place; cleared when one of them fires. */
  protected armedFor?: Session;
  /** The ACL of every znode we create (`set_acls`); undefined: the library's open ACL. */
  private acl?: ACL[];
  /** The last TLS connect's error, for the timeout message. */
  private tlsProbe?: TlsProbe;

  constructor(
    readonly options: DcsOptions,
    hosts: readonly string[],
    private readonly security: ZooKeeperSecurity = {},
  ) {
    if (hosts.length === 0) throw new DcsError('no zookeeper hosts configured; set zookeeper.hosts');
    this.endpoints = [...hosts];
    this.base = clusterPrefix(options.namespace, options.scope).replace(/\/$/, '');
    this.ttl = options.ttl;
    this.retryTimeout = options.retryTimeout;
  }

  /** Every watch event ends here (see zookeeper-dcs.ts). */
  protected abstract readonly onWatchEvent: (event: ZkEvent) => void;
  /** `initialize` changed: read again next time, without waking. */
  protected abstract readonly onQuietDataEvent: () => void;
  /** Read everything again, and end the loop's wait. */
  protected abstract wake(): void;

  protected path(rel: string): string {
    return `${this.base}/${rel}`;
  }

  private get hostList(): string {
    return this.endpoints.join(',');
  }

  private hint(): string {
    return 'check zookeeper.hosts in the configuration or pass --dcs-url';
  }

  protected get name(): string {
    if (this.options.ctl || !this.options.name) {
      throw new DcsError(
        `zookeeper at ${this.hostList}: this client has no member identity (read-only ctl mode)`,
      );
    }
    return this.options.name;
  }

  // ---- sessions ---------------------------------------------------------------------------------------------

  protected async session(deadline: number): Promise<Session> {
    if (this.closed) throw new DcsError(`zookeeper client for ${this.hostList} is closed`);
    if (this.restarting) await this.restarting;
    if (this.current && !this.current.dead) return this.current;
    if (this.current) {
      const old = this.current;
      this.current = undefined;
      await this.shutdown(old, false);
    }
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.beforeDeadline(this.connecting, deadline, () => this.connectError());
  }

  private async connect(): Promise<Session> {
    const zk = (this.zk ??= await loadZooKeeper());
    this.acl ??= znodeAcl(zk, this.security.acls);
    const { tls } = this.security;
    // Files are read on every connect, as kazoo does (renewed certificates are picked up).
    const context = tls ? secureContextFor(tls, this.hostList) : undefined;
    const seconds = this.retryTimeout;
    const connectSentAt = performance.now();
    const client = zk.createClient(this.hostList, {
      sessionTimeout: this.ttl * 1000,
      spinDelay: SPIN_DELAY_MS,
      retries: 0,
    });
    // Every call waiting for a reconnect listens for 'connected'; a busy getCluster has dozens.
    client.setMaxListeners(0);
    frameReplies(client);
    if (tls && context) this.tlsProbe = useTls(client, context, tls.verify);
    addAuth(client, this.security.auth);
    const session = await new Promise<Session>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.removeListener('connected', onConnected);
        client.removeListener('authenticationFailed', onAuthFailed);
        // The library would keep retrying forever and hold the process open.
        this.forceClose(client);
        reject(this.connectError(seconds));
      }, seconds * 1000);
      const onAuthFailed = (): void => {
        clearTimeout(timer);
        client.removeListener('connected', onConnected);
        this.forceClose(client);
        reject(this.authError());
      };
      const onConnected = (): void => {
        clearTimeout(timer);
        client.removeListener('authenticationFailed', onAuthFailed);
        resolve({
          client,
          id: longToDecimal(client.getSessionId()),
          dead: false,
          inflight: new Set(),
          provenAt: connectSentAt,
        });
      };
      client.once('connected', onConnected);
      client.once('authenticationFailed', onAuthFailed);
      client.connect();
    });
    client.on('disconnected', () => this.onConnectionTrouble(session, false));
    client.on('expired', () => this.onConnectionTrouble(session, true));
    // The server answers the credentials after the session is open, then closes the connection if it refused them.
    client.on('authenticationFailed', () => {
      if (session.dead) return;
      session.dead = true;
      const e = this.authError();
      for (const reject of [...session.inflight]) reject(e);
      session.inflight.clear();
      this.wake();
    });
    if (this.closed) {
      await this.shutdown(session, true);
      throw new DcsError(`zookeeper client for ${this.hostList} is closed`);
    }
    this.current = session;
    return session;
  }

  /** Patroni wakes the HA loop when the connection is suspended or lost. */
  private onConnectionTrouble(session: Session, expired: boolean): void {
    if (session.dead) return;
    if (expired) {
      session.dead = true;
      this.failInflight(session, `session ${session.id} expired`);
    }
    if (this.armedFor === session) this.armedFor = undefined;
    this.wake();
  }

  private failInflight(session: Session, why: string): void {
    const error = new DcsError(`zookeeper at ${this.hostList}: ${why}`);
    for (const reject of [...session.inflight]) reject(error);
    session.inflight.clear();
  }

  /**
   * Stops a client without waiting: its close request is written (when connected; the server ends the session once
   * it reads it), no reconnects, socket cut.
   */
  private forceClose(client: Client): void {
    if (client.connectionManager.state === CM_CLOSED) return;
    try {
      client.close();
    } catch {
      // close() writes to a socket that may not exist yet; the state is CLOSING either way.
    }
    client.connectionManager.socket?.destroy();
  }

  /**
   * Ends a session. Graceful: the server acknowledges the close, so our ephemerals are gone when this resolves
   * (what Patroni relies on when it releases the lock by restarting the session).
   */
  protected async shutdown(session: Session, graceful: boolean): Promise<void> {
    if (this.armedFor === session) this.armedFor = undefined;
    const wasDead = session.dead;
    session.dead = true;
    this.failInflight(session, `session ${session.id} closed`);
    const { client } = session;
    const connected = !wasDead && client.getState().getCode() === this.zk?.State.SYNC_CONNECTED.getCode();
    if (!graceful || !connected || client.connectionManager.state === CM_CLOSED) {
      this.forceClose(client);
      return;
    }
    await new Promise<void>((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        client.removeListener('disconnected', finish);
        resolve();
      };
      const timer = setTimeout(
        () => {
          this.forceClose(client);
          finish();
        },
        Math.min(CLOSE_GRACE_MS, this.retryTimeout * 1000),
      );
      client.once('disconnected', finish);
      try {
        client.close();
      } catch {
        this.forceClose(client);
        finish();
      }
    });
  }

  /** Drops the session (and with it every ephemeral of ours); the next operation opens a new one. */
  protected async restartSession(): Promise<void> {
    const old = this.current;
    this.current = undefined;
    if (old) await this.shutdown(old, true);
  }

  // ---- requests ---------------------------------------------------------------------------------------------

  private async beforeDeadline<T>(promise: Promise<T>, deadline: number, error: () => Error): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(error()), Math.max(0, deadline - performance.now()));
    });
    try {
      return await Promise.race([promise, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  private connectError(seconds = this.retryTimeout): DcsError {
    const tlsError = this.tlsProbe?.lastError;
    const tls = tlsError ? ` (TLS: ${tlsError}; check zookeeper.use_ssl, cacert, cert, key, verify)` : '';
    return new DcsError(
      `no zookeeper at ${this.hostList}: connection timed out after ${seconds} s${tls}; ${this.hint()}`,
    );
  }

  private authError(): DcsError {
    const schemes = (this.security.auth ?? []).map((a) => a.scheme).join(', ');
    return new DcsError(
      `zookeeper at ${this.hostList}: the server refused the credentials of zookeeper.auth_data (${schemes || 'none'}); check zookeeper.auth_data and the server's authProvider settings`,
    );
  }

  private timeoutError(what: string): DcsError {
    return new DcsError(
      `zookeeper at ${this.hostList}: ${what} timed out after ${this.retryTimeout} s (no answer from the server); ${this.hint()}`,
    );
  }

  private disconnectedError(what: string): DcsError {
    return new DcsError(
      `zookeeper at ${this.hostList}: ${what}: connection lost and not back within ${this.retryTimeout} s; ${this.hint()}`,
    );
  }

  protected isConnected(s: Session): boolean {
    return !s.dead && s.client.getState().getCode() === this.zk?.State.SYNC_CONNECTED.getCode();
  }

  /**
   * Waits (until the deadline) for a lost connection to come back. Requests are only handed to the library while
   * connected: it would queue them and send them whenever it reconnects, long after we reported a failure (Patroni
   * refuses to queue for the same reason).
   */
  private async whenConnected(s: Session, deadline: number, what: string): Promise<void> {
    if (s.dead) throw new DcsError(`zookeeper at ${this.hostList}: session ${s.id} is gone`);
    if (this.isConnected(s)) return;
    await new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        s.client.removeListener('connected', onConnected);
        s.inflight.delete(fail);
      };
      const onConnected = (): void => {
        cleanup();
        resolve();
      };
      const fail = (e: Error): void => {
        cleanup();
        reject(e);
      };
      const timer = setTimeout(
        () => fail(this.disconnectedError(what)),
        Math.max(0, deadline - performance.now()),
      );
      s.client.on('connected', onConnected);
      s.inflight.add(fail);
    });
  }

  /** One request; rejects with the raw ZooKeeper exception (callers look at its code) or a DcsError. */
  private async request<T>(
    s: Session,
    deadline: number,
    what: string,
    start: (done: (error: ZkException | null, value: T) => void) => void,
  ): Promise<T> {
    await this.whenConnected(s, deadline, what);
    const sentAt = performance.now();
    return new Promise<T>((resolve, reject) => {
      const settle = (fn: () => void): void => {
        clearTimeout(timer);
        s.inflight.delete(fail);
        fn();
      };
      const fail = (e: Error): void => settle(() => reject(e));
      // The library never times a request out: the deadline does.
      const timer = setTimeout(
        () => fail(this.timeoutError(what)),
        Math.max(0, deadline - performance.now()),
      );
      s.inflight.add(fail);
      try {
        batchWrites(s.client);
        start((error, value) => {
          // Any answer, an error code included, comes from a server that still knows the session.
          if (!s.dead && sentAt > s.provenAt) s.provenAt = sentAt;
          settle(() => (error ? reject(error) : resolve(value)));
        });
      } catch (e) {
        // The library asserts its arguments synchronously (e.g. an invalid path).
        fail(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  /** Reads are idempotent: retried after a lost connection until the deadline. */
  protected async read<T>(
    s: Session,
    deadline: number,
    what: string,
    start: (done: (error: ZkException | null, value: T) => void) => void,
  ): Promise<T> {
    for (;;) {
      try {
        return await this.request(s, deadline, what, start);
      } catch (e) {
        const code = this.zk?.Exception.CONNECTION_LOSS;
        if (
          code === undefined ||
          !hasCode(e, code) ||
          s.dead ||
          performance.now() + READ_RETRY_MS >= deadline
        )
          throw e;
        await sleep(READ_RETRY_MS);
      }
    }
  }

  protected async getNode(
    s: Session,
    deadline: number,
    path: string,
    watch: boolean | 'quiet' = false,
  ): Promise<{ value: string; stat: Stat } | undefined> {
    try {
      return await this.read<{ value: string; stat: Stat }>(s, deadline, `read ${path}`, (done) => {
        const cb = (error: ZkException | null, data: Buffer | null, stat: Stat): void =>
          done(error, { value: data ? data.toString('utf8') : '', stat });
        if (watch === 'quiet') s.client.getData(path, this.onQuietDataEvent, cb);
        else if (watch) s.client.getData(path, this.onWatchEvent, cb);
        else s.client.getData(path, cb);
      });
    } catch (e) {
      if (hasCode(e, this.mod.Exception.NO_NODE)) return undefined;
      throw e;
    }
  }

  protected async getChildren(
    s: Session,
    deadline: number,
    path: string,
    watch: boolean,
  ): Promise<string[] | undefined> {
    try {
      return await this.read<string[]>(s, deadline, `list ${path}`, (done) => {
        if (watch) s.client.getChildren(path, this.onWatchEvent, (error, children) => done(error, children));
        else s.client.getChildren(path, (error, children) => done(error, children));
      });
    } catch (e) {
      if (hasCode(e, this.mod.Exception.NO_NODE)) return undefined;
      throw e;
    }
  }

  /**
   * Many reads without watches under one deadline (`getClusters`, thousands of reads): one timer and one entry in
   * the session's in-flight set for the whole of `body`, where `request` gives each read a timer, an entry and
   * three async layers of its own. Each read answers as getNode / getChildren do (a missing znode: undefined); a
   * read made while disconnected, or whose connection is lost, takes the retrying path (getNode / getChildren).
   */
  protected async batchedReads<T>(
    s: Session,
    deadline: number,
    what: string,
    body: (reads: BatchedReads) => Promise<T>,
  ): Promise<T> {
    const noNode = this.mod.Exception.NO_NODE;
    const connectionLoss = this.mod.Exception.CONNECTION_LOSS;
    const direct = <V>(
      start: (done: (error: ZkException | null, value: V) => void) => void,
      retry: () => Promise<V | undefined>,
    ): Promise<V | undefined> => {
      if (!this.isConnected(s)) return retry();
      const sentAt = performance.now();
      return new Promise<V | undefined>((resolve, reject) => {
        batchWrites(s.client);
        start((error, value) => {
          if (!s.dead && sentAt > s.provenAt) s.provenAt = sentAt;
          if (!error) resolve(value);
          else if (hasCode(error, noNode)) resolve(undefined);
          else if (hasCode(error, connectionLoss)) resolve(retry());
          else reject(error);
        });
      });
    };
    const reads: BatchedReads = {
      getNode: (path) =>
        direct<{ value: string; stat: Stat }>(
          (done) =>
            s.client.getData(path, (error, data, stat) =>
              done(error, { value: data ? data.toString('utf8') : '', stat }),
            ),
          () => this.getNode(s, deadline, path),
        ),
      getChildren: (path) =>
        direct<string[]>(
          (done) => s.client.getChildren(path, (error, children) => done(error, children)),
          () => this.getChildren(s, deadline, path, false),
        ),
    };
    if (s.dead) throw new DcsError(`zookeeper at ${this.hostList}: session ${s.id} is gone`);
    let fail: (e: Error) => void = () => undefined;
    const failed = new Promise<never>((_resolve, reject) => {
      fail = reject;
    });
    s.inflight.add(fail);
    try {
      return await this.beforeDeadline(Promise.race([body(reads), failed]), deadline, () =>
        this.timeoutError(what),
      );
    } finally {
      s.inflight.delete(fail);
    }
  }

  /** `exists` with a watch: fires on creation as well as change or deletion. */
  protected async existsWatch(s: Session, deadline: number, path: string): Promise<boolean> {
    const stat = await this.read<Stat | null>(s, deadline, `watch ${path}`, (done) =>
      s.client.exists(path, this.onWatchEvent, done),
    );
    return stat !== null;
  }

  /** Creates a znode, making missing parents (persistent) like kazoo's `makepath`. NODE_EXISTS is the caller's. */
  protected async create(
    s: Session,
    deadline: number,
    path: string,
    value: string,
    ephemeral: boolean,
  ): Promise<void> {
    this.refetch = true;
    const mode = ephemeral ? this.mod.CreateMode.EPHEMERAL : this.mod.CreateMode.PERSISTENT;
    const { acl } = this;
    const data = Buffer.from(value, 'utf8');
    const once = (): Promise<string> =>
      this.request<string>(s, deadline, `create ${path}`, (done) =>
        acl ? s.client.create(path, data, acl, mode, done) : s.client.create(path, data, mode, done),
      );
    try {
      await once();
    } catch (e) {
      if (!hasCode(e, this.mod.Exception.NO_NODE)) throw e;
      // Parents get the same ACL, as kazoo's makepath.
      await this.request<string>(s, deadline, `create ${parentOf(path)}`, (done) =>
        acl
          ? s.client.mkdirp(parentOf(path), null, acl, this.mod.CreateMode.PERSISTENT, done)
          : s.client.mkdirp(parentOf(path), done),
      );
      await once();
    }
  }

  protected async setData(
    s: Session,
    deadline: number,
    path: string,
    value: string,
    version: number,
    invalidate = true,
  ): Promise<Stat> {
    if (invalidate) this.refetch = true;
    return this.request<Stat>(s, deadline, `write ${path}`, (done) =>
      s.client.setData(path, Buffer.from(value, 'utf8'), version, done),
    );
  }

  protected async remove(s: Session, deadline: number, path: string, version: number): Promise<void> {
    this.refetch = true;
    await this.request<null>(s, deadline, `delete ${path}`, (done) =>
      s.client.remove(path, version, (error) => done(error, null)),
    );
  }

  protected get mod(): ZkModule {
    if (!this.zk) throw new DcsError('zookeeper client library not loaded');
    return this.zk;
  }

  private describe(what: string, e: unknown): DcsError {
    if (e instanceof DcsError) return e;
    let cause = errorText(e);
    if (isZkException(e)) {
      const code = e.getCode();
      if (code === this.zk?.Exception.CONNECTION_LOSS) cause = `connection lost; ${this.hint()}`;
      else if (code === this.zk?.Exception.SESSION_EXPIRED) cause = `session expired; ${this.hint()}`;
      else if (code === this.zk?.Exception.NO_AUTH)
        cause = `not allowed by the ACL of ${e.getPath() ?? 'the znode'}; check zookeeper.set_acls, auth_data and the client certificate (cert, key)`;
      else cause = e.getName() + (e.getPath() ? ` (${e.getPath()})` : '');
    }
    return new DcsError(`zookeeper at ${this.hostList}: ${what} failed: ${cause}`, { cause: e });
  }

  /** Runs one DCS operation under one deadline; everything that escapes is a DcsError naming the hosts. */
  protected async op<T>(what: string, body: (s: Session, deadline: number) => Promise<T>): Promise<T> {
    const deadline = performance.now() + this.retryTimeout * 1000;
    try {
      const s = await this.session(deadline);
      return await body(s, deadline);
    } catch (e) {
      throw this.describe(what, e);
    }
  }
}
