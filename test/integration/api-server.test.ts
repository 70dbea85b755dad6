/**
 * The REST API server on the wire: raw requests over `net` sockets on 127.0.0.1, answers compared with Patroni
 * 3.0.2's captured responses (status, the headers clients read, body).
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

interface Answer {
  readonly status: number;
  readonly reason: string;
  readonly headers: ReadonlyMap<string, string>;
  readonly body: string;
}

/** Sends raw bytes, half-closes, and reads everything the server wrote until it closed. */
function raw(request: string | Buffer, port = server.port): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => {
      s.write(request);
      s.end();
    });
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

/** An HTTP/1.x response split into status, headers (lower-cased names) and body. */
function parseAnswer(text: string): Answer {
  const split = text.indexOf('\r\n\r\n');
  const head = split === -1 ? text : text.slice(0, split);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return {
    status: Number(m?.[1] ?? 0),
    reason: m?.[2] ?? '',
    headers,
    body: split === -1 ? '' : text.slice(split + 4),
  };
}

const send = async (request: string, port?: number): Promise<Answer> =>
  parseAnswer((await raw(request, port)).toString('utf8'));
const basic = (user: string, pass: string): string => Buffer.from(`${user}:${pass}`).toString('base64');
const AUTH = `Authorization: Basic ${basic('admin', 's3cret')}\r\n`;

function use(capture: string, role: Role, endpoint = 'patroni'): void {
  current.capture = capture;
  current.role = role;
  current.cluster = clusterOf(capture);
  current.now = capturedDate(capture, role, endpoint);
  current.statusFile = 'patroni.body';
}

/** What a client reads of a captured Patroni answer: status, Server, Date, Content-Type and the body. */
function expectSameAs(out: Answer, capture: string, role: Role, endpoint: string): void {
  const want = parseAnswer(readFixture('rest', capture, role, `${endpoint}.headers`));
  expect(out.status).toBe(want.status);
  for (const name of ['server', 'date', 'content-type', 'www-authenticate']) {
    expect(out.headers.get(name), name).toBe(want.headers.get(name));
  }
  expect(out.body).toBe(readFixture('rest', capture, role, `${endpoint}.body`));
  expect(out.headers.get('connection')).toBe('close');
  expect(out.headers.get('content-length')).toBe(String(Buffer.byteLength(out.body)));
}

