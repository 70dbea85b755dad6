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
}

export interface ZooKeeperTarget {
  readonly kind: 'zookeeper';
  readonly hosts: readonly string[];
}

export type DcsTarget = Etcd3Target | ZooKeeperTarget;
