/**
 * `pgwarden agent --generate-config [--dsn DSN] [FILE]`, Patroni 4.1.4's `RunningClusterConfigGenerator`: the
 * template of src/ctl/generate-config.ts filled from a running PostgreSQL reached through DSN (else libpq's
 * environment: PGHOST, PGPORT, PGUSER, PGPASSWORD...) as a superuser:
 * - `postgresql.authentication.superuser`: the connection's user, password and TLS/GSS options (those its major
 *   version knows), the password asked on a terminal when neither the DSN nor PGPASSWORD gives one;
 * - the GUCs set in a configuration file, on the command line or in the environment, plus those Patroni always
 *   manages: the commands and the hba/ident/config file paths in `postgresql.parameters` (local, for safety), the
 *   rest in `bootstrap.dcs.postgresql.parameters`; `data_directory` as `data_dir`, `cluster_name` as `scope`;
 * - `postgresql.listen` from listen_addresses and port, the connect address's port from the DSN, PGPORT or port;
 * - `pg_hba` / `pg_ident` from the files in the data directory (when those are the ones in use);
 * - `bin_dir`: the directory of the postmaster's executable (postmaster.pid, /proc).
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import type { ClientConfig } from 'pg';
import { UserError } from '../config/errors.js';
import { isMapping, type ConfigTree } from '../config/tree.js';
import { parseBool } from '../model/python.js';
import { errorText } from '../model/text.js';
import type { Prompter } from '../prompts/index.js';
import { CMDLINE_DEFAULTS, NO_VALUE, templateConfig } from './generate-config.js';

type Env = Readonly<Record<string, string | undefined>>;

/** libpq keyword -> environment variable, as Patroni's `_AUTH_ALLOWED_PARAMETERS_MAPPING`. */
const AUTH_PARAMETERS: readonly (readonly [string, string | undefined])[] = [
  ['user', 'PGUSER'],
  ['password', 'PGPASSWORD'],
  ['sslmode', 'PGSSLMODE'],
  ['sslcert', 'PGSSLCERT'],
  ['sslkey', 'PGSSLKEY'],
  ['sslpassword', undefined],
  ['sslrootcert', 'PGSSLROOTCERT'],
  ['sslcrl', 'PGSSLCRL'],
  ['sslcrldir', 'PGSSLCRLDIR'],
  ['gssencmode', 'PGGSSENCMODE'],
  ['channel_binding', 'PGCHANNELBINDING'],
  ['sslnegotiation', 'PGSSLNEGOTIATION'],
];

/** Connection options a server older than the version does not know (Patroni's AUTH_ALLOWED_PARAMETERS_VERSIONS). */
const PARAMETER_SINCE: Readonly<Record<string, number>> = {
  gssencmode: 120000,
  channel_binding: 130000,
  sslpassword: 130000,
  sslcrldir: 140000,
  sslnegotiation: 170000,
};

const LOCAL_PARAMETERS = new Set([
  'archive_command',
  'restore_command',
  'archive_cleanup_command',
  'recovery_end_command',
  'ssl_passphrase_command',
  'hba_file',
  'ident_file',
  'config_file',
]);

const HBA_TYPES = ['local', 'host', 'hostssl', 'hostnossl', 'hostgssenc', 'hostnogssenc'];

function parseKeyValues(text: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  const re = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('((?:[^'\\]|\\.)*)'|((?:[^\s'\\]|\\.)*))/y;
  let pos = 0;
  const rest = (): string => text.slice(pos).trim();
  while (rest() !== '') {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (m === null) return undefined;
    const raw = m[3] ?? m[4] ?? '';
    out[m[1] ?? ''] = raw.replace(/\\(.)/g, '$1');
    pos = re.lastIndex;
  }
  return out;
}

function parseUri(text: string): Record<string, string> | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  const out: Record<string, string> = {};
  if (url.hostname) out['host'] = decodeURIComponent(url.hostname.replace(/^\[|\]$/g, ''));
  if (url.port) out['port'] = url.port;
  if (url.username) out['user'] = decodeURIComponent(url.username);
  if (url.password) out['password'] = decodeURIComponent(url.password);
  const db = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (db) out['dbname'] = db;
  for (const [k, v] of url.searchParams) out[k] = v;
  return out;
}

