/** zk-wire.ts: the reply framer, the write batching and the hand-written Jute codecs, next to the library's own. */
import { EventEmitter } from 'node:events';
import type { Client } from 'node-zookeeper-client';
import jute from 'node-zookeeper-client/lib/jute/index.js';
import { describe, expect, it } from 'vitest';
import { batchWrites, frameReplies, installFastJute } from '../../src/dcs/zookeeper/zk-wire.js';

type Fields = Record<string, unknown> & {
  deserialize(b: Buffer, at: number): number;
  setChrootPath(p: string): void;
};
const original = {
  Stat: jute.data['Stat']!,
  ReplyHeader: jute.protocol['ReplyHeader']!,
  RequestHeader: jute.protocol['RequestHeader']!,
  GetDataRequest: jute.protocol['GetDataRequest']!,
  GetChildren2Request: jute.protocol['GetChildren2Request']!,
  GetDataResponse: jute.protocol['GetDataResponse']!,
  GetChildren2Response: jute.protocol['GetChildren2Response']!,
};
// eslint-disable-next-line @typescript-eslint/unbound-method -- called below with a request as `this`
const originalToBuffer = jute.Request.prototype.toBuffer;
installFastJute(jute);

const Request = jute.Request as unknown as new (h: object, p: object) => { toBuffer(): Buffer };

/**
 * The fields a record holds, as plain data (Buffers as hex), read by the names `like` (the library's record) has:
 * the hand-written Stat keeps its 64-bit fields behind getters.
 */
function plain(r: Record<string, unknown>, like: Record<string, unknown> = r): unknown {
  return Object.fromEntries(
    Object.keys(like)
      .filter((k) => k !== 'specification' && k !== 'chrootPath')
      .map((k) => {
        const v = r[k];
        const w = like[k];
        return [
          k,
          Buffer.isBuffer(v)
            ? v.toString('hex')
            : v && typeof v === 'object' && !Array.isArray(v)
              ? plain(v as Record<string, unknown>, w as Record<string, unknown>)
              : v,
        ];
      }),
  );
}

