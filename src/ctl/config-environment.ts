/**
 * The checks `patroni --validate-config` makes against the machine rather than the file (Patroni 4.1.4's
 * validator.py): listen ports still free, connect addresses other members can reach (no loopback or wildcard), the
 * DCS endpoints reachable, the data directory empty or a PostgreSQL data directory of the installed major version,
 * and the PostgreSQL programs present. Each finding is `<dotted.path>: <what is wrong>`; the agent's own value and
 * key checks (src/config) come first in `validate-config.ts`.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import { isMapping, type ConfigTree } from '../config/tree.js';
import { hostPortText, splitHostPort } from '../config/config-values.js';

type Tree = Readonly<Record<string, unknown>>;

const BINARIES = ['pg_ctl', 'initdb', 'pg_controldata', 'pg_basebackup', 'postgres', 'pg_isready'];
const BIN_NAME_KEYS = [...BINARIES, 'pg_rewind'];
const NOT_CONNECT = ['127.0.0.1', '0.0.0.0', '*', '::1', 'localhost'];

function section(tree: Tree, key: string): Tree {
  const v = tree[key];
  return isMapping(v) ? v : {};
}

/** True when something accepts TCP connections at host:port within `timeoutMs` (Python's `connect_ex == 0`). */
async function accepts(host: string, port: number, timeoutMs = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.connect(port, host);
  });
}

async function resolvable(host: string): Promise<string | undefined> {
  try {
    await lookup(host);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'cannot be resolved';
  }
}

/** A listen address: the port must be free on every host (unless `ignoreListenPort`). */
async function checkListen(
  path: string,
  value: unknown,
  multipleHosts: boolean,
  ignoreListenPort: boolean,
): Promise<string[]> {
  const text = hostPortText(value);
  const hp = text === undefined ? undefined : splitHostPort(text);
  if (hp === undefined) return [];
  let hosts = multipleHosts ? hp.host.split(',').map((h) => h.trim()) : [hp.host];
  // `*` listens everywhere: a process on any local address holds the port.
  if (hosts.includes('*')) hosts = ['127.0.0.1', '::1'];
  const out: string[] = [];
  for (const host of hosts) {
    const bad = await resolvable(host);
    if (bad !== undefined) {
      out.push(`${path}: host ${host} cannot be resolved (${bad})`);
      continue;
    }
    if (!ignoreListenPort && (await accepts(host, hp.port))) {
      out.push(
        `${path}: port ${hp.port} is already in use on ${host} (stop what listens there, or pass --ignore-listen-port)`,
      );
      break;
    }
  }
  return out;
}

function checkConnect(path: string, value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const text = hostPortText(value);
  const hp = text === undefined ? undefined : splitHostPort(text);
  if (hp === undefined) return [];
  if (NOT_CONNECT.includes(hp.host)) {
    return [
      `${path}: must not be ${hp.host}: the other members and clients connect to this address (use an address they can reach)`,
    ];
  }
  return [];
}

/** Endpoints the agent connects to: each must accept connections. */
async function checkReachable(path: string, value: unknown): Promise<string[]> {
  const items =
    typeof value === 'string'
      ? value.split(',').map((s) => s.trim())
      : Array.isArray(value)
        ? value.filter((v): v is string => typeof v === 'string')
        : [];
  const out: string[] = [];
  for (const item of items) {
    const hp = splitHostPort(item);
    if (hp === undefined) continue;
    if (!(await accepts(hp.host, hp.port))) out.push(`${path}: ${item} is not reachable`);
  }
  return out;
}

