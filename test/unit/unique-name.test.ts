/**
 * Patroni's ensure_unique_name: an agent refuses to start when a member key of its name exists and that member's
 * REST API answers GET /liveness; a stale key (nothing listening) or no key lets it start.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { duplicateNameMessage, refuseDuplicateName } from '../../src/agent/unique-name.js';
import type { Cluster, Member } from '../../src/model/cluster.js';
import { EMPTY_STATUS, EMPTY_SYNC } from '../../src/model/cluster.js';

let server: Server;
let liveUrl = '';
const paths: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(503).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  liveUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/patroni`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function member(name: string, apiUrl: string | undefined): Member {
  return {
    name,
    version: '1',
    data: {
      raw: {},
      state: 'running',
      tags: {},
      pendingRestart: false,
      pause: false,
      ...(apiUrl ? { apiUrl } : {}),
    },
  };
}

function cluster(members: Member[]): Cluster {
  return { scope: 'demo', status: EMPTY_STATUS, sync: EMPTY_SYNC, members };
}

async function check(getCluster: () => Promise<Cluster>): Promise<{ refused: boolean; lines: string[] }> {
  const lines: string[] = [];
  const refused = await refuseDuplicateName({
    getCluster,
    name: 'pg1',
    restOptions: { insecure: true },
    log: { critical: (t) => lines.push(`CRITICAL: ${t}`), warning: (t) => lines.push(`WARNING: ${t}`) },
  });
  return { refused, lines };
}

describe('a second agent with a name already running', () => {
  it('is refused when the member key of that name answers GET /liveness (any status)', async () => {
    const r = await check(() => Promise.resolve(cluster([member('pg0', undefined), member('pg1', liveUrl)])));
    expect(r).toEqual({ refused: true, lines: [`CRITICAL: ${duplicateNameMessage('pg1')}`] });
    expect(duplicateNameMessage('pg1')).toBe("Can't start; there is already a node named 'pg1' running");
    expect(paths.at(-1)).toBe('/liveness');
  });

  it('starts when the key is stale (nothing answers), absent, or the DCS cannot be read', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/patroni`;
    await new Promise<void>((r) => closed.close(() => r()));
    expect(await check(() => Promise.resolve(cluster([member('pg1', deadUrl)])))).toEqual({
      refused: false,
      lines: [],
    });
    expect(await check(() => Promise.resolve(cluster([member('pg2', liveUrl)])))).toEqual({
      refused: false,
      lines: [],
    });
    const down = await check(() => Promise.reject(new Error('etcd unreachable')));
    expect(down.refused).toBe(false);
    expect(down.lines).toEqual([
      'WARNING: Can not get cluster from dcs to check the member name: etcd unreachable',
    ]);
  });
});
