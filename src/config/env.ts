/** `PATRONI_*` environment variables, mapped onto the configuration tree as Patroni maps them (config.py). */
import { parse as parseYaml } from 'yaml';
import { PYYAML_PARSE } from './pyyaml-schema.js';
import { parseBool } from '../model/python.js';
import { UserError } from './errors.js';
import { deepMerge, type ConfigTree } from './tree.js';

const RESTAPI = [
  'LISTEN',
  'CONNECT_ADDRESS',
  'CERTFILE',
  'KEYFILE',
  'KEYFILE_PASSWORD',
  'CAFILE',
  'CIPHERS',
  'VERIFY_CLIENT',
  'HTTP_EXTRA_HEADERS',
  'HTTPS_EXTRA_HEADERS',
  'ALLOWLIST',
  'ALLOWLIST_INCLUDE_MEMBERS',
  'REQUEST_QUEUE_SIZE',
  'SERVER_TOKENS',
];
const CTL = ['INSECURE', 'CACERT', 'CERTFILE', 'KEYFILE', 'KEYFILE_PASSWORD'];
const POSTGRESQL = [
  'LISTEN',
  'CONNECT_ADDRESS',
  'PROXY_ADDRESS',
  'CONFIG_DIR',
  'DATA_DIR',
  'PGPASS',
  'BIN_DIR',
];
const BIN_NAMES = [
  'PG_CTL',
  'INITDB',
  'PG_CONTROLDATA',
  'PG_BASEBACKUP',
  'POSTGRES',
  'PG_ISREADY',
  'PG_REWIND',
];
const LOG = [
  'TYPE',
  'LEVEL',
  'TRACEBACK_LEVEL',
  'FORMAT',
  'DATEFORMAT',
  'STATIC_FIELDS',
  'MAX_QUEUE_SIZE',
  'DIR',
  'MODE',
  'FILE_SIZE',
  'FILE_NUM',
  'LOGGERS',
  'DEDUPLICATE_HEARTBEAT_LOGS',
];
const USER_KEYS = [
  'USERNAME',
  'PASSWORD',
  'SSLMODE',
  'SSLCERT',
  'SSLKEY',
  'SSLPASSWORD',
  'SSLROOTCERT',
  'SSLCRL',
  'SSLCRLDIR',
  'GSSENCMODE',
  'CHANNEL_BINDING',
  'SSLNEGOTIATION',
];
const DCS_SUFFIXES = [
  'HOST',
  'HOSTS',
  'PORT',
  'USE_PROXIES',
  'PROTOCOL',
  'SRV',
  'SRV_SUFFIX',
  'URL',
  'PROXY',
  'CACERT',
  'CERT',
  'KEY',
  'KEY_PASSWORD',
  'VERIFY',
  'USE_SSL',
  'SET_ACLS',
  'AUTH_DATA',
  'TOKEN',
  'CHECKS',
  'DC',
  'CONSISTENCY',
  'REGISTER_SERVICE',
  'SERVICE_CHECK_INTERVAL',
  'SERVICE_CHECK_TLS_SERVER_NAME',
  'SERVICE_TAGS',
  'NAMESPACE',
  'CONTEXT',
  'USE_ENDPOINTS',
  'SCOPE_LABEL',
  'ROLE_LABEL',
  'POD_IP',
  'PORTS',
  'LABELS',
  'BYPASS_API_SERVICE',
  'RETRIABLE_HTTP_CODES',
  'LEADER_LABEL_VALUE',
  'FOLLOWER_LABEL_VALUE',
  'STANDBY_LEADER_LABEL_VALUE',
  'TMP_ROLE_LABEL',
  'BOOTSTRAP_LABELS',
  'GROUP',
  'DATABASE',
];
const NOT_DCS = new Set([
  'RESTAPI',
  'CTL',
  'POSTGRESQL',
  'LOG',
  'REPLICATION',
  'SUPERUSER',
  'REWIND',
  'RAFT',
]);
/** Patroni reads only these two from PATRONI_CITUS_* (then refused: src/config/key-registry.ts). */
const CITUS = new Set(['GROUP', 'DATABASE']);
const RAFT = ['DATA_DIR', 'SELF_ADDR', 'PARTNER_ADDRS', 'PASSWORD', 'BIND_ADDR'];
/** Names older Patroni versions read, still mapped by Patroni 4.1.4 when the new name is not set. */
const OLD_LOG_NAMES = [
  ['LEVEL', 'PATRONI_LOGLEVEL'],
  ['FORMAT', 'PATRONI_LOGFORMAT'],
  ['DATEFORMAT', 'PATRONI_LOG_DATEFMT'],
] as const;
const LIST_SUFFIXES = new Set(['HOSTS', 'PORTS', 'CHECKS', 'SERVICE_TAGS', 'RETRIABLE_HTTP_CODES']);
const DICT_SUFFIXES = new Set(['LABELS', 'SET_ACLS', 'AUTH_DATA', 'BOOTSTRAP_LABELS']);
const BOOL_SUFFIXES = new Set([
  'USE_PROXIES',
  'REGISTER_SERVICE',
  'USE_ENDPOINTS',
  'BYPASS_API_SERVICE',
  'VERIFY',
]);