async function checkDcs(tree: Tree): Promise<string[]> {
  const etcd3 = section(tree, 'etcd3');
  const zk = section(tree, 'zookeeper');
  return [
    ...(await checkReachable('etcd3.host', etcd3['host'])),
    ...(await checkReachable('etcd3.hosts', etcd3['hosts'])),
    ...(await checkReachable('zookeeper.hosts', zk['hosts'])),
  ];
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Python's `shutil.which(name, path=dir)`: in `dir`, else on PATH. */
function which(name: string, dir: string | undefined): string | undefined {
  if (name.includes('/')) return executable(name) ? name : undefined;
  const dirs = dir ? dir.split(delimiter) : (process.env['PATH'] ?? '').split(delimiter);
  for (const d of dirs) {
    const p = join(d === '' ? '.' : d, name);
    if (executable(p)) return p;
  }
  return undefined;
}

function binName(pg: Tree, tool: string): string {
  const names = section(pg, 'bin_name');
  const v = names[tool];
  return typeof v === 'string' && v !== '' ? v : tool;
}

function checkBinaries(pg: Tree): string[] {
  const out: string[] = [];
  const binDir = typeof pg['bin_dir'] === 'string' ? pg['bin_dir'] : '';
  const names = section(pg, 'bin_name');
  for (const key of BIN_NAME_KEYS) {
    const v = names[key];
    if (v === undefined || v === null || typeof v !== 'string') continue;
    if (v === '') out.push(`postgresql.bin_name.${key}: is an empty string`);
    else if (!which(v, binDir || undefined)) {
      out.push(`postgresql.bin_name.${key}: ${binDir || '$PATH'} has no program '${v}'`);
    }
  }
  if (binDir !== '' && !existsSync(binDir))
    return [...out, `postgresql.bin_dir: directory '${binDir}' does not exist`];
  if (binDir !== '' && !statSync(binDir).isDirectory()) {
    return [...out, `postgresql.bin_dir: '${binDir}' is not a directory`];
  }
  for (const tool of BINARIES) {
    const name = binName(pg, tool);
    if (!which(name, binDir || undefined))
      out.push(`postgresql.bin_dir: ${binDir || '$PATH'} has no program '${name}'`);
  }
  return out;
}

/** `postgres --version`'s major version (`15`, `9.6`), as Patroni's `get_major_version`. */
async function installedMajor(pg: Tree): Promise<string | undefined> {
  const binDir = typeof pg['bin_dir'] === 'string' ? pg['bin_dir'] : '';
  const program = which(binName(pg, 'postgres'), binDir || undefined);
  if (program === undefined) return undefined;
  const out = await new Promise<string>((resolve) => {
    execFile(program, ['--version'], { timeout: 30_000 }, (_e, stdout) => resolve(String(stdout)));
  });
  const m = /\s(\d+)(?:\.(\d+))?/.exec(out);
  if (m === null) return undefined;
  const major = Number(m[1]);
  return major >= 10 || m[2] === undefined ? String(major) : `${major}.${m[2]}`;
}

function isEmptyDir(dir: string): boolean {
  try {
    return readdirSync(dir).filter((f) => f !== 'lost+found').length === 0;
  } catch {
    return true;
  }
}

async function checkDataDir(pg: Tree): Promise<string[]> {
  const dir = pg['data_dir'];
  if (typeof dir !== 'string') return [];
  const p = 'postgresql.data_dir';
  if (dir === '') return [`${p}: is an empty string`];
  if (!existsSync(dir)) return [];
  if (!statSync(dir).isDirectory()) return [`${p}: ${dir} is not a directory`];
  if (!existsSync(join(dir, 'global', 'pg_control')) && isEmptyDir(dir)) return [];
  const versionFile = join(dir, 'PG_VERSION');
  if (!existsSync(versionFile))
    return [`${p}: ${dir} is not empty and does not look like a data directory (no PG_VERSION)`];
  const version = readFileSync(versionFile, 'utf8').trim();
  const waldir = Number.parseFloat(version) >= 10 ? 'pg_wal' : 'pg_xlog';
  if (!existsSync(join(dir, waldir)) || !statSync(join(dir, waldir)).isDirectory()) {
    return [`${p}: ${dir} is not empty, but has no "${waldir}" directory`];
  }
  const installed = await installedMajor(pg);
  if (installed !== undefined && installed !== version) {
    return [`${p}: ${dir} holds PostgreSQL ${version} data, but 'postgres --version' is ${installed}`];
  }
  return [];
}

export interface EnvironmentOptions {
  /** `--ignore-listen-port`: a listen port already in use is fine (e.g. validating a running node's file). */
  readonly ignoreListenPort: boolean;
}

/** Every machine check of the merged configuration `tree`, in the order of the file's sections. */
export async function checkEnvironment(tree: ConfigTree, opts: EnvironmentOptions): Promise<string[]> {
  const restapi = section(tree, 'restapi');
  const pg = section(tree, 'postgresql');
  return [
    ...(await checkListen('restapi.listen', restapi['listen'], false, opts.ignoreListenPort)),
    ...checkConnect('restapi.connect_address', restapi['connect_address']),
    ...(await checkDcs(tree)),
    ...(await checkListen('postgresql.listen', pg['listen'], true, opts.ignoreListenPort)),
    ...checkConnect('postgresql.connect_address', pg['connect_address']),
    ...checkConnect('postgresql.proxy_address', pg['proxy_address']),
    ...(await checkDataDir(pg)),
    ...checkBinaries(pg),
  ];
}
