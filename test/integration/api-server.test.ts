/**
 * The REST API server on the wire: raw bytes over `net` sockets on 127.0.0.1, compared with Patroni 3.0.2's
 * captured responses and with Python http.server's framing.
 */
import { connect } from 'node:net';
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiRequest, type ApiServer } from '../../src/api/server.js';
import { statusFromJson, type AgentStatus } from '../../src/api/status.js';
import { clusterFromNodes } from '../../src/dcs/codec.js';
import type { Cluster, JsonObject } from '../../src/model/cluster.js';
import { fixturePath, loadDcsSnapshot, readFixture } from '../helpers/fixtures.js';

const CAPTURES = readdirSync(fixturePath('rest')).sort();
type Role = 'leader' | 'replica';

/** The Date header of a capture, so our headers can be compared byte for byte. */
function capturedDate(capture: string, role: Role, endpoint: string): number {
  const m = /\r\nDate: ([^\r]+)\r\n/.exec(readFixture('rest', capture, role, `${endpoint}.headers`));
  return Date.parse(m?.[1] ?? '');
}

function statusOf(capture: string, role: Role, at: number, file = 'patroni.body'): AgentStatus {
  const doc = JSON.parse(readFixture('rest', capture, role, file)) as JsonObject;
  return statusFromJson(doc, {
    at,
    postmasterRunning: true,
    leaderLockUntil: role === 'leader' ? at + 30_000 : undefined,
    standbyCluster: false,
    nextRunAt: at,
    ttl: 30,
    maximumLagOnFailover: 1048576,
  });
}

function clusterOf(capture: string): Cluster {
  const snap = loadDcsSnapshot(capture);
  return clusterFromNodes(snap.scope, snap.nodes);
}

/** What the callbacks serve; tests switch it. */
const current = {
  capture: 'etcd',
  role: 'leader' as Role,
  now: capturedDate('etcd', 'leader', 'patroni'),
  cluster: clusterOf('etcd') as Cluster | undefined,
  /** The captured status document the node answers with. */
  statusFile: 'patroni.body',
};
const calls: ApiRequest[] = [];

let server: ApiServer;

beforeAll(async () => {
  server = await startApiServer({
    listen: '127.0.0.1:0',
    auth: { username: 'admin', password: 's3cret' },
    now: () => current.now,
    getStatus: () => statusOf(current.capture, current.role, current.now, current.statusFile),
    getCluster: () => current.cluster,
    handlers: {
      switchover: (req) => {
        calls.push(req);
        return { code: 200, body: 'Successfully switched over to "pg1"' };
      },
      restart: async (req) => {
        calls.push(req);
        return { code: 503, body: 'restart conditions are not satisfied' };
      },
      patchConfig: (req) => ({ code: 200, json: { ...req.body, ttl: 30 } }),
      deleteSwitchover: () => ({ error: 409 }),
      reload: () => {
        throw new Error('boom');
      },
    },
  });
});

afterAll(async () => {
  await server.close();
});

/** Sends raw bytes, half-closes, and returns everything the server wrote until it closed. */
function raw(request: string | Buffer, halfClose = true): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect({ host: '127.0.0.1', port: server.port, allowHalfOpen: true }, () => {
      s.write(request);
      if (halfClose) s.end();
    });
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
}
const send = async (request: string): Promise<string> => (await raw(request)).toString('utf8');
const basic = (user: string, pass: string): string => Buffer.from(`${user}:${pass}`).toString('base64');
const AUTH = `Authorization: Basic ${basic('admin', 's3cret')}\r\n`;

function use(capture: string, role: Role, endpoint = 'patroni'): void {
  current.capture = capture;
  current.role = role;
  current.cluster = clusterOf(capture);
  current.now = capturedDate(capture, role, endpoint);
  current.statusFile = 'patroni.body';
}