/** Patroni's `parse_dsn`: libpq's key=value or URI form, with its defaults for the TLS/GSS modes; undefined if bad. */
export function parseDsn(dsn: string): Record<string, string> | undefined {
  const parsed = /^postgres(ql)?:\/\//.test(dsn) ? parseUri(dsn) : parseKeyValues(dsn);
  if (parsed === undefined || Object.keys(parsed).length === 0) return undefined;
  return {
    sslmode: 'prefer',
    gssencmode: 'prefer',
    channel_binding: 'prefer',
    sslnegotiation: 'postgres',
    ...parsed,
  };
}

/** The superuser's connection options (Patroni's `_set_su_params`). */
async function superuserParams(
  dsn: Readonly<Record<string, string>>,
  env: Env,
  prompter: Prompter,
): Promise<Record<string, string>> {
  const su: Record<string, string> = {};
  for (const [k, variable] of AUTH_PARAMETERS) {
    const v = k in dsn ? dsn[k] : variable === undefined ? undefined : env[variable];
    if (v) su[k] = v;
  }
  const { user, ...rest } = su;
  const params: Record<string, string> = { ...rest, username: user || userInfo().username };
  params['password'] =
    rest['password'] ||
    (await prompter.password(
      'Please enter the user password:',
      'no password for the superuser: give it in --dsn (password=...) or in PGPASSWORD, or run on a terminal to be asked',
    ));
  return params;
}

function clientConfig(dsn: Readonly<Record<string, string>>, env: Env, password: string): ClientConfig {
  const host =
    dsn['host'] ?? env['PGHOST'] ?? (existsSync('/var/run/postgresql') ? '/var/run/postgresql' : '/tmp');
  const user = dsn['user'] ?? env['PGUSER'] ?? userInfo().username;
  const sslmode = dsn['sslmode'] ?? env['PGSSLMODE'] ?? 'prefer';
  return {
    host: host.split(',')[0] ?? host,
    port: Number(dsn['port'] ?? env['PGPORT'] ?? 5432),
    user,
    password,
    database: dsn['dbname'] ?? env['PGDATABASE'] ?? user,
    connectionTimeoutMillis:
      Number(dsn['connect_timeout'] ?? env['PGCONNECT_TIMEOUT'] ?? 10) * 1000 || 10_000,
    ...(['require', 'verify-ca', 'verify-full'].includes(sslmode)
      ? { ssl: { rejectUnauthorized: sslmode !== 'require' } }
      : {}),
  };
}

type Row = readonly [string, string];

async function readInstance(config: ClientConfig): Promise<{ version: number; settings: Row[] }> {
  type PgModule = typeof import('pg');
  const mod = (await import('pg')) as PgModule & { readonly default?: PgModule };
  const client = new (mod.default ?? mod).Client(config);
  try {
    await client.connect();
  } catch (e) {
    throw new UserError(`Failed to establish PostgreSQL connection: ${errorText(e)}`);
  }
  try {
    const head = await client.query<{ v: string; su: string }>(
      "SELECT pg_catalog.current_setting('server_version_num') AS v, pg_catalog.current_setting('is_superuser') AS su",
    );
    const version = Number(head.rows[0]?.v ?? 0);
    if (parseBool(head.rows[0]?.su) !== true) {
      throw new UserError('The provided user does not have superuser privilege');
    }
    const required = [
      'hba_file',
      'ident_file',
      'config_file',
      'data_directory',
      ...Object.keys(CMDLINE_DEFAULTS),
    ];
    const r = await client.query<{ name: string; value: string }>(
      "SELECT name, pg_catalog.current_setting(name) AS value FROM pg_catalog.pg_settings WHERE context <> 'internal' " +
        "AND source IN ('configuration file', 'command line', 'environment variable') " +
        "AND category <> 'Write-Ahead Log / Recovery Target' AND setting <> '(disabled)' OR name = ANY($1)",
      [required],
    );
    return { version, settings: r.rows.map((x) => [x.name, x.value] as const) };
  } finally {
    await client.end().catch(() => undefined);
  }
}

function sub(tree: ConfigTree, ...path: string[]): ConfigTree {
  let node = tree;
  for (const k of path) {
    if (!isMapping(node[k])) node[k] = {};
    node = node[k] as ConfigTree;
  }
  return node;
}

