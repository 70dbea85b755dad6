/**
 * Patroni's ZooKeeper security settings on node-zookeeper-client 1.1.x, which has ACLs and `addAuthInfo` but no TLS.
 *
 * TLS: the library opens its sockets with `net.connect` inside `ConnectionManager.connect` and takes no socket
 * factory, so `useTls` replaces that one method on the client's own ConnectionManager with the same steps over
 * `tls.connect`; everything after the socket (handshake with the server, packets, pings, reconnects to the next host)
 * stays the library's. The session starts once the TLS handshake is done (`secureConnect`), and the library's connect
 * timeout covers the handshake. Checks as kazoo's `create_tcp_connection` with Patroni's settings: the server's chain
 * is verified against the system CAs plus `cacert` unless `verify: false`, its host name is not (kazoo's
 * `check_hostname` defaults to off), and the client certificate is presented when both `cert` and `key` are set.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { ACL, Client, Module as ZkModule } from 'node-zookeeper-client';
import { DcsError } from '../dcs.js';
import type { ZooKeeperAcl, ZooKeeperTls } from '../target.js';
import { errorText } from '../../model/text.js';

/** The parts of the library's ConnectionManager that its own `connect` uses (lib/ConnectionManager.js, 1.1.3). */
interface ConnectionInternals {
  socket?: import('node:net').Socket;
  connectTimeout: number;
  connectTimeoutHandler: NodeJS.Timeout | null;
  setState(state: number): void;
  findNextServer(callback: (server: { host: string; port: number }) => void): void;
  onSocketConnectTimeout(): void;
  onSocketConnected(): void;
  onSocketData(data: Buffer): void;
  onSocketDrain(): void;
  onSocketClosed(hadError: boolean): void;
  onSocketError(error: Error): void;
  connect(): void;
}

/**
 * node:tls, loaded only when TLS is configured: loading it (and with it Node's TLS and crypto layers) is a
 * noticeable part of a CLI start on a plain ZooKeeper.
 */
const nodeTls = (): typeof import('node:tls') => process.getBuiltinModule('node:tls');

/** ConnectionManager's CONNECTING state. */
const CM_CONNECTING = 1;

/** The TLS material, read and checked now: a missing file or a wrong key password is a DcsError here. */
export function secureContextFor(tls: ZooKeeperTls, hosts: string): SecureContext {
  const read = (what: string, path: string | undefined): Buffer | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (e) {
      throw new DcsError(`zookeeper at ${hosts}: cannot read ${what} ${path}: ${errorText(e)}`);
    }
  };
  const cacert = read('zookeeper.cacert', tls.cacert);
  const { createSecureContext, rootCertificates } = nodeTls();
  try {
    return createSecureContext({
      // kazoo loads the default CAs and then cacert on top of them.
      ...(cacert ? { ca: [...rootCertificates, cacert.toString('utf8')] } : {}),
      cert: read('zookeeper.cert', tls.cert),
      key: read('zookeeper.key', tls.key),
      ...(tls.keyPassword !== undefined ? { passphrase: tls.keyPassword } : {}),
    });
  } catch (e) {
    throw new DcsError(
      `zookeeper at ${hosts}: the TLS settings cannot be used (zookeeper.cacert, cert, key, key_password): ${errorText(e)}`,
    );
  }
}

/** What the TLS connects have seen: the last handshake or socket error, for the timeout message. */
export interface TlsProbe {
  lastError?: string;
}

/** Makes `client` connect over TLS (see the file comment). Call before `client.connect()`. */
export function useTls(client: Client, context: SecureContext, verify: boolean): TlsProbe {
  const probe: TlsProbe = {};
  const cm = client.connectionManager as unknown as ConnectionInternals;
  cm.connect = function connectTls(this: void): void {
    cm.setState(CM_CONNECTING);
    cm.findNextServer((server) => {
      const socket = nodeTls().connect({
        host: server.host,
        port: server.port,
        secureContext: context,
        rejectUnauthorized: verify,
        // The chain is verified (unless verify: false), the host name is not: kazoo's check_hostname=False.
        checkServerIdentity: () => undefined,
        ...(isIP(server.host) === 0 ? { servername: server.host } : {}),
      });
      cm.socket = socket;
      cm.connectTimeoutHandler = setTimeout(() => cm.onSocketConnectTimeout(), cm.connectTimeout);
      socket.setNoDelay();
      socket.on('secureConnect', () => {
        probe.lastError = undefined;
        cm.onSocketConnected();
      });
      socket.on('data', (data: Buffer) => cm.onSocketData(data));
      socket.on('drain', () => cm.onSocketDrain());
      socket.on('close', (hadError: boolean) => cm.onSocketClosed(hadError));
      socket.on('error', (error: Error) => {
        probe.lastError = `${server.host}:${server.port}: ${errorText(error)}`;
        cm.onSocketError(error);
      });
    });
  };
  return probe;
}

/** `auth_data`: every entry is sent after each connect, as kazoo does, before any request of ours. */
export function addAuth(
  client: Client,
  auth: readonly { readonly scheme: string; readonly credential: string }[] | undefined,
): void {
  for (const { scheme, credential } of auth ?? [])
    client.addAuthInfo(scheme, Buffer.from(credential, 'utf8'));
}

/** `set_acls` as the library's ACL objects; undefined (the open ACL) when none is configured, as kazoo. */
export function znodeAcl(zk: ZkModule, acls: readonly ZooKeeperAcl[] | undefined): ACL[] | undefined {
  if (!acls || acls.length === 0) return undefined;
  return acls.map((a) => {
    // The library's constructor refuses 0; kazoo sends an entry granting nothing for an empty permission list.
    const acl = new zk.ACL(a.perms === 0 ? zk.Permission.READ : a.perms, new zk.Id(a.scheme, a.id));
    acl.permission = a.perms;
    return acl;
  });
}
