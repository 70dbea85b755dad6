/**
 * Peer probes (src/agent/peers.ts) against real servers on 127.0.0.1: HTTPS verified with the configured CA and the
 * member's certificate presented to a `verify_client: required` peer; no credentials sent; answers capped and
 * logged as a bounded excerpt. Certificates come from openssl in a temp dir.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProber, excerpt, MAX_PROBE_BYTES, probeTlsFor, type ProbeTls } from '../../src/agent/peers.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { statusFromJson } from '../../src/api/status.js';
import type { AgentConfig } from '../../src/config/agent-config.js';
import { makeTestCerts, type TestCerts } from '../helpers/tls-certs.js';

const DOC = {
  state: 'running',
  postmaster_start_time: '2026-01-01 00:00:00.000000+00:00',
  role: 'replica',
  server_version: 150004,
  xlog: { received_location: 1000, replayed_location: 900, replayed_timestamp: null, paused: false },
  timeline: 2,
  patroni: { version: '3.0.2', scope: 'demo', name: 'pg2' },
};
const STATUS = statusFromJson(DOC, {
  at: 0,
  postmasterRunning: true,
  standbyCluster: false,
  nextRunAt: 0,
  ttl: 30,
  maximumLagOnFailover: 0,
});

let certs: TestCerts;
let tlsPeer: ApiServer;
let plainPeer: http.Server;
let plainUrl: string;
const seenHeaders: http.IncomingHttpHeaders[] = [];
const lines: string[] = [];
const log = { info: (t: string) => lines.push(t), warning: (t: string) => lines.push(t) };

beforeAll(async () => {
  certs = makeTestCerts();
  tlsPeer = await startApiServer({
    listen: '127.0.0.1:0',
    tls: {
      certfile: certs.serverCert,
      keyfile: certs.serverKey,
      cafile: certs.caCert,
      verifyClient: 'required',
    },
    getStatus: () => STATUS,
    getCluster: () => undefined,
  });
  // A peer whose api_url someone put in the DCS: records what it is sent.
  plainPeer = http.createServer((req, res) => {
    seenHeaders.push(req.headers);
    res.end(JSON.stringify(DOC));
  });
  await new Promise<void>((resolve) => plainPeer.listen(0, '127.0.0.1', resolve));
  plainUrl = `http://127.0.0.1:${(plainPeer.address() as AddressInfo).port}/patroni`;
});

afterAll(async () => {
  await tlsPeer?.close();
  await new Promise<void>((resolve) => (plainPeer ? plainPeer.close(() => resolve()) : resolve()));
  certs?.cleanup();
});

const tlsUrl = (): string => `https://127.0.0.1:${tlsPeer.port}/patroni`;
const probeWith = async (tls: ProbeTls, apiUrl: string) =>
  (await createProber(() => tls, log)([{ name: 'pg2', apiUrl }])).get('pg2');

describe('peer probes', () => {
  it('verify the peer with the configured CA and present the member certificate', async () => {
    const st = await probeWith(
      { insecure: false, cacert: certs.caCert, certfile: certs.clientCert, keyfile: certs.clientKey },
      tlsUrl(),
    );
    expect(st).toMatchObject({ reachable: true, isPrimary: false, walPosition: 1000n, timeline: 2 });
  });

  it('refuse a peer whose certificate the CA did not sign, and one that wants a client cert we lack', async () => {
    const wrongCa = await probeWith(
      { insecure: false, cacert: certs.otherCaCert, certfile: certs.clientCert, keyfile: certs.clientKey },
      tlsUrl(),
    );
    expect(wrongCa?.reachable).toBe(false);
    const noClientCert = await probeWith({ insecure: false, cacert: certs.caCert }, tlsUrl());
    expect(noClientCert?.reachable).toBe(false);
  });

  it('ctl.insecure skips verification (the client certificate is still needed by that peer)', async () => {
    const st = await probeWith(
      { insecure: true, certfile: certs.clientCert, keyfile: certs.clientKey },
      tlsUrl(),
    );
    expect(st?.reachable).toBe(true);
  });

  it('send no credentials, even to a plain-http api_url', async () => {
    seenHeaders.length = 0;
    expect((await probeWith({ insecure: false }, plainUrl))?.reachable).toBe(true);
    expect(seenHeaders).toHaveLength(1);
    expect(seenHeaders[0]?.authorization).toBeUndefined();
  });

  it('stop reading an answer over the cap and log a bounded excerpt', async () => {
    const big = http.createServer((_req, res) => res.end('y'.repeat(4 * MAX_PROBE_BYTES)));
    await new Promise<void>((resolve) => big.listen(0, '127.0.0.1', resolve));
    try {
      lines.length = 0;
      const url = `http://127.0.0.1:${(big.address() as AddressInfo).port}/patroni`;
      expect((await probeWith({ insecure: false }, url))?.reachable).toBe(false);
      expect(lines.join('\n')).toContain(`answer larger than ${MAX_PROBE_BYTES} bytes`);
      expect(Math.max(...lines.map((l) => l.length))).toBeLessThan(3000);
    } finally {
      await new Promise<void>((resolve) => big.close(() => resolve()));
    }
  });

  it('excerpt: control characters cannot forge log lines; long text is cut', () => {
    expect(excerpt('a\nb\x1bc')).toBe('a?b?c');
    expect(excerpt('z'.repeat(50), 10)).toBe(`${'z'.repeat(10)}... (50 characters)`);
  });

  it('probeTlsFor: ctl settings first, else the member restapi certificate and CA', () => {
    const config = (raw: Record<string, unknown>): AgentConfig =>
      ({
        raw,
        restapi: { certfile: '/r/cert', keyfile: '/r/key', cafile: '/r/ca' },
      }) as unknown as AgentConfig;
    expect(probeTlsFor(config({}))).toEqual({
      insecure: false,
      cacert: '/r/ca',
      certfile: '/r/cert',
      keyfile: '/r/key',
    });
    expect(
      probeTlsFor(
        config({ ctl: { insecure: true, cacert: '/c/ca', certfile: '/c/cert', keyfile: '/c/key' } }),
      ),
    ).toEqual({ insecure: true, cacert: '/c/ca', certfile: '/c/cert', keyfile: '/c/key' });
  });
});
