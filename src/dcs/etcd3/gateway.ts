/**
 * A small client for etcd's v3 gRPC-gateway JSON API (what Patroni's dcs/etcd3.py speaks), over `node:http`.
 * Deliberately not the `etcd3` package or undici: loading those costs the CLI 130-230 ms of start-up.
 *
 * Every call is bounded by `retryTimeout` seconds overall; connection failures, timeouts and gRPC code 14
 * (Unavailable) move on to the next endpoint, everything else etcd answers is an `EtcdError`.
 */
import type { Etcd3Target } from '../target.js';
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { DcsError } from '../dcs.js';
import type { CallOutcome, Endpoint } from './gateway-transport.js';
import {
  JsonObjectSplitter,
  NetworkError,
  SentNetworkError,
  describeSocketError,
  grpcErrorOf,
  isObject,
  mayHaveApplied,
  parseEndpoint,
} from './gateway-transport.js';
import {
  addressOf,
  clientUrlsOf,
  discoveryStep,
  orderedEndpoints,
  unionByAddress,
  type DiscoveryStep,
} from './members.js';
import type {
  DeleteRangeResponse,
  JsonObject,
  LeaseGrantResponse,
  PutResponse,
  RangeResponse,
  TxnRequest,
  TxnResponse,
  WatchResponse,
} from './gateway-wire.js';
import { b64 } from './gateway-wire.js';

// The wire messages and the transport pieces live in gateway-wire.ts and gateway-transport.ts; importers keep
// reading them from here.
export type {
  Compare,
  DeleteRangeResponse,
  JsonObject,
  KeyValue,
  LeaseGrantResponse,
  PutResponse,
  RangeResponse,
  RequestOp,
  ResponseHeader,
  TxnRequest,
  TxnResponse,
  WatchEvent,
  WatchResponse,
} from './gateway-wire.js';
export { b64, fromB64, prefixRangeEnd } from './gateway-wire.js';
export type { CallOutcome } from './gateway-transport.js';

/** The `etcd3` section's protocol, credentials and PEM file paths, plus what the gateway itself needs. */
export interface GatewayOptions extends Omit<Etcd3Target, 'kind' | 'hosts'> {
  /** `host:port`, or a URL (`https://host:port`) whose scheme overrides `protocol`. */
  readonly endpoints: readonly string[];
  /** Overall bound of one call, failover between endpoints included, seconds. */
  readonly retryTimeout: number;
  /**
   * `etcd3.use_proxies`: use `endpoints` as given. Otherwise (the default, as Patroni) they only bootstrap the list
   * of etcd members, whose client URLs are then used (src/dcs/etcd3/members.ts).
   */
  readonly useProxies?: boolean;
  /** How long a learnt member list is trusted, ms (default 300 s). */
  readonly membersLifetimeMs?: number;
}

/** etcd answered with a gRPC error (`{"error","code","message"}`). */
export class EtcdError extends DcsError {
  constructor(
    message: string,
    /** gRPC status code. */
    readonly code: number,
    /** etcd's own message, e.g. `etcdserver: requested lease not found`. */
    readonly etcdMessage: string,
  ) {
    super(message);
  }
}

export const LEASE_NOT_FOUND = 'etcdserver: requested lease not found';

export function isLeaseNotFound(e: unknown): boolean {
  return e instanceof EtcdError && e.etcdMessage === LEASE_NOT_FOUND;
}

/** Errors after which a fresh token may help (as dcs/etcd3.py: re-authenticate and retry once). */
const REAUTH_MESSAGES = new Set([
  'etcdserver: invalid auth token',
  'etcdserver: revision of auth store is old',
  'etcdserver: user name is empty',
  'etcdserver: permission denied',
]);
const AUTH_NOT_ENABLED = 'etcdserver: authentication is not enabled';
const GRPC_UNAVAILABLE = 14;

type Mode =
  | { readonly kind: 'unary' }
  /** A streamed response of which only the first message matters (lease keepalive). */
  | { readonly kind: 'first' }
  /** A long-lived stream: `onResult` returning true ends it with `true`; `untilMs` ends it with `false`. */
  | { readonly kind: 'stream'; readonly untilMs: number; readonly onResult: (result: JsonObject) => boolean };

