/**
 * The part of node-zookeeper-client (1.1.x, untyped CommonJS) that pgwarden uses. Callback-style; 8-byte longs
 * (session ids, zxids, ephemeralOwner) arrive as big-endian Buffers.
 */
declare module 'node-zookeeper-client' {
  import type { EventEmitter } from 'node:events';

  namespace zookeeper {
    interface Stat {
      readonly czxid: Buffer;
      readonly mzxid: Buffer;
      readonly ctime: Buffer;
      readonly mtime: Buffer;
      readonly version: number;
      readonly cversion: number;
      readonly aversion: number;
      readonly ephemeralOwner: Buffer;
      readonly dataLength: number;
      readonly numChildren: number;
      readonly pzxid: Buffer;
    }

    interface Exception extends Error {
      readonly code: number;
      getCode(): number;
      getName(): string;
      getPath(): string | undefined;
    }

    interface Event {
      readonly type: number;
      readonly name: string;
      readonly path: string;
      getType(): number;
      getName(): string;
      getPath(): string;
    }

    interface State {
      readonly name: string;
      readonly code: number;
      getName(): string;
      getCode(): number;
    }

    interface Id {
      readonly scheme: string;
      readonly id: string;
    }

    interface ACL {
      /** The constructor refuses 0; the field may be set to 0 afterwards (an entry granting nothing). */
      permission: number;
      readonly id: Id;
    }

    type Watcher = (event: Event) => void;
    type ErrorCallback = (error: Exception | null) => void;

    interface ClientOptions {
      /** Milliseconds requested; the server clamps it to [2, 20] * tickTime unless configured otherwise. */
      sessionTimeout?: number;
      /** Milliseconds between connection attempts once every server was tried. */
      spinDelay?: number;
      /** Retries on CONNECTION_LOSS (with a back-off of 1 s, 2 s, ...). */
      retries?: number;
    }

    /** Internal, but the only way to tear down a socket that never finished the handshake. */
    interface ConnectionManager {
      readonly socket?: { destroy(): void };
      readonly state: number;
    }

    interface Client extends EventEmitter {
      readonly connectionManager: ConnectionManager;
      connect(): void;
      close(): void;
      getState(): State;
      getSessionId(): Buffer;
      getSessionTimeout(): number;
      create(
        path: string,
        data: Buffer | null,
        mode: number,
        callback: (error: Exception | null, path: string) => void,
      ): void;
      create(
        path: string,
        data: Buffer | null,
        acls: readonly ACL[],
        mode: number,
        callback: (error: Exception | null, path: string) => void,
      ): void;
      /** Sent after every (re)connect, in the order added. */
      addAuthInfo(scheme: string, auth: Buffer): void;
      getACL(path: string, callback: (error: Exception | null, acls: ACL[], stat: Stat) => void): void;
      remove(path: string, version: number, callback: ErrorCallback): void;
      exists(
        path: string,
        watcher: Watcher,
        callback: (error: Exception | null, stat: Stat | null) => void,
      ): void;
      exists(path: string, callback: (error: Exception | null, stat: Stat | null) => void): void;
      getChildren(
        path: string,
        watcher: Watcher,
        callback: (error: Exception | null, children: string[], stat: Stat) => void,
      ): void;
      getChildren(
        path: string,
        callback: (error: Exception | null, children: string[], stat: Stat) => void,
      ): void;
      getData(
        path: string,
        watcher: Watcher,
        callback: (error: Exception | null, data: Buffer | null, stat: Stat) => void,
      ): void;
      getData(
        path: string,
        callback: (error: Exception | null, data: Buffer | null, stat: Stat) => void,
      ): void;
      setData(
        path: string,
        data: Buffer,
        version: number,
        callback: (error: Exception | null, stat: Stat) => void,
      ): void;
      mkdirp(path: string, callback: (error: Exception | null, path: string) => void): void;
      mkdirp(
        path: string,
        data: Buffer | null,
        acls: readonly ACL[],
        mode: number,
        callback: (error: Exception | null, path: string) => void,
      ): void;
    }

    interface Module {
      createClient(connectionString: string, options?: ClientOptions): Client;
      readonly ACL: new (permission: number, id: Id) => ACL;
      readonly Id: new (scheme: string, id: string) => Id;
      readonly Permission: {
        readonly READ: number;
        readonly WRITE: number;
        readonly CREATE: number;
        readonly DELETE: number;
        readonly ADMIN: number;
        readonly ALL: number;
      };
      readonly CreateMode: {
        readonly PERSISTENT: number;
        readonly EPHEMERAL: number;
      };
      readonly Exception: {
        readonly OK: number;
        readonly CONNECTION_LOSS: number;
        readonly OPERATION_TIMEOUT: number;
        readonly NO_NODE: number;
        readonly BAD_VERSION: number;
        readonly NODE_EXISTS: number;
        readonly NOT_EMPTY: number;
        readonly SESSION_EXPIRED: number;
        readonly NO_AUTH: number;
        readonly AUTH_FAILED: number;
      };
      readonly State: {
        readonly DISCONNECTED: State;
        readonly SYNC_CONNECTED: State;
        readonly EXPIRED: State;
        readonly AUTH_FAILED: State;
      };
      readonly Event: {
        readonly NODE_CREATED: number;
        readonly NODE_DELETED: number;
        readonly NODE_DATA_CHANGED: number;
        readonly NODE_CHILDREN_CHANGED: number;
      };
    }
  }

  const zookeeper: zookeeper.Module;
  export = zookeeper;
}

/** The library's Jute codec (internal): zk-wire.ts replaces the decoders of read replies with faster ones. */
declare module 'node-zookeeper-client/lib/jute/index.js' {
  const jute: {
    readonly protocol: Record<string, new () => object>;
    readonly data: Record<string, new () => object>;
    readonly Request: { readonly prototype: { toBuffer(): Buffer } };
  };
  export = jute;
}
