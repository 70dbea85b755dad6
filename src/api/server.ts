/**
 * The agent's REST API server on node:http / node:https, with Patroni's routes, status codes,
 * headers that clients read (Content-Type, WWW-Authenticate, Server) and bodies.
 *
 * Nothing a client sends may cost the agent more than a bounded amount: headers must arrive within
 * `headersTimeoutMs` and the whole request within `requestTimeoutMs`, headers are capped at `maxHeaderBytes`, bodies
 * at `maxBodyBytes` (counted while reading), connections at `maxConnections`, and every response closes its
 * connection (Patroni answers one request per connection). Malformed input is rejected by node's parser (400/431).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import { AccessPolicy } from './access.js';
import { firstSegment } from './health.js';
import { readRoutes, type ReadRoute, type ReadSources } from './routes/read.js';
import { readJsonBody, unsafeRoutes, type UnsafeRoute } from './routes/unsafe.js';
import type { ApiSecurity, TlsOptions, UnsafeHandlers } from './types.js';
import { parseQs, pyRepr, reasonPhrase, responder, splitTarget, type Responder } from './wire.js';

export type {
  ApiHandler,
  ApiReply,
  ApiRequest,
  ApiSecurity,
  ErrorReply,
  JsonReply,
  TextReply,
  TlsOptions,
  UnsafeHandlers,
} from './types.js';

export interface ApiLimits {
  /** Until the whole header block is in (slow-header clients). */
  readonly headersTimeoutMs: number;
  /** Until the whole request (headers and body) is in; handlers may then take as long as they need. */
  readonly requestTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly maxBodyBytes: number;
  /** Further connections are closed on accept. */
  readonly maxConnections: number;
  readonly tlsHandshakeTimeoutMs: number;
}

export const DEFAULT_LIMITS: ApiLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxHeaderBytes: 16 * 1024,
  maxBodyBytes: 1024 * 1024,
  maxConnections: 64,
  tlsHandshakeTimeoutMs: 10_000,
};

export interface ApiServerOptions extends ReadSources, ApiSecurity {
  /** `host:port`; `*` or an empty host listens on every interface; `[::1]:8008` for IPv6. */
  readonly listen: string;
  readonly handlers?: UnsafeHandlers;
  /** Members' api_url values, for `allowlist_include_members`. */
  readonly memberApiUrls?: () => readonly string[];
  readonly limits?: Partial<ApiLimits>;
  /** Clock for the Date header. */
  readonly now?: () => number;
  /** Called with errors thrown by callbacks (the client then gets a 500 page). */
  readonly onError?: (error: unknown) => void;
  /** Configuration problems found while serving (an allowlist entry that does not resolve). */
  readonly onWarning?: (text: string) => void;
}

export interface ApiServer {
  readonly host: string;
  readonly port: number;
  /**
   * Applies reloaded `restapi` settings (auth, allowlist, Server and extra headers, TLS files). `restart` when the
   * change needs a new listener (TLS switched on or off, verify_client changed): the caller starts a new server.
   */
  reconfigure(security: ApiSecurity): 'applied' | 'restart';
  /**
   * Stops listening at once; requests under way get `graceMs` to finish (0: cut now, as at shutdown, so that peers
   * see this member as unreachable); resolves when every connection is gone.
   */
  close(graceMs?: number): Promise<void>;
}

export const DEFAULT_SERVER_TOKENS = 'BaseHTTP/0.6 Python/3.11.2';

/** `Server` header per Patroni's `restapi.server_tokens` (4.0+): Original, ProductOnly, Minimal. */
export function serverHeaderFor(tokens: string | undefined, patroniVersion: string): string {
  switch ((tokens ?? '').toLowerCase()) {
    case 'productonly':
      return 'Patroni';
    case 'minimal':
      return `Patroni/${patroniVersion}`;
    default:
      return DEFAULT_SERVER_TOKENS;
  }
}

function parseListen(listen: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]*)\]|(.*)):(\d+)$/.exec(listen.trim());
  if (!m)
    throw new Error(`Invalid "restapi" config: expected <HOST>:<PORT> for "listen", but got "${listen}"`);
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' || host === '*' ? undefined : host, port: Number(m[3]) };
}

function secureContext(t: TlsOptions): SecureContextOptions {
  return {
    cert: readFileSync(t.certfile),
    key: readFileSync(t.keyfile ?? t.certfile),
    passphrase: t.keyfilePassword,
    ca: t.cafile ? readFileSync(t.cafile) : undefined,
    ciphers: t.ciphers,
  };
}

/** The settings that only a new listener can change. */
const listenerShape = (s: ApiSecurity): string => (s.tls ? `tls:${s.tls.verifyClient ?? 'none'}` : 'plain');

function createHttpServer(options: ApiServerOptions, limits: ApiLimits, onRequest: http.RequestListener) {
  const httpOptions: http.ServerOptions = {
    // The deadlines are enforced per connection (enforceDeadlines); node's own checker would be a process-wide
    // interval, so it is switched off and its timer pushed as far out as setInterval allows.
    headersTimeout: 0,
    requestTimeout: 0,
    connectionsCheckingInterval: NODE_CHECKER_OFF_MS,
    keepAliveTimeout: 5_000,
    maxHeaderSize: limits.maxHeaderBytes,
    // Patroni (Python http.server) does not insist on Host; HAProxy's HTTP/1.1 checks may omit it.
    requireHostHeader: false,
  };
  const tls = options.tls;
  if (!tls) return http.createServer(httpOptions, onRequest);
  const verify = tls.verifyClient ?? 'none';
  return https.createServer(
    {
      ...httpOptions,
      ...secureContext(tls),
      requestCert: verify !== 'none',
      rejectUnauthorized: verify === 'required',
      handshakeTimeout: limits.tlsHandshakeTimeoutMs,
    },
    onRequest,
  );
}

