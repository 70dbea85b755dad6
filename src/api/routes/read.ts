/**
 * The read-only endpoints (api.py `do_GET*`, `do_HEAD`, `do_OPTIONS`): health checks, the status document, the
 * cluster view, history, dynamic configuration, metrics and failsafe. No access checks, as in Patroni.
 */
import type { Cluster } from '../../model/cluster.js';
import { clusterView, clusterViewJson } from '../../model/cluster-view.js';
import { flavorFor, type VersionTuple } from '../../model/flavor.js';
import { pyJson } from '../../model/pyjson.js';
import { healthCheck, type QueryParams } from '../health.js';
import { METRICS_CONTENT_TYPE } from '../metrics.js';
import { spokenVersion, statusJson, type AgentStatus, type PrimaryRoleSpelling } from '../status.js';
import type { MaybePromise } from '../types.js';
import type { Responder } from '../wire.js';

export interface ReadSources {
  /** `retry`: a failed PostgreSQL query is asked once more (GET /patroni, as Patroni's `retry=True`). */
  readonly getStatus: (retry?: boolean) => MaybePromise<AgentStatus>;
  /** The cached DCS view; undefined when the DCS is unreachable. */
  readonly getCluster: () => MaybePromise<Cluster | undefined>;
  /** A fresh DCS read for `GET /cluster` (Patroni re-reads); defaults to `getCluster`. */
  readonly readCluster?: () => MaybePromise<Cluster | undefined>;
  /** `GET /metrics` body (`metricsText` of the status document); without it `/metrics` is an ordinary health check. */
  readonly getMetrics?: () => MaybePromise<string>;
  /** `GET /failsafe`; defaults to the cached view's failsafe key; undefined => 502. */
  readonly getFailsafe?: () => MaybePromise<Readonly<Record<string, string>> | undefined>;
  /** Wire flavour of the status document; defaults follow `status.patroni.version`. */
  readonly speaks?: VersionTuple;
  readonly primaryRole?: PrimaryRoleSpelling;
}

export interface ReadContext {
  readonly method: string;
  readonly path: string;
  readonly query: QueryParams;
  readonly respond: Responder;
}

export type ReadRoute = (ctx: ReadContext) => Promise<void>;

/** Routes keyed like Patroni's handler methods: `<METHOD>_<first segment>` or the generic `<METHOD>`. */
export function readRoutes(src: ReadSources): Readonly<Record<string, ReadRoute | undefined>> {
  const statusBody = (status: AgentStatus): string =>
    pyJson(statusJson(status, { speaks: src.speaks, primaryRole: src.primaryRole }));

  const health: ReadRoute = async ({ method, path, query, respond }) => {
    const [status, cluster] = await Promise.all([src.getStatus(), src.getCluster()]);
    const r = healthCheck(method, path, query, status, cluster);
    if (r.body === 'none') respond.statusOnly(r.code);
    else respond.text(r.code, statusBody(status), 'application/json');
  };
  const json = (respond: Responder, value: unknown): void =>
    respond.text(200, pyJson(value), 'application/json');

  return {
    GET: health,
    HEAD: health,
    OPTIONS: health,
    GET_liveness: health,
    GET_readiness: health,
    GET_patroni: async ({ respond }) =>
      respond.text(200, statusBody(await src.getStatus(true)), 'application/json'),
    GET_cluster: async ({ respond }) => {
      const [status, cluster] = await Promise.all([src.getStatus(), (src.readCluster ?? src.getCluster)()]);
      if (!cluster) return respond.error(503);
      json(respond, clusterViewJson(clusterView(cluster, flavorFor(src.speaks ?? spokenVersion(status)))));
    },
    GET_history: async ({ respond }) => {
      const cluster = await src.getCluster();
      if (!cluster) return respond.error(503);
      const lines = (cluster.history?.lines ?? []).map((l) => {
        const line: unknown[] = [l.timeline, l.lsn, l.reason];
        if (l.timestamp !== undefined || l.newLeader !== undefined) line.push(l.timestamp ?? null);
        if (l.newLeader !== undefined) line.push(l.newLeader);
        return line;
      });
      json(respond, lines);
    },
    GET_config: async ({ respond }) => {
      const config = (await src.getCluster())?.config;
      if (!config) return respond.error(502);
      json(respond, config.data);
    },
    GET_metrics: src.getMetrics
      ? async ({ respond }) => respond.text(200, await src.getMetrics!(), METRICS_CONTENT_TYPE)
      : undefined,
    GET_failsafe: async ({ respond }) => {
      const failsafe = src.getFailsafe ? await src.getFailsafe() : (await src.getCluster())?.failsafe;
      if (!failsafe) return respond.error(502);
      json(respond, failsafe);
    },
  };
}
