/**
 * Two fixes to node-zookeeper-client's socket handling (lib/ConnectionManager.js, 1.1.3), which costs seconds
 * once thousands of requests are in flight at once (`list --all` over a large namespace, `getClusters`):
 *
 * - Reads: its `onSocketData` takes one reply per call and hands the rest of the chunk to itself again after
 *   copying it (`Buffer.concat` with an empty buffer), so a chunk holding n replies is copied n times. `frameReplies`
 *   puts a framer in front of it: the library is given exactly one whole reply per call, which it decodes without a
 *   copy and without keeping anything pending (bytes of a reply that spans chunks are joined once).
 * - Writes: it writes each request to the socket on its own as it is queued, a system call per request.
 *   `batchWrites` corks the socket until the current tick ends, so every request issued in one go leaves in one
 *   `writev`.
 *
 * Everything else (the handshake, the decoding, xids, watches, reconnects) stays the library's.
 */
import type { Socket } from 'node:net';
import type { Client } from 'node-zookeeper-client';

/** The parts of the library's ConnectionManager used here. */
interface WireInternals {
  socket?: Socket;
  onSocketData(data: Buffer): void;
}

const internals = (client: Client): WireInternals => client.connectionManager as unknown as WireInternals;

/**
 * Frames the replies of every socket the client opens (the library binds `onSocketData` at each connect, so this
 * must be called before `client.connect()`).
 */
export function frameReplies(client: Client): void {
  const cm = internals(client);
  const decode = cm.onSocketData.bind(cm);
  let socket: Socket | undefined;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  cm.onSocketData = (data: Buffer): void => {
    if (cm.socket !== socket) {
      // A new connection: what was left of the old one is no reply of this one.
      socket = cm.socket;
      pending = [];
      pendingBytes = 0;
    }
    pending.push(data);
    pendingBytes += data.length;
    if (pendingBytes < 4) return;
    if (pending[0]!.length < 4) pending = [Buffer.concat(pending, pendingBytes)];
    // Wait for the first reply to be whole, then join once and hand over every whole reply.
    if (pendingBytes < 4 + pending[0]!.readInt32BE(0)) return;
    const buffer = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    let at = 0;
    while (buffer.length - at >= 4) {
      const end = at + 4 + buffer.readInt32BE(at);
      if (end > buffer.length) break;
      decode(buffer.subarray(at, end));
      at = end;
      // The library drops a connection it cannot make sense of; the rest of its bytes are nobody's.
      if (cm.socket !== socket || socket?.destroyed) return;
    }
    pending = at < buffer.length ? [buffer.subarray(at)] : [];
    pendingBytes = buffer.length - at;
  };
}

const corked = new WeakSet<Socket>();

/** Holds the client's writes until the current tick ends (call before issuing a request). */
export function batchWrites(client: Client): void {
  const socket = internals(client).socket;
  if (!socket || corked.has(socket) || socket.destroyed) return;
  corked.add(socket);
  socket.cork();
  process.nextTick(() => {
    corked.delete(socket);
    socket.uncork();
  });
}

/** The library's Jute module (lib/jute/index.js): the classes it instantiates by name for every request and reply. */
interface JuteModule {
  readonly protocol: Record<string, JuteClass>;
  readonly data: Record<string, JuteClass>;
  readonly Request: { readonly prototype: { toBuffer(): Buffer } };
}
type JuteClass = new () => object;
interface JuteRecord {
  byteLength(): number;
  serialize(buffer: Buffer, offset: number): number;
}

/** The 8 bytes of a Jute long, as the library keeps them: a Buffer of their own (from the shared pool). */
const long = (buffer: Buffer, at: number): Buffer => Buffer.from(buffer.subarray(at, at + 8));

interface FastStat {
  czxid: Buffer;
  mzxid: Buffer;
  ctime: Buffer;
  mtime: Buffer;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: Buffer;
  dataLength: number;
  numChildren: number;
  pzxid: Buffer;
}

const STAT_BYTES = 68;