describe('normal responses carry what Patroni 3.0.2 sends', () => {
  describe.each(CAPTURES)('%s', (capture) => {
    it.each(['leader', 'replica'] as const)('GET /patroni on the %s', async (role) => {
      use(capture, role);
      expectSameAs(await send('GET /patroni HTTP/1.1\r\nHost: x\r\n\r\n'), capture, role, 'patroni');
    });

    it.each(['cluster', 'history', 'config'])('GET /%s', async (endpoint) => {
      use(capture, 'leader', endpoint);
      expectSameAs(await send(`GET /${endpoint} HTTP/1.0\r\n\r\n`), capture, 'leader', endpoint);
    });

    it('GET /failsafe (failsafe mode off): the 502 error page', async () => {
      use(capture, 'replica', 'failsafe');
      expectSameAs(await send('GET /failsafe HTTP/1.0\r\n\r\n'), capture, 'replica', 'failsafe');
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
      expect(String(out.status)).toBe(r.status);
      expect(out.headers.get('content-type') ?? '').toBe(r.contentType ?? '');
      if (r.contentType === 'application/json') expect(() => JSON.parse(out.body) as unknown).not.toThrow();
      if (!r.contentType) expect(out.body).toBe('');
    },
  );
});

describe('routing', () => {
  beforeAll(() => use('etcd', 'leader'));

  it('HEAD and OPTIONS answer with the status alone', async () => {
    for (const [req, status] of [
      ['HEAD /primary HTTP/1.0', 200],
      ['OPTIONS /replica HTTP/1.1', 503],
      ['HEAD / HTTP/1.1', 200],
    ] as const) {
      const out = await send(`${req}\r\n\r\n`);
      expect(out.status, req).toBe(status);
      expect(out.body).toBe('');
      expect(out.headers.has('content-type')).toBe(false);
    }
  });

  it('HEAD /patroni and HEAD /liveness are health checks on those paths (503)', async () => {
    expect((await send('HEAD /patroni HTTP/1.0\r\n\r\n')).status).toBe(503);
    expect((await send('HEAD /liveness HTTP/1.0\r\n\r\n')).status).toBe(503);
    expect((await send('GET /liveness HTTP/1.0\r\n\r\n')).status).toBe(200);
    const ready = await send('GET /readiness?lag=1MB HTTP/1.0\r\n\r\n');
    expect([ready.status, ready.body]).toEqual([200, '']);
  });

  it('unknown GET paths are health checks: 503 with the status document', async () => {
    const out = await send('GET /nonexist/abc HTTP/1.1\r\n\r\n');
    expect(out.status).toBe(503);
    expect(out.headers.get('content-type')).toBe('application/json');
    expect(out.body).toBe(readFixture('rest', 'etcd', 'leader', 'patroni.body'));
  });

  it('GET /patroni/anything is /patroni; query strings are ignored by routing', async () => {
    expect((await send('GET /patroni/x?y=1 HTTP/1.0\r\n\r\n')).status).toBe(200);
    expect((await send('GET //patroni HTTP/1.0\r\n\r\n')).status).toBe(200);
    expect((await send('GET http://h:1/patroni HTTP/1.0\r\n\r\n')).status).toBe(200);
  });

  it("501 Unsupported method, with Python's error page", async () => {
    const out = await send('PUT /patroni HTTP/1.0\r\n\r\n');
    expect(out.status).toBe(501);
    expect(out.reason).toBe("Unsupported method ('PUT')");
    expect(out.headers.get('content-type')).toBe('text/html;charset=utf-8');
    expect(out.body).toContain("<p>Message: Unsupported method ('PUT').</p>");
    expect((await send('DELETE /cluster HTTP/1.0\r\n\r\n')).status).toBe(501);
    // no handler given for POST /reinitialize: not routed
    expect((await send(`POST /reinitialize HTTP/1.0\r\n${AUTH}\r\n`)).status).toBe(501);
  });
});

describe('malformed requests get 4xx and the server keeps answering', () => {
  it('garbage, a lower-case method, HTTP/0.9, unknown versions: 400; HTTP/2 in text: 505', async () => {
    for (const req of [
      'GARBAGE\r\n\r\n',
      'get /patroni HTTP/1.0\r\n\r\n',
      'GET /patroni\r\n',
      'GET / HTTP/x.y\r\n\r\n',
    ]) {
      expect((await send(req)).status, JSON.stringify(req)).toBe(400);
    }
    expect((await send('GET / HTTP/2.0\r\n\r\n')).status).toBe(505);
    expect((await send('\x00\x01\x02\xff\r\n\r\n')).status).toBe(400);
  });

  it('empty input, oversize headers', async () => {
    expect((await raw('')).length).toBe(0);
    expect((await send(`GET /${'a'.repeat(70_000)} HTTP/1.0\r\n\r\n`)).status).toBe(431);
    expect((await send(`GET / HTTP/1.0\r\nX: ${'a'.repeat(70_000)}\r\n\r\n`)).status).toBe(431);
  });

  it('a client that disconnects mid-request does not hurt', async () => {
    await raw('GET /pat');
    await raw(`POST /switchover HTTP/1.0\r\n${AUTH}Content-Length: 100\r\n\r\n{"leader"`);
    expect((await send('GET /patroni HTTP/1.0\r\n\r\n')).status).toBe(200);
    expect(calls).toHaveLength(0);
  });
});

describe('unsafe endpoints: access control and bodies', () => {
  beforeAll(() => use('etcd', 'leader'));

  it('401 without or with wrong credentials, with WWW-Authenticate', async () => {
    const body = '{"leader": "pg2"}';
    const post = (auth: string): Promise<Answer> =>
      send(`POST /switchover HTTP/1.0\r\n${auth}Content-Length: ${body.length}\r\n\r\n${body}`);
    for (const [auth, message] of [
      ['', 'no auth header received'],
      [`Authorization: Basic ${basic('admin', 'nope')}\r\n`, 'not authenticated'],
      [`Authorization: Bearer ${basic('admin', 's3cret')}\r\n`, 'not authenticated'],
    ] as const) {
      const out = await post(auth);
      expect([out.status, out.body]).toEqual([401, message]);
      expect(out.headers.get('www-authenticate')).toBe('Basic realm="Patroni"');
      expect(out.headers.get('content-type')).toBe('text/html');
      expect(out.headers.get('server')).toBe('BaseHTTP/0.6 Python/3.11.2');
    }
    expect((await send('DELETE /switchover HTTP/1.0\r\n\r\n')).body).toBe('no auth header received');
    expect(calls).toHaveLength(0);
  });

  it('valid credentials reach the handler with the parsed body', async () => {
    const body = '{"leader": "pg2", "candidate": "pg1"}';
    const out = await send(
      `POST /switchover?x=1 HTTP/1.1\r\nauthorization: Basic ${basic('admin', 's3cret')}\r\n` +
        `Content-Length: ${body.length}\r\n\r\n${body}`,
    );
    expect([out.status, out.headers.get('content-type'), out.body]).toEqual([
      200,
      'text/html',
      'Successfully switched over to "pg1"',
    ]);
    expect(out.headers.get('date')).toBe(new Date(current.now).toUTCString());
    const call = calls.pop();
    expect(call?.body).toEqual({ leader: 'pg2', candidate: 'pg1' });
    expect(call?.path).toBe('/switchover');
    expect(call?.query).toEqual({ x: ['1'] });
    expect(call?.remoteAddress).toBe('127.0.0.1');
  });

  it('required bodies: 411 without Content-Length, 400 for bad, empty or non-object JSON', async () => {
    const post = (extra: string): Promise<Answer> => send(`POST /switchover HTTP/1.0\r\n${AUTH}${extra}`);
    expect((await post('\r\n')).status).toBe(411);
    for (const body of ['{}', '[1]', '{bad', '"x"', '']) {
      expect((await post(`Content-Length: ${body.length}\r\n\r\n${body}`)).status, body).toBe(400);
    }
    expect((await post('Content-Length: abc\r\n\r\n')).status).toBe(400);
    expect(calls).toHaveLength(0);
  });

  it('optional bodies: none or length 0 is {}', async () => {
    const none = await send(`POST /restart HTTP/1.0\r\n${AUTH}\r\n`);
    expect([none.status, none.body]).toEqual([503, 'restart conditions are not satisfied']);
    expect((await send(`POST /restart HTTP/1.0\r\n${AUTH}Content-Length: 0\r\n\r\n`)).status).toBe(503);
    expect((await send(`POST /restart HTTP/1.0\r\n${AUTH}Content-Length: 2\r\n\r\n{}`)).status).toBe(503);
    expect(calls.splice(0).map((c) => c.body)).toEqual([{}, {}, {}]);
  });

  it('JSON replies, send_error replies, and a throwing handler', async () => {
    const body = '{"pause": true}';
    const patched = await send(
      `PATCH /config HTTP/1.0\r\n${AUTH}Content-Length: ${body.length}\r\n\r\n${body}`,
    );
    expect([patched.headers.get('content-type'), patched.body]).toEqual([
      'application/json',
      '{"pause": true, "ttl": 30}',
    ]);
    const conflict = await send(`DELETE /switchover HTTP/1.0\r\n${AUTH}\r\n`);
    expect(conflict.status).toBe(409);
    expect(conflict.body).toContain('<p>Error code: 409</p>');
    expect((await send(`POST /reload HTTP/1.0\r\n${AUTH}\r\n`)).status).toBe(500);
    expect((await send('GET /patroni HTTP/1.0\r\n\r\n')).status).toBe(200);
  });

  it('GET endpoints never ask for credentials', async () => {
    expect((await send('GET /config HTTP/1.0\r\n\r\n')).status).toBe(200);
  });
});

describe('without a DCS view', () => {
  it('/config is 502, /cluster and /history 503, health checks still answer', async () => {
    use('etcd', 'replica');
    current.cluster = undefined;
    expect((await send('GET /config HTTP/1.0\r\n\r\n')).status).toBe(502);
    expect((await send('GET /cluster HTTP/1.0\r\n\r\n')).status).toBe(503);
    expect((await send('GET /history HTTP/1.0\r\n\r\n')).status).toBe(503);
    expect((await send('GET /replica HTTP/1.0\r\n\r\n')).status).toBe(200);
    const ready = await send('GET /readiness HTTP/1.0\r\n\r\n');
    expect([ready.status, ready.body]).toEqual([503, '']);
    expect((await send('GET /async HTTP/1.0\r\n\r\n')).status).toBe(503);
  });
});

describe('options: Server header, extra headers, no authentication', () => {
  let plain: ApiServer | undefined;
  beforeAll(async () => {
    use('etcd', 'replica');
    plain = await startApiServer({
      listen: '127.0.0.1:0',
      serverHeader: 'Patroni',
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

  it('writes them and needs no credentials without `auth`', async () => {
    const out = await send('POST /reload HTTP/1.0\r\n\r\n', plain?.port);
    expect([out.status, out.body]).toEqual([202, 'reload scheduled']);
    expect(out.headers.get('server')).toBe('Patroni');
    expect(out.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect((await send('HEAD /replica HTTP/1.0\r\n\r\n', plain?.port)).status).toBe(200);
  });
});
