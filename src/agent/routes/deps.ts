/** What the unsafe endpoints (src/agent/routes) get from the agent, so they run without PostgreSQL in tests. */
import type { Dcs } from '../../dcs/dcs.js';
import type { PeerProber, TaskControl } from '../../ha/loop.js';
import type { AsyncKind, FailsafeLeader } from '../../ha/snapshot.js';
import type { Cluster, JsonObject, Member } from '../../model/cluster.js';

/** The HA loop as the endpoints see it. */
export interface EndpointLoop {
  readonly lastCluster: Cluster | undefined;
  readonly haConfig: {
    readonly loopWait: number;
    readonly primaryStartTimeout: number;
    readonly failsafeMode?: boolean;
  };
  /** POST /failsafe: a leader contacted us; returns our received/replayed position (src/ha/loop.ts). */
  failsafeContactedBy?(leader: FailsafeLeader): bigint | undefined;
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