/** setInterval's longest delay (a longer one fires after 1 ms). */
const NODE_CHECKER_OFF_MS = 2 ** 31 - 1;

/**
 * `headersTimeoutMs` and `requestTimeoutMs` per connection, with one timer that exists only while a request is still
 * coming in; over its deadline the client gets the 408 node's checker would send. Node's checker
 * (`connectionsCheckingInterval`) is one interval for the whole process instead, waking an idle agent at every tick:
 * at 1 s that was about 0.4 s of CPU per 10 minutes, half of what an idle agent used (test/bench/idle-cpu-ab.ts).
 */
function enforceDeadlines(server: http.Server, limits: ApiLimits, tls: boolean): void {
  const pending = new WeakMap<
    Socket,
    { readonly startedMs: number; timer: NodeJS.Timeout; req?: http.IncomingMessage }
  >();
  const expire = (socket: Socket): void => {
    const entry = pending.get(socket);
    pending.delete(socket);
    // A request received in full may take its handler as long as it needs.
    if (socket.destroyed || entry?.req?.complete === true) return;
    onClientError(Object.assign(new Error('request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), socket);
  };
  server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    const timer = setTimeout(() => expire(socket), limits.headersTimeoutMs);
    pending.set(socket, { startedMs: performance.now(), timer });
    socket.once('close', () => {
      clearTimeout(pending.get(socket)?.timer);
      pending.delete(socket);
    });
  });
  server.on('request', (req: http.IncomingMessage) => {
    const entry = pending.get(req.socket);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    entry.req = req;
    const left = entry.startedMs + limits.requestTimeoutMs - performance.now();
    entry.timer = setTimeout(() => expire(req.socket), Math.max(0, left));
  });
}

/** A request node's parser refused (garbage, oversized headers, too slow): a short answer and the socket closed. */
function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  const code = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  if (err.code !== 'ECONNRESET' && socket.writable) {
    socket.end(`HTTP/1.1 ${code} ${reasonPhrase(code)}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroySoon();
  } else socket.destroy();
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { host, port } = parseListen(options.listen);
  const limits: ApiLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const now = options.now ?? Date.now;
  const memberApiUrls = options.memberApiUrls ?? (() => []);
  let security: ApiSecurity = options;
  let policy = new AccessPolicy(security, memberApiUrls, options.onWarning);
  const reads = readRoutes(options);
  const unsafe = unsafeRoutes(options.handlers ?? {});
  const readRoute = (key: string): ReadRoute | undefined =>
    Object.prototype.hasOwnProperty.call(reads, key) ? reads[key] : undefined;

  const runUnsafe = async (
    route: UnsafeRoute,
    req: http.IncomingMessage,
    respond: Responder,
    target: { path: string; query: string },
  ): Promise<void> => {
    const remoteAddress = req.socket.remoteAddress ?? '';
    const refusal = await policy.check({
      remoteAddress,
      authorization: req.headers.authorization,
      socket: req.socket,
      checkMembers: route.checkMembers,
    });
    if (refusal) return respond.reply(refusal);
    const body = await readJsonBody(req, route.body, limits.maxBodyBytes);
    if (!body.ok) return respond.error(body.code);
    const headers = new Map<string, string>();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
    const reply = await route.handler({
      method: req.method ?? '',
      path: target.path,
      query: parseQs(target.query),
      body: body.body,
      headers,
      remoteAddress,
    });
    respond.reply(reply);
  };

  const serve = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const s = security;
    const respond = responder(res, {
      serverHeader: s.serverHeader ?? DEFAULT_SERVER_TOKENS,
      extraHeaders: s.extraHeaders ?? {},
      now,
    });
    try {
      if (req.httpVersionMajor >= 2) return respond.error(505, `Invalid HTTP version (${req.httpVersion})`);
      const method = req.method ?? '';
      const target = splitTarget(req.url ?? '/');
      const seg = firstSegment(target.path);
      const unsafeRoute = seg ? unsafe.get(`${method}_${seg}`) : undefined;
      if (unsafeRoute) return await runUnsafe(unsafeRoute, req, respond, target);
      const read = (seg ? readRoute(`${method}_${seg}`) : undefined) ?? readRoute(method);
      if (!read) return respond.error(501, `Unsupported method (${pyRepr(method)})`);
      await read({ method, path: target.path, query: parseQs(target.query), respond });
    } catch (e) {
      options.onError?.(e);
      if (!respond.sent) respond.error(500);
    }
  };

  const server = createHttpServer(options, limits, (req, res) => void serve(req, res));
  enforceDeadlines(server, limits, options.tls !== undefined);
  server.maxConnections = limits.maxConnections;
  server.maxHeadersCount = 100;
  server.on('clientError', onClientError);
  server.on('tlsClientError', (_e: Error, socket: Socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => options.onError?.(e));
  const addr = server.address() as AddressInfo;

  return {
    host: addr.address,
    port: addr.port,
    reconfigure(next) {
      if (listenerShape(next) !== listenerShape(security)) return 'restart';
      // Re-read the certificate files too: a renewed certificate is picked up by a reload, as in Patroni.
      if (next.tls && server instanceof https.Server) server.setSecureContext(secureContext(next.tls));
      security = next;
      policy = new AccessPolicy(next, memberApiUrls, options.onWarning);
      return 'applied';
    },
    close: (graceMs = 0) =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        if (graceMs <= 0) server.closeAllConnections();
        else setTimeout(() => server.closeAllConnections(), graceMs).unref();
      }),
  };
}
