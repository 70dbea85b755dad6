/**
 * What the REST API says on the wire, Patroni's way: Python http.server's reason phrases and HTML error pages,
 * `write_response` (Server, Date, extra headers, Content-Type) and the bare status of health checks, written on a
 * node:http response. Framing (HTTP/1.1 status line, Content-Length, `Connection: close`) is node's: clients read
 * status codes, the headers that matter and bodies, not Python's byte layout.
 */
import type { ServerResponse } from 'node:http';
import { pyJson } from '../model/pyjson.js';
import type { QueryParams } from './health.js';
import type { ApiReply, ErrorReply, JsonReply } from './types.js';

/** `BaseHTTPRequestHandler.responses`: [reason phrase, explanation]. */
const RESPONSES: ReadonlyMap<number, readonly [string, string]> = new Map<number, readonly [string, string]>([
  [200, ['OK', 'Request fulfilled, document follows']],
  [201, ['Created', 'Document created, URL follows']],
  [202, ['Accepted', 'Request accepted, processing continues off-line']],
  [204, ['No Content', 'Request fulfilled, nothing follows']],
  [400, ['Bad Request', 'Bad request syntax or unsupported method']],
  [401, ['Unauthorized', 'No permission -- see authorization schemes']],
  [403, ['Forbidden', 'Request forbidden -- authorization will not help']],
  [404, ['Not Found', 'Nothing matches the given URI']],
  [408, ['Request Timeout', 'Request timed out; try again later']],
  [409, ['Conflict', 'Request conflict']],
  [411, ['Length Required', 'Client must specify Content-Length']],
  [412, ['Precondition Failed', 'Precondition in headers is false']],
  [413, ['Request Entity Too Large', 'Entity is too large']],
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
  [505, ['HTTP Version Not Supported', 'Cannot fulfill request']],
]);

export const reasonPhrase = (code: number): string => RESPONSES.get(code)?.[0] ?? 'Unknown';

export const errorPage = (code: number, message: string, explain: string): string =>
  '<!DOCTYPE HTML>\n<html lang="en">\n    <head>\n        <meta charset="utf-8">\n' +
  '        <title>Error response</title>\n    </head>\n    <body>\n        <h1>Error response</h1>\n' +
  `        <p>Error code: ${code}</p>\n        <p>Message: ${message}.</p>\n` +
  `        <p>Error code explanation: ${code} - ${explain}.</p>\n    </body>\n</html>\n`;

const htmlEscape = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Python `repr()` of a short ASCII-ish str, for messages such as `Unsupported method ('PUT')`. */
export function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '\\' || ch === quote) out += `\\${ch}`;
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
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
  let rest = target.startsWith('//') ? `/${target.replace(/^\/+/, '')}` : target;
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

const isErrorReply = (r: ApiReply): r is ErrorReply => 'error' in r;
const isJsonReply = (r: ApiReply): r is JsonReply => 'json' in r;

/** How one response is written; `sent` once anything was. */
export interface Responder {
  /** Patroni's `write_response`: Server, Date, `headers`, Content-Type, extra headers, body. */
  text(code: number, body: string, contentType?: string, headers?: Readonly<Record<string, string>>): void;
  /** A health check's bare status (HEAD/OPTIONS, probes without a body). */
  statusOnly(code: number): void;
  /** Python's `send_error`: the HTML error page. */
  error(code: number, message?: string, explain?: string): void;
  reply(r: ApiReply): void;
  readonly sent: boolean;
}

export interface ResponderSettings {
  readonly serverHeader: string;
  readonly extraHeaders: Readonly<Record<string, string>>;
  readonly now: () => number;
}

/** A reason phrase node accepts (no control characters). */
const safeReason = (s: string): string => s.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?');

export function responder(res: ServerResponse, settings: ResponderSettings): Responder {
  let sent = false;
  const finish = (
    code: number,
    reason: string,
    headers: readonly (readonly [string, string])[],
    body: string,
  ): void => {
    if (sent || res.headersSent) return;
    sent = true;
    const bytes = Buffer.from(body, 'utf8');
    res.statusCode = code;
    res.statusMessage = safeReason(reason);
    for (const [k, v] of headers) res.setHeader(k, v);
    // Patroni answers one request per connection; so do we (no idle keep-alive sockets to hold).
    res.setHeader('Connection', 'close');
    res.setHeader('Content-Length', bytes.length);
    res.end(bytes);
  };
  const common = (): [string, string][] => [
    ['Server', settings.serverHeader],
    ['Date', new Date(settings.now()).toUTCString()],
  ];
  const self: Responder = {
    text(code, body, contentType = 'text/html', headers = {}) {
      finish(
        code,
        reasonPhrase(code),
        [
          ...common(),
          ...Object.entries(headers),
          ['Content-Type', contentType],
          ...Object.entries(settings.extraHeaders),
        ],
        body,
      );
    },
    statusOnly(code) {
      finish(code, reasonPhrase(code), [], '');
    },
    error(code, message, explain) {
      const [short, long] = RESPONSES.get(code) ?? ['???', '???'];
      const msg = message ?? short;
      finish(
        code,
        msg,
        [...common(), ['Content-Type', 'text/html;charset=utf-8']],
        errorPage(code, htmlEscape(msg), htmlEscape(explain ?? long)),
      );
    },
    reply(r) {
      if (isErrorReply(r)) self.error(r.error, r.message);
      else if (isJsonReply(r)) self.text(r.code, pyJson(r.json), 'application/json');
      else self.text(r.code, r.body, r.contentType ?? 'text/html', r.headers ?? {});
    },
    get sent() {
      return sent || res.headersSent;
    },
  };
  return self;
}
