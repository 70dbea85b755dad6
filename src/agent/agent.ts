/**
 * `pgwarden agent CONFIG`: one member. Wiring (configuration, DCS, local PostgreSQL, HA loop, REST API), signals
 * (SIGTERM/SIGINT: shut down; SIGHUP: reload the configuration file); the shutdown sequence is in shutdown.ts.
 */
import { loadAgentConfig, refuseRoot, type AgentConfig } from '../config/agent-config.js';
import { assertDynamicConfigAtStart } from '../config/config-check.js';
import { UserError } from '../config/errors.js';
import type { Dcs } from '../dcs/dcs.js';
import { createDcs } from '../dcs/registry.js';
import { SyncReplication } from './sync-replication.js';
import { HaLoop } from '../ha/loop.js';
import { haConfigFromDynamic } from '../ha/snapshot.js';
import { errorText } from '../model/text.js';
import { createLogger } from './log.js';
import { PostgresNode } from './node.js';
import { createFailsafeCaller } from './failsafe.js';
import { createProber, probeTlsFor } from './peers.js';
import { startAgentApi } from './rest.js';
import { shutdown } from './shutdown.js';
import { refuseDuplicateName } from './unique-name.js';
import { AgentWatchdog } from './watchdog/watchdog.js';

export interface AgentOptions {
  readonly configPath: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly uid: number;
  /** Aborted: shut down as on SIGTERM (an uncaught error in the process, see main.ts); the reason is logged. */
  readonly stop?: AbortSignal;
}

/** Runs the agent until a signal or a fatal decision; resolves to the exit code. */
export async function runAgent(options: AgentOptions): Promise<number> {
  refuseRoot(options.uid);
  const log = createLogger();
  const loaded = loadAgentConfig(options.configPath, options.env);
  let config: AgentConfig = loaded.config;
  for (const w of configureLog(log, config)) log.warning(w);
  for (const w of loaded.warnings) log.warning(w);

  const node = new PostgresNode(config, log);
  // The DCS timings until it is read: patroni.dynamic.json's, else bootstrap.dcs (Patroni loads its cache first).
  const boot = haConfigFromDynamic(node.localDynamicConfig());
  const dcs: Dcs = await createDcs(config.dcs, {
    namespace: config.namespace,
    scope: config.scope,
    name: config.name,
    ttl: boot.ttl,
    retryTimeout: boot.retryTimeout,
    ctl: false,
  });
  await refuseDynamicConfigAtStart(dcs, log);
  // Only /liveness of an address found in the DCS: no password is sent (api_url is not vouched for), but the client
  // certificate is, as Patroni's request does: a REST API with verify_client: required answers nothing without it.
  const { certfile, keyfile } = probeTlsFor(config);
  if (
    await refuseDuplicateName({
      getCluster: () => dcs.getCluster(),
      name: config.name,
      restOptions: { insecure: true, ...(certfile ? { certfile } : {}), ...(keyfile ? { keyfile } : {}) },
      log,
    })
  ) {
    await dcs.close();
    return 1;
  }
  const watchdog = new AgentWatchdog(config.watchdog, log);
  if (watchdog.unsupportedButRequired) {
    log.error('Configuration requires a watchdog, but watchdog is not supported on this platform.');
    await dcs.close();
    return 1;
  }
  let exitCode = 0;
  let shuttingDown = false;
  const loop: HaLoop = new HaLoop({
    dcs,
    node,
    sync: new SyncReplication(config.name, node, dcs, log),
    log,
    probe: createProber(() => probeTlsFor(config), log),
    failsafe: createFailsafeCaller(
      () => config,
      log,
      () => node.failsafeSlots(loop.lastCluster),
    ),
    watchdog,
    onFatal: (code, reason) => {
      log.error(`exiting: ${reason}`);
      exitCode = code;
      loop.stop();
    },
  });

  const onHup = (): void => {
    try {
      const next = loadAgentConfig(options.configPath, options.env);
      for (const w of configureLog(log, next.config)) log.warning(w);
      for (const w of next.warnings) log.warning(w);
      config = next.config;
      node.updateConfig(config);
      watchdog
        .reload(config.watchdog)
        .catch((e: unknown) => log.error(`reloading the watchdog failed: ${errorText(e)}`));
      api.reload(config).catch((e: unknown) => log.error(`reloading the REST API failed: ${errorText(e)}`));
      log.info('reloaded configuration file');
      loop.wake();
    } catch (e) {
      const text = 'reloading the configuration failed, keeping the old one';
      if (e instanceof UserError) log.error(`${text}: ${errorText(e)}`);
      else log.exception(text, e);
    }
  };

  const api = await startAgentApi({
    config,
    node,
    loop,
    dcs,
    onError: (e) => log.warning(`REST API: ${errorText(e)}`),
    log,
    reloadConfig: onHup,
  }).catch(async (e: unknown) => {
    await dcs.close();
    throw new UserError(
      `cannot start the REST API on ${config.restapi.listen.host}:${config.restapi.listen.port}: ${errorText(e)}`,
    );
  });
  log.info(
    `pgwarden agent ${config.name} (cluster ${config.scope}) speaking Patroni 3.0.2; REST API on ${config.apiUrl}`,
  );

  const onStop = (signal: NodeJS.Signals): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info(`received ${signal}, shutting down`);
    loop.stop();
  };
  const onAbort = (): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.error(`shutting down after ${String(options.stop?.reason)}`);
    loop.stop();
  };
  if (options.stop?.aborted) onAbort();
  options.stop?.addEventListener('abort', onAbort, { once: true });
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHup);

  try {
    await loop.run();
  } finally {
    process.off('SIGHUP', onHup);
    await shutdown({ loop, node, dcs, log, closeApi: () => api.close(), name: config.name, watchdog });
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    log.close();
  }
  return exitCode;
}

/** Applies the `log` section; a log file that cannot be opened is a configuration error. */
function configureLog(log: ReturnType<typeof createLogger>, config: AgentConfig): string[] {
  try {
    return log.configure(config.log);
  } catch (e) {
    throw new UserError(
      `log.dir: cannot open the log file in ${config.log.dir}: ${errorText(e)}; create the directory or fix its permissions`,
    );
  }
}

/**
 * The cluster's dynamic configuration is checked like bootstrap.dcs before the agent acts on it: a setting pgwarden
 * does not implement stops it here (later changes are read the safe way, src/config/config-check.ts). An
 * unreachable DCS is the HA loop's business.
 */
async function refuseDynamicConfigAtStart(dcs: Dcs, log: ReturnType<typeof createLogger>): Promise<void> {
  const cluster = await dcs.getCluster().catch(() => undefined);
  const data = cluster?.config?.valid ? cluster.config.data : undefined;
  if (data === undefined) return;
  let warnings: string[];
  try {
    warnings = assertDynamicConfigAtStart(data);
  } catch (e) {
    await dcs.close();
    throw e;
  }
  for (const w of warnings) log.warning(w);
}
