/**
 * What every command needs: the loaded configuration, the cluster name to act on, and a DCS client for it.
 * No oclif here: commands pass plain values in.
 */
import { dcsTarget, ctlSection, restCredentials, type LocalConfig } from '../config/local-config.js';
import { UserError } from '../config/errors.js';
import type { Dcs } from '../dcs/dcs.js';
import { createDcs } from '../dcs/registry.js';
import type { RestClientOptions } from '../api/client.js';
import { pyBool } from '../model/python.js';
import { scalarText } from '../model/text.js';

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

/**
 * The CLI's REST client settings, patronictl's request.py: credentials and the CA fall back from `ctl` to
 * `restapi`; `ctl.insecure` counts when truthy (Python's `if insecure:`; the environment's PATRONI_CTL_INSECURE is
 * already parsed as Patroni parses it, config/env.ts). The client certificate is `ctl.certfile`/`keyfile` only, as
 * patronictl 4.1.4's request.py reads it (3.0.2 fell back to `restapi.certfile`; 4.1.4, the target, does not, and a
 * certificate the server cannot verify would fail a handshake that works without one).
 */
export function restOptions(config: LocalConfig, timeoutMs = 5000): RestClientOptions {
  const ctl = ctlSection(config);
  const restapi = mappingOf(config.tree['restapi']);
  const str = scalarText;
  const certfile = str(ctl['certfile']);
  const keyfile = certfile === undefined ? undefined : str(ctl['keyfile']);
  return {
    auth: restCredentials(config),
    cacert: str(ctl['cacert']) ?? str(restapi['cafile']),
    ...(certfile === undefined ? {} : { certfile }),
    ...(keyfile === undefined ? {} : { keyfile }),
    insecure: pyBool(ctl['insecure']),
    timeoutMs,
  };
}

function mappingOf(v: unknown): Readonly<Record<string, unknown>> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
