/**
 * The agent's local configuration (spec 3.1-3.3): patroni.yml (a file or a directory of files) with `PATRONI_*`
 * environment variables merged over it, checked key by key the way `patroni --validate-config` and the Patroni
 * runtime read it, and turned into a typed, camelCase view. The merged tree is kept as `raw` because the
 * effective configuration is rebuilt from it and the dynamic (DCS) configuration on every change.
 *
 * A bad value is a UserError naming the dotted path, what was found and what is allowed. A key nobody reads is a
 * warning, never an error, so a patroni.yml written for a newer Patroni still starts.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { textOf } from '../model/text.js';
import { parseBool, parseIntLenient } from '../model/cluster.js';
import { UserError } from './errors.js';
import { applyPatroniEnv } from './env.js';
import {
  dcsTarget,
  readConfigPath,
  type ConfigTree,
  type DcsTarget,
  type LocalConfig,
} from './local-config.js';

type Env = Readonly<Record<string, string | undefined>>;
type Node = Readonly<Record<string, unknown>>;

export interface HostPort {
  /** Without IPv6 brackets; `''` or `*` on a listen address means every interface. */
  readonly host: string;
  readonly port: number;
}

export interface PgListen {
  /** The addresses, in order; the first one is used for local connections. */
  readonly hosts: readonly string[];
  readonly port: number;
  /** The `listen_addresses` GUC value. */
  readonly listenAddresses: string;
}

export interface BasicAuth {
  readonly username: string;
  readonly password: string;
}

export interface PgUser {
  readonly username: string;
  readonly password?: string;
  /** libpq connection keywords given with the user (sslmode, sslcert, ..., channel_binding). */
  readonly connectionParams: Readonly<Record<string, string>>;
}

/** `bootstrap.initdb` / `postgresql.basebackup`: a list of flags and single-key maps, or a plain map. */
export type ToolOptionsValue =
  readonly (string | Readonly<Record<string, string | number>>)[] | Readonly<Record<string, unknown>>;

export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'WARNING' | 'ERROR' | 'FATAL' | 'CRITICAL';
export type WatchdogMode = 'off' | 'automatic' | 'required';
export type CallbackName = 'on_start' | 'on_stop' | 'on_restart' | 'on_reload' | 'on_role_change';

export interface RestApiConfig {
  readonly listen: HostPort;
  readonly connectAddress: HostPort;
  /** `https` iff `certfile` is set. */
  readonly protocol: 'http' | 'https';
  readonly authentication?: BasicAuth;
  readonly certfile?: string;
  readonly keyfile?: string;
  readonly keyfilePassword?: string;
  readonly cafile?: string;
  readonly ciphers?: string;
  readonly verifyClient?: 'none' | 'optional' | 'required';
  readonly allowlist: readonly string[];
  readonly allowlistIncludeMembers: boolean;
  readonly httpExtraHeaders: Readonly<Record<string, string>>;
  readonly httpsExtraHeaders: Readonly<Record<string, string>>;
  readonly requestQueueSize: number;
  readonly serverTokens: 'original' | 'minimal' | 'productonly';
}

export interface BootstrapUser {
  readonly password?: string;
  readonly options: readonly string[];
}

export interface BootstrapConfig {
  /** Copied verbatim into the DCS `config` key by the node that initializes the cluster. */
  readonly dcs: Node;
  /** `initdb` unless a custom method is named. */
  readonly method: string;
  /** The `bootstrap.<method>` section of a custom method (it has a `command`). */
  readonly methodConfig?: Node;
  readonly initdb?: ToolOptionsValue;
  readonly pgHba?: readonly string[];
  readonly users: Readonly<Record<string, BootstrapUser>>;
  readonly postBootstrap?: string;
  readonly postInit?: string;
}

