/**
 * The agent's REST API: `startApiServer` fed with a status built from fresh queries of the local PostgreSQL (as
 * Patroni's `get_postgresql_status` does on every request, on the API's own connection) and the HA loop's cached
 * cluster view; `GET /metrics` renders the same status (src/api/metrics.ts). A reload (SIGHUP, POST /reload) applies the new `restapi` settings (Patroni's `reload_config`).
 */
import {
  serverHeaderFor,
  startApiServer,
  type ApiSecurity,
  type ApiServer,
  type ApiServerOptions,
} from '../api/server.js';
import { metricsText } from '../api/metrics.js';
import { statusJson, type AgentStatus, type PostgresSnapshot, type WalSender } from '../api/status.js';
import type { AgentConfig } from '../config/agent-config.js';
import type { Dcs } from '../dcs/dcs.js';
import type { HaLoop, LoopLogger } from '../ha/loop.js';
import { parseConnUrl } from '../ha/loop.js';
import { isPaused, syncStateMatches } from '../model/cluster.js';
import { parseBool } from '../model/python.js';
import { isQuorumSetting } from '../ha/sync.js';
import type { Lsn } from '../model/lsn.js';
import { ApiSession, apiConnectOptions } from '../postgres/api-session.js';
import { isRunning } from '../postgres/pg-ctl.js';
import { instanceStatus, replicationStateOf, statReplication, type PgSession } from '../postgres/queries.js';
import { agentEndpoints } from './endpoints.js';
import { SPOKEN_PATRONI_VERSION, wireRole } from './member.js';
import type { PostgresNode } from './node.js';
import { createProber, probeTlsFor } from './peers.js';

/** PostgreSQL's timestamptz text (`2026-11-22 02:47:20.281062+00`) in Python `str(datetime)` form (`+00:00`). */
export function pyTimestamp(text: string): string {
  return text.replace(/([+-]\d{2})$/, '$1:00').replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
}

const max = (a: Lsn, b: Lsn): Lsn => (a > b ? a : b);

async function queryPostgres(s: PgSession): Promise<PostgresSnapshot> {
  const rows = await s.query(
    `SELECT pg_catalog.pg_postmaster_start_time()::text AS start,
            pg_catalog.current_setting('server_version_num')::int AS version,
            pg_catalog.pg_last_xact_replay_timestamp()::text AS replay_ts`,
  );
  const row = rows[0] ?? {};
  const st = await instanceStatus(s);
  const replication: WalSender[] = st.inRecovery
    ? []
    : (await statReplication(s)).map((r) => ({
        usename: r.usename ?? null,
        application_name: r.applicationName ?? '',
        client_addr: r.clientAddr ?? null,
        state: r.state ?? '',
        sync_state: r.syncState ?? '',
        sync_priority: r.syncPriority ?? 0,
      }));
  const received = st.receiveLsn ?? st.replayLsn ?? 0n;
  const replayed = st.replayLsn ?? 0n;
  return {
    postmasterStartTime: pyTimestamp(typeof row['start'] === 'string' ? row['start'] : ''),
    serverVersion: Number(row['version'] ?? 0),
    xlog: st.inRecovery
      ? {
          kind: 'replica',
          receivedLocation: max(received, 0n),
          replayedLocation: replayed,
          replayedTimestamp: typeof row['replay_ts'] === 'string' ? pyTimestamp(row['replay_ts']) : null,
          paused: st.replayPaused,
        }
      : { kind: 'primary', location: st.flushLsn ?? 0n },
    timeline: st.timeline ?? null,
    ...(replicationStateOf(st) ? { replicationState: replicationStateOf(st) } : {}),
    replication,
    ...(st.inRecovery && st.latestEndLsn !== undefined ? { latestEndLsn: st.latestEndLsn } : {}),
  };
}

export interface AgentRestDeps {
  /** The configuration in force (a reload replaces it). */
  readonly config: AgentConfig;
  readonly node: PostgresNode;
  readonly loop: HaLoop;
  readonly dcs: Dcs;
  readonly onError: (e: unknown) => void;
  /** For the unsafe endpoints (switchover probes, restart messages); without it they log nothing. */
  readonly log?: LoopLogger;
  /** Re-read the configuration file (SIGHUP), for POST /reload. */
  readonly reloadConfig?: () => void;
  /** The API's own PostgreSQL connection; `startAgentApi` opens one when not given. */
  readonly session?: ApiSession;
}

