/**
 * requestMember against a local node:http server: the URL it builds, what it sends (method, Basic auth, a JSON
 * body with Content-Length, never chunked: Patroni's server reads no chunked bodies) and how it fails.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointUrl, requestMember } from '../../src/api/client.js';

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

describe('requestMember', () => {
  let server: Server;
  let base = '';
  const seen: Seen[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        if (req.url === '/slow') return; // never answers
        res.writeHead(req.url === '/switchover' ? 412 : 200, { 'content-type': 'text/plain' });
        res.end(req.url === '/switchover' ? 'candidate name does not match' : 'olá');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/patroni`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('replaces the api_url path by the endpoint', () => {
    expect(endpointUrl('http://h:8008/patroni?x=1', 'switchover')).toBe('http://h:8008/switchover');
    expect(endpointUrl('https://h:8008/', '/restart')).toBe('https://h:8008/restart');
  });

  it('GETs with the user agent and answers status and body (UTF-8)', async () => {
    const res = await requestMember(base, 'patroni', { timeoutMs: 2000 });
    expect(res).toMatchObject({ status: 200, body: 'olá' });
    // The answer's headers too (POST /failsafe reads `lsn` from them).
    expect(res.headers?.['content-type']).toBe('text/plain');
    const last = seen[seen.length - 1];
    expect(last?.method).toBe('GET');
    expect(last?.url).toBe('/patroni');
    expect(last?.headers['user-agent']).toBe('pgwarden');
    expect(last?.headers['authorization']).toBeUndefined();
  });

  it('POSTs JSON with a Content-Length and Basic auth, and returns a refusal as it came', async () => {
    const res = await requestMember(
      base,
      'switchover',
      { timeoutMs: 2000, auth: { username: 'admin', password: 'sécret' } },
      'POST',
      { leader: 'pg1', candidate: 'pg2' },
    );
    expect(res).toMatchObject({ status: 412, body: 'candidate name does not match' });
    const last = seen[seen.length - 1];
    expect(last?.method).toBe('POST');
    expect(last?.body).toBe('{"leader":"pg1","candidate":"pg2"}');
    expect(last?.headers['content-length']).toBe(String(Buffer.byteLength(last?.body ?? '')));
    expect(last?.headers['transfer-encoding']).toBeUndefined();
    expect(last?.headers['content-type']).toBe('application/json');
    expect(last?.headers['authorization']).toBe(`Basic ${Buffer.from('admin:sécret').toString('base64')}`);
  });

  it('gives up after timeoutMs when the member does not answer', async () => {
    const t0 = Date.now();
    await expect(requestMember(base, 'slow', { timeoutMs: 300 })).rejects.toThrow(/no answer within 300 ms/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('rejects with the socket error when nothing listens', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    await expect(
      requestMember(`http://127.0.0.1:${port}/patroni`, 'patroni', { timeoutMs: 2000 }),
    ).rejects.toThrow(/ECONNREFUSED/);
  });
});
