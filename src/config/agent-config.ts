/**
 * The agent's local configuration (spec 3.1-3.3): patroni.yml (a file or a directory of files) with `PATRONI_*`
 * environment variables merged over it, checked key by key the way `patroni --validate-config` and the Patroni
 * runtime read it, and turned into a typed, camelCase view. The merged tree is kept as `raw` because the
 * effective configuration is rebuilt from it and the dynamic (DCS) configuration on every change.
 *
 * A bad value is a UserError naming the dotted path, what was found and what is allowed. So is a setting pgwarden
 * does not implement (src/config/key-registry.ts): it never starts as if it did. A key nobody reads is a warning,
 * never an error, so a patroni.yml written for a newer Patroni still starts.
 */
import { UserError } from './errors.js';
import { applyPatroniEnv, patroniEnvWarnings } from './env.js';
import { readConfigPath, type ConfigTree, type LocalConfig } from './local-config.js';
import type { AgentConfig, HostPort, LoadedAgentConfig } from './agent-config-types.js';
import { get, invalid, isMapping, optInt, optMapping, optStr, reqStr, urlHost } from './config-values.js';
import {
  checkCtl,
  checkDcs,
  publishedTags,
  readBootstrap,
  readDcsTarget,
  readLogLevel,
  readRestApi,
  readTags,
  readWatchdog,
} from './agent-sections.js';
import { readPostgresql } from './postgresql-section.js';
import { checkLocalKeys } from './config-check.js';
import { readLogSettings } from './log-section.js';
import { zookeeperWarnings } from './zookeeper-section.js';

export type {
  AgentConfig,
  AgentTags,
  BasicAuth,
  BootstrapConfig,
  BootstrapUser,
  CallbackName,
  HostPort,
  LoadedAgentConfig,
  LogLevel,
  PgListen,
  PgUser,
  PostgresqlConfig,
  RestApiConfig,
  ToolOptionsValue,
  WatchdogConfig,
  WatchdogMode,
} from './agent-config-types.js';
export { publishedTags };

type Env = Readonly<Record<string, string | undefined>>;

const PLACEHOLDER_NAME = '__patroni_strict_sync_replica_placeholder__';

/** Validates an already merged tree (file(s) plus environment). */
export function agentConfigFromTree(tree: ConfigTree, source: string): LoadedAgentConfig {
  const pgNode = get(tree, 'postgresql');
  // Legacy: `postgresql.name` stands in for a missing top-level name.
  const legacyName = get(tree, 'name') === undefined && isMapping(pgNode) ? get(pgNode, 'name') : undefined;
  const name = reqStr(legacyName === undefined ? tree : { name: legacyName }, 'name', '');
  if (name === PLACEHOLDER_NAME) throw invalid('name', name, 'a name reserved by Patroni');
  const scope = reqStr(tree, 'scope', '');
  const namespace = optStr(tree, 'namespace', '') || '/service';
  optInt(tree, 'thread_pool_size', '', { min: 5 });
  optInt(tree, 'thread_stack_size', '', { min: 65536 });
  // Values first (a mistyped value is reported as such), then the settings pgwarden refuses.
  const logLevel = readLogLevel(tree);
  const log = readLogSettings(tree);
  const restapi = readRestApi(tree);
  checkDcs(tree);
  const bootstrap = readBootstrap(tree);
  const postgresql = readPostgresql(tree);
  const watchdog = readWatchdog(tree);
  const tagWarnings: string[] = [];
  const tags = readTags(tree, (t) => tagWarnings.push(t));
  checkCtl(tree);
  const keys = checkLocalKeys(tree);
  if (keys.errors.length > 0) throw new UserError(keys.errors.join('\n'));
  const local: LocalConfig = { source, tree, scope, name, namespace };
  const dcs = readDcsTarget(local);

  const pgUrl = (hp: HostPort): string => `postgres://${urlHost(hp.host)}:${hp.port}/${postgresql.database}`;
  const tagNode = optMapping(tree, 'tags', '') ?? {};
  const config: AgentConfig = {
    source,
    raw: tree,
    local,
    name,
    scope,
    namespace,
    logLevel,
    log,
    restapi,
    dcs,
    bootstrap,
    postgresql,
    tags,
    memberTags: publishedTags(tagNode),
    connUrl: pgUrl(postgresql.connectAddress),
    apiUrl: `${restapi.protocol}://${urlHost(restapi.connectAddress.host)}:${restapi.connectAddress.port}/patroni`,
    proxyUrl: postgresql.proxyAddress === undefined ? undefined : pgUrl(postgresql.proxyAddress),
    watchdog,
  };
  return { config, warnings: [...keys.warnings, ...zookeeperWarnings(tree), ...tagWarnings] };
}

/**
 * Loads the agent's configuration as Patroni does (spec 3.1): the file or directory at `path` with `PATRONI_*`
 * merged over it; without a path, the YAML in `PATRONI_CONFIGURATION`, else the `PATRONI_*` variables alone.
 */
export function loadAgentConfig(path: string | undefined, env: Env): LoadedAgentConfig {
  if (path !== undefined) {
    const fileEnv: Record<string, string | undefined> = { ...env };
    delete fileEnv['PATRONI_CONFIGURATION'];
    const loaded = agentConfigFromTree(applyPatroniEnv(readConfigPath(path), fileEnv), path);
    return { ...loaded, warnings: [...patroniEnvWarnings(fileEnv), ...loaded.warnings] };
  }
  const loaded = agentConfigFromTree(applyPatroniEnv({}, env), 'environment');
  return { ...loaded, warnings: [...patroniEnvWarnings(env), ...loaded.warnings] };
}

/** PostgreSQL refuses to run as root, and so does the agent (design: run it as the data directory's owner). */
export function refuseRoot(uid: number): void {
  if (uid === 0) {
    throw new UserError(
      'pgwarden agent must not run as root: PostgreSQL refuses to run as root. Run it as the user that owns the data directory, e.g. runuser -u postgres -- pgwarden agent <config>',
    );
  }
}
