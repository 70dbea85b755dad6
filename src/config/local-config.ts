/**
 * Local configuration in patroni.yml format (Patroni's config.py): a file or a directory of files, `PATRONI_*`
 * environment overrides, and for the CLI `-d/--dcs-url`. Every problem is reported as one line naming the file.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { PYYAML_PARSE } from './pyyaml-schema.js';
import { errorText, scalarText, textOf } from '../model/text.js';
import { pyBool } from '../model/python.js';
import { UserError } from './errors.js';
import { applyPatroniEnv } from './env.js';
import { deepMerge, isMapping, type ConfigTree } from './tree.js';
import { zookeeperSecurity } from './zookeeper-section.js';
import type { DcsTarget, Etcd3Target } from '../dcs/target.js';

export type { ConfigTree } from './tree.js';
export type { DcsTarget } from '../dcs/target.js';

export interface LocalConfig {
  /** Where the configuration came from, for messages: a path or `environment`. */
  readonly source: string;
  readonly tree: ConfigTree;
  readonly scope?: string;
  readonly namespace: string;
  readonly name?: string;
}

export const DEFAULT_CTL_CONFIG = join(homedir(), '.config', 'patroni', 'patronictl.yaml');

function readYamlFile(path: string): ConfigTree {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read config file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text, { ...PYYAML_PARSE, prettyErrors: true });
  } catch (e) {
    // The parser's first line says what and where; drop the trailing ':' that introduces its context lines.
    const first = errorText(e).split('\n')[0]?.replace(/:\s*$/, '');
    throw new UserError(`config file ${path} is not valid YAML: ${first}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isMapping(parsed))
    throw new UserError(
      `config file ${path} must be a YAML mapping (key: value), not a ${Array.isArray(parsed) ? 'list' : typeof parsed}`,
    );
  return parsed;
}

/** A file, or a directory whose `*.yml`/`*.yaml` files are merged in name order. */
export function readConfigPath(path: string): ConfigTree {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    /* reported by readYamlFile */
  }
  if (!isDir) return readYamlFile(path);
  const files = readdirSync(path)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
  return files.reduce<ConfigTree>((acc, f) => deepMerge(acc, readYamlFile(join(path, f))), {});
}

export interface CtlConfigInput {
  /** `-c` value, if given. */
  readonly configFile?: string;
  readonly dcsUrl?: string;
  readonly insecure?: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** patronictl's rules: `-c`, else `PATRONICTL_CONFIG_FILE`, else the default path which may be absent. */
export function loadCtlConfig(input: CtlConfigInput): LocalConfig {
  const explicit = input.configFile ?? input.env['PATRONICTL_CONFIG_FILE'];
  const path = explicit ?? DEFAULT_CTL_CONFIG;
  let tree: ConfigTree = {};
  let source = 'environment';
  let exists = false;
  try {
    exists = statSync(path).isFile() || statSync(path).isDirectory();
  } catch {
    exists = false;
  }
  if (exists) {
    tree = readConfigPath(path);
    source = path;
  } else if (explicit !== undefined) {
    throw new UserError(
      `Provided config file ${path} not existing or no read rights. Check the -c/--config-file parameter`,
    );
  }
  tree = applyPatroniEnv(tree, input.env);
  const dcsUrl = input.dcsUrl ?? input.env['DCS_URL'];
  if (dcsUrl) tree = applyDcsUrl(tree, dcsUrl);
  if (input.insecure) tree = deepMerge(tree, { ctl: { insecure: true } });
  return describe(tree, source);
}

function describe(tree: ConfigTree, source: string): LocalConfig {
  const where = source === 'environment' ? 'the environment' : source;
  const scalar = (key: string): string | undefined => {
    const v = scalarText(tree[key]);
    if (v === undefined && tree[key] !== undefined && tree[key] !== null) {
      throw new UserError(
        `${key} in ${where} must be a single value, not a ${Array.isArray(tree[key]) ? 'list' : 'mapping'}`,
      );
    }
    return v;
  };
  return {
    source,
    tree,
    scope: scalar('scope'),
    name: scalar('name'),
    namespace: scalar('namespace') ?? '/service',
  };
}

const DCS_SECTIONS = ['etcd', 'etcd3', 'zookeeper', 'consul', 'exhibitor', 'kubernetes', 'raft'] as const;
const SCHEME_PORTS: Readonly<Record<string, number>> = {
  zookeeper: 2181,
  exhibitor: 8181,
  consul: 8500,
  etcd: 2379,
  etcd3: 2379,
};

/**
 * `-d/--dcs-url`: `[scheme://][host][:port][,host[:port]...][/namespace]`; it replaces every DCS section of the
 * file. pgwarden speaks only the etcd v3 API, so `etcd://` and a missing scheme on an etcd port mean etcd3.
 */
export function applyDcsUrl(tree: ConfigTree, url: string): ConfigTree {
  const m = /^(?:([a-z0-9]+):\/\/)?([^/]*)(\/.*)?$/i.exec(url.trim());
  if (!m)
    throw new UserError(
      `Invalid dcs url: ${url}; expected e.g. etcd3://127.0.0.1:2379 or zookeeper://127.0.0.1:2181`,
    );
  let scheme = m[1]?.toLowerCase();
  const hostPart = m[2] ?? '';
  const path = m[3];
  const rawHosts = hostPart === '' ? [''] : hostPart.split(',');
  const firstPort = /:(\d+)$/.exec(rawHosts[0] ?? '')?.[1];
  if (!scheme) {
    scheme =
      Object.entries(SCHEME_PORTS).find(([, p]) => String(p) === firstPort && p !== 2379)?.[0] ?? 'etcd3';
  }
  if (!(scheme in SCHEME_PORTS)) throw new UserError(`Unknown dcs scheme: ${scheme}`);
  if (scheme === 'consul' || scheme === 'exhibitor') {
    throw new UserError(`${scheme} is not supported by pgwarden; use etcd3:// or zookeeper://`);
  }
  const defaultPort = SCHEME_PORTS[scheme] ?? 2379;
  const hosts = rawHosts.map((h) => {
    const host = h.replace(/:(\d+)$/, '') || 'localhost';
    const port = /:(\d+)$/.exec(h)?.[1] ?? String(defaultPort);
    return `${host}:${port}`;
  });
  const out: ConfigTree = { ...tree };
  for (const s of DCS_SECTIONS) delete out[s];
  if (scheme === 'zookeeper') out['zookeeper'] = { hosts };
  else out['etcd3'] = { hosts };
  if (path && path !== '/') out['namespace'] = path;
  return out;
}

function hostList(value: unknown, defaultPort: number, where: string): string[] {
  let items: unknown[];
  if (Array.isArray(value)) items = value;
  else if (typeof value === 'string') items = value.split(',');
  else throw new UserError(`${where} must be a list of host:port or a comma-separated string`);
  return items
    .map((h) => String(h).trim())
    .filter((h) => h !== '')
    .map((h) => (/:\d+$/.test(h) ? h : `${h}:${defaultPort}`));
}

/** The DCS the configuration points at, or a clear error when there is none or it is not supported. */
export function dcsTarget(config: LocalConfig): DcsTarget {
  const t = config.tree;
  const where = config.source === 'environment' ? 'the environment' : config.source;
  if (isMapping(t['etcd3'])) return etcd3Target(t['etcd3'], `etcd3 in ${where}`);
  if (isMapping(t['zookeeper'])) {
    const hosts = t['zookeeper']['hosts'];
    if (hosts === undefined) throw new UserError(`zookeeper.hosts is missing in ${where}`);
    return {
      kind: 'zookeeper',
      hosts: hostList(hosts, 2181, `zookeeper.hosts in ${where}`),
      ...zookeeperSecurity(t['zookeeper'], where),
    };
  }
  if (isMapping(t['etcd'])) {
    throw new UserError(
      `${where} configures etcd through the v2 API (section "etcd"); pgwarden speaks etcd v3 only: rename the section to "etcd3" (Patroni reads the same keys there only if the cluster was created on v3)`,
    );
  }
  for (const s of ['consul', 'exhibitor', 'kubernetes', 'raft']) {
    if (t[s] !== undefined)
      throw new UserError(
        `${where} uses the ${s} DCS, which pgwarden does not support; use etcd3 or zookeeper`,
      );
  }
  throw new UserError(
    `no DCS configured in ${where}: add an etcd3 or zookeeper section, set PATRONI_ETCD3_HOSTS, or pass --dcs-url etcd3://HOST:PORT`,
  );
}

function etcd3Target(s: ConfigTree, where: string): Etcd3Target {
  const str = (k: string): string | undefined => scalarText(s[k]);
  const defaultPort = Number(s['port'] ?? 2379);
  let protocol: 'http' | 'https' = str('protocol') === 'https' ? 'https' : 'http';
  let username = str('username');
  let password = str('password');
  let hosts: string[];
  // Patroni: a proxy first, then SRV records (hosts, then host or url, when they name nothing), then hosts, then
  // host (or url). `discovery_srv` and `srv_domain` are older names of `srv`, and win over it as in Patroni.
  const srv =
    s['proxy'] === undefined ? (str('srv_domain') ?? str('discovery_srv') ?? str('srv')) : undefined;
  if (s['hosts'] !== undefined && s['proxy'] === undefined)
    hosts = hostList(s['hosts'], defaultPort, `${where}: hosts`);
  else if (s['host'] !== undefined && s['url'] === undefined && s['proxy'] === undefined)
    hosts = hostList(textOf(s['host']), defaultPort, `${where}: host`);
  else if (s['url'] !== undefined || s['proxy'] !== undefined) {
    const raw = str('proxy') ?? str('url') ?? '';
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new UserError(
        `${where}: ${s['proxy'] !== undefined ? 'proxy' : 'url'} ${raw} is not a valid URL`,
      );
    }
    protocol = u.protocol === 'https:' ? 'https' : 'http';
    if (u.username) username = decodeURIComponent(u.username);
    if (u.password) password = decodeURIComponent(u.password);
    hosts = [`${u.hostname}:${u.port || defaultPort}`];
  } else if (srv !== undefined) {
    hosts = [];
  } else {
    hosts = [`localhost:${defaultPort}`];
  }
  return {
    kind: 'etcd3',
    hosts,
    protocol,
    username,
    password,
    cacert: str('cacert'),
    cert: str('cert'),
    key: str('key'),
    keyPassword: str('key_password'),
    ...(srv !== undefined ? { srv, srvSuffix: str('srv_suffix') } : {}),
    // `proxy` implies use_proxies; the value is read with Python's bool() as Patroni passes it on.
    ...(s['proxy'] !== undefined || pyBool(s['use_proxies']) ? { useProxies: true } : {}),
  };
}

/**
 * Basic-auth credentials for the members' REST API, as patronictl finds them: the `ctl` section first, then
 * `restapi`; in each, `authentication: {username, password}` or the `auth: 'username:password'` string that
 * Patroni 3.0.2 reads (Patroni derives `restapi.auth` from `restapi.authentication`, which therefore wins).
 */
export function restCredentials(config: LocalConfig): { username: string; password: string } | undefined {
  for (const section of ['ctl', 'restapi']) {
    const s = config.tree[section];
    if (!isMapping(s)) continue;
    const auth = s['authentication'];
    if (isMapping(auth) && auth['username'] !== undefined) {
      return { username: textOf(auth['username']), password: textOf(auth['password']) };
    }
    const text = typeof s['auth'] === 'string' ? s['auth'] : '';
    if (text) {
      const colon = text.indexOf(':');
      return colon < 0
        ? { username: text, password: '' }
        : { username: text.slice(0, colon), password: text.slice(colon + 1) };
    }
  }
  return undefined;
}

export function ctlSection(config: LocalConfig): ConfigTree {
  const s = config.tree['ctl'];
  return isMapping(s) ? s : {};
}
