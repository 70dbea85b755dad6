/** Where the DCS is and how to reach it: what the local configuration's DCS section parses into. */
export interface Etcd3Target {
  readonly kind: 'etcd3';
  readonly hosts: readonly string[];
  readonly protocol: 'http' | 'https';
  readonly username?: string;
  readonly password?: string;
  readonly cacert?: string;
  readonly cert?: string;
  readonly key?: string;
  /** `etcd3.key_password`: the passphrase of an encrypted `key`. */
  readonly keyPassword?: string;
  /** `etcd3.srv`: the domain whose DNS SRV records name the endpoints (src/dcs/etcd3/srv.ts); `hosts` is the fallback. */
  readonly srv?: string;
  readonly srvSuffix?: string;
  /**
   * `etcd3.use_proxies` (also implied by `etcd3.proxy`): talk to `hosts` only. Otherwise they only bootstrap the list
   * of etcd members whose client URLs are used (src/dcs/etcd3/members.ts), as Patroni.
   */
  readonly useProxies?: boolean;
}

/** `zookeeper.use_ssl: true` and the files that go with it (kazoo's `create_tcp_connection`). */
export interface ZooKeeperTls {
  /** Trusted in addition to the system's CAs. */
  readonly cacert?: string;
  /** The client certificate and its key: both or neither. */
  readonly cert?: string;
  readonly key?: string;
  readonly keyPassword?: string;
  /** Verify the server's certificate chain (never its host name, as kazoo with Patroni's settings). */
  readonly verify: boolean;
}

/** One entry of the ACL every znode the agent creates gets (`zookeeper.set_acls`). */
export interface ZooKeeperAcl {
  readonly scheme: string;
  readonly id: string;
  /** ZooKeeper's permission bits: READ 1, WRITE 2, CREATE 4, DELETE 8, ADMIN 16 (ALL 31). */
  readonly perms: number;
}

export interface ZooKeeperTarget {
  readonly kind: 'zookeeper';
  readonly hosts: readonly string[];
  readonly tls?: ZooKeeperTls;
  /** Empty or absent: the open ACL (world:anyone, all permissions), as kazoo. */
  readonly acls?: readonly ZooKeeperAcl[];
  /** Sent after every connect, in order (`zookeeper.auth_data`: scheme -> credential). */
  readonly auth?: readonly { readonly scheme: string; readonly credential: string }[];
}

export type DcsTarget = Etcd3Target | ZooKeeperTarget;