export interface PostgresqlConfig {
  readonly listen: PgListen;
  readonly connectAddress: HostPort;
  readonly proxyAddress?: HostPort;
  readonly dataDir: string;
  /** Defaults to `dataDir`. */
  readonly configDir: string;
  /** `''` means "search PATH". */
  readonly binDir: string;
  /** Custom binary names, keyed by the standard name (`pg_ctl`, `initdb`, ...). */
  readonly binName: Readonly<Record<string, string>>;
  /** Absolute; defaults to `~/pgpass`. */
  readonly pgpass: string;
  readonly database: string;
  readonly authentication: {
    readonly superuser: PgUser;
    readonly replication: PgUser;
    readonly rewind?: PgUser;
  };
  /** Local GUCs, as written (the command-line GUCs among them are ignored later, spec 2.4). */
  readonly parameters: Node;
  readonly pgHba?: readonly string[];
  readonly pgIdent?: readonly string[];
  readonly callbacks: Readonly<Partial<Record<CallbackName, string>>>;
  readonly createReplicaMethods: readonly string[];
  /** The `postgresql.<method>` section of every listed method other than `basebackup`. */
  readonly replicaMethods: Readonly<Record<string, Node>>;
  readonly basebackup?: ToolOptionsValue;
  readonly recoveryConf?: Node;
  readonly customConf?: string;
  readonly useUnixSocket: boolean;
  readonly useUnixSocketRepl: boolean;
  readonly pgCtlTimeout: number;
  /** Local override of the dynamic `postgresql.use_pg_rewind`; undefined when not set locally. */
  readonly usePgRewind?: boolean;
  readonly removeDataDirectoryOnRewindFailure: boolean;
  readonly removeDataDirectoryOnDivergedTimelines: boolean;
  readonly prePromote?: string;
  readonly beforeStop?: string;
}

/** The node's tags as the agent uses them (compatible with the HA core's `MemberTags`). */
export interface AgentTags {
  readonly nofailover: boolean;
  /** As written (leniently parsed), 1 unless configured; 0 when the `nofailover` tag is truthy (Patroni tags.py). */
  readonly failoverPriority: number;
  readonly nosync: boolean;
  readonly clonefrom: boolean;
  readonly replicatefrom?: string;
  readonly noloadbalance: boolean;
  readonly nostream: boolean;
  /** Every tag that is not one of the above, verbatim. */
  readonly custom: Node;
}

export interface WatchdogConfig {
  readonly mode: WatchdogMode;
  readonly device: string;
  readonly safetyMargin: number;
}

export interface AgentConfig {
  /** A path or `environment`. */
  readonly source: string;
  /** The merged tree (files, then `PATRONI_*`), for the effective-configuration merge with the DCS config. */
  readonly raw: ConfigTree;
  /** The same tree as the CLI sees it, for helpers that take a LocalConfig (dcsTarget, restCredentials). */
  readonly local: LocalConfig;
  readonly name: string;
  readonly scope: string;
  readonly namespace: string;
  readonly logLevel: LogLevel;
  readonly restapi: RestApiConfig;
  readonly dcs: DcsTarget;
  /** Present iff the file has a `bootstrap` section (only such a node may initialize a new cluster). */
  readonly bootstrap?: BootstrapConfig;
  readonly postgresql: PostgresqlConfig;
  readonly tags: AgentTags;
  /** The `tags` object as published in the member key (spec 1.2.3); empty when nothing survives the filter. */
  readonly memberTags: Node;
  /** `postgres://<postgresql.connect_address>/<database>`. */
  readonly connUrl: string;
  /** `<http|https>://<restapi.connect_address>/patroni`. */
  readonly apiUrl: string;
  /** `postgres://<postgresql.proxy_address>/<database>` when a proxy address is set. */
  readonly proxyUrl?: string;
  readonly watchdog: WatchdogConfig;
}

export interface LoadedAgentConfig {
  readonly config: AgentConfig;
  readonly warnings: string[];
}

// ---------------------------------------------------------------------------------------------------------------
// Value checks. Every one takes the dotted path of the key for its message; `null` counts as "not set".

function isMapping(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return textOf(v);
}

function invalid(path: string, found: unknown, allowed: string): UserError {
  return new UserError(`${path}: ${shown(found)} is not ${allowed}`);
}

function missing(path: string): UserError {
  return new UserError(`${path} is missing`);
}

const child = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

function get(node: Node, key: string): unknown {
  const v = node[key];
  return v === null ? undefined : v;
}

