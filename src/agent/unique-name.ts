/**
 * Patroni's `ensure_unique_name`: at start-up, a member key with our name whose REST API answers `GET /liveness`
 * (any HTTP answer, within 3 s) means another agent already runs under this name; starting a second one would
 * split the member's identity (two PostgreSQL instances publishing one key), so the agent refuses to start.
 */
import { errorText } from '../model/text.js';
import { requestMember, type RestClientOptions } from '../api/client.js';
import type { Cluster } from '../model/cluster.js';

export interface UniqueNameDeps {
  /** The cluster as read once from the DCS (undefined: the DCS could not be read; nothing to check against). */
  readonly cluster: Cluster | undefined;
  readonly name: string;
  /** GET /liveness on a member's api_url; resolves when anything answered, rejects otherwise. */
  readonly liveness: (apiUrl: string) => Promise<unknown>;
}

/** The message Patroni logs (CRITICAL) before exiting with code 1. */
export function duplicateNameMessage(name: string): string {
  return `Can't start; there is already a node named '${name}' running`;
}

/** True when a member of that name is registered and its REST API answers. */
export async function nameAlreadyRunning(d: UniqueNameDeps): Promise<boolean> {
  const member = d.cluster?.members.find((m) => m.name === d.name);
  const apiUrl = member?.data.apiUrl;
  if (member === undefined || !apiUrl) return false;
  try {
    await d.liveness(apiUrl);
    return true;
  } catch {
    return false;
  }
}

/**
 * The start-up check wired in agent.ts: one read of the cluster (a DCS that cannot be read leaves the check out,
 * the HA loop then deals with the DCS), then the probe; logs CRITICAL and resolves true when the agent must exit.
 */
export async function refuseDuplicateName(o: {
  readonly getCluster: () => Promise<Cluster>;
  readonly name: string;
  readonly restOptions: Omit<RestClientOptions, 'timeoutMs'>;
  readonly log: { critical(text: string): void; warning(text: string): void };
}): Promise<boolean> {
  let cluster: Cluster | undefined;
  try {
    cluster = await o.getCluster();
  } catch (e) {
    o.log.warning(`Can not get cluster from dcs to check the member name: ${errorText(e)}`);
    return false;
  }
  const running = await nameAlreadyRunning({
    cluster,
    name: o.name,
    liveness: (apiUrl) => requestMember(apiUrl, 'liveness', { ...o.restOptions, timeoutMs: 3000 }),
  });
  if (running) o.log.critical(duplicateNameMessage(o.name));
  return running;
}
