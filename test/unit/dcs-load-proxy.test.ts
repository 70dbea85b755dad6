/** The DCS-load bench's request counting (test/bench/dcs-load-proxy.ts): what one client stream is split into. */
import { describe, expect, it } from 'vitest';
import { etcdCallType, httpParser, zooKeeperParser } from '../bench/dcs-load-proxy.js';

const post = (path: string, body: string): string =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe('the etcd gateway counter', () => {
  it('names gateway paths by their gRPC method, and other paths as they are', () => {
    expect(etcdCallType('POST', '/v3/lease/keepalive')).toBe('LeaseKeepAlive');
    expect(etcdCallType('POST', '/v3beta/kv/range')).toBe('Range');
    expect(etcdCallType('GET', '/version')).toBe('GET /version');
  });

  it('counts keep-alive requests split anywhere, bodies skipped even when they look like requests', () => {
    const stream = Buffer.from(
      post('/v3/kv/range', '{"key":"POST /v3/kv/put HTTP/1.1\\r\\n\\r\\n"}') +
        post('/v3/lease/keepalive', '{"ID":"1"}') +
        'GET /version HTTP/1.1\r\nHost: x\r\n\r\n' +
        post('/v3/watch', '{"create_request":{}}'),
    );
    const p = httpParser();
    const calls: string[] = [];
    for (let i = 0; i < stream.length; i += 7) calls.push(...p.push(stream.subarray(i, i + 7)));
    expect(calls).toEqual(['Range', 'LeaseKeepAlive', 'GET /version', 'Watch']);
  });

  it('skips a chunked body', () => {
    const p = httpParser();
    const chunked = 'POST /v3/kv/put HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n';
    expect(p.push(Buffer.from(chunked + post('/v3/kv/txn', '{}')))).toEqual(['Put', 'Txn']);
  });
});

describe('the ZooKeeper counter', () => {
  const frame = (payload: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeInt32BE(payload.length);
    return Buffer.concat([len, payload]);
  };
  const request = (xid: number, op: number, rest = 0): Buffer => {
    const b = Buffer.alloc(8 + rest);
    b.writeInt32BE(xid, 0);
    b.writeInt32BE(op, 4);
    return frame(b);
  };

  it('counts the connect request first, then requests by op code, pings included', () => {
    const stream = Buffer.concat([
      frame(Buffer.alloc(44)),
      request(1, 3, 20),
      request(-2, 11),
      request(2, 5, 30),
      request(3, 12, 10),
    ]);
    const p = zooKeeperParser();
    const calls: string[] = [];
    for (let i = 0; i < stream.length; i += 5) calls.push(...p.push(stream.subarray(i, i + 5)));
    expect(calls).toEqual(['connect', 'exists', 'ping', 'setData', 'getChildren2']);
  });
});
