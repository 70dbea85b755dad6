/** Opens the configured DCS. Adapters are imported only when used, so ZooKeeper users never load etcd code. */
import type { DcsTarget } from './target.js';
import type { Dcs, DcsOptions } from './dcs.js';

export async function createDcs(target: DcsTarget, options: DcsOptions): Promise<Dcs> {
  if (target.kind === 'etcd3') {
    const { Etcd3Dcs } = await import('./etcd3/etcd3-dcs.js');
    const { withSrvEndpoints } = await import('./etcd3/srv.js');
    return new Etcd3Dcs(options, await withSrvEndpoints(target));
  }
  const { ZooKeeperDcs } = await import('./zookeeper/zookeeper-dcs.js');
  return new ZooKeeperDcs(options, target.hosts, target);
}
