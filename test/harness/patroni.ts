/**
 * A real Patroni 3.0.2 cluster (Debian package `patroni`, PostgreSQL 15) on loopback for compatibility tests: one
 * patroni.yml per node as ../shared/reference/patroni-cluster-up.sh writes it, free ports, a temp dir, agents run
 * as user `postgres` (PostgreSQL refuses root) and stopped by pid.
 *
 * Patroni starts the postmaster in a session of its own (os.setsid), so killing an agent's process group does not
 * reach PostgreSQL: stop() and the exit hook below also stop each node's postmaster by the pid in postmaster.pid.
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, removeDir, startProcess, tempDir, waitFor, type Managed } from './process.js';

export const PATRONI = '/usr/bin/patroni';
export const PATRONICTL = '/usr/bin/patronictl';
export const PG_BIN = '/usr/lib/postgresql/15/bin';
const HOST = '127.0.0.1';

export type PatroniDcs = 'etcd3' | 'zookeeper';

export interface PatroniClusterOptions {
  readonly dcs: PatroniDcs;
  /** `127.0.0.1:PORT` of the DCS server. */
  readonly dcsEndpoint: string;
  /** Number of nodes (default 3). */
  readonly nodes?: number;
  /** Cluster name (default `lab`). */
  readonly scope?: string;
  /** Namespace (default `/service`). */
  readonly namespace?: string;
  /** bootstrap.dcs timings (defaults 30 / 10 / 10, Patroni's own). */
  readonly ttl?: number;
  readonly loopWait?: number;
  readonly retryTimeout?: number;
  /** bootstrap.dcs.synchronous_mode (default false). */
  readonly syncMode?: boolean;
  /** How long to wait for 1 leader + N-1 streaming replicas (default 180 s). */
  readonly upTimeoutMs?: number;
  /** restapi.authentication: Basic auth on the unsafe endpoints. */
  readonly restapiAuth?: { readonly username: string; readonly password: string };
  /** The agent's executable (default Debian's Patroni 3.0.2; e.g. ../shared/reference/patroni-4.1.4/bin/patroni). */
  readonly binary?: string;
  /** etcd3.use_proxies: the hosts are proxies, no discovery of etcd's own client URLs (default false). */
  readonly useProxies?: boolean;
}

export interface PatroniNode {
  /** `pg1`, `pg2`, ... */
  readonly name: string;
  readonly restPort: number;
  readonly pgPort: number;
  /** The node's own directory (owned by postgres): patroni.yml, patroni.log, data/, pglog/. */
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
}

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
  /** Exit code; null when the process was killed (e.g. by the timeout). */
  readonly code: number | null;
}

export interface RestAnswer {
  readonly status: number;
  readonly body: string;
}

export interface PatroniCluster {
  readonly scope: string;
  readonly namespace: string;
  readonly dcs: PatroniDcs;
  readonly dcsEndpoint: string;
  /** The temp dir holding every node dir. */
  readonly dir: string;
  readonly nodes: readonly PatroniNode[];
  /** Path of the patroni.yml of `nodes[i]` (0-based), for `-c`. */
  configFile(i: number): string;
  /** Name of the member whose GET /primary answers 200; throws when none or several do. */
  leaderName(): Promise<string>;
  /** GET `path` on the REST API of `nodes[i]` (0-based). */
  rest(i: number, path: string): Promise<RestAnswer>;
  /**
   * Waits until exactly one member is primary (optionally: this one) and every other member is replica/running
   * and streaming from it. Resolves to the leader's name.
   */
  waitReady(options?: { leader?: string; timeoutMs?: number }): Promise<string>;
  /** Pid of the Patroni process of `nodes[i]` while it runs. */
  pid(i: number): number | undefined;
  /** Marks `nodes[i]`'s agent as deliberately killed by the test, so waitReady does not treat its exit as a crash. */
  markKilled(i: number): void;
  /** `/usr/bin/patronictl -c <node 1's patroni.yml> ...args`. */
  patronictl(args: readonly string[], options?: CtlRunOptions): Promise<CommandResult>;
  /** Tail of every node's patroni.log, for failure messages. */
  logTails(lines?: number): string;
  stop(): Promise<void>;
}

export interface CtlRunOptions {
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

/** Runs a command with a timeout and never rejects: the exit code, stdout and stderr come back as they are. */
export function runCommand(
  cmd: string,
  args: readonly string[],
  options: CtlRunOptions & { cwd?: string } = {},
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      {
        timeout: options.timeoutMs ?? 60_000,
        killSignal: 'SIGKILL',
        maxBuffer: 16 * 1024 * 1024,
        encoding: 'utf8',
        env: options.env ?? process.env,
        cwd: options.cwd,
      },
      (error, stdout, stderr) => {
        let code: number | null = 0;
        if (error) code = typeof error.code === 'number' ? error.code : null;
        const killed = error?.killed ? `\n[killed: ${error.signal ?? 'timeout'}]` : '';
        resolve({ stdout, stderr: stderr + killed, code });
      },
    );
  });
}

