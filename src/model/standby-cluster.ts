/**
 * The `standby_cluster` section of the dynamic configuration (Patroni's `global_config.get_standby_cluster_config`
 * and `is_standby_cluster`): the cluster replicates from a remote primary (`host`/`port`) or from an archive
 * (`restore_command`), and the member holding the lock is its standby leader. Pure.
 */
import type { JsonObject } from './cluster.js';
import { pyBool } from './python.js';

export interface StandbyClusterConfig {
  /** libpq host (may list several, comma separated); undefined: libpq's default. */
  readonly host?: string;
  readonly port?: number;
  /** The slot to use on the remote primary; undefined: no slot (Patroni's `no_replication_slot`). */
  readonly primarySlotName?: string;
  readonly restoreCommand?: string;
  readonly archiveCleanupCommand?: string;
  /** As given (an integer in ms, or a text with a unit). */
  readonly recoveryMinApplyDelay?: string;
  /** The methods that clone from the remote primary (default: the local `create_replica_methods`). */
  readonly createReplicaMethods?: readonly string[];
}

const text = (v: unknown): string | undefined =>
  typeof v === 'string'
    ? v === ''
      ? undefined
      : v
    : typeof v === 'number' || typeof v === 'bigint'
      ? String(v)
      : undefined;

/**
 * The standby cluster settings of a dynamic configuration, or undefined when it is no standby cluster: Patroni's
 * test is a mapping with a truthy `host`, `port` or `restore_command`.
 */
export function standbyClusterOf(data: JsonObject | undefined): StandbyClusterConfig | undefined {
  const s = data?.['standby_cluster'];
  if (typeof s !== 'object' || s === null || Array.isArray(s)) return undefined;
  const sc = s as JsonObject;
  if (!pyBool(sc['host']) && !pyBool(sc['port']) && !pyBool(sc['restore_command'])) return undefined;
  const port = text(sc['port']);
  const portNumber = port === undefined ? undefined : Number.parseInt(port, 10);
  const methods = sc['create_replica_methods'];
  const out: Record<string, unknown> = {
    host: pyBool(sc['host']) ? text(sc['host']) : undefined,
    port: portNumber !== undefined && Number.isInteger(portNumber) && portNumber > 0 ? portNumber : undefined,
    primarySlotName: 'primary_slot_name' in sc ? text(sc['primary_slot_name']) : undefined,
    restoreCommand: text(sc['restore_command']),
    archiveCleanupCommand: text(sc['archive_cleanup_command']),
    recoveryMinApplyDelay: text(sc['recovery_min_apply_delay']),
    createReplicaMethods: Array.isArray(methods)
      ? methods.filter((m): m is string => typeof m === 'string')
      : undefined,
  };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

/** Patroni's `is_standby_cluster`. */
export function isStandbyCluster(data: JsonObject | undefined): boolean {
  return standbyClusterOf(data) !== undefined;
}
