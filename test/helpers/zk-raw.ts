/**
 * Raw node-zookeeper-client sessions for looking behind the adapter's back: plain and unauthenticated, or over TLS
 * with a client certificate (the adapter's own TLS wrapper), optionally with digest credentials; and promise forms
 * of the calls the security tests make (ACLs, the znode tree, the error name of a refused call).
 */
import zookeeper from 'node-zookeeper-client';
import type { ACL, Client, Exception } from 'node-zookeeper-client';
import type { ZooKeeperTls } from '../../src/dcs/target.js';
import { secureContextFor, useTls } from '../../src/dcs/zookeeper/zk-security.js';

export async function rawZkClient(
  endpoint: string,
  options: { readonly tls?: ZooKeeperTls; readonly digest?: string } = {},
): Promise<Client> {
  const client = zookeeper.createClient(endpoint, { sessionTimeout: 10_000, spinDelay: 200 });
  if (options.tls) useTls(client, secureContextFor(options.tls, endpoint), options.tls.verify);
  if (options.digest) client.addAuthInfo('digest', Buffer.from(options.digest));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`raw client: no zookeeper at ${endpoint}`)), 15_000);
      client.once('connected', () => {
        clearTimeout(timer);
        resolve();
      });
      client.connect();
    });
  } catch (e) {
    client.close();
    throw e;
  }
  return client;
}

export const zkCall = <T>(start: (done: (e: Exception | null, v: T) => void) => void): Promise<T> =>
  new Promise<T>((resolve, reject) => start((e, v) => (e ? reject(e) : resolve(v))));

/** `OK`, or the name of the ZooKeeper error the call failed with (e.g. `NO_AUTH`). */
export async function zkOutcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    return (e as Exception).getName();
  }
}

/** A znode's ACL as `scheme:id:perms` entries. */
export async function aclOf(client: Client, path: string): Promise<string[]> {
  const acls = await zkCall<ACL[]>((done) => client.getACL(path, (e, a) => done(e, a)));
  return acls.map((a) => `${a.id.scheme}:${a.id.id}:${a.permission}`);
}

/** Every znode from `path` down. */
export async function znodeTree(client: Client, path: string): Promise<string[]> {
  const children = await zkCall<string[]>((done) => client.getChildren(path, (e, ch) => done(e, ch)));
  const below = await Promise.all(children.map((ch) => znodeTree(client, `${path}/${ch}`)));
  return [path, ...below.flat()];
}
