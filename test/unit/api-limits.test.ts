/**
 * What a hostile or broken client can cost the REST API server: the real server on 127.0.0.1, in-process, with
 * short limits. Every case ends with the server still answering GET /patroni promptly.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { statusFromJson } from '../../src/api/status.js';

const STATUS = statusFromJson(
  { state: 'running', role: 'replica', patroni: { version: '3.0.2', scope: 'demo', name: 'pg1' } },
  { at: 0, postmasterRunning: true, standbyCluster: false, nextRunAt: 0, ttl: 30, maximumLagOnFailover: 0 },
);

let server: ApiServer;
const reached: string[] = [];

beforeAll(async () => {
  server = await startApiServer({
    listen: '127.0.0.1:0',
    auth: { username: 'u', password: 'p' },
    getStatus: () => STATUS,
    getCluster: () => undefined,
    handlers: {
      switchover: () => {
        reached.push('switchover');
        return { code: 200, body: 'ok' };
      },
      // Longer than the request timeout: a request received in full is not cut while its handler runs.
      reload: async () => {
        await new Promise((r) => setTimeout(r, 2000));
        return { code: 200, body: 'reloaded' };
      },
    },
    limits: { headersTimeoutMs: 800, requestTimeoutMs: 1500, maxBodyBytes: 64 * 1024 },
  });
});

afterAll(async () => {
  await server.close();
});

function open(allowHalfOpen = false): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: server.port, allowHalfOpen }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves with how long the server took to close (or reset) the connection; rejects after `deadlineMs`. */
function closedWithin(s: Socket, deadlineMs: number): Promise<number> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`connection still open after ${deadlineMs} ms`));
    }, deadlineMs);
    s.on('error', () => undefined);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - start);
    });
  });
}

/** Writes `chunk` as fast as the socket drains until it closes or `maxBytes` went out; returns bytes written. */
async function stream(s: Socket, chunk: Buffer, maxBytes: number): Promise<number> {
  let sent = 0;
  while (sent < maxBytes && !s.destroyed && s.writable) {
    const ok = s.write(chunk);
    sent += chunk.length;
    if (!ok) {
      await new Promise<void>((resolve) => {
        s.once('drain', resolve);
        s.once('close', resolve);
      });
    }
  }
  return sent;
}