function yamlValue(name: string, text: string): unknown {
  try {
    return parseYaml(text, PYYAML_PARSE) as unknown;
  } catch (e) {
    throw new UserError(
      `environment variable ${name} is not valid YAML: ${(e as Error).message.split('\n')[0]}`,
    );
  }
}

function setPath(tree: ConfigTree, path: readonly string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as ConfigTree;
  }
  node[path[path.length - 1]!] = value;
}

/**
 * Patroni's config.py reads three environment booleans with `parse_bool` (on/true/yes/1, off/false/no/0, any case)
 * and drops an empty or unreadable value, so the file's setting (if any) stays.
 */
const ENV_BOOLS = [
  ['ctl', 'insecure'],
  ['restapi', 'allowlist_include_members'],
  ['log', 'deduplicate_heartbeat_logs'],
] as const;

function parseEnvBools(out: ConfigTree): void {
  for (const [section, key] of ENV_BOOLS) {
    const node = out[section];
    if (typeof node !== 'object' || node === null || Array.isArray(node) || !(key in node)) continue;
    const s = node as Record<string, unknown>;
    const value = s[key] === '' ? undefined : parseBool(s[key]);
    if (value === undefined) delete s[key];
    else s[key] = value;
    if (Object.keys(s).length === 0) delete out[section];
  }
}

