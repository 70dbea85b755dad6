/**
 * `pgwarden agent --generate-sample-config [FILE]` and `--generate-config [--dsn DSN] [FILE]`, as Patroni 4.1.4's
 * `config_generator.py`: a patroni.yml to start from, written to FILE (its directory created) or to stdout, laid out
 * as Patroni lays it out (sections in its order, keys sorted, the bootstrap comments, no final newline).
 *
 * Both start from the same template: this host's name and first address (IPv4 first) for `name` and the listen and
 * connect addresses, Patroni's log defaults, `#FIXME` where only the operator can know, the default tags and the
 * default dynamic configuration in `bootstrap.dcs`, with the `PATRONI_*` environment merged over it. The sample
 * then adds what suits the installed PostgreSQL major version (`postgres --version`); the running-instance variant
 * (src/ctl/generate-config-running.ts) reads the instance's settings, addresses, pg_hba/pg_ident and binaries.
 */
import { execFile } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { UserError } from '../config/errors.js';
import { applyPatroniEnv } from '../config/env.js';
import { deepMerge, isMapping, type ConfigTree } from '../config/tree.js';
import { parseBool } from '../model/python.js';
import { errorText } from '../model/text.js';
import { pyYaml } from '../render/formats.js';

type Env = Readonly<Record<string, string | undefined>>;

export const NO_VALUE = '#FIXME';

/** Patroni's `CMDLINE_OPTIONS` defaults (the values the dynamic configuration starts from). */
export const CMDLINE_DEFAULTS: Readonly<Record<string, string | number | undefined>> = {
  listen_addresses: undefined,
  port: undefined,
  cluster_name: undefined,
  wal_level: 'hot_standby',
  hot_standby: 'on',
  max_connections: 100,
  max_wal_senders: 10,
  wal_keep_segments: 8,
  wal_keep_size: '128MB',
  max_prepared_transactions: 0,
  max_locks_per_transaction: 64,
  track_commit_timestamp: 'off',
  max_replication_slots: 10,
  max_worker_processes: 8,
  wal_log_hints: 'on',
};

/** Python's `socket.gethostname()` and the first address it resolves to, IPv4 first; `#FIXME` when it fails. */
export async function hostAddress(): Promise<{ name: string; ip: string }> {
  try {
    const name = hostname();
    const all = await lookup(name, { all: true, verbatim: true });
    const first = [...all].sort((a, b) => a.family - b.family)[0];
    if (first === undefined) throw new Error(`${name} has no address`);
    return { name, ip: first.address };
  } catch (e) {
    process.stderr.write(`WARNING: Failed to obtain address: ${errorText(e)}\n`);
    return { name: NO_VALUE, ip: NO_VALUE };
  }
}

/** The default dynamic configuration (Patroni's `Config.get_default_config()` without `standby_cluster`). */
function defaultDynamic(): ConfigTree {
  const parameters: ConfigTree = {};
  for (const [k, v] of Object.entries(CMDLINE_DEFAULTS)) {
    if (v !== undefined && k !== 'wal_keep_segments' && k !== 'wal_keep_size') parameters[k] = v;
  }
  return { ttl: 30, loop_wait: 10, retry_timeout: 10, postgresql: { use_slots: true, parameters } };
}

/** The template both generators fill in (Patroni's `get_template_config`). */
export async function templateConfig(env: Env): Promise<ConfigTree> {
  const { name, ip } = await hostAddress();
  const template: ConfigTree = {
    scope: NO_VALUE,
    name,
    restapi: { connect_address: `${ip}:8008`, listen: `${ip}:8008` },
    log: {
      type: 'plain',
      level: 'INFO',
      traceback_level: 'ERROR',
      format: '%(asctime)s %(levelname)s: %(message)s',
      max_queue_size: 1000,
    },
    postgresql: {
      data_dir: NO_VALUE,
      connect_address: `${ip}:5432`,
      listen: `${ip}:5432`,
      bin_dir: '',
      authentication: {
        superuser: { username: 'postgres', password: NO_VALUE },
        replication: { username: 'replicator', password: NO_VALUE },
      },
    },
    tags: {
      failover_priority: 1,
      sync_priority: 1,
      noloadbalance: false,
      clonefrom: true,
      nosync: false,
      nostream: false,
    },
  };
  const fromEnv = applyPatroniEnv({}, env);
  const bootstrap = isMapping(fromEnv['bootstrap']) ? fromEnv['bootstrap'] : {};
  const local: ConfigTree = { ...fromEnv, bootstrap: { ...bootstrap, dcs: defaultDynamic() } };
  if (!isMapping(local['postgresql'])) local['postgresql'] = {};
  return deepMerge(template, local);
}

