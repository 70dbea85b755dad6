/**
 * The agent's REST API server (Patroni's api.py), byte-compatible with Patroni's `http.server`-based one.
 *
 * Node's `http` module frames responses its own way (HTTP/1.1, keep-alive, Content-Length or chunked), while
 * Patroni answers HTTP/1.0 with no Content-Length and closes the connection, answers HEAD/OPTIONS with a bare
 * status line, and sends Python's HTML error pages. So this server speaks HTTP itself over `net`/`tls`: a small
 * request parser with Python's rules (request line, headers, Content-Length bodies) and writers for Patroni's three
 * response shapes. A malformed request gets Python's 4xx answer; nothing a client sends can throw out of here.
 *
 * One request per connection; the connection is closed after the response.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Cluster, JsonObject } from '../model/cluster.js';
import { clusterView, clusterViewJson } from '../model/cluster-view.js';
import { flavorFor, type VersionTuple } from '../model/flavor.js';
import { pyJson } from '../model/pyjson.js';
import { firstSegment, healthCheck, type QueryParams } from './health.js';
import { spokenVersion, statusJson, type AgentStatus, type PrimaryRoleSpelling } from './status.js';

type MaybePromise<T> = T | Promise<T>;

/** `write_response`: status line, Server, Date, extra headers, Content-Type; body until EOF. */
export interface TextReply {
  readonly code: number;
  readonly body: string;
  /** Defaults to `text/html`, as Patroni's plain-text answers carry. */
  readonly contentType?: string;
  /** Written before Content-Type (e.g. `lsn` for POST /failsafe). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A JSON body (`application/json`, Python spacing). */
export interface JsonReply {
  readonly code: number;
  readonly json: unknown;
}

/** Python's `send_error`: HTML error page with Content-Length and `Connection: close`. */
export interface ErrorReply {
  readonly error: number;
  readonly message?: string;
}

export type ApiReply = TextReply | JsonReply | ErrorReply;

export interface ApiRequest {
  readonly method: string;
  /** URL path without the query. */
  readonly path: string;
  readonly query: QueryParams;
  /** The JSON body: `{}` for endpoints with an optional body that got none. */
  readonly body: JsonObject;
  /** Lower-cased names; first occurrence wins. */
  readonly headers: ReadonlyMap<string, string>;
  readonly remoteAddress: string;
}

export type ApiHandler = (request: ApiRequest) => MaybePromise<ApiReply>;

/** Mutating endpoints; each requires access checks and is only routed when its handler is given. */
export interface UnsafeHandlers {
  readonly switchover?: ApiHandler; // POST /switchover
  readonly failover?: ApiHandler; // POST /failover
  readonly restart?: ApiHandler; // POST /restart
  readonly reload?: ApiHandler; // POST /reload
  readonly reinitialize?: ApiHandler; // POST /reinitialize
  readonly patchConfig?: ApiHandler; // PATCH /config
  readonly putConfig?: ApiHandler; // PUT /config
  readonly deleteSwitchover?: ApiHandler; // DELETE /switchover
  readonly deleteRestart?: ApiHandler; // DELETE /restart
  readonly failsafe?: ApiHandler; // POST /failsafe
}

export interface TlsOptions {
  readonly certfile: string;
  readonly keyfile?: string;
  readonly keyfilePassword?: string;
  readonly cafile?: string;
  readonly ciphers?: string;
  /** `required`: handshake demands a client cert; `optional`: unsafe endpoints do (403 otherwise). */
  readonly verifyClient?: 'none' | 'optional' | 'required';
}

export interface ApiServerOptions {
  /** `host:port`; `*` or an empty host listens on every interface; `[::1]:8008` for IPv6. */
  readonly listen: string;
  readonly auth?: { readonly username: string; readonly password: string };
  readonly tls?: TlsOptions;
  /** The `Server` header; Patroni 3.0.2 on Debian 12 sends `BaseHTTP/0.6 Python/3.11.2`. */
  readonly serverTokens?: string;
  /** `restapi.http_extra_headers` (plus `https_extra_headers` under TLS), in order. */
  readonly extraHeaders?: Readonly<Record<string, string>>;
  /** Allowlist check for unsafe endpoints (`restapi.allowlist`); false => 403 `Access is denied`. */
  readonly isAllowed?: (remoteAddress: string) => boolean;

