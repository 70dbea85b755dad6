/**
 * The agent's unsafe REST endpoints with Patroni 3.0.2's validations, status codes and messages (api.py
 * `do_POST_switchover`/`failover`, `do_DELETE_switchover`, `do_PATCH_config`, `do_PUT_config`, `do_POST_reload`,
 * `do_POST_restart`, `do_DELETE_restart`, `do_POST_reinitialize`; ha.py `restart`, `reinitialize`). Access checks
 * (allowlist, client certificates, Basic auth) and body parsing happen in src/api/server.ts before these run.
 *
 * Everything the handlers touch comes in through `EndpointDeps`, so they can be exercised without PostgreSQL. The
 * handlers live in src/agent/routes (failover.ts, config.ts, restart.ts); this module binds them together.
 */
import type { UnsafeHandlers } from '../api/types.js';
import type { Dcs } from '../dcs/dcs.js';
import type { PeerProber, TaskControl } from '../ha/loop.js';
import type { AsyncKind } from '../ha/snapshot.js';
import type { Cluster, JsonObject, Member } from '../model/cluster.js';
import { configEndpoints } from './routes/config.js';
import { failoverEndpoints } from './routes/failover.js';
import { restartEndpoints } from './routes/restart.js';

/** The HA loop as the endpoints see it. */
export interface EndpointLoop {
  readonly lastCluster: Cluster | undefined;
  readonly haConfig: { readonly loopWait: number; readonly primaryStartTimeout: number };
  wake(): void;
  startRequested(
    kind: AsyncKind,
    description: string,
    body: (t: TaskControl) => Promise<boolean>,
  ): Promise<boolean> | string;
  cancelTask(): void;
}

/** The local member as the endpoints see it. */
export interface EndpointNode {
  /** `master` or `replica` (what PostgreSQL runs as now), anything else when unknown. */
  readonly role: () => string;
  /** `server_version_num`, 0 when unknown. */
  readonly serverVersion: () => Promise<number>;
  /** `pg_postmaster_start_time()` text, undefined when not running. */
  readonly postmasterStartTime: () => Promise<string | undefined>;
  /** Still starting after a restart that timed out. */
  readonly isStarting: () => boolean;
  /** A reload left a parameter that needs a restart (Patroni's `pending_restart`). */
  readonly pendingRestart: () => boolean;
  /** Stop and start again in the current role (`primary` when we hold the lock); resolves to success. */
  readonly restart: (timeoutSeconds: number, task: TaskControl) => Promise<boolean>;
  /** Stop, wipe the data directory and clone from `from`. */
  readonly reinitialize: (from: Member, task: TaskControl) => Promise<boolean>;
  /** Re-read the local configuration file and reload PostgreSQL (SIGHUP). */
  readonly reload: () => Promise<void>;
  /** Publish (or withdraw) the scheduled restart in the member key (`scheduled_restart`). */
  readonly setScheduledRestart: (data: JsonObject | undefined) => void;
}

export interface EndpointDeps {
  readonly name: string;
  readonly dcs: Dcs;
  readonly loop: EndpointLoop;
  readonly node: EndpointNode;
  /** `GET /patroni` of other members (Patroni's `fetch_nodes_statuses`). */
  readonly probe: PeerProber;
  readonly log: { info(text: string): void; warning(text: string): void };
  /** Seconds between DCS polls while a switchover runs; Patroni sleeps 1 s. */
  readonly pollIntervalMs?: number;
  readonly now?: () => number;
}

export {
  deepCompare,
  parseSchedule,
  parseSeconds,
  patchConfig,
  postgresVersionToInt,
  pyStr,
  type ScheduleResult,
} from './routes/parse.js';

/** All unsafe endpoints of the agent, from the route modules in src/agent/routes. */
export function agentEndpoints(deps: EndpointDeps): UnsafeHandlers {
  return { ...failoverEndpoints(deps), ...configEndpoints(deps), ...restartEndpoints(deps) };
}