const SILENT: LoopLogger = { info: () => undefined, warning: () => undefined, error: () => undefined };

/** The unsafe endpoints (src/agent/endpoints.ts) bound to this agent's node, loop and DCS. */
function unsafeHandlers(deps: AgentRestDeps): ReturnType<typeof agentEndpoints> {
  const { config, node, loop } = deps;
  const log = deps.log ?? SILENT;
  const session = deps.session ?? new ApiSession(() => apiConnectOptions(deps.config));
  const pgQuery = async (sql: string): Promise<unknown> =>
    session.run(async (s) => (await s.query(sql))[0]?.['v']);
  return agentEndpoints({
    name: config.name,
    dcs: deps.dcs,
    loop,
    probe: createProber(() => probeTlsFor(deps.config), log),
    log,
    node: {
      role: () => node.currentRole,
      serverVersion: async () =>
        Number(
          await pgQuery(`SELECT pg_catalog.current_setting('server_version_num')::int AS v`).catch(() => 0),
        ),
      postmasterStartTime: async () => {
        const v = await pgQuery(`SELECT pg_catalog.pg_postmaster_start_time()::text AS v`);
        return typeof v === 'string' ? pyTimestamp(v) : undefined;
      },
      isStarting: () => node.currentState === 'starting',
      pendingRestart: () => node.pendingRestart,
      restart: (timeout, task) => {
        const primary = node.currentRole === 'master' || node.currentRole === 'primary';
        const leader = loop.lastCluster?.leader;
        const addr = primary ? undefined : parseConnUrl(leader?.member?.data.connUrl);
        const target =
          leader && addr && leader.name !== config.name ? { name: leader.name, ...addr } : undefined;
        return node.restartPostgresql(primary ? 'primary' : 'replica', target, timeout, task);
      },
      reinitialize: (from, task) => node.reinitialize(from, task),
      setScheduledRestart: (data) => {
        node.scheduledRestart = data;
      },
      reload: async () => {
        deps.reloadConfig?.();
        await node.reloadPostgresql();
      },
    },
  });
}

/** `retry`: GET /patroni's query is retried once after a failure, as Patroni's `get_postgresql_status(retry=True)`. */
export async function buildStatus(deps: AgentRestDeps, retry = false): Promise<AgentStatus> {
  const { config, node, loop } = deps;
  const running = isRunning(config.postgresql.dataDir) !== undefined;
  let postgres: PostgresSnapshot | undefined;
  if (running && node.currentState === 'running' && deps.session) {
    try {
      postgres = retry
        ? await deps.session.sharedRetrying('status', queryPostgres)
        : await deps.session.shared('status', queryPostgres);
    } catch {
      postgres = undefined;
    }
  }
  const cluster = loop.lastCluster;
  const ha = loop.haConfig;
  const lockUntil = loop.leaderLockUntil();
  let state: string = node.currentState;
  if (state === 'running' && !postgres) state = 'unknown';
  // In a standby cluster a replica reports the local role: `standby_leader` on the lock holder (Patroni's api.py).
  const role = postgres
    ? postgres.xlog.kind === 'primary'
      ? 'primary'
      : ha.standby !== undefined && node.currentRole === 'standby_leader'
        ? 'standby_leader'
        : 'replica'
    : wireRole(node.currentRole);
  const syncMode = cluster?.config?.data['synchronous_mode'];
  const quorumMode = isQuorumSetting(syncMode);
  const listedInSync =
    role === 'replica' &&
    cluster !== undefined &&
    (quorumMode || parseBool(syncMode) === true) &&
    ha.standby === undefined &&
    syncStateMatches(cluster.sync, config.name);
  return {
    at: Date.now(),
    state,
    role,
    postmasterRunning: running,
    ...(postgres ? { postgres } : {}),
    // As Patroni: a replica listed in `/sync` while the configuration says synchronous_mode (`quorum_standby` for
    // quorum commit).
    syncStandby: listedInSync && !quorumMode,
    quorumStandby: listedInSync && quorumMode,
    pause: cluster ? isPaused(cluster) : false,
    clusterUnlocked: !cluster?.leader,
    failsafeModeIsActive: loop.failsafeIsActive(),
    dcsLastSeen: loop.dcsLastSeen,
    tags: node.memberTags,
    ...(node.sysidKnown ? { sysid: node.sysidKnown } : {}),
    pendingRestart: node.pendingRestart,
    pendingRestartReason: node.pendingRestartReason,
    patroni: { version: SPOKEN_PATRONI_VERSION, scope: config.scope, name: config.name },
    watchdogFailed: loop.watchdogFailed,
    ...(lockUntil === undefined ? {} : { leaderLockUntil: lockUntil }),
    standbyCluster: ha.standby !== undefined,
    nextRunAt: loop.nextRun,
    ttl: ha.ttl,
    maximumLagOnFailover: Number(ha.maximumLagOnFailover),
  };
}