/** `/usr/bin/patronictl ...args` without an implied config file. */
export function runPatronictl(args: readonly string[], options: CtlRunOptions = {}): Promise<CommandResult> {
  return runCommand(PATRONICTL, args, options);
}

function tail(text: string, lines: number): string {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function trySignal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

/**
 * Postmasters of a node: the pid in data/postmaster.pid if it is a live postgres, plus any live process whose
 * command line names the node's data dir (a postmaster that died before writing its pid file cannot be missed).
 */
function postmasterPids(node: PatroniNode): number[] {
  const dataDir = join(node.dir, 'data');
  const pids = new Set<number>();
  const first = readText(join(dataDir, 'postmaster.pid')).split('\n', 1)[0] ?? '';
  const fromFile = Number.parseInt(first, 10);
  if (Number.isInteger(fromFile) && fromFile > 0) {
    const cmdline = readText(`/proc/${fromFile}/cmdline`);
    if (cmdline.includes('postgres')) pids.add(fromFile);
  }
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    /* no procfs */
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = readText(`/proc/${entry}/cmdline`).split('\0');
    if (cmdline.some((a) => a === dataDir || a === `${dataDir}/`)) pids.add(Number(entry));
  }
  return [...pids].filter((pid) => pid !== process.pid && alive(pid));
}

/** Every cluster not yet stopped, so that a runner exiting mid-test still takes its postmasters down. */
const liveClusters = new Set<readonly PatroniNode[]>();
process.once('exit', () => {
  for (const nodes of liveClusters) {
    for (const node of nodes) {
      for (const pid of postmasterPids(node)) {
        trySignal(-pid, 'SIGKILL');
        trySignal(pid, 'SIGKILL');
      }
    }
  }
});

/** SIGQUIT (immediate shutdown) to each leftover postmaster, then SIGKILL to its process group. */
async function killPostmasters(node: PatroniNode): Promise<void> {
  const pids = postmasterPids(node);
  if (pids.length === 0) return;
  for (const pid of pids) trySignal(pid, 'SIGQUIT');
  try {
    await waitFor(`postmaster of ${node.name} to exit`, () => pids.every((p) => !alive(p)), 5000, 100);
  } catch {
    for (const pid of pids) {
      trySignal(-pid, 'SIGKILL');
      trySignal(pid, 'SIGKILL');
    }
    await waitFor(`postmaster of ${node.name} to die`, () => pids.every((p) => !alive(p)), 5000, 100);
  }
}

type ResolvedOptions = Required<
  Omit<PatroniClusterOptions, 'upTimeoutMs' | 'restapiAuth' | 'binary' | 'useProxies'>
> &
  Pick<PatroniClusterOptions, 'restapiAuth' | 'useProxies'>;

function patroniYml(opts: ResolvedOptions, node: PatroniNode, index: number): string {
  const auth = opts.restapiAuth
    ? `\n  authentication:\n    username: ${opts.restapiAuth.username}\n    password: ${opts.restapiAuth.password}`
    : '';
  const dcsYaml =
    opts.dcs === 'etcd3'
      ? `etcd3:\n  hosts: ${opts.dcsEndpoint}${opts.useProxies ? '\n  use_proxies: true' : ''}`
      : `zookeeper:\n  hosts:\n  - ${opts.dcsEndpoint}`;
  const d = node.dir;
  return `# generated by test/harness/patroni.ts (${opts.dcs}, node ${index + 1} of ${opts.nodes})
scope: ${opts.scope}
namespace: ${opts.namespace}
name: ${node.name}

log:
  level: INFO
  format: '%(asctime)s %(levelname)s: %(message)s'

restapi:
  listen: ${HOST}:${node.restPort}
  connect_address: ${HOST}:${node.restPort}${auth}

${dcsYaml}

bootstrap:
  dcs:
    ttl: ${opts.ttl}
    loop_wait: ${opts.loopWait}
    retry_timeout: ${opts.retryTimeout}
    maximum_lag_on_failover: 1048576
    synchronous_mode: ${opts.syncMode ? 'true' : 'false'}
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        max_connections: 50
        shared_buffers: 32MB
        wal_level: replica
        hot_standby: 'on'
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 128MB
        wal_log_hints: 'on'
  initdb:
  - encoding: UTF8
  - data-checksums

postgresql:
  listen: ${HOST}:${node.pgPort}
  connect_address: ${HOST}:${node.pgPort}
  data_dir: ${d}/data
  bin_dir: ${PG_BIN}
  pgpass: ${d}/pgpass
  authentication:
    replication:
      username: replicator
      password: rep-pass
    superuser:
      username: postgres
      password: zalando
    rewind:
      username: rewind_user
      password: rewind_password
  pg_hba:
  - local all all trust
  - host replication replicator 127.0.0.1/32 md5
  - host all all 127.0.0.1/32 md5
  parameters:
    unix_socket_directories: '${d}'
    logging_collector: 'on'
    log_directory: '${d}/pglog'
    log_filename: 'postgresql.log'
    log_line_prefix: '%m [%p] '

watchdog:
  mode: 'off'

tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
`;
}