/** Where each 64-bit field of a Stat starts in its 68 bytes. */
const STAT_LONGS = { czxid: 0, mzxid: 8, ctime: 16, mtime: 24, ephemeralOwner: 44, pzxid: 60 } as const;

/**
 * A Stat's 64-bit fields as getters over one copy of its 68 bytes, each Buffer made at its first read and kept:
 * a read uses one or two of the six, and `getClusters` decodes thousands of Stats (six Buffers apiece, each a
 * copy from the pool, were a tenth of its CPU).
 */
const statLongs: PropertyDescriptorMap = Object.fromEntries(
  Object.entries(STAT_LONGS).map(([name, at]) => [
    name,
    {
      get(this: { bytes?: Buffer; longs?: Record<string, Buffer> }): Buffer {
        const longs = (this.longs ??= {});
        // Zeros for a Stat never read, as the library's constructor gives.
        return (longs[name] ??= this.bytes?.subarray(at, at + 8) ?? Buffer.alloc(8));
      },
      set(this: { longs?: Record<string, Buffer> }, value: Buffer): void {
        (this.longs ??= {})[name] = value;
      },
      enumerable: true,
      configurable: true,
    },
  ]),
);

function readStat(stat: FastStat, buffer: Buffer, at: number): number {
  const fields = stat as unknown as { bytes: Buffer; longs?: Record<string, Buffer> };
  fields.bytes = Buffer.from(buffer.subarray(at, at + STAT_BYTES));
  fields.longs = undefined;
  stat.version = buffer.readInt32BE(at + 32);
  stat.cversion = buffer.readInt32BE(at + 36);
  stat.aversion = buffer.readInt32BE(at + 40);
  stat.dataLength = buffer.readInt32BE(at + 52);
  stat.numChildren = buffer.readInt32BE(at + 56);
  return STAT_BYTES;
}

/** A Jute string: length (-1: none) and UTF-8 bytes. */
function readString(buffer: Buffer, at: number): [string | undefined, number] {
  const n = buffer.readInt32BE(at);
  return n < 0 ? [undefined, 4] : [buffer.toString('utf8', at + 4, at + 4 + n), 4 + n];
}

/**
 * A class standing in for the library's generated one: same prototype (so `serialize`, `byteLength` and
 * `setChrootPath` are the library's, driven by the same specification), a constructor that builds nothing, and a
 * hand-written `deserialize`. The generic one parses its specification for every field of every reply and gives
 * each 64-bit field a freshly allocated Buffer (eleven per znode read, counting the Stat built by the constructor
 * and thrown away), which `getClusters` over thousands of znodes pays for in allocation and garbage collection.
 */
function fastClass(
  original: JuteClass,
  methods: {
    readonly init?: (self: Fields) => void;
    readonly deserialize?: (self: Fields, b: Buffer, at: number) => number;
    readonly byteLength?: (self: Fields) => number;
    readonly serialize?: (self: Fields, b: Buffer, at: number) => number;
  },
): JuteClass {
  const { specification } = new original() as { specification: unknown };
  const { init, deserialize, byteLength, serialize } = methods;
  function Fast(this: Fields): void {
    this['specification'] = specification;
    this['chrootPath'] = undefined;
    init?.(this);
  }
  const proto = Object.create(original.prototype as object) as Record<string, unknown>;
  if (deserialize)
    proto['deserialize'] = function (this: Fields, b: Buffer, at: number): number {
      return deserialize(this, b, at);
    };
  if (byteLength)
    proto['byteLength'] = function (this: Fields): number {
      return byteLength(this);
    };
  if (serialize)
    proto['serialize'] = function (this: Fields, b: Buffer, at: number): number {
      return serialize(this, b, at);
    };
  Fast.prototype = proto;
  return Fast as unknown as JuteClass;
}

type Fields = Record<string, unknown>;

/** The path a request names on the server: under the client's chroot, if any (the library's `prependChroot`). */
function serverPath(self: Fields): string | undefined {
  const path = self['path'] as string | undefined;
  const chroot = self['chrootPath'] as string | undefined;
  if (!chroot || path === undefined) return path;
  return path === '/' ? chroot : chroot + path;
}