/** Patroni's `_set_pg_params`: where each setting goes, and the listen and connect addresses. */
function applySettings(
  config: ConfigTree,
  settings: readonly Row[],
  dsn: Readonly<Record<string, string>>,
  env: Env,
): void {
  const pg = sub(config, 'postgresql');
  const local = sub(pg, 'parameters');
  const dynamic = sub(config, 'bootstrap', 'dcs', 'postgresql', 'parameters');
  const helper: Record<string, string | undefined> = { port: undefined, listen_addresses: undefined };
  for (const [name, value] of settings) {
    if (name === 'data_directory') pg['data_dir'] = value;
    else if (name === 'cluster_name' && value) config['scope'] = value;
    else if (LOCAL_PARAMETERS.has(name)) local[name] = value;
    else if (name in helper) helper[name] = value;
    else dynamic[name] = value;
  }
  const connect = typeof pg['connect_address'] === 'string' ? pg['connect_address'] : NO_VALUE;
  const ip = connect.split(':')[0] ?? '';
  pg['connect_address'] = `${ip}:${dsn['port'] ?? env['PGPORT'] ?? helper['port'] ?? 'None'}`;
  pg['listen'] = `${helper['listen_addresses'] ?? 'None'}:${helper['port'] ?? 'None'}`;
}

function strippedLines(path: string, what: string): string[] {
  try {
    return readFileSync(path, 'utf8')
      .split('\n')
      .map((l) => l.trim());
  } catch (e) {
    throw new UserError(`Failed to read ${what}: ${errorText(e)}`);
  }
}

/** Patroni's `_set_conf_files`: pg_hba / pg_ident when the instance uses the files of its data directory. */
function applyConfFiles(config: ConfigTree, version: number): void {
  const pg = sub(config, 'postgresql');
  const params = sub(pg, 'parameters');
  const dataDir = String(pg['data_dir']);
  const hba = join(dataDir, 'pg_hba.conf');
  const types = version >= 160000 ? [...HBA_TYPES, 'include', 'include_if_exists', 'include_dir'] : HBA_TYPES;
  if (params['hba_file'] === hba) {
    pg['pg_hba'] = strippedLines(hba, 'pg_hba.conf').filter(
      (l) => l !== '' && types.includes(l.split(/\s+/)[0] ?? ''),
    );
  }
  const ident = join(dataDir, 'pg_ident.conf');
  if (params['ident_file'] === ident) {
    const lines = strippedLines(ident, 'pg_ident.conf').filter((l) => l !== '' && !l.startsWith('#'));
    if (lines.length > 0) pg['pg_ident'] = lines;
    else delete pg['pg_ident'];
  }
}

function binDirOfPostmaster(dataDir: string): string {
  let first: string;
  try {
    first = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '';
  } catch (e) {
    throw new UserError(`Error while reading postmaster.pid file: ${errorText(e)}`);
  }
  if (first.trim() === '') throw new UserError('Failed to obtain postmaster pid from postmaster.pid file');
  const pid = Number.parseInt(first.trim(), 10);
  try {
    return dirname(readlinkSync(`/proc/${pid}/exe`));
  } catch {
    throw new UserError("Obtained postmaster pid doesn't exist.");
  }
}

/** The configuration of the running instance (Patroni's `RunningClusterConfigGenerator.generate`). */
export async function runningConfig(
  dsnText: string | undefined,
  env: Env,
  prompter: Prompter,
): Promise<ConfigTree> {
  let dsn: Record<string, string> = {};
  if (dsnText) {
    const parsed = parseDsn(dsnText);
    if (parsed === undefined) throw new UserError('Failed to parse DSN string');
    dsn = parsed;
  }
  const config = await templateConfig(env);
  const su = await superuserParams(dsn, env, prompter);
  const pg = sub(config, 'postgresql');
  pg['authentication'] = { superuser: su, replication: { username: NO_VALUE, password: NO_VALUE } };
  const password = su['password'] ?? '';
  // Patroni connects with the DSN as given (libpq reads the rest from the environment) and the password above.
  const { version, settings } = await readInstance(clientConfig(dsn, env, password));
  for (const [k, since] of Object.entries(PARAMETER_SINCE)) if (version < since) delete su[k];
  applySettings(config, settings, dsn, env);
  applyConfFiles(config, version);
  pg['bin_dir'] = binDirOfPostmaster(String(pg['data_dir']));
  return config;
}