/** The reloadable part of `restapi` (Patroni's `RestApiServer.reload_config`). */
export function apiSecurityFor(config: AgentConfig): ApiSecurity {
  const r = config.restapi;
  return {
    ...(r.authentication ? { auth: r.authentication } : {}),
    allowlist: r.allowlist,
    allowlistIncludeMembers: r.allowlistIncludeMembers,
    serverHeader: serverHeaderFor(r.serverTokens, SPOKEN_PATRONI_VERSION),
    extraHeaders: r.certfile ? { ...r.httpExtraHeaders, ...r.httpsExtraHeaders } : r.httpExtraHeaders,
    ...(r.certfile
      ? {
          tls: {
            certfile: r.certfile,
            ...(r.keyfile ? { keyfile: r.keyfile } : {}),
            ...(r.keyfilePassword ? { keyfilePassword: r.keyfilePassword } : {}),
            ...(r.cafile ? { cafile: r.cafile } : {}),
            ...(r.ciphers ? { ciphers: r.ciphers } : {}),
            ...(r.verifyClient ? { verifyClient: r.verifyClient } : {}),
          },
        }
      : {}),
  };
}

const listenOf = (config: AgentConfig): string => {
  const l = config.restapi.listen;
  return `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;
};

const RELOAD_GRACE_MS = 2_000;

export interface AgentApi {
  /** Applies a reloaded configuration; a new listener when the address or the TLS mode changed. */
  reload(config: AgentConfig): Promise<void>;
  close(): Promise<void>;
}

export async function startAgentApi(initial: AgentRestDeps): Promise<AgentApi> {
  const session = initial.session ?? new ApiSession(() => apiConnectOptions(deps.config));
  let deps: AgentRestDeps = { ...initial, session };
  const handlers = unsafeHandlers({
    ...deps,
    get config() {
      return deps.config;
    },
  });
  const optionsFor = (config: AgentConfig): ApiServerOptions => ({
    listen: listenOf(config),
    ...apiSecurityFor(config),
    getStatus: (retry) => buildStatus(deps, retry),
    // GET /metrics reads the status document GET /patroni answers, as Patroni's do_GET_metrics does.
    getMetrics: async () => metricsText(statusJson(await buildStatus(deps))),
    getCluster: () => deps.loop.lastCluster,
    getFailsafe: () => deps.loop.failsafeTopology,
    readCluster: async () => {
      try {
        return await deps.dcs.getCluster({ fresh: true });
      } catch {
        return undefined;
      }
    },
    memberApiUrls: () => (deps.loop.lastCluster?.members ?? []).flatMap((m) => m.data.apiUrl ?? []),
    handlers,
    onError: deps.onError,
    onWarning: (text) => deps.log?.warning(text),
  });
  let server: ApiServer = await startApiServer(optionsFor(deps.config));
  return {
    async reload(config) {
      const moved = listenOf(config) !== listenOf(deps.config);
      deps = { ...deps, config };
      if (!moved && server.reconfigure(apiSecurityFor(config)) === 'applied') return;
      if (moved) {
        // A new address: start it first, so that when it fails the old one keeps serving.
        const next = await startApiServer(optionsFor(config));
        await server.close();
        server = next;
        return;
      }
      // Same address: free it first; a request under way (this very POST /reload) gets time to be answered.
      const closing = server.close(RELOAD_GRACE_MS);
      server = await startApiServer(optionsFor(config));
      await closing;
    },
    async close() {
      await server.close();
      await session.close();
    },
  };
}