function optMapping(node: Node, key: string, path: string): Node | undefined {
  const v = get(node, key);
  if (v === undefined) return undefined;
  if (!isMapping(v)) throw invalid(child(path, key), v, 'a mapping');
  return v;
}

function reqMapping(node: Node, key: string, path: string): Node {
  const v = optMapping(node, key, path);
  if (v === undefined) throw missing(child(path, key));
  return v;
}

/** A string; numbers are accepted as their text (YAML reads `scope: 1234` as a number). */
function optStr(node: Node, key: string, path: string): string | undefined {
  const v = get(node, key);
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  throw invalid(child(path, key), v, 'a string');
}

function reqStr(node: Node, key: string, path: string): string {
  const v = optStr(node, key, path);
  if (v === undefined) throw missing(child(path, key));
  if (v.trim() === '') throw new UserError(`${child(path, key)} is empty`);
  return v;
}

/** Lenient boolean as Patroni's runtime reads it: true/false, on/off, yes/no, 1/0. */
function optBool(node: Node, key: string, path: string): boolean | undefined {
  const v = get(node, key);
  if (v === undefined) return undefined;
  const b = parseBool(v);
  if (b === undefined) throw invalid(child(path, key), v, 'a boolean (true or false)');
  return b;
}

interface IntRule {
  readonly min?: number;
  readonly max?: number;
  /** Numbers only (no numeric strings), like Patroni's `expected_type=int`. */
  readonly strict?: boolean;
}

function intRuleText(rule: IntRule): string {
  if (rule.min !== undefined && rule.max !== undefined) return `an integer from ${rule.min} to ${rule.max}`;
  if (rule.min !== undefined) return `an integer >= ${rule.min}`;
  if (rule.max !== undefined) return `an integer <= ${rule.max}`;
  return 'an integer';
}

function optInt(node: Node, key: string, path: string, rule: IntRule = {}): number | undefined {
  const v = get(node, key);
  if (v === undefined) return undefined;
  const n =
    rule.strict === true
      ? typeof v === 'number' && Number.isInteger(v)
        ? v
        : undefined
      : typeof v === 'number' && !Number.isInteger(v)
        ? undefined
        : parseIntLenient(v);
  if (
    n === undefined ||
    (rule.min !== undefined && n < rule.min) ||
    (rule.max !== undefined && n > rule.max)
  ) {
    throw invalid(child(path, key), v, intRuleText(rule));
  }
  return n;
}

function optEnum<T extends string>(
  node: Node,
  key: string,
  path: string,
  allowed: readonly T[],
  caseSensitive = true,
): T | undefined {
  const v = get(node, key);
  if (v === undefined) return undefined;
  const text = typeof v === 'string' ? (caseSensitive ? v : v.toLowerCase()) : undefined;
  const hit = allowed.find((a) => a === text);
  if (hit === undefined) throw invalid(child(path, key), v, `one of ${allowed.join(', ')}`);
  return hit;
}

