/**
 * The sections of the agent's patroni.yml other than `postgresql` (src/config/postgresql-section.ts): values checked
 * the way `patroni --validate-config` and the Patroni runtime read them. Which keys exist, and which are refused, is
 * the key registry's business (src/config/key-registry.ts); these only read the values.
 */
import { UserError } from './errors.js';
import type {
  AgentTags,
  BasicAuth,
  BootstrapConfig,
  BootstrapUser,
  LogLevel,
  RestApiConfig,
  WatchdogConfig,
  WatchdogMode,
} from './agent-config-types.js';
import {
  child,
  connectAddress,
  get,
  invalid,
  isMapping,
  listenAddress,
  missing,
  optBool,
  optEnum,
  optInt,
  optMapping,
  optStr,
  optStrList,
  optStrMap,
  optToolOptions,
  reqMapping,
  reqStr,
  type Node,
} from './config-values.js';
import { dcsTarget, type DcsTarget, type LocalConfig } from './local-config.js';
import { useSslProblem } from './zookeeper-section.js';
import { parseGucInt } from '../model/guc-values.js';
import { pyBool, pyStr } from '../model/python.js';
import {
  tagCloneFrom,
  tagFailoverPriority,
  tagNoFailover,
  tagNoLoadBalance,
  tagNoStream,
  tagNoSync,
  tagSyncPriority,
} from '../model/tags.js';

/** Tags Patroni drops from the member key when falsy (spec 1.2.3). */
const FILTERED_TAGS = new Set(['nofailover', 'noloadbalance', 'clonefrom', 'nosync', 'nostream']);
const KNOWN_TAGS = new Set([...FILTERED_TAGS, 'replicatefrom', 'failover_priority', 'sync_priority']);

export function readLogLevel(tree: Node): LogLevel {
  const log = optMapping(tree, 'log', '');
  if (log === undefined) return 'INFO';
  const level = optEnum<LogLevel>(log, 'level', 'log', [
    'DEBUG',
    'INFO',
    'WARN',
    'WARNING',
    'ERROR',
    'FATAL',
    'CRITICAL',
  ]);
  optEnum(log, 'type', 'log', ['plain', 'json']);
  optEnum(log, 'traceback_level', 'log', ['debug', 'error'], false);
  optStr(log, 'dateformat', 'log');
  optStr(log, 'dir', 'log');
  optInt(log, 'max_queue_size', 'log', { min: 1 });
  optInt(log, 'file_num', 'log', { min: 1 });
  optInt(log, 'file_size', 'log', { min: 1 });
  optInt(log, 'mode', 'log', { min: 0, max: 511 });
  optMapping(log, 'static_fields', 'log');
  optMapping(log, 'loggers', 'log');
  optBool(log, 'deduplicate_heartbeat_logs', 'log');
  const format = get(log, 'format');
  if (format !== undefined && typeof format !== 'string' && !Array.isArray(format) && !isMapping(format)) {
    throw invalid('log.format', format, 'a logging format string');
  }
  return level ?? 'INFO';
}

function readBasicAuth(node: Node, key: string, path: string): BasicAuth | undefined {
  const auth = optMapping(node, key, path);
  if (auth === undefined) return undefined;
  const p = child(path, key);
  const username = optStr(auth, 'username', p);
  const password = optStr(auth, 'password', p);
  if (username === undefined) throw missing(child(p, 'username'));
  if (password === undefined) throw missing(child(p, 'password'));
  return { username, password };
}

