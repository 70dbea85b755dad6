/**
 * Access checks of unsafe endpoints on the real server (127.0.0.1): `restapi.allowlist` and
 * `allowlist_include_members` answer 403 `Access is denied` and run nothing; a reload replaces credentials and the
 * allowlist of the running server; `server_tokens` spellings.
 */
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import { afterEach, describe, expect, it } from 'vitest';
import {
  serverHeaderFor,
  startApiServer,
  type ApiServer,
  type ApiServerOptions,
} from '../../src/api/server.js';
import type { AgentStatus } from '../../src/api/status.js';
import { makeTestCerts } from '../helpers/tls-certs.js';

const calls: string[] = [];
let server: ApiServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
  calls.length = 0;
});

async function start(extra: Partial<ApiServerOptions>): Promise<string> {
  server = await startApiServer({
    listen: '127.0.0.1:0',
    getStatus: () => ({}) as AgentStatus,
    getCluster: () => undefined,
    handlers: {
      reload: () => {
        calls.push('reload');
        return { code: 202, body: 'reload scheduled' };
      },
      failsafe: () => {
        calls.push('failsafe');
        return { code: 200, body: 'Accepted' };
      },
    },
    ...extra,
  });
  return `http://127.0.0.1:${server.port}`;
}

const post = async (
  url: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<[number, string]> => {
  const r = await fetch(url, { method: 'POST', headers, ...(body === undefined ? {} : { body }) });
  return [r.status, await r.text()];
};
const basic = (u: string, p: string): Record<string, string> => ({
  authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`,
});

describe('restapi.allowlist', () => {
  it('403 Access is denied from outside the list, and the handler does not run', async () => {
    const base = await start({ allowlist: ['10.0.0.0/8', '192.168.1.7'] });
    expect(await post(`${base}/reload`)).toEqual([403, 'Access is denied']);
    expect(calls).toEqual([]);
    // read-only endpoints are not subject to it (502: no DCS view here, but no 403)
    expect((await fetch(`${base}/config`)).status).toBe(502);
  });

  it('an address, a network or a host name in the list lets the caller in', async () => {
    for (const allowlist of [
      ['127.0.0.1'],
      ['127.0.0.0/8'],
      ['localhost'],
      ['::1', '127.0.0.5/32', '127.0.0.1'],
    ]) {
      const base = await start({ allowlist });
      expect(await post(`${base}/reload`), allowlist.join(',')).toEqual([202, 'reload scheduled']);
      await server?.close();
      server = undefined;
    }
    expect(calls).toHaveLength(4);
  });

  it('allowlist_include_members: members api_url hosts are allowed, others are not; POST /failsafe ignores members', async () => {
    let members = ['http://10.1.1.1:8008/patroni'];
    const base = await start({
      allowlist: ['10.9.9.9'],
      allowlistIncludeMembers: true,
      memberApiUrls: () => members,
    });
    expect(await post(`${base}/reload`)).toEqual([403, 'Access is denied']);
    members = ['http://10.1.1.1:8008/patroni', 'https://127.0.0.1:8009/patroni'];
    expect(await post(`${base}/reload`)).toEqual([202, 'reload scheduled']);
    expect(await post(`${base}/failsafe`, { 'content-type': 'application/json' }, '{"name": "pg1"}')).toEqual(
      [403, 'Access is denied'],
    );
    expect(calls).toEqual(['reload']);
  });

  it('the allowlist comes before authentication', async () => {
    const base = await start({ allowlist: ['10.0.0.0/8'], auth: { username: 'a', password: 'b' } });
    expect(await post(`${base}/reload`, basic('a', 'b'))).toEqual([403, 'Access is denied']);
  });
});

describe('reload of the REST API settings', () => {
  it('new credentials and allowlist apply to the running server', async () => {
    const base = await start({ auth: { username: 'admin', password: 'old' } });
    expect(await post(`${base}/reload`, basic('admin', 'old'))).toEqual([202, 'reload scheduled']);
    expect(
      server?.reconfigure({ auth: { username: 'admin', password: 'new' }, serverHeader: 'Patroni' }),
    ).toBe('applied');
    expect(await post(`${base}/reload`, basic('admin', 'old'))).toEqual([401, 'not authenticated']);
    const r = await fetch(`${base}/reload`, { method: 'POST', headers: basic('admin', 'new') });
    expect([r.status, r.headers.get('server')]).toEqual([202, 'Patroni']);
    server?.reconfigure({ allowlist: ['10.0.0.0/8'] });
    expect(await post(`${base}/reload`)).toEqual([403, 'Access is denied']);
    server?.reconfigure({});
    expect(await post(`${base}/reload`)).toEqual([202, 'reload scheduled']);
    expect(calls).toEqual(['reload', 'reload', 'reload']);
  });

  it('a new listener on the same port: the request under way is still answered', async () => {
    let release: () => void = () => undefined;
    let entered = false;
    const slow = await startApiServer({
      listen: '127.0.0.1:0',
      getStatus: () => ({}) as AgentStatus,
      getCluster: () => undefined,
      handlers: {
        reload: async () => {
          entered = true;
          await new Promise<void>((resolve) => (release = resolve));
          return { code: 202, body: 'reload scheduled' };
        },
      },
    });
    const answer = post(`http://127.0.0.1:${slow.port}/reload`);
    await expect.poll(() => entered).toBe(true);
    const closing = slow.close(5_000);
    const base = await start({ listen: `127.0.0.1:${slow.port}` });
    release();
    expect(await answer).toEqual([202, 'reload scheduled']);
    await closing;
    expect(await post(`${base}/reload`)).toEqual([202, 'reload scheduled']);
  });

  it('switching TLS on needs a new listener', async () => {
    await start({});
    expect(server?.reconfigure({ tls: { certfile: '/nonexistent.pem' } })).toBe('restart');
  });
});

describe('restapi.server_tokens', () => {
  it('Original keeps the Python header; ProductOnly and Minimal name Patroni', () => {
    expect(serverHeaderFor('original', '3.0.2')).toBe('BaseHTTP/0.6 Python/3.11.2');
    expect(serverHeaderFor('ProductOnly', '3.0.2')).toBe('Patroni');
    expect(serverHeaderFor('minimal', '3.0.2')).toBe('Patroni/3.0.2');
  });
});

describe('restapi.verify_client: optional over node:https', () => {
  it('unsafe endpoints want a client certificate (403); read-only ones do not', async () => {
    const certs = makeTestCerts();
    try {
      await start({
        tls: {
          certfile: certs.serverCert,
          keyfile: certs.serverKey,
          cafile: certs.caCert,
          verifyClient: 'optional',
        },
      });
      const ask = (method: string, path: string, withCert: boolean): Promise<[number, string]> =>
        new Promise((resolve, reject) => {
          const req = https.request({
            host: '127.0.0.1',
            port: server?.port,
            method,
            path,
            agent: false,
            ca: readFileSync(certs.caCert),
            ...(withCert ? { cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) } : {}),
          });
          req.on('error', reject);
          req.on('response', (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve([res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')]));
          });
          req.end();
        });
      expect(await ask('POST', '/reload', false)).toEqual([403, 'client certificate required']);
      expect(calls).toEqual([]);
      expect(await ask('POST', '/reload', true)).toEqual([202, 'reload scheduled']);
      expect((await ask('GET', '/config', false))[0]).toBe(502);
    } finally {
      certs.cleanup();
    }
  });
});
