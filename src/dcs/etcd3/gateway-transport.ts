/**
 * The gateway's transport pieces: endpoint parsing, telling network failures (and whether a request may have been
 * applied) from etcd's answers, and splitting a streamed JSON response into objects.
 */
import { DcsError } from '../dcs.js';
import { errorText } from '../../model/text.js';
import type { JsonObject } from './gateway-wire.js';

export interface Endpoint {
  /** As configured, for messages. */
  readonly label: string;
  readonly https: boolean;
  readonly hostname: string;
  readonly port: number;
}

export function parseEndpoint(raw: string, protocol: 'http' | 'https'): Endpoint {
  const withScheme = /^[a-z]+:\/\//i.test(raw) ? raw : `${protocol}://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new DcsError(`invalid etcd3 endpoint '${raw}': expected host:port`);
  }
  const isHttps = url.protocol === 'https:';
  if (!isHttps && url.protocol !== 'http:')
    throw new DcsError(`invalid etcd3 endpoint '${raw}': use http or https`);
  return {
    label: raw,
    https: isHttps,
    hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? 2379 : Number(url.port),
  };
}

/** A failure worth trying the next endpoint for: connection problems, timeouts, gRPC Unavailable. */
export class NetworkError extends Error {}

/** Socket errors that mean the request never reached etcd (nothing can have been applied). */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Whether etcd may have applied a request whose socket failed with `cause` (a reset, a broken pipe). */
export function mayHaveApplied(cause: unknown): boolean {
  const code = (cause as { code?: unknown } | null)?.code;
  return !(typeof code === 'string' && NOT_SENT.has(code));
}

/** What a call learnt about its own attempts. */
export interface CallOutcome {
  /** An earlier attempt failed after etcd may have applied it: a failed compare may be our own write. */
  uncertain: boolean;
}

/** A NetworkError carrying whether the request may have been applied. */
export class SentNetworkError extends NetworkError {}

const NODE_ERRORS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connect timed out',
};

export function describeSocketError(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && NODE_ERRORS[code]) return NODE_ERRORS[code];
  return errorText(e);
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * An etcd error body: `{"error":"..","code":N,"message":".."}`, or as streams wrap it
 * `{"error":{"grpc_code":N,"http_code":N,"message":".."}}`.
 */
export function grpcErrorOf(body: unknown): { code: number; message: string } | undefined {
  if (!isObject(body) || body['error'] === undefined) return undefined;
  const err = body['error'];
  if (isObject(err)) {
    const code = typeof err['grpc_code'] === 'number' ? err['grpc_code'] : 2;
    return { code, message: typeof err['message'] === 'string' ? err['message'] : JSON.stringify(err) };
  }
  const code = typeof body['code'] === 'number' ? body['code'] : 2;
  const message =
    typeof body['message'] === 'string' && body['message'] !== ''
      ? body['message']
      : typeof err === 'string'
        ? err
        : JSON.stringify(err);
  return { code, message };
}

/** Inside a string: the next quote or backslash. */
const IN_STRING = /["\\]/g;
/** Outside strings: the next quote or brace. */
const OUTSIDE = /["{}]/g;

/**
 * Splits a stream of concatenated JSON objects (newline-delimited or not) into whole objects. It jumps from one
 * character that matters to the next with a regular expression rather than stepping through every character in
 * JavaScript: the agent runs without V8's compilers, and a watch event's base64 values are long.
 */
export class JsonObjectSplitter {
  private buf = '';
  private pos = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;

  push(chunk: string): string[] {
    this.buf += chunk;
    const out: string[] = [];
    while (this.pos < this.buf.length) {
      if (this.escaped) {
        this.escaped = false;
        this.pos++;
        continue;
      }
      const re = this.inString ? IN_STRING : OUTSIDE;
      re.lastIndex = this.pos;
      const m = re.exec(this.buf);
      if (m === null) {
        this.pos = this.buf.length;
        break;
      }
      this.pos = m.index;
      const ch = m[0];
      if (this.inString) {
        if (ch === '\\') this.escaped = true;
        else this.inString = false;
      } else if (ch === '"') this.inString = true;
      else if (ch === '{') {
        if (this.depth++ === 0) this.start = this.pos;
      } else if (this.depth > 0 && --this.depth === 0) {
        out.push(this.buf.slice(this.start, this.pos + 1));
        this.buf = this.buf.slice(this.pos + 1);
        this.pos = -1;
        this.start = -1;
      }
      this.pos++;
    }
    if (this.depth === 0) {
      // Only whitespace/delimiters left: drop them so the buffer does not grow.
      this.buf = '';
      this.pos = 0;
    }
    return out;
  }
}