function optStrList(node: Node, key: string, path: string): readonly string[] | undefined {
  const v = get(node, key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw invalid(child(path, key), v, 'a list of strings');
  return (v as readonly unknown[]).map((item, i) => {
    if (typeof item === 'string') return item;
    if (typeof item === 'number') return String(item);
    throw invalid(`${child(path, key)}.${i}`, item, 'a string');
  });
}

function optStrMap(node: Node, key: string, path: string): Readonly<Record<string, string>> | undefined {
  const m = optMapping(node, key, path);
  if (m === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const k of Object.keys(m)) {
    const v = optStr(m, k, child(path, key));
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** A list of `flag` / single-key `{name: value}` entries, or a plain mapping (initdb, pg_basebackup options). */
function optToolOptions(node: Node, key: string, path: string): ToolOptionsValue | undefined {
  const v = get(node, key);
  if (v === undefined) return undefined;
  const p = child(path, key);
  if (isMapping(v)) return v;
  if (!Array.isArray(v)) throw invalid(p, v, 'a list of options (e.g. - data-checksums, - encoding: UTF8)');
  const allowed = 'an option name or a single-key mapping with a string value (e.g. encoding: UTF8)';
  return (v as readonly unknown[]).map((item, i) => {
    if (typeof item === 'string') return item;
    if (isMapping(item)) {
      const entries = Object.entries(item);
      const first = entries[0];
      if (entries.length === 1 && first !== undefined) {
        const value = first[1];
        if (typeof value === 'string' || typeof value === 'number') return { [first[0]]: value };
      }
    }
    throw invalid(`${p}.${i}`, item, allowed);
  });
}

function hostPortText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return undefined;
}

/** Patroni's host:port split: the text after the last colon is the port; IPv6 hosts lose their brackets. */
function splitHostPort(text: string): HostPort | undefined {
  const idx = text.lastIndexOf(':');
  if (idx < 0) return undefined;
  let host = text.slice(0, idx).trim();
  if (host.includes(':')) {
    host = host
      .split(',')
      .map((h) => h.trim().replace(/^\[+|\]+$/g, ''))
      .join(',');
  }
  const portText = text.slice(idx + 1).trim();
  if (!/^\+?\d+$/.test(portText)) return undefined;
  const port = Number.parseInt(portText, 10);
  if (port < 1 || port > 65535) return undefined;
  return { host, port };
}

function listenAddress(node: Node, key: string, path: string, example: string): HostPort {
  const v = get(node, key);
  const p = child(path, key);
  if (v === undefined) throw missing(p);
  const text = hostPortText(v);
  const hp = text === undefined ? undefined : splitHostPort(text);
  if (hp === undefined || hp.host.includes(',')) throw invalid(p, v, `host:port (e.g. ${example})`);
  return hp;
}

const WILDCARDS = new Set(['', '*', '0.0.0.0', '::']);

function connectAddress(node: Node, key: string, path: string, example: string): HostPort | undefined {
  const v = get(node, key);
  if (v === undefined) return undefined;
  const text = hostPortText(v);
  const hp = text === undefined ? undefined : splitHostPort(text);
  if (hp === undefined || hp.host.includes(',') || WILDCARDS.has(hp.host)) {
    throw invalid(child(path, key), v, `host:port of an address other nodes can reach (e.g. ${example})`);
  }
  return hp;
}

function pgListen(node: Node, path: string): PgListen {
  const v = get(node, 'listen');
  const p = child(path, 'listen');
  if (v === undefined) throw missing(p);
  const text = hostPortText(v);
  const hp = text === undefined ? undefined : splitHostPort(text);
  const hosts = hp?.host.split(',').map((h) => h.trim());
  if (hp === undefined || hosts === undefined || hosts.some((h) => h === '')) {
    throw invalid(p, v, 'host:port (e.g. 127.0.0.1:5432)');
  }
  if (hosts.includes('*') && hosts.length > 1) throw invalid(p, v, "host:port with '*' alone (e.g. *:5432)");
  return { hosts, port: hp.port, listenAddresses: hp.host };
}

/** Host part of a URL: IPv6 addresses in brackets. */
function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

// ---------------------------------------------------------------------------------------------------------------
// Known keys: anything else is reported as a warning.

const TOP_LEVEL = new Set([
  'name',
  'scope',
  'namespace',
  'log',
  'restapi',
  'ctl',
  'etcd',
  'etcd3',
  'zookeeper',
  'consul',
  'exhibitor',
  'kubernetes',
  'raft',
  'citus',
  'bootstrap',
  'postgresql',
  'watchdog',
  'tags',
  'thread_pool_size',
  'thread_stack_size',
]);

/** Dynamic settings (spec 2.2): at the top of patroni.yml Patroni ignores them, the DCS value wins. */
const DYNAMIC_KEYS = new Set([
  'ttl',
  'loop_wait',
  'retry_timeout',
  'maximum_lag_on_failover',
  'maximum_lag_on_syncnode',
  'max_timelines_history',
  'primary_start_timeout',
  'master_start_timeout',
  'primary_stop_timeout',
  'master_stop_timeout',
  'synchronous_mode',
  'synchronous_mode_strict',
  'synchronous_node_count',
  'failsafe_mode',
  'check_timeline',
  'member_slots_ttl',
  'primary_race_backoff',
  'standby_cluster',
  'slots',
  'permanent_slots',
  'permanent_replication_slots',
  'ignore_slots',
  'pause',
]);

const LOG_KEYS = new Set([
  'type',
  'level',
  'traceback_level',
  'format',
  'dateformat',
  'static_fields',
  'max_queue_size',
  'dir',
  'file_num',
  'file_size',
  'mode',
  'loggers',
  'deduplicate_heartbeat_logs',
]);

const RESTAPI_KEYS = new Set([
  'listen',
  'connect_address',
  'authentication',
  'auth',
  'certfile',
  'keyfile',
  'keyfile_password',
  'cafile',
  'ciphers',
  'verify_client',
  'allowlist',
  'allowlist_include_members',
  'http_extra_headers',
  'https_extra_headers',
  'request_queue_size',
  'server_tokens',
  'thread_pool_size',
]);

const CTL_KEYS = new Set([
  'insecure',
  'cacert',
  'certfile',
  'keyfile',
  'keyfile_password',
  'authentication',
  'auth',
]);

const ETCD_KEYS = new Set([
  'host',
  'hosts',
  'srv',
  'srv_suffix',
  'discovery_srv',
  'srv_domain',
  'url',
  'proxy',
  'protocol',
  'username',
  'password',
  'cacert',
  'cert',
  'key',
  'use_proxies',
  'port',
]);

const ZOOKEEPER_KEYS = new Set([
  'hosts',
  'use_ssl',
  'cacert',
  'cert',
  'key',
  'key_password',
  'verify',
  'set_acls',
  'auth_data',
]);

const BOOTSTRAP_KEYS = new Set(['dcs', 'method', 'initdb', 'pg_hba', 'users', 'post_bootstrap', 'post_init']);

const POSTGRESQL_KEYS = new Set([
  'listen',
  'connect_address',
  'proxy_address',
  'data_dir',
  'config_dir',
  'bin_dir',
  'bin_name',
  'pgpass',
  'database',
  'authentication',
  'parameters',
  'pg_hba',
  'pg_ident',
  'callbacks',
  'create_replica_methods',
  'basebackup',
  'rewind',
  'recovery_conf',
  'custom_conf',
  'use_unix_socket',
  'use_unix_socket_repl',
  'pg_ctl_timeout',
  'use_pg_rewind',
  'remove_data_directory_on_rewind_failure',
  'remove_data_directory_on_diverged_timelines',
  'pre_promote',
  'before_stop',
  'krbsrvname',
  // Legacy layout (before `authentication`), still read by Patroni.
  'replication',
  'superuser',
  'pg_rewind',
  'name',
]);

const BIN_NAMES = new Set([
  'pg_ctl',
  'initdb',
  'pg_controldata',
  'pg_basebackup',
  'postgres',
  'pg_isready',
  'pg_rewind',
]);

const USER_KEYS = [
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

const WATCHDOG_KEYS = new Set(['mode', 'device', 'safety_margin']);

/** Tags Patroni drops from the member key when falsy (spec 1.2.3). */
const FILTERED_TAGS = new Set(['nofailover', 'noloadbalance', 'clonefrom', 'nosync', 'nostream']);
const KNOWN_TAGS = new Set([...FILTERED_TAGS, 'replicatefrom', 'failover_priority', 'sync_priority']);

const PLACEHOLDER_NAME = '__patroni_strict_sync_replica_placeholder__';

class Warnings {
  readonly list: string[] = [];

  unknownKeys(node: Node, path: string, known: ReadonlySet<string>, alsoKnown: readonly string[] = []): void {
    for (const key of Object.keys(node)) {
      if (!known.has(key) && !alsoKnown.includes(key))
        this.list.push(`${child(path, key)}: unknown key, ignored`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sections

function readLogLevel(tree: Node, w: Warnings): LogLevel {
  const log = optMapping(tree, 'log', '');
  if (log === undefined) return 'INFO';
  w.unknownKeys(log, 'log', LOG_KEYS);
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

function readBasicAuth(node: Node, key: string, path: string, w: Warnings): BasicAuth | undefined {
  const auth = optMapping(node, key, path);
  if (auth === undefined) return undefined;
  const p = child(path, key);
  w.unknownKeys(auth, p, new Set(['username', 'password']));
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

function readRestApi(tree: Node, w: Warnings): RestApiConfig {
  const r = reqMapping(tree, 'restapi', '');
  const path = 'restapi';
  w.unknownKeys(r, path, RESTAPI_KEYS);
  const listen = listenAddress(r, 'listen', path, '127.0.0.1:8008');
  const connect = connectAddress(r, 'connect_address', path, '10.0.0.1:8008');
  if (connect === undefined) throw missing('restapi.connect_address');
  const certfile = optStr(r, 'certfile', path);
  const headers = (key: string): Readonly<Record<string, string>> => optStrMap(r, key, path) ?? {};
  return {
    listen,
    connectAddress: connect,
    protocol: certfile ? 'https' : 'http',
    authentication: readBasicAuth(r, 'authentication', path, w) ?? authString(r, path),
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

function checkCtl(tree: Node, w: Warnings): void {
  const c = optMapping(tree, 'ctl', '');
  if (c === undefined) return;
  w.unknownKeys(c, 'ctl', CTL_KEYS);
  optBool(c, 'insecure', 'ctl');
  for (const k of ['cacert', 'certfile', 'keyfile', 'keyfile_password']) optStr(c, k, 'ctl');
  readBasicAuth(c, 'authentication', 'ctl', w);
}

const DCS_SECTIONS = ['etcd3', 'zookeeper', 'etcd', 'consul', 'exhibitor', 'kubernetes', 'raft'];

function readDcs(tree: Node, local: LocalConfig, w: Warnings): DcsTarget {
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
    w.unknownKeys(etcd3, 'etcd3', ETCD_KEYS);
    optEnum(etcd3, 'protocol', 'etcd3', ['http', 'https']);
    optInt(etcd3, 'port', 'etcd3', { min: 1, max: 65535 });
    optBool(etcd3, 'use_proxies', 'etcd3');
    for (const k of ['host', 'url', 'proxy', 'username', 'password', 'cacert', 'cert', 'key']) {
      optStr(etcd3, k, 'etcd3');
    }
    const hosts = get(etcd3, 'hosts');
    if (hosts !== undefined && typeof hosts !== 'string') optStrList(etcd3, 'hosts', 'etcd3');
  }
  const zk = optMapping(tree, 'zookeeper', '');
  if (zk !== undefined) {
    w.unknownKeys(zk, 'zookeeper', ZOOKEEPER_KEYS);
    const hosts = get(zk, 'hosts');
    if (hosts === undefined) throw missing('zookeeper.hosts');
    if (typeof hosts !== 'string') optStrList(zk, 'hosts', 'zookeeper');
    optBool(zk, 'use_ssl', 'zookeeper');
    optBool(zk, 'verify', 'zookeeper');
    for (const k of ['cacert', 'cert', 'key', 'key_password']) optStr(zk, k, 'zookeeper');
    optMapping(zk, 'set_acls', 'zookeeper');
    optMapping(zk, 'auth_data', 'zookeeper');
  }
  return dcsTarget(local);
}

function readBootstrap(tree: Node, w: Warnings): BootstrapConfig | undefined {
  const b = optMapping(tree, 'bootstrap', '');
  if (b === undefined) return undefined;
  const path = 'bootstrap';
  const method = optStr(b, 'method', path) ?? 'initdb';
  w.unknownKeys(b, path, BOOTSTRAP_KEYS, [method]);
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
    postBootstrap: optStr(b, 'post_bootstrap', path),
    postInit: optStr(b, 'post_init', path),
  };
}

function readUser(node: Node, key: string, path: string, w: Warnings): PgUser | undefined {
  const u = optMapping(node, key, path);
  if (u === undefined) return undefined;
  const p = child(path, key);
  w.unknownKeys(u, p, new Set(['username', 'password', ...USER_KEYS]));
  const params: Record<string, string> = {};
  for (const k of USER_KEYS) {
    const v = optStr(u, k, p);
    if (v !== undefined) params[k] = v;
  }
  return { username: reqStr(u, 'username', p), password: optStr(u, 'password', p), connectionParams: params };
}

function readPostgresql(tree: Node, w: Warnings): PostgresqlConfig {
  const pg = reqMapping(tree, 'postgresql', '');
  const path = 'postgresql';
  const methods = optStrList(pg, 'create_replica_methods', path) ?? ['basebackup'];
  if (methods.length === 0) throw invalid('postgresql.create_replica_methods', [], 'a non-empty list');
  w.unknownKeys(pg, path, POSTGRESQL_KEYS, [...methods, 'use_slots']);
  if (get(pg, 'use_slots') !== undefined) {
    w.list.push(
      'postgresql.use_slots: only read from the dynamic configuration, ignored here; set it in bootstrap.dcs.postgresql or with edit-config',
    );
  }

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
    w.unknownKeys(authNode, authPath, new Set(['superuser', 'replication', 'rewind']));
  } else if (get(pg, 'superuser') !== undefined || get(pg, 'replication') !== undefined) {
    authNode = pg;
    authPath = path;
  } else {
    throw missing('postgresql.authentication');
  }
  const superKey = authNode === pg && get(pg, 'superuser') === undefined ? 'pg_rewind' : 'superuser';
  const superuser = readUser(authNode, superKey, authPath, w);
  if (superuser === undefined) throw missing(child(authPath, 'superuser'));
  const replication = readUser(authNode, 'replication', authPath, w);
  if (replication === undefined) throw missing(child(authPath, 'replication'));
  const rewind = authNode === pg ? undefined : readUser(authNode, 'rewind', authPath, w);

  const parameters = optMapping(pg, 'parameters', path) ?? {};
  for (const [k, v] of Object.entries(parameters)) {
    if (typeof v === 'object' && v !== null) {
      throw invalid(child('postgresql.parameters', k), v, 'a single value (string, number or boolean)');
    }
  }
  optStr(parameters, 'unix_socket_directories', 'postgresql.parameters');

  const callbacksNode = optMapping(pg, 'callbacks', path) ?? {};
  w.unknownKeys(callbacksNode, 'postgresql.callbacks', new Set(CALLBACKS));
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

  const binNameNode = optMapping(pg, 'bin_name', path) ?? {};
  w.unknownKeys(binNameNode, 'postgresql.bin_name', BIN_NAMES);
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
  optToolOptions(pg, 'rewind', path);
  optStr(pg, 'krbsrvname', path);
  return config;
}

function readWatchdog(tree: Node, w: Warnings): WatchdogConfig {
  const wd = optMapping(tree, 'watchdog', '') ?? {};
  w.unknownKeys(wd, 'watchdog', WATCHDOG_KEYS);
  const raw = get(wd, 'mode');
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
  };
}

/**
 * Patroni 4.1.4 starts without validating tags and evaluates them at run time: a boolean tag is Python truthy (so
 * the string 'false' means true), a priority is parsed leniently ('1' is 1); nofailover/nosync win over a
 * contradicting priority, with a warning.
 */
function readTags(tree: Node, w: Warnings): AgentTags {
  const t = optMapping(tree, 'tags', '') ?? {};
  const boolTag = (name: string, priority: string): boolean => {
    const v = get(t, name);
    if (v !== undefined && v !== null) return truthy(v);
    const p = parseIntLenient(get(t, priority));
    return p !== undefined && p <= 0;
  };
  const warnConflict = (name: string, priority: string): void => {
    const v = get(t, name);
    const p = parseIntLenient(get(t, priority));
    if (v !== undefined && v !== null && p !== undefined && truthy(v) === p > 0) {
      w.list.push(
        `Conflicting configuration between ${name}: ${JSON.stringify(v)} and ${priority}: ${p}. Defaulting to ${name}: ${JSON.stringify(v)}`,
      );
    }
  };
  warnConflict('nofailover', 'failover_priority');
  warnConflict('nosync', 'sync_priority');
  const replicatefrom = optStr(t, 'replicatefrom', 'tags');
  const custom: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(t)) if (!KNOWN_TAGS.has(k)) custom[k] = v;
  const nofailover = boolTag('nofailover', 'failover_priority');
  return {
    nofailover,
    failoverPriority: truthy(get(t, 'nofailover')) ? 0 : (parseIntLenient(get(t, 'failover_priority')) ?? 1),
    nosync: boolTag('nosync', 'sync_priority'),
    clonefrom: truthy(get(t, 'clonefrom')),
    replicatefrom,
    noloadbalance: truthy(get(t, 'noloadbalance')),
    nostream: parseBool(get(t, 'nostream')) ?? false,
    custom,
  };
}

function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (isMapping(v)) return Object.keys(v).length > 0;
  return Boolean(v);
}

/**
 * The `tags` of the member key (spec 1.2.3): the boolean tags are left out while falsy, except `nofailover` next to
 * a `failover_priority` and `nosync` next to a `sync_priority`; everything else as written, in the file's order.
 */
export function publishedTags(tags: Node): Node {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(tags)) {
    const kept =
      !FILTERED_TAGS.has(k) ||
      truthy(v) ||
      (k === 'nofailover' && 'failover_priority' in tags) ||
      (k === 'nosync' && 'sync_priority' in tags);
    if (kept) out[k] = v;
  }
  return out;
}

function checkTopLevel(tree: Node, w: Warnings): void {
  for (const key of Object.keys(tree)) {
    if (TOP_LEVEL.has(key)) continue;
    if (DYNAMIC_KEYS.has(key)) {
      w.list.push(
        `${key}: dynamic setting, ignored in the local configuration; set it in bootstrap.dcs or with edit-config`,
      );
    } else {
      w.list.push(`${key}: unknown key, ignored`);
    }
  }
  if (get(tree, 'citus') !== undefined)
    w.list.push('citus: Citus clusters are not supported by pgwarden, ignored');
  optInt(tree, 'thread_pool_size', '', { min: 5 });
  optInt(tree, 'thread_stack_size', '', { min: 65536 });
}

// ---------------------------------------------------------------------------------------------------------------
// Loading

/** Validates an already merged tree (file(s) plus environment). */
export function agentConfigFromTree(tree: ConfigTree, source: string): LoadedAgentConfig {
  const w = new Warnings();
  const pgNode = get(tree, 'postgresql');
  // Legacy: `postgresql.name` stands in for a missing top-level name.
  const legacyName = get(tree, 'name') === undefined && isMapping(pgNode) ? get(pgNode, 'name') : undefined;
  const name = reqStr(legacyName === undefined ? tree : { name: legacyName }, 'name', '');
  if (name === PLACEHOLDER_NAME) throw invalid('name', name, 'a name reserved by Patroni');
  const scope = reqStr(tree, 'scope', '');
  const namespace = optStr(tree, 'namespace', '') || '/service';
  checkTopLevel(tree, w);
  const logLevel = readLogLevel(tree, w);
  const restapi = readRestApi(tree, w);
  const local: LocalConfig = { source, tree, scope, name, namespace };
  const dcs = readDcs(tree, local, w);
  const bootstrap = readBootstrap(tree, w);
  const postgresql = readPostgresql(tree, w);
  const watchdog = readWatchdog(tree, w);
  const tags = readTags(tree, w);
  checkCtl(tree, w);

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
  return { config, warnings: w.list };
}

/**
 * Loads the agent's configuration as Patroni does (spec 3.1): the file or directory at `path` with `PATRONI_*`
 * merged over it; without a path, the YAML in `PATRONI_CONFIGURATION`, else the `PATRONI_*` variables alone.
 */
export function loadAgentConfig(path: string | undefined, env: Env): LoadedAgentConfig {
  if (path !== undefined) {
    const fileEnv: Record<string, string | undefined> = { ...env };
    delete fileEnv['PATRONI_CONFIGURATION'];
    return agentConfigFromTree(applyPatroniEnv(readConfigPath(path), fileEnv), path);
  }
  return agentConfigFromTree(applyPatroniEnv({}, env), 'environment');
}

/** PostgreSQL refuses to run as root, and so does the agent (design: run it as the data directory's owner). */
export function refuseRoot(uid: number): void {
  if (uid === 0) {
    throw new UserError(
      'pgwarden agent must not run as root: PostgreSQL refuses to run as root. Run it as the user that owns the data directory, e.g. runuser -u postgres -- pgwarden agent <config>',
    );
  }
}
