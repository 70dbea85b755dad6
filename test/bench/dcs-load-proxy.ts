/**
 * A counting TCP proxy in front of a DCS, for the DCS-load bench (dcs-load.test.ts): it forwards bytes both ways
 * unchanged and counts the requests clients send, by call type, read from the client-to-server stream.
 *
 * - etcd (the v3 JSON gateway over HTTP/1.1, what Patroni and pgwarden both speak): one HTTP request is one call;
 *   its path names the gRPC method (`/v3/lease/keepalive` -> `LeaseKeepAlive`). A watch is counted when opened.
 * - ZooKeeper (its binary protocol): one length-prefixed frame is one request; the first frame of a connection is the
 *   session's connect request, every later one starts with (xid, op code), pings included.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export type DcsProtocol = 'etcd' | 'zookeeper';

export interface CountingProxy {
  /** `127.0.0.1:PORT` to give the clients instead of the server's. */
  readonly endpoint: string;
  /** Requests since the last reset, by call type. */
  counts(): Record<string, number>;
  reset(): void;
  close(): Promise<void>;
}

const ETCD_METHODS: Record<string, string> = {
  '/kv/range': 'Range',
  '/kv/put': 'Put',
  '/kv/txn': 'Txn',
  '/kv/deleterange': 'DeleteRange',
  '/kv/compaction': 'Compact',
  '/lease/grant': 'LeaseGrant',
  '/lease/keepalive': 'LeaseKeepAlive',
  '/lease/revoke': 'LeaseRevoke',
  '/kv/lease/revoke': 'LeaseRevoke',
  '/lease/timetolive': 'LeaseTimeToLive',
  '/kv/lease/timetolive': 'LeaseTimeToLive',
  '/watch': 'Watch',
  '/cluster/member/list': 'MemberList',
  '/auth/authenticate': 'Authenticate',
  '/maintenance/status': 'Status',
};

/** etcd's name for a gateway path (`/v3/kv/put` -> `Put`); other HTTP paths as they are (`GET /version`). */
export function etcdCallType(method: string, path: string): string {
  const m = /^\/v3(?:alpha|beta)?(\/.*)$/.exec(path.split('?')[0] ?? '');
  const rpc = m?.[1] === undefined ? undefined : ETCD_METHODS[m[1]];
  return rpc ?? `${method} ${path}`;
}

const ZK_OPS: Record<number, string> = {
  1: 'create',
  2: 'delete',
  3: 'exists',
  4: 'getData',
  5: 'setData',
  6: 'getACL',
  7: 'setACL',
  8: 'getChildren',
  9: 'sync',
  11: 'ping',
  12: 'getChildren2',
  13: 'check',
  14: 'multi',
  15: 'create2',
  19: 'createContainer',
  21: 'createTTL',
  22: 'multiRead',
  100: 'auth',
  101: 'setWatches',
  105: 'setWatches2',
  106: 'addWatch',
  [-11]: 'closeSession',
};

/** Splits one client-to-server stream into requests and names each; keeps partial input across chunks. */
export interface RequestParser {
  push(chunk: Buffer): string[];
}

/** HTTP/1.1 requests with Content-Length or chunked bodies, pipelined or one at a time. */
export function httpParser(): RequestParser {
  let buf = Buffer.alloc(0);
  let bodyLeft = 0;
  let chunked = false;
  return {
    push(chunk) {
      buf = Buffer.concat([buf, chunk]);
      const out: string[] = [];
      for (;;) {
        if (bodyLeft > 0) {
          const n = Math.min(bodyLeft, buf.length);
          buf = buf.subarray(n);
          bodyLeft -= n;
          if (bodyLeft > 0) return out;
          continue;
        }
        if (chunked) {
          const end = buf.indexOf('0\r\n\r\n');
          if (end < 0) return out;
          buf = buf.subarray(end + 5);
          chunked = false;
          continue;
        }
        const head = buf.indexOf('\r\n\r\n');
        if (head < 0) return out;
        const lines = buf.subarray(0, head).toString('latin1').split('\r\n');
        buf = buf.subarray(head + 4);
        const [method = '?', path = '?'] = (lines[0] ?? '').split(' ');
        out.push(etcdCallType(method, path));
        for (const line of lines.slice(1)) {
          const [name = '', ...rest] = line.split(':');
          const value = rest.join(':').trim();
          if (name.toLowerCase() === 'content-length') bodyLeft = Number(value) || 0;
          if (name.toLowerCase() === 'transfer-encoding' && /chunked/i.test(value)) chunked = true;
        }
      }
    },
  };
}

/** ZooKeeper frames: a 4-byte length, then the connect request first, (xid, op code, ...) after. */
export function zooKeeperParser(): RequestParser {
  let buf = Buffer.alloc(0);
  let connected = false;
  return {
    push(chunk) {
      buf = Buffer.concat([buf, chunk]);
      const out: string[] = [];
      while (buf.length >= 4) {
        const size = buf.readInt32BE(0);
        if (buf.length < 4 + size) break;
        const frame = buf.subarray(4, 4 + size);
        buf = buf.subarray(4 + size);
        if (!connected) {
          connected = true;
          out.push('connect');
          continue;
        }
        const op = frame.length >= 8 ? frame.readInt32BE(4) : Number.NaN;
        out.push(ZK_OPS[op] ?? `op ${op}`);
      }
      return out;
    },
  };
}

export async function startCountingProxy(target: string, protocol: DcsProtocol): Promise<CountingProxy> {
  const [host = '127.0.0.1', portText = ''] = target.split(':');
  const port = Number(portText);
  let counts: Record<string, number> = {};
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect({ host, port });
    sockets.add(client);
    sockets.add(upstream);
    const parser = protocol === 'etcd' ? httpParser() : zooKeeperParser();
    client.on('data', (chunk: Buffer) => {
      for (const call of parser.push(chunk)) counts[call] = (counts[call] ?? 0) + 1;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const listenPort = typeof address === 'object' && address ? address.port : 0;
  return {
    endpoint: `127.0.0.1:${listenPort}`,
    counts: () => ({ ...counts }),
    reset: () => {
      counts = {};
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