async function getPatroniMs(): Promise<number> {
  const start = Date.now();
  const s = await open();
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  s.end('GET /patroni HTTP/1.0\r\n\r\n');
  await closedWithin(s, 3000);
  expect(Buffer.concat(chunks).toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  return Date.now() - start;
}

const GARBAGE = Buffer.alloc(64 * 1024, 'x');
/**
 * Clients stream up to 64 MiB; the server must have closed well before. What the kernel takes in before the server
 * gets to run is not the server's doing (loopback receive buffers autotune up to tcp_rmem's max, 32 MiB here).
 */
const MOST_BYTES = 48 * 1024 * 1024;

describe('REST API limits', () => {
  it('bytes streamed after a complete GET are not kept: the connection closes after the answer', async () => {
    const s = await open();
    const closed = closedWithin(s, 5000);
    s.write('GET /patroni HTTP/1.0\r\n\r\n');
    const sent = await stream(s, GARBAGE, 64 * 1024 * 1024);
    await closed;
    expect(sent).toBeLessThan(MOST_BYTES);
    expect(await getPatroniMs()).toBeLessThan(1000);
  });

  it('a body over the limit is refused with 413 before it is read', async () => {
    const s = await open();
    const answer: Buffer[] = [];
    s.on('data', (d: Buffer) => answer.push(d));
    const closed = closedWithin(s, 5000);
    s.write(
      'POST /switchover HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dTpw\r\nContent-Length: 104857600\r\n\r\n',
    );
    const sent = await stream(s, GARBAGE, 100 * 1024 * 1024);
    await closed;
    expect(Buffer.concat(answer).toString('latin1')).toMatch(/^HTTP\/1\.1 413 /);
    expect(sent).toBeLessThan(MOST_BYTES);
    expect(reached).toEqual([]);
  });

  it('a body exactly at the limit is read (and refused as bad JSON), never more', async () => {
    const s = await open();
    const answer: Buffer[] = [];
    s.on('data', (d: Buffer) => answer.push(d));
    const closed = closedWithin(s, 5000);
    s.write(
      'POST /switchover HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dTpw\r\nContent-Length: 65536\r\n\r\n',
    );
    await stream(s, Buffer.alloc(65536, ' '), 65536);
    s.end();
    await closed;
    // exactly at the limit it is read (and is not JSON: 400), never more
    expect(Buffer.concat(answer).toString('latin1')).toMatch(/^HTTP\/1\.1 400 /);
    expect(reached).toEqual([]);
  });

  it('garbage instead of a request: 400 and closed at once', async () => {
    const s = await open();
    const closed = closedWithin(s, 3000);
    const sent = await stream(
      s,
      Buffer.from('\x00\xff garbage \r\n'.repeat(4096), 'latin1'),
      64 * 1024 * 1024,
    );
    expect(await closed).toBeLessThan(2000);
    expect(sent).toBeLessThan(MOST_BYTES);
  });

  it('headers that never end are dropped at the size limit; slow headers at the headers timeout', async () => {
    const big = await open();
    const bigClosed = closedWithin(big, 3000);
    big.write('GET /patroni HTTP/1.1\r\n');
    await stream(
      big,
      Buffer.from('X-Filler: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n'.repeat(1000)),
      64 * 1024 * 1024,
    );
    await bigClosed;

    const slow = await open();
    const slowClosed = closedWithin(slow, 4000);
    slow.write('GET /patroni HTTP/1.1\r\n');
    const drip = setInterval(() => slow.writable && slow.write('X: y\r\n'), 100);
    try {
      // headersTimeout 800 ms
      expect(await slowClosed).toBeLessThan(2500);
    } finally {
      clearInterval(drip);
    }
  });

  it('a body that trickles in is answered 408 at the request timeout', async () => {
    const s = await open();
    const out: Buffer[] = [];
    s.on('data', (d: Buffer) => out.push(d));
    const closed = closedWithin(s, 5000);
    s.write('POST /switchover HTTP/1.1\r\nAuthorization: Basic dTpw\r\nContent-Length: 100\r\n\r\n{');
    const drip = setInterval(() => s.writable && s.write(' '), 100);
    try {
      // requestTimeout 1500 ms from the connection, headers in at once
      const ms = await closed;
      expect(ms).toBeGreaterThanOrEqual(1000);
      expect(ms).toBeLessThan(4000);
    } finally {
      clearInterval(drip);
    }
    expect(Buffer.concat(out).toString('latin1')).toMatch(/^HTTP\/1\.1 408 /);
    expect(reached).not.toContain('switchover');
  });

  it('a handler that runs past the request timeout still answers', async () => {
    const s = await open();
    const out: Buffer[] = [];
    s.on('data', (d: Buffer) => out.push(d));
    const closed = closedWithin(s, 8000);
    s.write('POST /reload HTTP/1.1\r\nAuthorization: Basic dTpw\r\n\r\n');
    expect(await closed).toBeGreaterThanOrEqual(1900);
    expect(Buffer.concat(out).toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK[^]*reloaded$/);
  });

  it('a client that half-closes nothing is still fully closed after its answer', async () => {
    const s = await open(true);
    const data: Buffer[] = [];
    s.on('data', (d: Buffer) => data.push(d));
    const ended = new Promise<void>((resolve) => s.once('end', resolve));
    s.write('GET /patroni HTTP/1.1\r\nHost: x\r\n\r\n');
    await ended;
    expect(Buffer.concat(data).toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*Connection: close\r\n/);
    // The server's side is gone: more bytes from us are answered with a reset, not read into a buffer.
    const closed = closedWithin(s, 3000);
    const poke = setInterval(() => s.writable && s.write('more'), 50);
    try {
      await closed;
    } finally {
      clearInterval(poke);
    }
  });

  it('connections over the cap are closed on accept', async () => {
    const capped = await startApiServer({
      listen: '127.0.0.1:0',
      getStatus: () => STATUS,
      getCluster: () => undefined,
      limits: { maxConnections: 3, headersTimeoutMs: 5000, requestTimeoutMs: 6000 },
    });
    const idle: Socket[] = [];
    const dial = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: capped.port }, () => resolve(s));
        s.once('error', reject);
      });
    try {
      for (let i = 0; i < 3; i++) {
        const s = await dial();
        s.write('GET /patroni HTTP/1.1\r\n');
        idle.push(s);
      }
      // let the server accept all three before the fourth arrives
      await new Promise((r) => setTimeout(r, 100));
      const extra = await dial();
      expect(await closedWithin(extra, 2000)).toBeLessThan(1500);
      for (const s of idle) s.destroy();
      await new Promise((r) => setTimeout(r, 100));
      const again = await dial();
      const out: Buffer[] = [];
      again.on('data', (d: Buffer) => out.push(d));
      again.end('GET /patroni HTTP/1.0\r\n\r\n');
      await closedWithin(again, 2000);
      expect(Buffer.concat(out).toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK/);
    } finally {
      for (const s of idle) s.destroy();
      await capped.close();
    }
  });

  it('still answers GET /patroni promptly after all of that', async () => {
    expect(await getPatroniMs()).toBeLessThan(1000);
  });
});