  readonly getStatus: () => MaybePromise<AgentStatus>;
  /** The cached DCS view; undefined when the DCS is unreachable. */
  readonly getCluster: () => MaybePromise<Cluster | undefined>;
  /** A fresh DCS read for `GET /cluster` (Patroni re-reads); defaults to `getCluster`. */
  readonly readCluster?: () => MaybePromise<Cluster | undefined>;
  /** `GET /metrics` body; without it `/metrics` is an ordinary (503) health check. */
  readonly getMetrics?: () => MaybePromise<string>;
  /** `GET /failsafe`; defaults to the cached view's failsafe key; undefined => 502. */
  readonly getFailsafe?: () => MaybePromise<Readonly<Record<string, string>> | undefined>;
  readonly handlers?: UnsafeHandlers;

  /** Wire flavour of the status document; defaults follow `status.patroni.version`. */
  readonly speaks?: VersionTuple;
  readonly primaryRole?: PrimaryRoleSpelling;

  /** A client that has not sent a whole request by then is dropped (Python waits forever). Default 30 s. */
  readonly requestTimeoutMs?: number;
  /** Clock for the Date header. */
  readonly now?: () => number;
  /** Called with errors thrown by callbacks (the client then gets a 500 page). */
  readonly onError?: (error: unknown) => void;
}

export interface ApiServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
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

// ---------------------------------------------------------------------------------------------------------------
// Python's http.server vocabulary.

/** `BaseHTTPRequestHandler.responses`: [reason phrase, explanation]. */
const RESPONSES: ReadonlyMap<number, readonly [string, string]> = new Map<number, readonly [string, string]>([
  [100, ['Continue', 'Request received, please continue']],
  [200, ['OK', 'Request fulfilled, document follows']],
  [201, ['Created', 'Document created, URL follows']],
  [202, ['Accepted', 'Request accepted, processing continues off-line']],
  [204, ['No Content', 'Request fulfilled, nothing follows']],
  [205, ['Reset Content', 'Clear input form for further input']],
  [304, ['Not Modified', 'Document has not changed since given time']],
  [400, ['Bad Request', 'Bad request syntax or unsupported method']],
  [401, ['Unauthorized', 'No permission -- see authorization schemes']],
  [403, ['Forbidden', 'Request forbidden -- authorization will not help']],
  [404, ['Not Found', 'Nothing matches the given URI']],
  [405, ['Method Not Allowed', 'Specified method is invalid for this resource']],
  [408, ['Request Timeout', 'Request timed out; try again later']],
  [409, ['Conflict', 'Request conflict']],
  [411, ['Length Required', 'Client must specify Content-Length']],
  [412, ['Precondition Failed', 'Precondition in headers is false']],
  [413, ['Request Entity Too Large', 'Entity is too large']],
  [414, ['Request-URI Too Long', 'URI is too long']],
  [422, ['Unprocessable Entity', '']],
  [
    431,
    [
      'Request Header Fields Too Large',
      'The server is unwilling to process the request because its header fields are too large',
    ],
  ],
  [500, ['Internal Server Error', 'Server got itself in trouble']],
  [501, ['Not Implemented', 'Server does not support this operation']],
  [502, ['Bad Gateway', 'Invalid responses from another server/proxy']],
  [503, ['Service Unavailable', 'The server cannot process the request due to a high load']],
  [504, ['Gateway Timeout', 'The gateway server did not receive a timely response']],
  [505, ['HTTP Version Not Supported', 'Cannot fulfill request']],
]);

const ERROR_PAGE = (code: number, message: string, explain: string): string =>
  '<!DOCTYPE HTML>\n<html lang="en">\n    <head>\n        <meta charset="utf-8">\n' +
  '        <title>Error response</title>\n    </head>\n    <body>\n        <h1>Error response</h1>\n' +
  `        <p>Error code: ${code}</p>\n        <p>Message: ${message}.</p>\n` +
  `        <p>Error code explanation: ${code} - ${explain}.</p>\n    </body>\n</html>\n`;

const htmlEscape = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Python `repr()` of a str whose code points are all < 256 (a latin-1 decoded request line). */
export function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '\\' || ch === quote) out += `\\${ch}`;
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c === 0xad)
      out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