/** `restapi.auth: 'username:password'`, the form Patroni 3.0.2 derives from `authentication` and also reads. */
function authString(node: Node, path: string): BasicAuth | undefined {
  const text = optStr(node, 'auth', path);
  if (!text) return undefined;
  const colon = text.indexOf(':');
  return colon < 0
    ? { username: text, password: '' }
    : { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

export function readRestApi(tree: Node): RestApiConfig {
  const r = reqMapping(tree, 'restapi', '');
  const path = 'restapi';
  const listen = listenAddress(r, 'listen', path, '127.0.0.1:8008');
  const connect = connectAddress(r, 'connect_address', path, '10.0.0.1:8008');
  if (connect === undefined) throw missing('restapi.connect_address');
  const certfile = optStr(r, 'certfile', path);
  const headers = (key: string): Readonly<Record<string, string>> => optStrMap(r, key, path) ?? {};
  return {
    listen,
    connectAddress: connect,
    protocol: certfile ? 'https' : 'http',
    authentication: readBasicAuth(r, 'authentication', path) ?? authString(r, path),
    certfile,
    keyfile: optStr(r, 'keyfile', path),
    keyfilePassword: optStr(r, 'keyfile_password', path),
    cafile: optStr(r, 'cafile', path),
    ciphers: optStr(r, 'ciphers', path),
    verifyClient: optEnum(r, 'verify_client', path, ['none', 'optional', 'required']),
    allowlist: optStrList(r, 'allowlist', path) ?? [],
    allowlistIncludeMembers: optBool(r, 'allowlist_include_members', path) ?? false,
    httpExtraHeaders: headers('http_extra_headers'),
    httpsExtraHeaders: headers('https_extra_headers'),
    requestQueueSize: optInt(r, 'request_queue_size', path, { min: 0, max: 4096 }) ?? 5,
    serverTokens:
      optEnum(r, 'server_tokens', path, ['original', 'minimal', 'productonly'], false) ?? 'original',
  };
}

export function checkCtl(tree: Node): void {
  const c = optMapping(tree, 'ctl', '');
  if (c === undefined) return;
  optBool(c, 'insecure', 'ctl');
  for (const k of ['cacert', 'certfile', 'keyfile', 'keyfile_password']) optStr(c, k, 'ctl');
  readBasicAuth(c, 'authentication', 'ctl');
}

const DCS_SECTIONS = ['etcd3', 'zookeeper', 'etcd', 'consul', 'exhibitor', 'kubernetes', 'raft'];

export function checkDcs(tree: Node): void {
  const present = DCS_SECTIONS.filter((s) => get(tree, s) !== undefined);
  if (present.length > 1) {
    const names =
      present.length === 2 ? `${present.join(' and ')} are both` : `${present.join(', ')} are all`;
    throw new UserError(`${names} configured: keep exactly one DCS section (etcd3 or zookeeper)`);
  }
  for (const s of ['etcd3', 'zookeeper']) {
    const v = get(tree, s);
    if (v !== undefined && !isMapping(v)) throw invalid(s, v, 'a mapping');
  }
  const etcd3 = optMapping(tree, 'etcd3', '');
  if (etcd3 !== undefined) {
    optEnum(etcd3, 'protocol', 'etcd3', ['http', 'https']);
    optInt(etcd3, 'port', 'etcd3', { min: 1, max: 65535 });
    optBool(etcd3, 'use_proxies', 'etcd3');
    for (const k of [
      'host',
      'url',
      'proxy',
      'username',
      'password',
      'cacert',
      'cert',
      'key',
      'srv',
      'srv_suffix',
      'key_password',
    ]) {
      optStr(etcd3, k, 'etcd3');
    }
    const hosts = get(etcd3, 'hosts');
    if (hosts !== undefined && typeof hosts !== 'string') optStrList(etcd3, 'hosts', 'etcd3');
  }
  const zk = optMapping(tree, 'zookeeper', '');
  if (zk !== undefined) {
    const hosts = get(zk, 'hosts');
    if (hosts === undefined) throw missing('zookeeper.hosts');
    if (typeof hosts !== 'string') optStrList(zk, 'hosts', 'zookeeper');
    const sslProblem = useSslProblem(get(zk, 'use_ssl'));
    if (sslProblem !== undefined) throw new UserError(sslProblem);
    optBool(zk, 'use_ssl', 'zookeeper');
    optBool(zk, 'verify', 'zookeeper');
    for (const k of ['cacert', 'cert', 'key', 'key_password']) optStr(zk, k, 'zookeeper');
    optMapping(zk, 'set_acls', 'zookeeper');
    optMapping(zk, 'auth_data', 'zookeeper');
  }
}

/** The DCS to connect to; after the key registry has refused the sections pgwarden does not speak. */
export function readDcsTarget(local: LocalConfig): DcsTarget {
  return dcsTarget(local);
}

export function readBootstrap(tree: Node): BootstrapConfig | undefined {
  const b = optMapping(tree, 'bootstrap', '');
  if (b === undefined) return undefined;
  const path = 'bootstrap';
  const method = optStr(b, 'method', path) ?? 'initdb';
  const dcs = optMapping(b, 'dcs', path) ?? {};
  for (const k of ['ttl', 'loop_wait', 'retry_timeout']) optInt(dcs, k, 'bootstrap.dcs', { min: 1 });
  optInt(dcs, 'maximum_lag_on_failover', 'bootstrap.dcs', { min: 0 });
  optMapping(dcs, 'postgresql', 'bootstrap.dcs');
  let methodConfig: Node | undefined;
  if (method !== 'initdb') {
    methodConfig = optMapping(b, method, path);
    if (methodConfig === undefined) {
      throw new UserError(
        `bootstrap.${method} is missing: bootstrap.method names a custom method, which needs a section with its command`,
      );
    }
    reqStr(methodConfig, 'command', child(path, method));
  }
  const users: Record<string, BootstrapUser> = {};
  const u = optMapping(b, 'users', path);
  for (const name of Object.keys(u ?? {})) {
    const p = child('bootstrap.users', name);
    const entry = get(u ?? {}, name) ?? {};
    if (!isMapping(entry)) throw invalid(p, entry, 'a mapping with password and options');
    users[name] = { password: optStr(entry, 'password', p), options: optStrList(entry, 'options', p) ?? [] };
  }
  return {
    dcs,
    method,
    methodConfig,
    initdb: optToolOptions(b, 'initdb', path),
    pgHba: optStrList(b, 'pg_hba', path),
    users,
    // Patroni runs post_bootstrap, else the older name post_init.
    postBootstrap: optStr(b, 'post_bootstrap', path) || optStr(b, 'post_init', path) || undefined,
    postInit: optStr(b, 'post_init', path),
  };
}

export function readWatchdog(tree: Node): WatchdogConfig {
  const wd = optMapping(tree, 'watchdog', '') ?? {};
  const raw = get(wd, 'mode');
  // Patroni's default: automatic, which arms a watchdog when one can be opened and runs without one otherwise.
  let mode: WatchdogMode = 'automatic';
  if (raw === false) mode = 'off';
  else if (raw !== undefined) {
    const text = typeof raw === 'string' ? raw.toLowerCase() : undefined;
    if (text === 'off' || text === 'disable' || text === 'disabled') mode = 'off';
    else if (text === 'automatic' || text === 'auto') mode = 'automatic';
    else if (text === 'required' || text === 'require') mode = 'required';
    else throw invalid('watchdog.mode', raw, 'one of off, automatic, required');
  }
  return {
    mode,
    device: optStr(wd, 'device', 'watchdog') ?? '/dev/watchdog',
    safetyMargin: optInt(wd, 'safety_margin', 'watchdog', { min: -1 }) ?? 5,
    driver: optStr(wd, 'driver', 'watchdog') ?? 'default',
  };
}

/**
 * Patroni 4.1.4 starts without validating tags and evaluates them at run time (model/tags.ts, tags.py `Tags`): a
 * boolean tag is Python-truthy (the string 'false' means true), a priority is parsed leniently ('1' is 1);
 * nofailover/nosync win over a contradicting priority, with a warning.
 */
export function readTags(tree: Node, warn: (text: string) => void): AgentTags {
  const t = optMapping(tree, 'tags', '') ?? {};
  const warnConflict = (name: string, priority: string): void => {
    const v = get(t, name);
    const p = parseGucInt(get(t, priority));
    // config.py `_validate_contradictory_tags`: a present tag (even null) that says the opposite of its priority.
    if (v !== undefined && p !== undefined && pyBool(v) === p > 0) {
      warn(
        `Conflicting configuration between ${name}: ${pyStr(v)} and ${priority}: ${p}. Defaulting to ${name}: ${pyStr(v)}`,
      );
    }
  };
  warnConflict('nofailover', 'failover_priority');
  warnConflict('nosync', 'sync_priority');
  const custom: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(t)) if (!KNOWN_TAGS.has(k)) custom[k] = v;
  return {
    nofailover: tagNoFailover(t),
    failoverPriority: tagFailoverPriority(t),
    nosync: tagNoSync(t),
    syncPriority: tagSyncPriority(t),
    clonefrom: tagCloneFrom(t),
    replicatefrom: optStr(t, 'replicatefrom', 'tags'),
    noloadbalance: tagNoLoadBalance(t),
    nostream: tagNoStream(t),
    custom,
  };
}

/**
 * The `tags` of the member key (tags.py `Tags.tags`): the boolean tags are left out while falsy, except `nofailover`
 * next to a `failover_priority` and `nosync` next to a `sync_priority`; everything else as written, in the file's
 * order.
 */
export function publishedTags(tags: Node): Node {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(tags)) {
    const kept =
      !FILTERED_TAGS.has(k) ||
      pyBool(v) ||
      (k === 'nofailover' && 'failover_priority' in tags) ||
      (k === 'nosync' && 'sync_priority' in tags);
    if (kept) out[k] = v;
  }
  return out;
}
