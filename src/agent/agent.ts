/**
 * `pgwarden agent CONFIG`: one member. Wiring (configuration, DCS, local PostgreSQL, HA loop, REST API), signals
 * (SIGTERM/SIGINT: shut down; SIGHUP: reload the configuration file) and Patroni's shutdown sequence: the REST API
 * closes first (peers then see us as unreachable), PostgreSQL stops (fast), a leader writes the shutdown
 * checkpoint to `status` and releases the lock so that a replica takes over at once, and the member key is
 * published once more with state `stopped`.
 */
import { loadAgentConfig, refuseRoot, type AgentConfig } from '../config/agent-config.js';
import { UserError } from '../config/errors.js';
import type { Dcs } from '../dcs/dcs.js';
import { createDcs } from '../dcs/registry.js';
import { SyncReplication } from './sync-replication.js';
import { HaLoop } from '../ha/loop.js';
import { haConfigFromDynamic } from '../ha/snapshot.js';
import { pyJson } from '../model/pyjson.js';
import { createLogger } from './log.js';
import { PostgresNode } from './node.js';
import { createProber } from './peers.js';
import { startAgentApi } from './rest.js';
import { refuseDuplicateName } from './unique-name.js';

export interface AgentOptions {
  readonly configPath: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly uid: number;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs the agent until a signal or a fatal decision; resolves to the exit code. */
export async function runAgent(options: AgentOptions): Promise<number> {
  refuseRoot(options.uid);
  const log = createLogger();
  const loaded = loadAgentConfig(options.configPath, options.env);
  let config: AgentConfig = loaded.config;
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
  const restOptions = config.restapi.authentication
    ? { auth: config.restapi.authentication, insecure: true }
    : { insecure: true };
  if (
    await refuseDuplicateName({ getCluster: () => dcs.getCluster(), name: config.name, restOptions, log })
  ) {
    await dcs.close();
    return 1;
  }
  let exitCode = 0;
  let shuttingDown = false;
  const loop = new HaLoop({
    dcs,
    node,
    sync: new SyncReplication(config.name, node, dcs, log),
    log,
    probe: createProber(restOptions, log),
    onFatal: (code, reason) => {
      log.error(`exiting: ${reason}`);
      exitCode = code;
      loop.stop();
    },
  });

  const onHup = (): void => {
    try {
      const next = loadAgentConfig(options.configPath, options.env);
      for (const w of next.warnings) log.warning(w);
      config = next.config;
      node.updateConfig(config);
      log.info('reloaded configuration file');
      loop.wake();
    } catch (e) {
      log.error(`reloading the configuration failed, keeping the old one: ${errorText(e)}`);
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
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHup);

  try {
    await loop.run();
  } finally {
    process.off('SIGHUP', onHup);
    await shutdown({ loop, node, dcs, log, closeApi: () => api.close(), name: config.name });
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
  }
  return exitCode;
}

interface ShutdownDeps {
  readonly loop: HaLoop;
  readonly node: PostgresNode;
  readonly dcs: Dcs;
  readonly log: ReturnType<typeof createLogger>;
  readonly closeApi: () => Promise<void>;
  readonly name: string;
}

/** Patroni's `Ha.shutdown` (not paused): stop PostgreSQL, release the lock with the shutdown LSN, touch member. */
async function shutdown(d: ShutdownDeps): Promise<void> {
  const { loop, node, dcs, log } = d;
  await d.closeApi().catch((e: unknown) => log.warning(`closing the REST API: ${errorText(e)}`));
  const task = loop.pendingAsync;
  if (task) log.warning(`shutting down while ${task.description} is still running`);
  const wasLeader = loop.lastCluster?.leader?.name === d.name;
  try {
    await node.shutdown();
    log.info('stopped PostgreSQL');
  } catch (e) {
    log.error(`stopping PostgreSQL failed: ${errorText(e)}`);
  }
  if (wasLeader) {
    try {
      const lsn = await node.shutdownCheckpoint().catch(() => undefined);
      if (lsn !== undefined) await dcs.writeStatus(pyJson({ optime: lsn }, true));
      const cluster = await dcs.getCluster();
      if (await dcs.deleteLeader(cluster)) log.info('Leader key released');
    } catch (e) {
      log.error(`releasing the leader key failed: ${errorText(e)}`);
    }
  }
  try {
    await dcs.touchMember(await node.memberValue({ isLeader: false }));
  } catch (e) {
    log.warning(`updating the member key failed: ${errorText(e)}`);
  }
  await node.close();
  await dcs.close();
}