function postgresIds(): { uid: number; gid: number } {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === 'postgres' && f[2] !== undefined && f[3] !== undefined) {
      return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  }
  throw new Error('no user postgres in /etc/passwd: install the postgresql package');
}

async function restGet(port: number, path: string): Promise<RestAnswer> {
  const res = await fetch(`http://${HOST}:${port}${path}`, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, body: await res.text() };
}

interface PatroniStatus {
  role?: string;
  state?: string;
  replication?: { application_name?: string; state?: string }[];
}

async function status(port: number): Promise<PatroniStatus | undefined> {
  try {
    const r = await restGet(port, '/patroni');
    return JSON.parse(r.body) as PatroniStatus;
  } catch {
    return undefined;
  }
}

async function primaries(nodes: readonly PatroniNode[]): Promise<PatroniNode[]> {
  const codes = await Promise.all(
    nodes.map(async (n) => {
      try {
        return (await restGet(n.restPort, '/primary')).status;
      } catch {
        return 0;
      }
    }),
  );
  return nodes.filter((_n, i) => codes[i] === 200);
}

export async function startPatroniCluster(options: PatroniClusterOptions): Promise<PatroniCluster> {
  const opts: ResolvedOptions = {
    dcs: options.dcs,
    dcsEndpoint: options.dcsEndpoint,
    nodes: options.nodes ?? 3,
    scope: options.scope ?? 'lab',
    namespace: options.namespace ?? '/service',
    ttl: options.ttl ?? 30,
    loopWait: options.loopWait ?? 10,
    retryTimeout: options.retryTimeout ?? 10,
    syncMode: options.syncMode ?? false,
    restapiAuth: options.restapiAuth,
    useProxies: options.useProxies,
  };
  const upTimeoutMs = options.upTimeoutMs ?? 180_000;
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 9) {
    throw new Error(`nodes must be 1..9, got ${opts.nodes}`);
  }
  const { uid, gid } = postgresIds();
  const root = tempDir('patroni'); // 0755: postgres must traverse it
  const ports = new Set<number>();
  const port = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (!ports.has(p)) {
        ports.add(p);
        return p;
      }
    }
  };

  const nodes: PatroniNode[] = [];
  for (let i = 0; i < opts.nodes; i++) {
    const dir = join(root, `pg${i + 1}`);
    nodes.push({
      name: `pg${i + 1}`,
      restPort: await port(),
      pgPort: await port(),
      dir,
      configFile: join(dir, 'patroni.yml'),
      logFile: join(dir, 'patroni.log'),
    });
  }
  for (const [i, node] of nodes.entries()) {
    mkdirSync(join(node.dir, 'pglog'), { recursive: true });
    writeFileSync(node.configFile, patroniYml(opts, node, i));
    writeFileSync(node.logFile, '');
    for (const p of [node.dir, join(node.dir, 'pglog'), node.configFile, node.logFile])
      chownSync(p, uid, gid);
    chmodSync(node.dir, 0o700);
    chmodSync(node.configFile, 0o644);
  }
  liveClusters.add(nodes);

  const agents: Managed[] = [];
  const logTails = (lines = 15): string =>
    nodes
      .map((n) => `--- ${n.name} patroni.log (last ${lines} lines)\n${tail(readText(n.logFile), lines)}`)
      .join('\n');

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const errors: string[] = [];
    // All agents at once: Patroni stops its postgres (fast) on SIGTERM; a leader releases its key.
    await Promise.all(
      agents.map(async (a) => {
        try {
          await a.stop(30_000);
        } catch (e) {
          errors.push(e instanceof Error ? e.message : String(e));
        }
      }),
    );
    for (const node of nodes) {
      try {
        await killPostmasters(node);
      } catch (e) {
        errors.push(e instanceof Error ? e.message : String(e));
      }
    }
    const survivors = nodes.flatMap((n) => postmasterPids(n).map((pid) => `${n.name}: pid ${pid}`));
    liveClusters.delete(nodes);
    if (survivors.length === 0) removeDir(root);
    if (errors.length > 0 || survivors.length > 0) {
      throw new Error(
        `stopping the Patroni cluster in ${root}: ${[...errors, ...survivors.map((s) => `${s} survived`)].join('; ')}`,
      );
    }
  };

  const killed = new Set<number>();
  const exitedAgent = (): string | undefined => {
    for (const [i, a] of agents.entries()) {
      if (killed.has(i)) continue;
      const c = a.child;
      if (c.exitCode !== null || c.signalCode !== null) {
        return `patroni of ${nodes[i]?.name ?? `node ${i + 1}`} exited (${c.exitCode ?? c.signalCode ?? '?'})`;
      }
    }
    return undefined;
  };

  const waitReady = async (o: { leader?: string; timeoutMs?: number } = {}): Promise<string> => {
    const want = o.leader;
    let last = 'no member answered yet';
    let gone: string | undefined;
    let result: string;
    try {
      result = await waitFor(
        want
          ? `${want} as primary with ${nodes.length - 1} streaming replicas`
          : `1 leader + ${nodes.length - 1} streaming replicas`,
        async (): Promise<string | false> => {
          // waitFor keeps polling through a thrown error: a dead agent ends the wait with a truthy sentinel.
          gone = exitedAgent();
          if (gone) return gone;
          const ps = await primaries(nodes);
          if (ps.length !== 1) {
            last = `${ps.length} members answer /primary 200${ps.length ? `: ${ps.map((p) => p.name).join(', ')}` : ''}`;
            return false;
          }
          const leader = ps[0];
          if (!leader) return false;
          if (want && leader.name !== want) {
            last = `primary is ${leader.name}, not ${want}`;
            return false;
          }
          const names = new Set(nodes.map((n) => n.name));
          const ls = await status(leader.restPort);
          // application_name = member name (pg_basebackup's own walsender is also 'streaming': exclude it)
          const streaming = (ls?.replication ?? []).filter(
            (r) =>
              r.state === 'streaming' && r.application_name !== undefined && names.has(r.application_name),
          );
          if (streaming.length !== nodes.length - 1) {
            last = `${leader.name} lists ${streaming.length} streaming replicas`;
            return false;
          }
          for (const n of nodes) {
            if (n === leader) continue;
            const s = await status(n.restPort);
            // Patroni 4 says `streaming` where 3.0 says `running`.
            if (s?.role !== 'replica' || (s.state !== 'running' && s.state !== 'streaming')) {
              last = `${n.name} is ${s ? `${s.role ?? '?'}/${s.state ?? '?'}` : 'not answering'}`;
              return false;
            }
          }
          return leader.name;
        },
        o.timeoutMs ?? 120_000,
        300,
      );
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new Error(`${why} (last seen: ${last})\n${logTails()}`);
    }
    if (gone) throw new Error(`${gone}\n${logTails()}`);
    return result;
  };

  try {
    for (const node of nodes) {
      agents.push(
        startProcess(
          'setpriv',
          [
            '--reuid=postgres',
            '--regid=postgres',
            '--init-groups',
            'env',
            '-i',
            `HOME=${node.dir}`,
            'PATH=/usr/bin:/bin',
            'LANG=C.UTF-8',
            'PYTHONUNBUFFERED=1',
            options.binary ?? PATRONI,
            node.configFile,
          ],
          node.logFile,
          { cwd: node.dir },
        ),
      );
    }
    await waitReady({ timeoutMs: upTimeoutMs });
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    try {
      await stop();
    } catch (stopError) {
      throw new Error(`${why}\nalso: ${stopError instanceof Error ? stopError.message : String(stopError)}`);
    }
    throw new Error(`Patroni cluster (${opts.dcs} at ${opts.dcsEndpoint}) did not come up: ${why}`);
  }

  const cluster: PatroniCluster = {
    scope: opts.scope,
    namespace: opts.namespace,
    dcs: opts.dcs,
    dcsEndpoint: opts.dcsEndpoint,
    dir: root,
    nodes,
    configFile(i) {
      const n = nodes[i];
      if (!n) throw new Error(`no node ${i}: the cluster has nodes 0..${nodes.length - 1}`);
      return n.configFile;
    },
    async leaderName() {
      const ps = await primaries(nodes);
      const [first, ...more] = ps;
      if (!first || more.length > 0) {
        throw new Error(
          `expected one primary, ${ps.length} answer /primary 200: ${ps.map((p) => p.name).join(', ')}`,
        );
      }
      return first.name;
    },
    async rest(i, path) {
      const n = nodes[i];
      if (!n) throw new Error(`no node ${i}`);
      return restGet(n.restPort, path);
    },
    waitReady,
    pid(i) {
      const c = agents[i]?.child;
      return c && c.exitCode === null && c.signalCode === null ? c.pid : undefined;
    },
    markKilled(i) {
      killed.add(i);
    },
    patronictl(args, o = {}) {
      return runPatronictl(['-c', cluster.configFile(0), ...args], o);
    },
    logTails,
    stop,
  };
  return cluster;
}