/** `postgres --version` as Patroni's `postgres_major_version_to_int(get_major_version(...))`: 150000, 90600. */
export async function installedMajorVersion(config: ConfigTree): Promise<number> {
  const pg = isMapping(config['postgresql']) ? config['postgresql'] : {};
  const names = isMapping(pg['bin_name']) ? pg['bin_name'] : {};
  const program = typeof names['postgres'] === 'string' && names['postgres'] ? names['postgres'] : 'postgres';
  const binDir = typeof pg['bin_dir'] === 'string' ? pg['bin_dir'] : '';
  const path = binDir ? join(binDir, program) : program;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(path, ['--version'], { timeout: 30_000 }, (e, stdout) => {
      if (e) reject(new UserError(`Unexpected exception: cannot run ${path} --version: ${errorText(e)}`));
      else resolve(String(stdout));
    });
  });
  const m = /\s(\d+)(?:\.(\d+))?/.exec(out);
  if (m === null) throw new UserError(`Unexpected exception: cannot read a version in '${out.trim()}'`);
  const major = Number(m[1]);
  return major >= 10 ? major * 10000 : major * 10000 + Number(m[2] ?? 0) * 100;
}

function sub(tree: ConfigTree, ...path: string[]): ConfigTree {
  let node = tree;
  for (const k of path) {
    const next = node[k];
    if (!isMapping(next)) node[k] = {};
    node = node[k] as ConfigTree;
  }
  return node;
}

/** Patroni's `SampleConfigGenerator.generate`: sane defaults for the installed major version. */
export async function sampleConfig(env: Env): Promise<ConfigTree> {
  const config = await templateConfig(env);
  const major = await installedMajorVersion(config);
  const auth = major >= 100000 ? 'scram-sha-256' : 'md5';
  const pg = sub(config, 'postgresql');
  pg['parameters'] = { password_encryption: auth };
  const replication = sub(pg, 'authentication', 'replication');
  const replUser = typeof replication['username'] === 'string' ? replication['username'] : 'replicator';
  pg['pg_hba'] = [`host all all all ${auth}`, `host replication ${replUser} all ${auth}`];
  const dcsPg = sub(config, 'bootstrap', 'dcs', 'postgresql');
  const params = sub(dcsPg, 'parameters');
  const walKeep = major < 130000 ? 'wal_keep_segments' : 'wal_keep_size';
  params[walKeep] = CMDLINE_DEFAULTS[walKeep];
  params['wal_level'] = major < 90600 ? 'hot_standby' : 'replica';
  dcsPg['use_pg_rewind'] = parseBool(params['wal_log_hints']) === true;
  if (major >= 110000) {
    const authentication = sub(pg, 'authentication');
    const rewind = isMapping(authentication['rewind'])
      ? authentication['rewind']
      : (authentication['rewind'] = { username: 'rewind_user' });
    if (!('password' in rewind)) rewind['password'] = NO_VALUE;
  }
  return config;
}

const TOP_SECTIONS = [
  'scope',
  'namespace',
  'name',
  'log',
  'restapi',
  'ctl',
  'citus',
  'consul',
  'etcd',
  'etcd3',
  'exhibitor',
  'kubernetes',
  'raft',
  'zookeeper',
];

/** PyYAML's `safe_dump(block, default_flow_style=False, indent=2)` of one block, stripped, lines prefixed. */
function block(value: ConfigTree, prefix = ''): string {
  return prefix + pyYaml(value, { width: 80 }).trim().split('\n').join(`\n${prefix}`);
}

/** The document as Patroni's `_format_config` writes it (no final newline). */
export function formatConfig(config: ConfigTree): string {
  const out: string[] = [];
  const section = (name: string): void => {
    if (!(name in config)) return;
    if (isMapping(config[name])) out.push('');
    out.push(block({ [name]: config[name] }));
  };
  TOP_SECTIONS.forEach(section);
  const bootstrap = config['bootstrap'];
  if (isMapping(bootstrap)) {
    out.push('\n# The bootstrap configuration. Works only when the cluster is not yet initialized.');
    out.push('# If the cluster is already initialized, all changes in the `bootstrap` section are ignored!');
    out.push('bootstrap:');
    const dcs = bootstrap['dcs'];
    if (isMapping(dcs)) {
      out.push('  # This section will be written into <dcs>:/<namespace>/<scope>/config after initializing');
      out.push('  # new cluster and all other cluster members will use it as a `global configuration`.');
      out.push('  # WARNING! If you want to change any of the parameters that were set up');
      out.push('  # via `bootstrap.dcs` section, please use `patronictl edit-config`!');
      out.push('  dcs:');
      const first = ['loop_wait', 'retry_timeout', 'ttl'];
      for (const k of first) if (k in dcs) out.push(block({ [k]: dcs[k] }, '    '));
      for (const [k, v] of Object.entries(dcs)) if (!first.includes(k)) out.push(block({ [k]: v }, '    '));
    }
  }
  ['postgresql', 'watchdog', 'tags'].forEach(section);
  return out.join('\n');
}

/** Writes the document to `file` (creating its directory) or to stdout. */
export function writeConfig(config: ConfigTree, file: string | undefined): void {
  const text = formatConfig(config);
  if (file === undefined || file === '') {
    process.stdout.write(text);
    return;
  }
  const dir = dirname(file);
  if (dir !== '') mkdirSync(dir, { recursive: true });
  writeFileSync(file, text, 'utf8');
}