export function applyPatroniEnv(
  tree: ConfigTree,
  env: Readonly<Record<string, string | undefined>>,
): ConfigTree {
  const get = (k: string): string | undefined => {
    const v = env[k];
    return v === undefined ? undefined : v;
  };
  const whole = get('PATRONI_CONFIGURATION');
  if (whole !== undefined && Object.keys(tree).length === 0) {
    const parsed = yamlValue('PATRONI_CONFIGURATION', whole);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new UserError('environment variable PATRONI_CONFIGURATION must hold a YAML mapping');
    }
    return parsed as ConfigTree;
  }
  const out: ConfigTree = {};
  for (const k of ['NAME', 'NAMESPACE', 'SCOPE', 'THREAD_POOL_SIZE', 'THREAD_STACK_SIZE']) {
    const v = get(`PATRONI_${k}`);
    if (v !== undefined) out[k.toLowerCase()] = v;
  }
  for (const k of LOG) {
    const old = OLD_LOG_NAMES.find(([name]) => name === k)?.[1];
    const v = get(`PATRONI_LOG_${k}`) ?? (old === undefined ? undefined : get(old));
    if (v === undefined) continue;
    const dict = k === 'STATIC_FIELDS' || k === 'LOGGERS';
    setPath(out, ['log', k.toLowerCase()], dict ? asDict(`PATRONI_LOG_${k}`, v) : v);
  }
  for (const k of RAFT) {
    const v = get(`PATRONI_RAFT_${k}`);
    if (v !== undefined)
      setPath(out, ['raft', k.toLowerCase()], k === 'PARTNER_ADDRS' ? asList(name(k), v) : v);
  }
  for (const k of RESTAPI) {
    const name = `PATRONI_RESTAPI_${k}`;
    const v = get(name);
    if (v === undefined) continue;
    const value = k === 'ALLOWLIST' ? asList(name, v) : k.endsWith('HEADERS') ? asDict(name, v) : v;
    setPath(out, ['restapi', k.toLowerCase()], value);
  }
  for (const k of CTL) {
    const v = get(`PATRONI_CTL_${k}`);
    if (v !== undefined) setPath(out, ['ctl', k.toLowerCase()], v);
  }
  parseEnvBools(out);
  for (const [section, prefix] of [
    ['restapi', 'PATRONI_RESTAPI_'],
    ['ctl', 'PATRONI_CTL_'],
  ] as const) {
    const user = get(`${prefix}USERNAME`);
    const pass = get(`${prefix}PASSWORD`);
    if (user !== undefined) setPath(out, [section, 'authentication', 'username'], user);
    if (pass !== undefined) setPath(out, [section, 'authentication', 'password'], pass);
  }
  for (const k of POSTGRESQL) {
    const v = get(`PATRONI_POSTGRESQL_${k}`);
    if (v !== undefined) setPath(out, ['postgresql', k.toLowerCase()], v);
  }
  for (const k of BIN_NAMES) {
    const v = get(`PATRONI_POSTGRESQL_BIN_${k}`);
    if (v !== undefined) setPath(out, ['postgresql', 'bin_name', k.toLowerCase()], v);
  }
  for (const user of ['REPLICATION', 'SUPERUSER', 'REWIND']) {
    for (const k of USER_KEYS) {
      const v = get(`PATRONI_${user}_${k}`);
      if (v !== undefined)
        setPath(out, ['postgresql', 'authentication', user.toLowerCase(), k.toLowerCase()], v);
    }
  }
  const dcsRe = new RegExp(`^PATRONI_([A-Z0-9]+)_(${DCS_SUFFIXES.join('|')})$`);
  const dcsSections = new Set<string>();
  for (const [name, v] of Object.entries(env)) {
    if (v === undefined) continue;
    const m = dcsRe.exec(name);
    if (!m || NOT_DCS.has(m[1]!)) continue;
    const section = m[1]!.toLowerCase();
    const suffix = m[2]!;
    if (section === 'citus' && !CITUS.has(suffix)) continue;
    let value: unknown = v;
    if (LIST_SUFFIXES.has(suffix)) value = asList(name, v);
    else if (DICT_SUFFIXES.has(suffix)) value = asDict(name, v);
    else if (BOOL_SUFFIXES.has(suffix)) value = parseBool(v);
    else if (suffix === 'PORT' || (section === 'citus' && suffix === 'GROUP')) value = Number.parseInt(v, 10);
    // Patroni drops a boolean it cannot read.
    if (value === undefined) continue;
    setPath(out, [section, suffix.toLowerCase()], value);
    if (section !== 'citus') dcsSections.add(section);
  }
  // Credentials alone do not create a DCS section (Patroni applies them only to a section the env created).
  for (const section of ['etcd', 'etcd3']) {
    if (!dcsSections.has(section)) continue;
    const user = get(`PATRONI_${section.toUpperCase()}_USERNAME`);
    const pass = get(`PATRONI_${section.toUpperCase()}_PASSWORD`);
    if (user !== undefined) setPath(out, [section, 'username'], user);
    if (pass !== undefined) setPath(out, [section, 'password'], pass);
  }
  return deepMerge(tree, out);
}

/** A YAML flow mapping, or a bare `a: 1, b: 2` wrapped in braces as Patroni does. */
function asDict(name: string, v: string): unknown {
  return yamlValue(name, v.trim().startsWith('{') ? v : `{${v}}`);
}

/** A YAML list, or a bare `a,b` wrapped in brackets as Patroni does. */
function asList(name: string, v: string): unknown {
  const text = v.trim().startsWith('[') ? v : `[${v}]`;
  const parsed = yamlValue(name, text);
  return Array.isArray(parsed) ? parsed.map((x) => String(x)) : parsed;
}

const name = (k: string): string => `PATRONI_RAFT_${k}`;

/**
 * `PATRONI_<USER>_PASSWORD` and `PATRONI_<USER>_OPTIONS`: Patroni 3.x created bootstrap user <user> from them;
 * Patroni 4 reads neither, and neither does pgwarden (which takes the users from bootstrap.users).
 */
export function patroniEnvWarnings(env: Readonly<Record<string, string | undefined>>): string[] {
  const taken = new Set(['RESTAPI', 'CTL', 'REPLICATION', 'SUPERUSER', 'REWIND', 'ETCD', 'ETCD3', 'RAFT']);
  const out: string[] = [];
  for (const [key, v] of Object.entries(env)) {
    const m = /^PATRONI_(.+)_(PASSWORD|OPTIONS)$/.exec(key);
    if (v === undefined || !m || taken.has(m[1]!)) continue;
    const user = m[1]!.toLowerCase();
    out.push(
      `environment variable ${key}: ignored (Patroni 3.x created bootstrap user ${user} from it, Patroni 4 and pgwarden do not); set bootstrap.users.${user} in the configuration file`,
    );
  }
  return out;
}