/** Python's `str.split()` whitespace within latin-1. */
const isPyWhitespace = (c: number): boolean =>
  (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c === 0x85 || c === 0xa0;

/** Python `str.split()` without arguments. */
function pySplit(s: string): string[] {
  const words: string[] = [];
  let word = '';
  for (let i = 0; i < s.length; i++) {
    if (isPyWhitespace(s.charCodeAt(i))) {
      if (word) words.push(word);
      word = '';
    } else word += s[i];
  }
  if (word) words.push(word);
  return words;
}

/** Python `int()` of a str: optional sign, digits with single underscores, surrounding whitespace. */
function pyInt(text: string): number | undefined {
  const m = /^\s*([-+]?\d+(?:_\d+)*)\s*$/.exec(text);
  return m?.[1] ? Number(m[1].replace(/_/g, '')) : undefined;
}

/** `urllib.parse.unquote_plus`-style decoding as `parse_qs` does it (UTF-8, invalid bytes replaced). */
function unquotePlus(s: string): string {
  const plus = s.replace(/\+/g, ' ');
  if (!plus.includes('%')) return plus;
  const bytes: number[] = [];
  for (let i = 0; i < plus.length; i++) {
    const hex = plus.slice(i + 1, i + 3);
    if (plus[i] === '%' && /^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      for (const b of Buffer.from(plus[i] ?? '', 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** `parse_qs(query)`: `&`-separated, blank values and fields without `=` dropped. */
export function parseQs(query: string): QueryParams {
  const out: Record<string, string[]> = {};
  for (const field of query.split('&')) {
    const eq = field.indexOf('=');
    if (eq === -1) continue;
    const value = field.slice(eq + 1);
    if (value === '') continue;
    const name = unquotePlus(field.slice(0, eq));
    (out[name] ??= []).push(unquotePlus(value));
  }
  return out;
}

/** `urlparse(target)` reduced to what Patroni uses: path and query (no percent-decoding of the path). */
export function splitTarget(target: string): { path: string; query: string } {
  let rest = target;
  const colon = rest.indexOf(':');
  if (colon > 0 && /^[A-Za-z][A-Za-z0-9+.-]*$/.test(rest.slice(0, colon))) rest = rest.slice(colon + 1);
  if (rest.startsWith('//')) {
    const end = rest.slice(2).search(/[/?#]/);
    rest = end === -1 ? '' : rest.slice(2 + end);
  }
  const hash = rest.indexOf('#');
  if (hash !== -1) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  return q === -1 ? { path: rest, query: '' } : { path: rest.slice(0, q), query: rest.slice(q + 1) };
}

// ---------------------------------------------------------------------------------------------------------------
// Request parsing.

const MAX_LINE = 65536;
const MAX_HEADERS = 100;
/** Patroni reads any Content-Length; a cap keeps a hostile client from exhausting memory. */
const MAX_BODY = 16 * 1024 * 1024;

interface RequestHead {
  readonly command: string;
  readonly target: string;
  readonly version: string;
  readonly headers: ReadonlyMap<string, string>;
}

type BodyMode = 'none' | 'required' | 'optional';

interface Route {
  readonly unsafe: boolean;
  readonly body: BodyMode;
  readonly run: (ctx: RequestContext) => Promise<void>;
}

interface RequestContext {
  readonly head: RequestHead;
  readonly path: string;
  readonly query: QueryParams;
  body?: JsonObject;
}

/** Reads from a connection's buffered bytes; resolves as data arrives, undefined at EOF. */
class Reader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async more(): Promise<boolean> {
    if (this.ended) return false;
    await new Promise<void>((resolve) => (this.wake = resolve));
    return true;
  }

  /** Python `readline(limit)`: up to and including `\n`, at most `limit` bytes; shorter at EOF. */
  async readline(limit: number): Promise<Buffer> {
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl !== -1 && nl < limit) return this.take(nl + 1);
      if (this.buf.length >= limit) return this.take(limit);
      if (!(await this.more())) return this.take(this.buf.length);
    }
  }

  /** Python `read(n)`: n bytes, fewer at EOF; n < 0 reads to EOF. */
  async read(n: number): Promise<Buffer> {
    for (;;) {
      if (n >= 0 && this.buf.length >= n) return this.take(n);
      if (!(await this.more())) return this.take(this.buf.length);
    }
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
}

/** A malformed request: answered with Python's error page for `code`. */
class RequestError extends Error {
  constructor(
    readonly code: number,
    readonly reason?: string,
    readonly explain?: string,
  ) {
    super(reason ?? String(code));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The server.

function parseListen(listen: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]*)\]|(.*)):(\d+)$/.exec(listen.trim());
  if (!m)
    throw new Error(`Invalid "restapi" config: expected <HOST>:<PORT> for "listen", but got "${listen}"`);
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' || host === '*' ? undefined : host, port: Number(m[3]) };
}

const isJsonReply = (r: ApiReply): r is JsonReply => 'json' in r;
const isErrorReply = (r: ApiReply): r is ErrorReply => 'error' in r;

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { host, port } = parseListen(options.listen);
  const serverHeader = options.serverTokens ?? DEFAULT_SERVER_TOKENS;
  const extraHeaders = Object.entries(options.extraHeaders ?? {});
  const now = options.now ?? Date.now;
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  const authKey = options.auth
    ? Buffer.from(Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64'))
    : undefined;
  const verifyClient = options.tls?.verifyClient ?? 'none';
  const sockets = new Set<net.Socket>();

  const statusBody = (status: AgentStatus): string =>
    pyJson(statusJson(status, { speaks: options.speaks, primaryRole: options.primaryRole }));

  const handle = (socket: net.Socket): void => {
    sockets.add(socket);
    const reader = new Reader();
    let version = 'HTTP/0.9';
    let command = '';
    let done = false;
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    timer.unref();
    socket.on('data', (d: Buffer) => reader.push(d));
    socket.on('end', () => reader.end());
    socket.on('error', () => reader.end());
    socket.on('close', () => {
      clearTimeout(timer);
      sockets.delete(socket);
      reader.end();
    });

    const write = (b: Buffer | string): void => {
      chunks.push(typeof b === 'string' ? Buffer.from(b, 'utf8') : b);
    };
    const headersOn = (): boolean => version !== 'HTTP/0.9';
    const statusLine = (code: number, message?: string): string =>
      `HTTP/1.0 ${code} ${message ?? RESPONSES.get(code)?.[0] ?? ''}\r\n`;
    const dateHeader = (): string => new Date(now()).toUTCString();

    const writeResponse = (
      code: number,
      body: string,
      contentType = 'text/html',
      headers: Readonly<Record<string, string>> = {},
    ): void => {
      if (headersOn()) {
        let head = statusLine(code) + `Server: ${serverHeader}\r\nDate: ${dateHeader()}\r\n`;
        for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
        head += `Content-Type: ${contentType}\r\n`;
        for (const [k, v] of extraHeaders) head += `${k}: ${v}\r\n`;
        write(Buffer.from(`${head}\r\n`, 'latin1'));
      }
      write(body);
    };
    const writeStatusOnly = (code: number): void => write(statusLine(code) + '\r\n');
    const sendError = (code: number, message?: string, explain?: string): void => {
      const [short, long] = RESPONSES.get(code) ?? ['???', '???'];
      const msg = message ?? short;
      const withBody = code >= 200 && code !== 204 && code !== 205 && code !== 304;
      const body = withBody
        ? Buffer.from(ERROR_PAGE(code, htmlEscape(msg), htmlEscape(explain ?? long)), 'utf8')
        : undefined;
      if (headersOn()) {
        let head =
          statusLine(code, msg) + `Server: ${serverHeader}\r\nDate: ${dateHeader()}\r\nConnection: close\r\n`;
        if (body) head += `Content-Type: text/html;charset=utf-8\r\nContent-Length: ${body.length}\r\n`;
        write(Buffer.from(`${head}\r\n`, 'latin1'));
      }
      if (command !== 'HEAD' && body) write(body);
    };
    const reply = (r: ApiReply): void => {
      if (isErrorReply(r)) sendError(r.error, r.message);
      else if (isJsonReply(r)) writeResponse(r.code, pyJson(r.json), 'application/json');
      else writeResponse(r.code, r.body, r.contentType ?? 'text/html', r.headers ?? {});
    };

    // -- routes, keyed like Patroni's handler methods: `<METHOD>_<first segment>` or the generic `<METHOD>`.
    const health = async (ctx: RequestContext): Promise<void> => {
      const [status, cluster] = await Promise.all([options.getStatus(), options.getCluster()]);
      const r = healthCheck(ctx.head.command, ctx.path, ctx.query, status, cluster);
      if (r.body === 'none') writeStatusOnly(r.code);
      else writeResponse(r.code, statusBody(status), 'application/json');
    };
    const get = (run: (ctx: RequestContext) => Promise<void>): Route => ({
      unsafe: false,
      body: 'none',
      run,
    });
    const unsafe = (handler: ApiHandler | undefined, body: BodyMode): Route | undefined =>
      handler && {
        unsafe: true,
        body,
        run: async (ctx) =>
          reply(
            await handler({
              method: ctx.head.command,
              path: ctx.path,
              query: ctx.query,
              body: ctx.body ?? {},
              headers: ctx.head.headers,
              remoteAddress: socket.remoteAddress ?? '',
            }),
          ),
      };
    const h = options.handlers ?? {};
    const routeTable: Record<string, Route | undefined> = {
      GET: get(health),
      HEAD: get(health),
      OPTIONS: get(health),
      GET_liveness: get(health),
      GET_readiness: get(health),
      GET_patroni: get(async () =>
        writeResponse(200, statusBody(await options.getStatus()), 'application/json'),
      ),
      GET_cluster: get(async () => {
        const [status, cluster] = await Promise.all([
          options.getStatus(),
          (options.readCluster ?? options.getCluster)(),
        ]);
        if (!cluster) return sendError(503);
        const flavor = flavorFor(options.speaks ?? spokenVersion(status));
        writeResponse(200, pyJson(clusterViewJson(clusterView(cluster, flavor))), 'application/json');
      }),
      GET_history: get(async () => {
        const cluster = await options.getCluster();
        if (!cluster) return sendError(503);
        const lines = (cluster.history?.lines ?? []).map((l) => {
          const line: unknown[] = [l.timeline, l.lsn, l.reason];
          if (l.timestamp !== undefined || l.newLeader !== undefined) line.push(l.timestamp ?? null);
          if (l.newLeader !== undefined) line.push(l.newLeader);
          return line;
        });
        writeResponse(200, pyJson(lines), 'application/json');
      }),
      GET_config: get(async () => {
        const config = (await options.getCluster())?.config;
        if (!config) return sendError(502);
        writeResponse(200, pyJson(config.data), 'application/json');
      }),
      GET_metrics: options.getMetrics
        ? get(async () => writeResponse(200, await options.getMetrics!(), 'text/plain'))
        : undefined,
      GET_failsafe: get(async () => {
        const failsafe = options.getFailsafe
          ? await options.getFailsafe()
          : (await options.getCluster())?.failsafe;
        if (!failsafe) return sendError(502);
        writeResponse(200, pyJson(failsafe), 'application/json');
      }),
      POST_switchover: unsafe(h.switchover, 'required'),
      POST_failover: unsafe(h.failover, 'required'),
      POST_restart: unsafe(h.restart, 'optional'),
      POST_reload: unsafe(h.reload, 'none'),
      POST_reinitialize: unsafe(h.reinitialize, 'optional'),
      POST_failsafe: unsafe(h.failsafe, 'required'),
      PATCH_config: unsafe(h.patchConfig, 'required'),
      PUT_config: unsafe(h.putConfig, 'required'),
      DELETE_switchover: unsafe(h.deleteSwitchover, 'none'),
      DELETE_restart: unsafe(h.deleteRestart, 'none'),
    };
    const lookup = (name: string): Route | undefined =>
      Object.prototype.hasOwnProperty.call(routeTable, name) ? routeTable[name] : undefined;

    /** api.py `check_access`: true when the request may proceed (else the answer is written). */
    const checkAccess = (head: RequestHead): boolean => {
      if (options.isAllowed && !options.isAllowed(socket.remoteAddress ?? '')) {
        writeResponse(403, 'Access is denied');
        return false;
      }
      if (verifyClient === 'required' || verifyClient === 'optional') {
        const t = socket as tls.TLSSocket;
        const cert = typeof t.getPeerCertificate === 'function' ? t.getPeerCertificate() : undefined;
        if (!t.authorized || !cert || Object.keys(cert).length === 0) {
          writeResponse(403, 'client certificate required');
          return false;
        }
      }
      if (authKey) {
        const header = head.headers.get('authorization');
        const reason =
          header === undefined
            ? 'no auth header received'
            : !header.startsWith('Basic ') || !sameBytes(Buffer.from(header.slice(6), 'utf8'), authKey)
              ? 'not authenticated'
              : undefined;
        if (reason) {
          writeResponse(401, reason, 'text/html', { 'WWW-Authenticate': 'Basic realm="Patroni"' });
          return false;
        }
      }
      return true;
    };

    const readBody = async (head: RequestHead, mode: BodyMode): Promise<JsonObject | undefined> => {
      if (mode === 'none') return {};
      const lengthText = head.headers.get('content-length');
      if (lengthText === undefined) {
        if (mode === 'optional') return {};
        sendError(411);
        return undefined;
      }
      const length = pyInt(lengthText);
      if (length !== undefined && length === 0 && mode === 'optional') return {};
      if (length !== undefined && length <= MAX_BODY) {
        const bytes = await reader.read(length);
        try {
          const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
          const parsed: unknown = JSON.parse(text);
          if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
            const obj = parsed as JsonObject;
            if (Object.keys(obj).length > 0 || mode === 'optional') return obj;
          }
        } catch {
          // falls through to 400 as Patroni's bare `except`
        }
      }
      sendError(400);
      return undefined;
    };

    const readHead = async (): Promise<RequestHead | undefined> => {
      const raw = await reader.readline(MAX_LINE + 1);
      if (raw.length > MAX_LINE) throw new RequestError(414);
      if (raw.length === 0) return undefined;
      const requestLine = raw.toString('latin1').replace(/[\r\n]+$/, '');
      const words = pySplit(requestLine);
      if (words.length === 0) return undefined;
      if (words.length >= 3) {
        const v = words[words.length - 1] ?? '';
        const nums = v.startsWith('HTTP/') ? v.slice(5).split('.') : [];
        const major = nums.length === 2 ? pyInt(nums[0] ?? '') : undefined;
        const minor = nums.length === 2 ? pyInt(nums[1] ?? '') : undefined;
        if (major === undefined || minor === undefined)
          throw new RequestError(400, `Bad request version (${pyRepr(v)})`);
        if (major >= 2) throw new RequestError(505, `Invalid HTTP version (${v.slice(5)})`);
        version = v;
      }
      if (words.length < 2 || words.length > 3)
        throw new RequestError(400, `Bad request syntax (${pyRepr(requestLine)})`);
      const [cmd = '', target = ''] = words;
      if (words.length === 2 && cmd !== 'GET') {
        throw new RequestError(400, `Bad HTTP/0.9 request type (${pyRepr(cmd)})`);
      }
      command = cmd;
      // email.parser semantics: continuation lines extend the previous header; the first occurrence of a name wins.
      const fields: [string, string][] = [];
      for (;;) {
        const lineBuf = await reader.readline(MAX_LINE + 1);
        if (lineBuf.length > MAX_LINE) {
          throw new RequestError(
            431,
            'Line too long',
            `got more than ${MAX_LINE} bytes when reading header line`,
          );
        }
        const line = lineBuf.toString('latin1');
        if (line === '\r\n' || line === '\n' || line === '') break;
        if (fields.length + 1 > MAX_HEADERS) {
          throw new RequestError(431, 'Too many headers', `got more than ${MAX_HEADERS} headers`);
        }
        const text = line.replace(/[\r\n]+$/, '');
        const prev = fields[fields.length - 1];
        if (/^[ \t]/.test(text)) {
          if (prev) prev[1] += text;
          continue;
        }
        const colon = text.indexOf(':');
        if (colon > 0)
          fields.push([text.slice(0, colon).toLowerCase(), text.slice(colon + 1).replace(/^[ \t]+/, '')]);
      }
      const headers = new Map<string, string>();
      for (const [name, value] of fields) if (!headers.has(name)) headers.set(name, value);
      const reduced = target.startsWith('//') ? `/${target.replace(/^\/+/, '')}` : target;
      return { command: cmd, target: reduced, version, headers };
    };

    const serve = async (): Promise<void> => {
      try {
        const head = await readHead();
        if (!head) return;
        const { path, query } = splitTarget(head.target);
        const seg = firstSegment(path);
        const route = (seg ? lookup(`${head.command}_${seg}`) : undefined) ?? lookup(head.command);
        if (!route) {
          sendError(501, `Unsupported method (${pyRepr(head.command)})`);
          return;
        }
        const ctx: RequestContext = { head, path, query: parseQs(query) };
        if (route.unsafe && !checkAccess(head)) return;
        if (route.body !== 'none') {
          const body = await readBody(head, route.body);
          if (!body) return;
          ctx.body = body;
        }
        // The whole request is in: a handler may take long (POST /switchover polls, POST /restart waits).
        clearTimeout(timer);
        await route.run(ctx);
      } catch (e) {
        if (e instanceof RequestError) sendError(e.code, e.reason, e.explain);
        else {
          options.onError?.(e);
          if (chunks.length === 0) sendError(500);
        }
      }
    };

    serve()
      .catch(() => undefined)
      .finally(() => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (socket.destroyed) return;
        if (chunks.length > 0) socket.end(Buffer.concat(chunks));
        else socket.end();
      });
  };

  const server = options.tls
    ? tls.createServer(tlsContext(options.tls), handle)
    : net.createServer({ allowHalfOpen: true }, handle);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', () => undefined);
  const addr = server.address() as net.AddressInfo;

  return {
    host: addr.address,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

function tlsContext(t: TlsOptions): tls.TlsOptions {
  const verify = t.verifyClient ?? 'none';
  return {
    cert: readFileSync(t.certfile),
    key: readFileSync(t.keyfile ?? t.certfile),
    passphrase: t.keyfilePassword,
    ca: t.cafile ? readFileSync(t.cafile) : undefined,
    ciphers: t.ciphers,
    requestCert: verify !== 'none',
    rejectUnauthorized: verify === 'required',
    allowHalfOpen: true,
  };
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
