/**
 * What every command needs: the loaded configuration, the cluster name to act on, and a DCS client for it.
 * No oclif here: commands pass plain values in.
 */
import { dcsTarget, ctlSection, restCredentials, type LocalConfig } from '../config/local-config.js';
import { UserError } from '../config/errors.js';
import type { Dcs } from '../dcs/dcs.js';
import { createDcs } from '../dcs/registry.js';
import type { RestClientOptions } from '../api/client.js';
import { scalarText, textOf } from '../model/text.js';

/** patronictl's default when the dynamic configuration is not known yet. */
export const CTL_RETRY_TIMEOUT = 10;

export function clusterNameOrScope(config: LocalConfig, given: string | undefined): string {
  const name = given ?? config.scope;
  if (!name) {
    throw new UserError(
      `no cluster name given and no scope in ${config.source === 'environment' ? 'the environment' : config.source}: pass CLUSTER_NAME or set scope (PATRONI_SCOPE)`,
    );
  }
  return name;
}

export async function openDcs(config: LocalConfig, scope: string): Promise<Dcs> {
  return createDcs(dcsTarget(config), {
    namespace: config.namespace,
    scope,
    ttl: 30,
    retryTimeout: CTL_RETRY_TIMEOUT,
    ctl: true,
  });
}

export function restOptions(config: LocalConfig, timeoutMs = 5000): RestClientOptions {
  const ctl = ctlSection(config);
  const restapi = config.tree['restapi'];
  const str = scalarText;
  return {
    auth: restCredentials(config),
    cacert:
      str(ctl['cacert']) ??
      (typeof restapi === 'object' && restapi !== null
        ? str((restapi as Record<string, unknown>)['cafile'])
        : undefined),
    certfile: str(ctl['certfile']),
    keyfile: str(ctl['keyfile']),
    insecure: ctl['insecure'] === true || textOf(ctl['insecure']).toLowerCase() === 'true',
    timeoutMs,
  };
}