interface Versions {
  readonly server: string;
  readonly cluster: string;
  readonly prefix: string;
  readonly authSupported: boolean;
}

function parseVersion(v: string): number[] {
  return v.split('.').map((p) => Number.parseInt(p, 10) || 0);
}

function versionAtLeast(v: string, min: readonly number[]): boolean {
  const parts = parseVersion(v);
  for (let i = 0; i < min.length; i++) {
    const a = parts[i] ?? 0;
    const b = min[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export class EtcdGateway {
  /** Seconds; the DCS updates it from the dynamic configuration. */
  retryTimeout: number;
  /** ms; the DCS sets it from the ttl (x 10, as Patroni). */
  membersLifetimeMs: number;
  /** The endpoints as configured: what the member list is first asked from. */
  private readonly configured: readonly Endpoint[];
  /** The endpoints in use: the configured ones, or the members' client URLs once learnt. */
  private targets: Endpoint[];
  /** Member discovery: no list learnt yet, or the last reload failed. */
  private needsReload: boolean;
  /** When the member list was last learnt (monotonic ms). */
  private membersUpdatedMs?: number;
  /** The member-list request in flight, shared by concurrent calls. */
  private discovering?: Promise<void>;
  private readonly httpAgent: http.Agent;
  private httpsAgent?: https.Agent;
  /** Index of the endpoint that answered last: tried first next time. */
  private preferred = 0;
  private versions?: Versions;
  private token?: string;
  private authDisabled = false;
  private closed = false;
  /** Called with the header revision of every put, succeeded txn and non-empty delete. */
  onWrite?: (revision: string | undefined) => void;

  constructor(private readonly options: GatewayOptions) {
    if (options.endpoints.length === 0) throw new DcsError('no etcd3 hosts configured');
    this.configured = options.endpoints.map((e) => parseEndpoint(e, options.protocol));
    this.targets = [...this.configured];
    this.needsReload = options.useProxies !== true;
    this.retryTimeout = options.retryTimeout;
    this.membersLifetimeMs = options.membersLifetimeMs ?? 300_000;
    // keepAlive for the daemon; idle pooled sockets are unref'ed by node, so they never hold a CLI open.
    this.httpAgent = new http.Agent({ keepAlive: true, maxFreeSockets: 4 });
  }

  /** The endpoints in use, the one that answered last first. */
  get endpoints(): readonly string[] {
    const n = this.targets.length;
    return this.targets.map((_, i) => this.targets[(this.preferred + i) % n]!.label);
  }

  private get authConfigured(): boolean {
    return Boolean(this.options.username) && Boolean(this.options.password);
  }

  private agentFor(ep: Endpoint): http.Agent {
    if (!ep.https) return this.httpAgent;
    if (!this.httpsAgent) {
      const read = (path: string | undefined): Buffer | undefined => {
        if (!path) return undefined;
        try {
          return readFileSync(path);
        } catch (e) {
          throw new DcsError(`etcd3 at ${ep.label}: cannot read TLS file ${path}: ${describeSocketError(e)}`);
        }
      };
      this.httpsAgent = new https.Agent({
        keepAlive: true,
        maxFreeSockets: 4,
        ca: read(this.options.cacert),
        cert: read(this.options.cert),
        key: read(this.options.key),
        // etcd3.key_password: an encrypted client key is decrypted with it, as Patroni passes it to urllib3.
        ...(this.options.keyPassword ? { passphrase: this.options.keyPassword } : {}),
      });
    }
    return this.httpsAgent;
  }

  /** Destroys every socket, idle or busy; in-flight calls fail with DcsError. */
  close(): void {
    this.closed = true;
    this.httpAgent.destroy();
    this.httpsAgent?.destroy();
  }

  // ---- typed RPCs ------------------------------------------------------------------------------------------

  /**
   * How many keys a range holds and the newest of them (keys only): a cheap fingerprint of the range, which changes
   * with every put or delete in it.
   */
  rangeFingerprint(key: string, rangeEndB64: string, serializable: boolean): Promise<RangeResponse> {
    return this.call<RangeResponse>('/kv/range', {
      key: b64(key),
      range_end: rangeEndB64,
      serializable,
      keys_only: true,
      limit: 1,
      sort_order: 'DESCEND',
      sort_target: 'MOD',
    });
  }

  /** `rangeEndB64`: already base64 (see `prefixRangeEnd`). */
  range(key: string, rangeEndB64: string | undefined, serializable: boolean): Promise<RangeResponse> {
    return this.call<RangeResponse>('/kv/range', {
      key: b64(key),
      ...(rangeEndB64 === undefined ? {} : { range_end: rangeEndB64 }),
      serializable,
    });
  }

  async put(key: string, value: string, lease?: string): Promise<PutResponse> {
    const res = await this.call<PutResponse>('/kv/put', {
      key: b64(key),
      value: b64(value),
      ...(lease ? { lease } : {}),
    });
    this.onWrite?.(res.header?.revision);
    return res;
  }

  /** `outcome`: filled in with whether an attempt that failed on the way may have been applied all the same. */
  async txn(request: TxnRequest, outcome?: CallOutcome): Promise<TxnResponse> {
    const res = await this.call<TxnResponse>('/kv/txn', request, { kind: 'unary' }, outcome);
    // A put or delete ran when the compare held, or when a nested txn of the failure branch succeeded.
    if (res.succeeded === true || res.responses?.some((r) => r.response_txn?.succeeded === true)) {
      this.onWrite?.(res.header?.revision);
    }
    return res;
  }

  async deleteRange(key: string, rangeEndB64?: string): Promise<DeleteRangeResponse> {
    const res = await this.call<DeleteRangeResponse>('/kv/deleterange', {
      key: b64(key),
      ...(rangeEndB64 === undefined ? {} : { range_end: rangeEndB64 }),
    });
    // A delete that removed nothing changed nothing (and leaves no watch event behind).
    if (res.deleted !== undefined && res.deleted !== '0') this.onWrite?.(res.header?.revision);
    return res;
  }

  leaseGrant(ttl: number): Promise<LeaseGrantResponse> {
    return this.call<LeaseGrantResponse>('/lease/grant', { TTL: ttl });
  }

  /**
   * Refreshes a lease: `alive` false when etcd no longer knows it (no or zero TTL in the answer); `revision` is the
   * store revision etcd had reached when it answered (the response header's).
   */
  async leaseKeepAlive(id: string): Promise<{ readonly alive: boolean; readonly revision?: string }> {
    const result = await this.call<LeaseGrantResponse>('/lease/keepalive', { ID: id }, { kind: 'first' });
    return { alive: result.TTL !== undefined && result.TTL !== '0', revision: result.header?.revision };
  }

  /**
   * Opens a watch and feeds each response to `onResult` until it returns true (-> true) or `untilMs` (monotonic
   * ms, `performance.now()`) passes (-> false). Rejects with DcsError when no endpoint accepts the watch or the stream breaks.
   */
  watch(
    createRequest: JsonObject,
    untilMs: number,
    onResult: (result: WatchResponse) => boolean,
  ): Promise<boolean> {
    return this.call<boolean>(
      '/watch',
      { create_request: createRequest },
      { kind: 'stream', untilMs, onResult },
    );
  }

  // ---- plumbing --------------------------------------------------------------------------------------------

  /** POSTs `body` to `<prefix><method>` with version detection, auth and endpoint failover. */
  async call<T>(
    method: string,
    body: JsonObject | TxnRequest,
    mode: Mode = { kind: 'unary' },
    outcome?: CallOutcome,
  ): Promise<T> {
    let deadline = performance.now() + this.retryTimeout * 1000;
    if (mode.kind === 'stream') deadline = Math.min(deadline, mode.untilMs);
    const versions = await this.detectVersions(deadline);
    await this.discover(versions, deadline);
    const path = versions.prefix + method;
    let token = await this.authenticate(versions, deadline);
    const payload = JSON.stringify(body);
    try {
      return (await this.failover(
        deadline,
        (ep, timeoutMs) => this.exchange(ep, 'POST', path, payload, timeoutMs, token, mode),
        outcome,
      )) as T;
    } catch (e) {
      if (!(e instanceof EtcdError) || !this.authConfigured || !REAUTH_MESSAGES.has(e.etcdMessage)) throw e;
      // Tokens are per etcd member and expire: get a fresh one and retry once.
      this.token = undefined;
      token = await this.authenticate(versions, deadline);
      return (await this.failover(
        deadline,
        (ep, timeoutMs) => this.exchange(ep, 'POST', path, payload, timeoutMs, token, mode),
        outcome,
      )) as T;
    }
  }

  /** `GET /version` once: picks the API prefix and refuses servers that are too old (as dcs/etcd3.py). */
  private async detectVersions(deadline: number): Promise<Versions> {
    if (this.versions) return this.versions;
    let label = '';
    const body = await this.failover(deadline, (ep, timeoutMs) => {
      label = ep.label;
      return this.exchange(ep, 'GET', '/version', undefined, timeoutMs, undefined, { kind: 'unary' });
    });
    if (!isObject(body) || typeof body['etcdserver'] !== 'string') {
      throw new DcsError(`${label} does not look like etcd: unexpected answer to GET /version`);
    }
    const server = body['etcdserver'];
    const rawCluster = body['etcdcluster'];
    // A member that has not joined a cluster yet says "not_decided": judge by the server version then.
    const cluster = typeof rawCluster === 'string' && /^\d/.test(rawCluster) ? rawCluster : server;
    if (!versionAtLeast(server, [3, 0, 4]) || !versionAtLeast(cluster, [3, 0])) {
      throw new DcsError(
        `Detected etcd version ${server} (cluster ${cluster}) at ${label} is lower than 3.0.4; ` +
          'the etcd3 DCS needs etcd 3.0.4 or newer',
      );
    }
    const prefix = versionAtLeast(cluster, [3, 4])
      ? '/v3'
      : versionAtLeast(cluster, [3, 3])
        ? '/v3beta'
        : '/v3alpha';
    this.versions = { server, cluster, prefix, authSupported: versionAtLeast(cluster, [3, 3]) };
    return this.versions;
  }

  /**
   * Member discovery before a request (src/dcs/etcd3/members.ts): learns the members' client URLs when the list is
   * missing (a failure fails the call) or old (a failure keeps the old list), within part of the call's time.
   */
  private async discover(versions: Versions, deadline: number): Promise<void> {
    const step = discoveryStep(
      {
        discover: this.options.useProxies !== true,
        needsReload: this.needsReload,
        updatedMs: this.membersUpdatedMs,
        lifetimeMs: this.membersLifetimeMs,
      },
      performance.now(),
    );
    if (step === 'none') return;
    this.discovering ??= this.learnMembers(step, versions, deadline).finally(() => {
      this.discovering = undefined;
    });
    await this.discovering;
  }

  /** Asks the endpoints in turn for the member list until one names client URLs, then uses those. */
  private async learnMembers(step: DiscoveryStep, versions: Versions, deadline: number): Promise<void> {
    const now = performance.now();
    // A refresh leaves most of the call's time to the request itself; a reload is needed by it.
    const until = now + (deadline - now) / (step === 'refresh' ? 3 : 2);
    const inUse = this.endpoints.map((label) => this.targets.find((t) => t.label === label)!);
    const candidates = step === 'reload' ? unionByAddress(inUse, this.configured) : inUse;
    const causes: string[] = [];
    for (let i = 0; i < candidates.length; i++) {
      const ep = candidates[i]!;
      const remaining = until - performance.now();
      if (remaining <= 0) break;
      const timeoutMs = Math.max(
        Math.min(1000, remaining),
        Math.floor(remaining / (candidates.length - i)),
        1,
      );
      try {
        const token = await this.authenticate(versions, until);
        const answer = await this.exchange(
          ep,
          'POST',
          `${versions.prefix}/cluster/member/list`,
          '{}',
          timeoutMs,
          token,
          {
            kind: 'unary',
          },
        );
        if (this.useMembers(clientUrlsOf(answer))) return;
        causes.push(`${ep.label}: no client URLs in the member list`);
      } catch (e) {
        if (e instanceof EtcdError && REAUTH_MESSAGES.has(e.etcdMessage)) this.token = undefined;
        causes.push(`${ep.label}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (step === 'refresh') return; // the old list stays, and is asked again at the next call
    this.needsReload = true;
    throw new DcsError(
      `could not get the list of etcd members from ${candidates.map((c) => c.label).join(', ')}` +
        `${causes.length > 0 ? ` (${causes.join('; ')})` : ''}; ` +
        'if these hosts are proxies or load balancers rather than etcd members, set etcd3.use_proxies: true',
    );
  }

  /** Switches to the members' client URLs; false when none can be used. */
  private useMembers(urls: readonly string[]): boolean {
    const endpoints = new Map<string, Endpoint>();
    for (const url of urls) {
      let ep: Endpoint;
      try {
        ep = parseEndpoint(url, this.options.protocol);
      } catch {
        continue; // a URL the gateway cannot speak to (e.g. unix://): not used
      }
      // A configured host that is a member keeps its name, in messages too.
      const known = this.configured.find((c) => addressOf(c) === addressOf(ep)) ?? ep;
      endpoints.set(known.label, known);
    }
    if (endpoints.size === 0) return false;
    const order = orderedEndpoints([...endpoints.keys()], this.targets[this.preferred]?.label, Math.random);
    this.targets = order.map((label) => endpoints.get(label)!);
    this.preferred = 0;
    this.needsReload = false;
    this.membersUpdatedMs = performance.now();
    return true;
  }

  /** The token to send, fetching one when username and password are configured (cluster >= 3.3). */
  private async authenticate(versions: Versions, deadline: number): Promise<string | undefined> {
    if (!this.authConfigured || !versions.authSupported || this.authDisabled) return undefined;
    if (this.token !== undefined) return this.token;
    const payload = JSON.stringify({ name: this.options.username, password: this.options.password });
    try {
      const res = await this.failover(deadline, (ep, timeoutMs) =>
        this.exchange(ep, 'POST', `${versions.prefix}/auth/authenticate`, payload, timeoutMs, undefined, {
          kind: 'unary',
        }),
      );
      const token = isObject(res) ? res['token'] : undefined;
      if (typeof token !== 'string' || token === '')
        throw new DcsError(`etcd3 at ${this.endpoints.join(', ')}: authentication returned no token`);
      this.token = token;
      return token;
    } catch (e) {
      if (e instanceof EtcdError && e.etcdMessage === AUTH_NOT_ENABLED) {
        this.authDisabled = true;
        return undefined;
      }
      if (e instanceof EtcdError) {
        throw new DcsError(`etcd3 authentication as '${this.options.username ?? ''}' failed: ${e.message}`, {
          cause: e,
        });
      }
      throw e;
    }
  }

  /**
   * Runs `attempt` against the endpoints, the last good one first, until one answers or `deadline` passes.
   * Only NetworkErrors move on; rounds repeat with a short pause while time is left.
   */
  private async failover(
    deadline: number,
    attempt: (ep: Endpoint, timeoutMs: number) => Promise<unknown>,
    outcome?: CallOutcome,
  ): Promise<unknown> {
    const causes = new Map<string, string>();
    let pause = 100;
    for (;;) {
      const n = this.targets.length;
      for (let i = 0; i < n; i++) {
        this.ensureOpen();
        const index = (this.preferred + i) % n;
        const ep = this.targets[index];
        if (!ep) continue;
        const remaining = deadline - performance.now();
        if (remaining <= 0 && causes.size > 0) break;
        // Split what is left over the endpoints still to try, but give each at least a second (as dcs/etcd3.py).
        const timeoutMs = Math.max(Math.min(1000, remaining), Math.floor(remaining / (n - i)), 1);
        try {
          const result = await attempt(ep, timeoutMs);
          this.preferred = index;
          // Answered by another endpoint than the first one asked: the member list may be out of date.
          if (causes.size > 0 && this.membersUpdatedMs !== undefined) this.membersUpdatedMs = -Infinity;
          return result;
        } catch (e) {
          if (!(e instanceof NetworkError)) throw e;
          if (e instanceof SentNetworkError && outcome) outcome.uncertain = true;
          causes.set(ep.label, e.message);
        }
      }
      this.ensureOpen();
      if (this.options.useProxies !== true) {
        // Every member known failed: try the configured hosts too, and learn the list afresh at the next call.
        this.needsReload = true;
        this.targets = unionByAddress(this.targets, this.configured);
      }
      const remaining = deadline - performance.now();
      if (remaining < 100) break;
      await sleep(Math.min(pause, remaining - 50));
      pause = Math.min(pause * 2, 1000);
    }
    const all = [...causes.values()];
    const detail =
      causes.size === 1 || new Set(all).size === 1
        ? (all[0] ?? 'unreachable')
        : [...causes].map(([label, cause]) => `${label}: ${cause}`).join('; ');
    throw new DcsError(`no etcd3 at ${this.endpoints.join(', ')}: ${detail}`);
  }

  private ensureOpen(): void {
    if (this.closed) throw new DcsError(`etcd3 client for ${this.endpoints.join(', ')} is closed`);
  }

  /** One HTTP exchange with one endpoint: the request, its one timer, and its answer read as the mode says. */
  private exchange(
    ep: Endpoint,
    httpMethod: 'GET' | 'POST',
    path: string,
    payload: string | undefined,
    timeoutMs: number,
    token: string | undefined,
    mode: Mode,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const req = this.openRequest(ep, httpMethod, path, payload, token);
      const exchange = settleOnce(req, resolve, reject);
      const { finish, arm } = exchange;
      const timedOut = (): void => {
        finish(new SentNetworkError(`timed out after ${timeoutMs} ms`));
        req.destroy();
      };
      if (mode.kind === 'stream' && mode.untilMs <= performance.now() + timeoutMs) {
        // The watch ends before this attempt would time out: that is a quiet watch, not a failure.
        arm(mode.untilMs - performance.now(), () => {
          finish(undefined, false);
          req.destroy();
        });
      } else arm(timeoutMs, timedOut);

      req.on('error', (e) => {
        if (this.closed) finish(new DcsError(`etcd3 client for ${this.endpoints.join(', ')} is closed`));
        else {
          const message = describeSocketError(e);
          finish(mayHaveApplied(e) ? new SentNetworkError(message) : new NetworkError(message));
        }
      });
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        res.on('error', (e) => finish(new SentNetworkError(describeSocketError(e))));
        res.on('aborted', () => finish(new SentNetworkError('connection closed mid-response')));
        if (status === 200 && mode.kind !== 'unary') this.readStream(ep, path, mode, res, exchange);
        else this.readUnary(ep, path, status, res, exchange);
      });
      req.end(payload);
    });
  }

  /** The HTTP request of one exchange (not yet sent): JSON payload, etcd's auth token, the endpoint's agent. */
  private openRequest(
    ep: Endpoint,
    httpMethod: 'GET' | 'POST',
    path: string,
    payload: string | undefined,
    token: string | undefined,
  ): http.ClientRequest {
    const headers: http.OutgoingHttpHeaders = {};
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    if (token !== undefined) headers['authorization'] = token; // raw token, no "Bearer" (as etcd expects)
    const mod = ep.https ? https : http;
    return mod.request({
      agent: this.agentFor(ep),
      host: ep.hostname,
      port: ep.port,
      method: httpMethod,
      path,
      headers,
    });
  }

  /**
   * A streamed answer (lease keepalive, watch): one JSON object per message. `first` settles on the first result;
   * `stream` hands each result to `onResult` until it says stop or the caller's deadline passes.
   */
  private readStream(
    ep: Endpoint,
    path: string,
    mode: Exclude<Mode, { readonly kind: 'unary' }>,
    res: http.IncomingMessage,
    exchange: Exchange,
  ): void {
    const { req, finish, arm } = exchange;
    const splitter = new JsonObjectSplitter();
    let first = true;
    res.on('data', (chunk: string) => {
      if (exchange.settled()) return;
      for (const text of splitter.push(chunk)) {
        let msg: unknown;
        try {
          msg = JSON.parse(text) as unknown;
        } catch {
          finish(new DcsError(`etcd3 at ${ep.label}: unreadable message on ${path}: ${text.slice(0, 200)}`));
          req.destroy();
          return;
        }
        const grpc = grpcErrorOf(msg);
        if (grpc) {
          finish(this.grpcError(ep, path, grpc));
          req.destroy();
          return;
        }
        const result = isObject(msg) && isObject(msg['result']) ? msg['result'] : {};
        if (mode.kind === 'first') {
          finish(undefined, result);
          // The gateway ends this stream once it has answered our one request: reading it to the end hands
          // the connection back to the pool. Should it linger, drop it.
          const linger = setTimeout(() => req.destroy(), 1000);
          linger.unref();
          res.once('end', () => clearTimeout(linger));
          res.once('close', () => clearTimeout(linger));
          return;
        }
        if (first) {
          first = false;
          // Connected: from now on only the caller's deadline ends the watch.
          arm(mode.untilMs - performance.now(), () => {
            finish(undefined, false);
            req.destroy();
          });
        }
        const reason = result['cancel_reason'];
        const compacted = (result['compact_revision'] ?? '0') !== '0';
        if (result['canceled'] === true && !compacted && typeof reason === 'string' && reason !== '') {
          // etcd refused the watch (e.g. a stale token): drop the token so the next call re-authenticates.
          if ([...REAUTH_MESSAGES].some((m) => reason.includes(m))) this.token = undefined;
          finish(new EtcdError(`etcd3 at ${ep.label}: ${path} cancelled: ${reason}`, 1, reason));
          req.destroy();
          return;
        }
        let stop: boolean;
        try {
          stop = mode.onResult(result);
        } catch (e) {
          finish(e instanceof Error ? e : new DcsError(String(e)));
          req.destroy();
          return;
        }
        if (stop) {
          finish(undefined, true);
          req.destroy();
          return;
        }
      }
    });
    res.on('end', () => {
      if (!exchange.settled()) finish(new NetworkError(`stream ${path} ended`)); // no error (and stack) once answered
    });
  }

  /** A unary answer: the whole body, JSON; 502/503/504 and gRPC Unavailable move on to the next endpoint. */
  private readUnary(
    ep: Endpoint,
    path: string,
    status: number,
    res: http.IncomingMessage,
    { finish }: Exchange,
  ): void {
    let text = '';
    res.on('data', (chunk: string) => {
      text += chunk;
    });
    res.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(text) as unknown;
      } catch {
        body = undefined;
      }
      if (status === 200 && body !== undefined) {
        finish(undefined, body);
        return;
      }
      const grpc = grpcErrorOf(body);
      if (grpc) finish(this.grpcError(ep, path, grpc));
      else if (status === 502 || status === 503 || status === 504) finish(new NetworkError(`HTTP ${status}`));
      else {
        const snippet = text.trim().slice(0, 200);
        finish(new DcsError(`etcd3 at ${ep.label}: unexpected HTTP ${status} for ${path}: ${snippet}`));
      }
    });
  }

  private grpcError(ep: Endpoint, path: string, grpc: { code: number; message: string }): Error {
    // "etcdserver: request timed out" is Unavailable too, and its proposal may still be applied.
    if (grpc.code === GRPC_UNAVAILABLE) return new SentNetworkError(`${grpc.message} (unavailable)`);
    return new EtcdError(`etcd3 at ${ep.label}: ${path} failed: ${grpc.message}`, grpc.code, grpc.message);
  }
}

/** One exchange in flight: its request, and its promise settled once (the first outcome wins) behind one timer. */
interface Exchange {
  readonly req: http.ClientRequest;
  readonly settled: () => boolean;
  readonly finish: (err: Error | undefined, value?: unknown) => void;
  /** (Re)arms the exchange's one timer. */
  readonly arm: (ms: number, onFire: () => void) => void;
}

function settleOnce(
  req: http.ClientRequest,
  resolve: (value: unknown) => void,
  reject: (err: Error) => void,
): Exchange {
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  return {
    req,
    settled: () => settled,
    finish: (err, value) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (err) reject(err);
      else resolve(value);
    },
    arm: (ms, onFire) => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(onFire, Math.max(0, ms));
    },
  };
}