describe('normal responses are byte-identical to Patroni 3.0.2', () => {
  describe.each(CAPTURES)('%s', (capture) => {
    it.each(['leader', 'replica'] as const)('GET /patroni on the %s', async (role) => {
      use(capture, role);
      const out = await send('GET /patroni HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(out).toBe(
        readFixture('rest', capture, role, 'patroni.headers') +
          readFixture('rest', capture, role, 'patroni.body'),
      );
    });

    it.each(['cluster', 'history', 'config'])('GET /%s', async (endpoint) => {
      use(capture, 'leader', endpoint);
      const out = await send(`GET /${endpoint} HTTP/1.0\r\n\r\n`);
      expect(out).toBe(
        readFixture('rest', capture, 'leader', `${endpoint}.headers`) +
          readFixture('rest', capture, 'leader', `${endpoint}.body`),
      );
    });

    it('GET /failsafe (failsafe mode off): the 502 error page', async () => {
      use(capture, 'replica', 'failsafe');
      const out = await send('GET /failsafe HTTP/1.0\r\n\r\n');
      expect(out).toBe(
        readFixture('rest', capture, 'replica', 'failsafe.headers') +
          readFixture('rest', capture, 'replica', 'failsafe.body'),
      );
    });
  });
});

describe('status codes and content types of every captured request', () => {
  const rows = CAPTURES.flatMap((capture) =>
    readFixture('rest', capture, 'status-codes.tsv')
      .split('\n')
      .slice(1)
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const [role, , method, path, status, contentType] = l.split('\t');
        return { capture, role: role as Role, method: method ?? '', path: path ?? '', status, contentType };
      })
      // /metrics is not served by this server (no getMetrics given): it would be an ordinary health check.
      .filter((r) => r.path !== '/metrics'),
  );
  it.each(rows.map((r) => [`${r.capture} ${r.role} ${r.method} ${r.path}`, r] as const))(
    '%s',
    async (_n, r) => {
      use(r.capture, r.role);
      // The node's state when it answered: that request's captured status document, where there is one.
      const file = `${r.path === '/' ? 'root' : r.path.slice(1)}.body`;
      const captured = readdirSync(fixturePath('rest', r.capture, r.role)).includes(file)
        ? readFixture('rest', r.capture, r.role, file)
        : '';
      if (r.method === 'GET' && captured.startsWith('{"state": ')) current.statusFile = file;
      const out = await send(`${r.method} ${r.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      const [head = '', body = ''] = out.split('\r\n\r\n');
      expect(head.split(' ')[1]).toBe(r.status);
      const type = /\r\nContent-Type: ([^\r]*)/.exec(head)?.[1] ?? '';
      expect(type).toBe(r.contentType ?? '');
      if (type === '') expect(out).toMatch(/^HTTP\/1\.0 (200 OK|503 Service Unavailable)\r\n\r\n$/);
      if (type === 'application/json') {
        expect(head).not.toMatch(/content-length/i);
        expect(() => JSON.parse(body) as unknown).not.toThrow();
      }
    },
  );
});

describe('wire shapes', () => {
  beforeAll(() => use('etcd', 'leader'));

  it('HEAD and OPTIONS answer with a bare status line', async () => {
    expect(await send('HEAD /primary HTTP/1.0\r\n\r\n')).toBe('HTTP/1.0 200 OK\r\n\r\n');
    expect(await send('OPTIONS /replica HTTP/1.1\r\n\r\n')).toBe('HTTP/1.0 503 Service Unavailable\r\n\r\n');
    expect(await send('HEAD / HTTP/1.1\r\n\r\n')).toBe('HTTP/1.0 200 OK\r\n\r\n');
  });

  it('HEAD /patroni and HEAD /liveness are health checks on those paths (503)', async () => {
    expect(await send('HEAD /patroni HTTP/1.0\r\n\r\n')).toBe('HTTP/1.0 503 Service Unavailable\r\n\r\n');
    expect(await send('HEAD /liveness HTTP/1.0\r\n\r\n')).toBe('HTTP/1.0 503 Service Unavailable\r\n\r\n');
    expect(await send('GET /liveness HTTP/1.0\r\n\r\n')).toBe('HTTP/1.0 200 OK\r\n\r\n');
    expect(await send('GET /readiness?lag=1MB HTTP/1.0\r\n\r\n')).toBe('HTTP/1.0 200 OK\r\n\r\n');
  });

  it('unknown GET paths are health checks: 503 with the status document, no Content-Length', async () => {
    const out = await send('GET /nonexist/abc HTTP/1.1\r\n\r\n');
    expect(out).toBe(
      'HTTP/1.0 503 Service Unavailable\r\nServer: BaseHTTP/0.6 Python/3.11.2\r\n' +
        `Date: ${new Date(current.now).toUTCString()}\r\nContent-Type: application/json\r\n\r\n` +
        readFixture('rest', 'etcd', 'leader', 'patroni.body'),
    );
  });

  it('GET /patroni/anything is /patroni; query strings are ignored by routing', async () => {
    expect(await send('GET /patroni/x?y=1 HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.0 200 OK\r\n/);
    expect(await send('GET //patroni HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.0 200 OK\r\n/);
    expect(await send('GET http://h:1/patroni HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.0 200 OK\r\n/);
  });

  it('an HTTP/0.9 request gets the body alone', async () => {
    expect(await send('GET /patroni\r\n')).toBe(readFixture('rest', 'etcd', 'leader', 'patroni.body'));
  });

  it('501 Unsupported method, as Python http.server writes it', async () => {
    const out = await send('PUT /patroni HTTP/1.0\r\n\r\n');
    expect(out).toBe(
      "HTTP/1.0 501 Unsupported method ('PUT')\r\nServer: BaseHTTP/0.6 Python/3.11.2\r\n" +
        `Date: ${new Date(current.now).toUTCString()}\r\nConnection: close\r\n` +
        'Content-Type: text/html;charset=utf-8\r\nContent-Length: 356\r\n\r\n' +
        '<!DOCTYPE HTML>\n<html lang="en">\n    <head>\n        <meta charset="utf-8">\n' +
        '        <title>Error response</title>\n    </head>\n    <body>\n        <h1>Error response</h1>\n' +
        "        <p>Error code: 501</p>\n        <p>Message: Unsupported method ('PUT').</p>\n" +
        '        <p>Error code explanation: 501 - Server does not support this operation.</p>\n' +
        '    </body>\n</html>\n',
    );
    expect(await send('get /patroni HTTP/1.0\r\n\r\n')).toMatch(
      /^HTTP\/1\.0 501 Unsupported method \('get'\)\r\n/,
    );
    expect(await send('DELETE /cluster HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.0 501 /);
    // no handler given for POST /reinitialize: not routed
    expect(await send(`POST /reinitialize HTTP/1.0\r\n${AUTH}\r\n`)).toMatch(/^HTTP\/1\.0 501 /);
  });
});

describe('malformed requests get 4xx and the server keeps answering', () => {
  const page = (code: number, message: string, explain: string): string =>
    '<!DOCTYPE HTML>\n<html lang="en">\n    <head>\n        <meta charset="utf-8">\n' +
    '        <title>Error response</title>\n    </head>\n    <body>\n        <h1>Error response</h1>\n' +
    `        <p>Error code: ${code}</p>\n        <p>Message: ${message}.</p>\n` +
    `        <p>Error code explanation: ${code} - ${explain}.</p>\n    </body>\n</html>\n`;
  const BAD = 'Bad request syntax or unsupported method';

  it('an unparsable version or a one-word line: the error page without a status line (Python 0.9 mode)', async () => {
    expect(await send('GARBAGE\r\n\r\n')).toBe(page(400, "Bad request syntax ('GARBAGE')", BAD));
    expect(await send('GET / HTTP/x.y\r\n\r\n')).toBe(page(400, "Bad request version ('HTTP/x.y')", BAD));
    expect(await send('POST /x\r\n\r\n')).toBe(page(400, "Bad HTTP/0.9 request type ('POST')", BAD));
    expect(await send('GET / HTTP/2.0\r\n\r\n')).toBe(
      page(505, 'Invalid HTTP version (2.0)', 'Cannot fulfill request'),
    );
  });

  it('too many words with a valid version: a full 400 response', async () => {
    const out = await send('GET / junk HTTP/1.0\r\n\r\n');
    expect(out).toMatch(/^HTTP\/1\.0 400 Bad request syntax \('GET \/ junk HTTP\/1\.0'\)\r\n/);
    expect(out).toContain(
      '\r\nConnection: close\r\nContent-Type: text/html;charset=utf-8\r\nContent-Length: 374\r\n',
    );
    expect(out.endsWith(page(400, "Bad request syntax ('GET / junk HTTP/1.0')", BAD))).toBe(true);
  });

  it('escapes the request line like Python repr + html.escape', async () => {
    const out = await raw(Buffer.from('GET /<a>\'"\x01\xe9 x HTTP/1.0\r\n\r\n', 'latin1'));
    expect(out.toString('utf8')).toContain(
      "<p>Message: Bad request syntax ('GET /&lt;a&gt;\\'\"\\x01\u00e9 x HTTP/1.0').</p>",
    );
  });

  it('empty and binary input, oversize lines, too many headers', async () => {
    expect(await send('')).toBe('');
    expect(await send('\r\n')).toBe('');
    expect(await send('\x00\x01\x02\xff\r\n\r\n')).toContain('Error code: 400');
    const long = await send(`GET /${'a'.repeat(70_000)} HTTP/1.0\r\n\r\n`);
    expect(long).toContain('<p>Error code: 414</p>');
    const bigHeader = await send(`GET / HTTP/1.0\r\nX: ${'a'.repeat(70_000)}\r\n\r\n`);
    expect(bigHeader).toMatch(/^HTTP\/1\.0 431 Line too long\r\n/);
    const many = await send(`GET / HTTP/1.0\r\n${'X: y\r\n'.repeat(101)}\r\n`);
    expect(many).toMatch(/^HTTP\/1\.0 431 Too many headers\r\n/);
  });

  it('a client that disconnects mid-request does not hurt', async () => {
    await raw('GET /pat', true);
    await raw(`POST /switchover HTTP/1.0\r\n${AUTH}Content-Length: 100\r\n\r\n{"leader"`, true);
    expect(await send('GET /patroni HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.0 200 OK\r\n/);
  });
});

describe('unsafe endpoints: access control and bodies', () => {
  beforeAll(() => use('etcd', 'leader'));

  it('401 without or with wrong credentials, with WWW-Authenticate', async () => {
    const date = new Date(current.now).toUTCString();
    const prefix = `HTTP/1.0 401 Unauthorized\r\nServer: BaseHTTP/0.6 Python/3.11.2\r\nDate: ${date}\r\n`;
    const headers = 'WWW-Authenticate: Basic realm="Patroni"\r\nContent-Type: text/html\r\n\r\n';
    const body = '{"leader": "pg2"}';
    const post = (auth: string): Promise<string> =>
      send(`POST /switchover HTTP/1.0\r\n${auth}Content-Length: ${body.length}\r\n\r\n${body}`);
    expect(await post('')).toBe(`${prefix}${headers}no auth header received`);
    expect(await post(`Authorization: Basic ${basic('admin', 'nope')}\r\n`)).toBe(
      `${prefix}${headers}not authenticated`,
    );
    expect(await post(`Authorization: Bearer ${basic('admin', 's3cret')}\r\n`)).toBe(
      `${prefix}${headers}not authenticated`,
    );
    expect(await send('DELETE /switchover HTTP/1.0\r\n\r\n')).toContain('no auth header received');
    expect(calls).toHaveLength(0);
  });

  it('valid credentials reach the handler with the parsed body', async () => {
    const body = '{"leader": "pg2", "candidate": "pg1"}';
    const out = await send(
      `POST /switchover?x=1 HTTP/1.1\r\nauthorization: Basic ${basic('admin', 's3cret')}\r\n` +
        `Content-Length: ${body.length}\r\n\r\n${body}`,
    );
    expect(out).toBe(
      `HTTP/1.0 200 OK\r\nServer: BaseHTTP/0.6 Python/3.11.2\r\nDate: ${new Date(current.now).toUTCString()}\r\n` +
        'Content-Type: text/html\r\n\r\nSuccessfully switched over to "pg1"',
    );
    const call = calls.pop();
    expect(call?.body).toEqual({ leader: 'pg2', candidate: 'pg1' });
    expect(call?.path).toBe('/switchover');
    expect(call?.query).toEqual({ x: ['1'] });
    expect(call?.remoteAddress).toBe('127.0.0.1');
  });

  it('required bodies: 411 without Content-Length, 400 for bad, empty or non-object JSON', async () => {
    const post = (extra: string): Promise<string> => send(`POST /switchover HTTP/1.0\r\n${AUTH}${extra}`);
    expect(await post('\r\n')).toMatch(/^HTTP\/1\.0 411 Length Required\r\n/);
    for (const body of ['{}', '[1]', '{bad', '"x"', '']) {
      expect(await post(`Content-Length: ${body.length}\r\n\r\n${body}`)).toMatch(
        /^HTTP\/1\.0 400 Bad Request\r\n/,
      );
    }
    expect(await post('Content-Length: abc\r\n\r\n')).toMatch(/^HTTP\/1\.0 400 Bad Request\r\n/);
    expect(calls).toHaveLength(0);
  });

  it('optional bodies: none or length 0 is {}', async () => {
    expect(await send(`POST /restart HTTP/1.0\r\n${AUTH}\r\n`)).toMatch(
      /\r\n\r\nrestart conditions are not satisfied$/,
    );
    expect(await send(`POST /restart HTTP/1.0\r\n${AUTH}Content-Length: 0\r\n\r\n`)).toMatch(
      /^HTTP\/1\.0 503 /,
    );
    expect(await send(`POST /restart HTTP/1.0\r\n${AUTH}Content-Length: 2\r\n\r\n{}`)).toMatch(
      /^HTTP\/1\.0 503 /,
    );
    expect(calls.splice(0).map((c) => c.body)).toEqual([{}, {}, {}]);
  });

  it('JSON replies, send_error replies, and a throwing handler', async () => {
    const body = '{"pause": true}';
    const patched = await send(
      `PATCH /config HTTP/1.0\r\n${AUTH}Content-Length: ${body.length}\r\n\r\n${body}`,
    );
    expect(patched).toMatch(/Content-Type: application\/json\r\n\r\n\{"pause": true, "ttl": 30\}$/);
    expect(await send(`DELETE /switchover HTTP/1.0\r\n${AUTH}\r\n`)).toMatch(
      /^HTTP\/1\.0 409 Conflict\r\n[^]*Connection: close\r\n[^]*<p>Error code: 409<\/p>/,
    );
    expect(await send(`POST /reload HTTP/1.0\r\n${AUTH}\r\n`)).toMatch(
      /^HTTP\/1\.0 500 Internal Server Error\r\n/,
    );
    expect(await send('GET /patroni HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.0 200 OK\r\n/);
  });

  it('GET endpoints never ask for credentials', async () => {
    expect(await send('GET /config HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.0 200 OK\r\n/);
  });
});

describe('without a DCS view', () => {
  it('/config is 502, /cluster and /history 503, health checks still answer', async () => {
    use('etcd', 'replica');
    current.cluster = undefined;
    expect(await send('GET /config HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.0 502 Bad Gateway\r\n/);
    expect(await send('GET /cluster HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.0 503 Service Unavailable\r\n/);
    expect(await send('GET /history HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.0 503 /);
    expect(await send('GET /replica HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.0 200 OK\r\n/);
    expect(await send('GET /readiness HTTP/1.0\r\n\r\n')).toBe('HTTP/1.0 503 Service Unavailable\r\n\r\n');
    expect(await send('GET /async HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.0 503 /);
  });
});

describe('options: Server header, extra headers, no authentication', () => {
  let plain: ApiServer | undefined;
  beforeAll(async () => {
    use('etcd', 'replica');
    plain = await startApiServer({
      listen: '127.0.0.1:0',
      serverTokens: 'Patroni',
      extraHeaders: { 'X-Frame-Options': 'SAMEORIGIN' },
      now: () => current.now,
      getStatus: () => statusOf('etcd', 'replica', current.now),
      getCluster: () => clusterOf('etcd'),
      handlers: { reload: () => ({ code: 202, body: 'reload scheduled' }) },
    });
  });
  afterAll(async () => {
    await plain?.close();
  });

  it('writes them in Patroni order and needs no credentials without `auth`', async () => {
    const date = new Date(current.now).toUTCString();
    const ask = (req: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        const s = connect({ host: '127.0.0.1', port: plain?.port ?? 0 }, () => s.end(req));
        s.on('data', (d: Buffer) => chunks.push(d));
        s.on('error', reject);
        s.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
      });
    expect(await ask('POST /reload HTTP/1.0\r\n\r\n')).toBe(
      `HTTP/1.0 202 Accepted\r\nServer: Patroni\r\nDate: ${date}\r\nContent-Type: text/html\r\n` +
        'X-Frame-Options: SAMEORIGIN\r\n\r\nreload scheduled',
    );
    expect(await ask('HEAD /replica HTTP/1.0\r\n\r\n')).toBe('HTTP/1.0 200 OK\r\n\r\n');
  });
});