const stat = (seed: number): Buffer => {
  const b = Buffer.alloc(68);
  for (let i = 0; i < 68; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
};
const int = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const str = (s: string): Buffer => Buffer.concat([int(Buffer.byteLength(s)), Buffer.from(s)]);

describe('the hand-written Jute codecs give what the library gives', () => {
  const decoded = (cls: new () => object, bytes: Buffer, at = 3): [Fields, number] => {
    const r = new cls() as Fields;
    const framed = Buffer.concat([Buffer.from([9, 9, 9]), bytes, Buffer.from([7])]);
    return [r, r.deserialize(framed, at)];
  };
  /** Both decodings as plain data, the fields named as the library names them. */
  const both = (fast: new () => object, lib: new () => object, bytes: Buffer): [unknown, unknown] => {
    const [f, n] = decoded(fast, bytes);
    const [l, m] = decoded(lib, bytes);
    return [
      [plain(f, l), n],
      [plain(l), m],
    ];
  };
  it.each([
    ['ReplyHeader', Buffer.concat([int(42), Buffer.from('0102030405060708', 'hex'), int(-101)])],
    ['GetDataResponse', Buffer.concat([str('{"role":"primary","ünïcode":1}'), stat(1)])],
    ['GetDataResponse', Buffer.concat([int(-1), stat(2)])],
    ['GetDataResponse', Buffer.concat([int(0), stat(3)])],
    ['GetChildren2Response', Buffer.concat([int(3), str('leader'), str('members'), str('é'), stat(4)])],
    ['GetChildren2Response', Buffer.concat([int(0), stat(5)])],
  ] as const)('%s', (name, bytes) => {
    const [fast, lib] = both(jute.protocol[name]!, original[name], bytes);
    expect(fast).toEqual(lib);
  });

  it('a Stat read on its own (exists, setData replies)', () => {
    const [fast, lib] = both(jute.data['Stat']!, original.Stat, stat(6));
    expect(fast).toEqual(lib);
  });

  it("a Stat's 64-bit fields: read once, kept, and settable", () => {
    const [s] = decoded(jute.data['Stat']!, stat(7));
    const mzxid = s['mzxid'] as Buffer;
    expect(mzxid.toString('hex')).toBe(stat(7).subarray(8, 16).toString('hex'));
    expect(s['mzxid']).toBe(mzxid);
    s['mzxid'] = Buffer.from('0000000000000001', 'hex');
    expect((s['mzxid'] as Buffer).toString('hex')).toBe('0000000000000001');
    expect((s['pzxid'] as Buffer).toString('hex')).toBe(stat(7).subarray(60, 68).toString('hex'));
  });

  it.each([
    ['GetDataRequest', '/service/main/leader', true, undefined],
    ['GetChildren2Request', '/service/main/members', false, undefined],
    ['GetDataRequest', '/ns/é', false, '/chroot'],
    ['GetDataRequest', '/', true, '/chroot'],
  ] as const)('%s %s (watch %s, chroot %s) is the same bytes', (name, path, watch, chroot) => {
    const bytes = (
      cls: typeof original.GetDataRequest,
      header: typeof original.RequestHeader,
      toBuffer: () => Buffer,
    ) => {
      const h = new header() as Fields;
      h['xid'] = 17;
      h['type'] = 4;
      const p = new cls() as Fields;
      p['path'] = path;
      p['watch'] = watch;
      if (chroot) p.setChrootPath(chroot);
      return toBuffer.call(new Request(h, p)).toString('hex');
    };
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called with a request as `this`
    const fastToBuffer = jute.Request.prototype.toBuffer;
    expect(bytes(jute.protocol[name]!, jute.protocol['RequestHeader']!, fastToBuffer)).toBe(
      bytes(original[name], original.RequestHeader, originalToBuffer),
    );
  });
});

/** A stand-in for the library's client: its ConnectionManager's socket and `onSocketData`. */
function fakeClient(): { client: Client; got: Buffer[]; socket: EventEmitter & { destroyed: boolean } } {
  const got: Buffer[] = [];
  const socket = Object.assign(new EventEmitter(), { destroyed: false });
  const cm = {
    socket,
    onSocketData(data: Buffer) {
      got.push(Buffer.from(data));
    },
  };
  return { client: { connectionManager: cm } as unknown as Client, got, socket };
}

const frame = (n: number, fill: number): Buffer => Buffer.concat([int(n), Buffer.alloc(n, fill)]);

describe('frameReplies', () => {
  it('hands the library one whole reply per call, however the bytes arrive', () => {
    const frames = [frame(20, 1), frame(0, 2), frame(70_000, 3), frame(1, 4), frame(300, 5)];
    const all = Buffer.concat(frames);
    for (const cut of [1, 2, 3, 5, 64, 1000, 65_536, all.length]) {
      const { client, got } = fakeClient();
      frameReplies(client);
      const cm = client.connectionManager as unknown as { onSocketData(d: Buffer): void };
      for (let at = 0; at < all.length; at += cut) cm.onSocketData(all.subarray(at, at + cut));
      expect(got.map((b) => b.toString('hex'))).toEqual(frames.map((b) => b.toString('hex')));
    }
  });

  it('forgets a partial reply when the connection changes, and stops at a socket the library dropped', () => {
    const { client, got } = fakeClient();
    frameReplies(client);
    const cm = client.connectionManager as unknown as { socket: unknown; onSocketData(d: Buffer): void };
    cm.onSocketData(frame(10, 1).subarray(0, 7));
    cm.socket = Object.assign(new EventEmitter(), { destroyed: false });
    cm.onSocketData(frame(3, 2));
    expect(got.map((b) => b.toString('hex'))).toEqual([frame(3, 2).toString('hex')]);
    (cm.socket as { destroyed: boolean }).destroyed = true;
    cm.onSocketData(Buffer.concat([frame(1, 3), frame(1, 4)]));
    expect(got).toHaveLength(2);
  });
});

describe('batchWrites', () => {
  it('corks the socket once until the tick ends', async () => {
    const calls: string[] = [];
    const socket = {
      destroyed: false,
      cork: () => calls.push('cork'),
      uncork: () => calls.push('uncork'),
    };
    const client = { connectionManager: { socket } } as unknown as Client;
    batchWrites(client);
    batchWrites(client);
    expect(calls).toEqual(['cork']);
    await new Promise((r) => process.nextTick(r));
    expect(calls).toEqual(['cork', 'uncork']);
    batchWrites(client);
    expect(calls).toEqual(['cork', 'uncork', 'cork']);
    await new Promise((r) => process.nextTick(r));
  });
});