/** getData and getChildren2 requests: the path and the watch flag. */
const pathAndWatch = {
  init: (self: Fields): void => {
    self['path'] = undefined;
    self['watch'] = false;
  },
  byteLength: (self: Fields): number => {
    const path = serverPath(self);
    return 5 + (path === undefined ? 0 : Buffer.byteLength(path));
  },
  serialize: (self: Fields, b: Buffer, at: number): number => {
    const path = serverPath(self);
    let n = 4;
    if (path === undefined) b.writeInt32BE(-1, at);
    else {
      const written = b.write(path, at + 4, 'utf8');
      b.writeInt32BE(written, at);
      n += written;
    }
    b.writeUInt8(self['watch'] ? 1 : 0, at + n);
    return n + 1;
  },
};

let fastJuteInstalled = false;

/**
 * Replaces the library's decoders of the replies a read sends back (reply header, znode Stat, getData and
 * getChildren2) with hand-written ones giving the same fields. Idempotent.
 */
export function installFastJute(jute: JuteModule): void {
  if (fastJuteInstalled) return;
  fastJuteInstalled = true;
  const { protocol, data } = jute;
  const Stat = fastClass(data['Stat']!, {
    deserialize: (self, b, at) => readStat(self as unknown as FastStat, b, at),
  });
  Object.defineProperties((Stat as unknown as { prototype: object }).prototype, statLongs);
  data['Stat'] = Stat;
  protocol['RequestHeader'] = fastClass(protocol['RequestHeader']!, {
    init: (self) => {
      self['xid'] = 0;
      self['type'] = 0;
    },
    byteLength: () => 8,
    serialize: (self, b, at) => {
      b.writeInt32BE(self['xid'] as number, at);
      b.writeInt32BE(self['type'] as number, at + 4);
      return 8;
    },
  });
  protocol['GetDataRequest'] = fastClass(protocol['GetDataRequest']!, pathAndWatch);
  protocol['GetChildren2Request'] = fastClass(protocol['GetChildren2Request']!, pathAndWatch);
  protocol['ReplyHeader'] = fastClass(protocol['ReplyHeader']!, {
    deserialize: (self, b, at) => {
      self['xid'] = b.readInt32BE(at);
      self['zxid'] = long(b, at + 4);
      self['err'] = b.readInt32BE(at + 12);
      return 16;
    },
  });
  // A request's bytes from the shared pool rather than a zero-filled allocation of their own (every byte is written).
  jute.Request.prototype.toBuffer = function toBuffer(this: { header?: JuteRecord; payload?: JuteRecord }) {
    const size = (this.header?.byteLength() ?? 0) + (this.payload?.byteLength() ?? 0);
    const buffer = Buffer.allocUnsafe(size + 4);
    buffer.writeInt32BE(size, 0);
    let at = 4;
    if (this.header) at += this.header.serialize(buffer, at);
    if (this.payload) at += this.payload.serialize(buffer, at);
    if (at < buffer.length) buffer.fill(0, at);
    return buffer;
  };
  protocol['GetDataResponse'] = fastClass(protocol['GetDataResponse']!, {
    deserialize: (self, b, at) => {
      const n = b.readInt32BE(at);
      self['data'] = n < 0 ? undefined : Buffer.from(b.subarray(at + 4, at + 4 + n));
      const stat = new Stat() as FastStat;
      self['stat'] = stat;
      return 4 + Math.max(n, 0) + readStat(stat, b, at + 4 + Math.max(n, 0));
    },
  });
  protocol['GetChildren2Response'] = fastClass(protocol['GetChildren2Response']!, {
    deserialize: (self, b, at) => {
      const count = b.readInt32BE(at);
      let read = 4;
      let children: string[] | undefined;
      if (count >= 0) {
        children = [];
        for (let i = 0; i < count; i++) {
          const [child, bytes] = readString(b, at + read);
          children.push(child as string);
          read += bytes;
        }
      }
      self['children'] = children;
      const stat = new Stat() as FastStat;
      self['stat'] = stat;
      return read + readStat(stat, b, at + read);
    },
  });
}
