/** Opens the DCS for one cluster, hands the cluster to `use`, and always closes the client. */
import type { LocalConfig } from '../config/local-config.js';
import type { Cluster } from '../model/cluster.js';
import { clusterNameOrScope, openDcs } from './context.js';

export async function withCluster<T>(
  config: LocalConfig,
  clusterName: string | undefined,
  use: (cluster: Cluster, name: string) => Promise<T> | T,
): Promise<T> {
  const name = clusterNameOrScope(config, clusterName);
  const dcs = await openDcs(config, name);
  try {
    return await use(await dcs.getCluster(), name);
  } finally {
    await dcs.close();
  }
}
