/** The `postgresql` section of the agent's patroni.yml: addresses, users, parameters, replica methods. */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { UserError } from './errors.js';
import type { CallbackName, PgUser, PostgresqlConfig } from './agent-config-types.js';
import {
  child,
  connectAddress,
  get,
  invalid,
  missing,
  optBool,
  optInt,
  optMapping,
  optStr,
  optStrList,
  optStrMap,
  optToolOptions,
  pgListen,
  reqMapping,
  reqStr,
  type Node,
} from './config-values.js';

/** The libpq keywords Patroni passes on with a PostgreSQL user (besides its username and password). */
export const USER_KEYS = [
  'sslmode',
  'sslcert',
  'sslkey',
  'sslpassword',
  'sslrootcert',
  'sslcrl',
  'sslcrldir',
  'gssencmode',
  'channel_binding',
  'sslnegotiation',
] as const;

const CALLBACKS: readonly CallbackName[] = [
  'on_start',
  'on_stop',
  'on_restart',
  'on_reload',
  'on_role_change',
];

function readUser(node: Node, key: string, path: string): PgUser | undefined {
  const u = optMapping(node, key, path);
  if (u === undefined) return undefined;
  const p = child(path, key);
  const params: Record<string, string> = {};
  for (const k of USER_KEYS) {
    const v = optStr(u, k, p);
    if (v !== undefined) params[k] = v;
  }
  return { username: reqStr(u, 'username', p), password: optStr(u, 'password', p), connectionParams: params };
}

export function readPostgresql(tree: Node): PostgresqlConfig {
  const pg = reqMapping(tree, 'postgresql', '');
  const path = 'postgresql';
  const methods = optStrList(pg, 'create_replica_methods', path) ?? ['basebackup'];
  if (methods.length === 0) throw invalid('postgresql.create_replica_methods', [], 'a non-empty list');

  const listen = pgListen(pg, path);
  const connect = connectAddress(pg, 'connect_address', path, '10.0.0.1:5432');
  if (connect === undefined) throw missing('postgresql.connect_address');
  const proxy = connectAddress(pg, 'proxy_address', path, '10.0.0.1:6432');
  const dataDir = reqStr(pg, 'data_dir', path);

  // Authentication: the `authentication` section, or the legacy layout with the users at the top of `postgresql`.
  let authNode: Node;
  let authPath: string;
  if (get(pg, 'authentication') !== undefined) {
    authNode = reqMapping(pg, 'authentication', path);
    authPath = 'postgresql.authentication';
  } else if (get(pg, 'superuser') !== undefined || get(pg, 'replication') !== undefined) {
    authNode = pg;
    authPath = path;
  } else {
    throw missing('postgresql.authentication');
  }
  const superKey = authNode === pg && get(pg, 'superuser') === undefined ? 'pg_rewind' : 'superuser';
  const superuser = readUser(authNode, superKey, authPath);
  if (superuser === undefined) throw missing(child(authPath, 'superuser'));
  const replication = readUser(authNode, 'replication', authPath);
  if (replication === undefined) throw missing(child(authPath, 'replication'));
  const rewind = authNode === pg ? undefined : readUser(authNode, 'rewind', authPath);

  const parameters = optMapping(pg, 'parameters', path) ?? {};
  for (const [k, v] of Object.entries(parameters)) {
    if (typeof v === 'object' && v !== null) {
      throw invalid(child('postgresql.parameters', k), v, 'a single value (string, number or boolean)');
    }
  }
  optStr(parameters, 'unix_socket_directories', 'postgresql.parameters');

  const callbacksNode = optMapping(pg, 'callbacks', path) ?? {};
  const callbacks: Partial<Record<CallbackName, string>> = {};
  for (const name of CALLBACKS) {
    const cmd = optStr(callbacksNode, name, 'postgresql.callbacks');
    if (cmd !== undefined) callbacks[name] = cmd;
  }

  const replicaMethods: Record<string, Node> = {};
  for (const m of methods) {
    if (m === 'basebackup') continue;
    const section = optMapping(pg, m, path);
    if (section === undefined) {
      throw new UserError(
        `postgresql.${m} is missing: postgresql.create_replica_methods lists ${m}, which needs a section with its command`,
      );
    }
    reqStr(section, 'command', child(path, m));
    replicaMethods[m] = section;
  }

  const binName = optStrMap(pg, 'bin_name', path) ?? {};

  const pgpass = optStr(pg, 'pgpass', path);
  const config: PostgresqlConfig = {
    listen,
    connectAddress: connect,
    proxyAddress: proxy,
    dataDir,
    configDir: optStr(pg, 'config_dir', path) || dataDir,
    binDir: optStr(pg, 'bin_dir', path) ?? '',
    binName,
    pgpass: resolve(pgpass || join(homedir(), 'pgpass')),
    database: optStr(pg, 'database', path) || 'postgres',
    authentication: { superuser, replication, rewind },
    parameters,
    pgHba: optStrList(pg, 'pg_hba', path),
    pgIdent: optStrList(pg, 'pg_ident', path),
    callbacks,
    createReplicaMethods: methods,
    replicaMethods,
    basebackup: optToolOptions(pg, 'basebackup', path),
    recoveryConf: optMapping(pg, 'recovery_conf', path),
    customConf: optStr(pg, 'custom_conf', path),
    useUnixSocket: optBool(pg, 'use_unix_socket', path) ?? false,
    useUnixSocketRepl: optBool(pg, 'use_unix_socket_repl', path) ?? false,
    pgCtlTimeout: optInt(pg, 'pg_ctl_timeout', path, { min: 0 }) ?? 60,
    usePgRewind: optBool(pg, 'use_pg_rewind', path),
    removeDataDirectoryOnRewindFailure: optBool(pg, 'remove_data_directory_on_rewind_failure', path) ?? false,
    removeDataDirectoryOnDivergedTimelines:
      optBool(pg, 'remove_data_directory_on_diverged_timelines', path) ?? false,
    prePromote: optStr(pg, 'pre_promote', path),
    beforeStop: optStr(pg, 'before_stop', path),
  };
  optStr(pg, 'krbsrvname', path);
  return config;
}
