/**
 * N pgwarden agents (`node bin/run.js agent <yml>`) on loopback for integration tests: one patroni.yml per node as
 * ../shared/reference/patroni-cluster-up.sh writes it, free ports, a temp dir, agents run as user `postgres`
 * (PostgreSQL refuses root) and stopped by pid.
 *
 * pg_ctl starts the postmaster in a session of its own, so killing an agent's process group does not reach
 * PostgreSQL: `stop()`, `kill9()` and the exit hook also stop each node's postmaster by the pid in postmaster.pid.
 */
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import { join, resolve } from 'node:path';
import { runCommand, type CommandResult, type RestAnswer } from './patroni.js';
import { freePort, removeDir, startProcess, tempDir, waitFor, type Managed } from './process.js';

const PG_BIN = '/usr/lib/postgresql/15/bin';
const HOST = '127.0.0.1';
const REPO = resolve(import.meta.dirname, '..', '..');

export interface AgentNode {
  readonly name: string;
  readonly restPort: number;
  readonly pgPort: number;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly dataDir: string;
}

export interface AgentClusterOptions {
  /** `etcd3` (default) or `zookeeper`. */
  readonly dcs?: 'etcd3' | 'zookeeper';
  /** `host:port` of the DCS (etcd or ZooKeeper). */
  readonly etcdEndpoint: string;
  readonly nodes?: number;
  readonly scope?: string;
  readonly namespace?: string;
  readonly ttl?: number;
  readonly loopWait?: number;
  readonly retryTimeout?: number;
  /** restapi.authentication: Basic auth on the unsafe endpoints (patronictl -c node's yml then sends it). */
  readonly restapiAuth?: { readonly username: string; readonly password: string };
  /**
   * HTTPS on the REST API (certfile/keyfile/cafile, `verify_client`, `allowlist`); the harness's own requests then
   * present `client` (a certificate the CA signed) and verify the server with the CA.
   */
  readonly restapiTls?: RestapiTls;
  /** Extra YAML lines for a node's `postgresql` section (callbacks, pre_promote, replica methods), unindented. */
  readonly postgresqlExtra?: (node: AgentNode, index: number) => string;
  /** `wal_level` in bootstrap.dcs (default `replica`; `logical` for logical slots). */
  readonly walLevel?: 'replica' | 'logical';
  /** Extra top-level keys of bootstrap.dcs (e.g. `slots:`), unindented YAML lines. */
  readonly bootstrapDcsExtra?: string;
  /** Extra top-level YAML sections for a node (e.g. `log:`), appended as written. */
  readonly topLevelExtra?: (node: AgentNode, index: number) => string;
  /** A node's `watchdog` section, unindented lines (default `mode: 'off'`). */
  readonly watchdog?: (node: AgentNode, index: number) => string;
  /** Write the files but start no agent (the test starts them with `start(i)`). */
  readonly deferStart?: boolean;
  /** The command that runs node `index` (argv after `env -i ...`); default: the pgwarden agent. Mixed clusters. */
  readonly agentArgv?: (node: AgentNode, index: number) => readonly string[] | undefined;
  /** A node's own DCS endpoint (e.g. a proxy the test can cut); default `etcdEndpoint`. */
  readonly dcsEndpointFor?: (node: AgentNode, index: number) => string;
  /** Extra YAML lines for the DCS section (e.g. zookeeper TLS and ACL settings), unindented. */
  readonly dcsExtra?: string;
  /**
   * The ports a node publishes in its member key (connect_address of PostgreSQL and the REST API), e.g. proxies
   * the test can cut; default the ports it listens on.
   */
  readonly connectPortsFor?: (
    node: AgentNode,
    index: number,
  ) => { readonly pgPort: number; readonly restPort: number };
}

export interface RestapiTls {
  readonly certfile: string;
  readonly keyfile: string;
  readonly cafile: string;
  readonly verifyClient?: 'required' | 'optional';
  readonly allowlist?: readonly string[];
  readonly client: { readonly cert: string; readonly key: string };
}

export interface AgentStatusDoc {
  readonly role?: string;
  readonly state?: string;
  readonly timeline?: number;
  readonly xlog?: Record<string, unknown>;
  readonly replication?: readonly { application_name?: string; state?: string }[];
}

export interface AgentCluster {
  readonly scope: string;
  readonly namespace: string;
  readonly dir: string;
  readonly nodes: readonly AgentNode[];
  /** Starts the agent of `nodes[i]` (again). */
  start(i: number): void;
  /** Whether the agent process of `nodes[i]` is alive. */
  running(i: number): boolean;
  /** Pid of the agent process of `nodes[i]` while it runs. */
  pid(i: number): number | undefined;
  rest(i: number, path: string): Promise<RestAnswer>;
  status(i: number): Promise<AgentStatusDoc | undefined>;
  /** Names of the running agents whose GET /primary answers 200. */
  primaries(): Promise<string[]>;
  /** One primary and every other running member a streaming replica of it; resolves to the leader's name. */
  waitReady(options?: { readonly timeoutMs?: number; readonly exclude?: readonly string[] }): Promise<string>;
  /** SIGKILL the agent of `nodes[i]` and its postmaster. */
  kill9(i: number): Promise<void>;
  /** SIGTERM the agent of `nodes[i]`; resolves when it has exited. */
  terminate(i: number, graceMs?: number): Promise<void>;
  /** Runs SQL on `nodes[i]` as postgres over the node's unix socket (psql). */
  psql(i: number, sql: string): Promise<CommandResult>;
  patronictl(args: readonly string[]): Promise<CommandResult>;
  logTails(lines?: number): string;
  stop(): Promise<void>;
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

function postgresIds(): { uid: number; gid: number } {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === 'postgres' && f[2] !== undefined && f[3] !== undefined) {
      return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  }
  throw new Error('no user postgres in /etc/passwd: install the postgresql package');
}

/** The node's postmaster (postmaster.pid) and any live process naming its data dir on the command line. */
function postmasterPids(node: AgentNode): number[] {
  const pids = new Set<number>();
  const first = Number.parseInt(readText(join(node.dataDir, 'postmaster.pid')).split('\n', 1)[0] ?? '', 10);
  if (Number.isInteger(first) && first > 0 && readText(`/proc/${first}/cmdline`).includes('postgres')) {
    pids.add(first);
  }
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    /* no procfs */
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const args = readText(`/proc/${entry}/cmdline`).split('\0');
    if (args.some((a) => a === node.dataDir || a === `${node.dataDir}/`)) pids.add(Number(entry));
  }
  return [...pids].filter((pid) => pid !== process.pid && alive(pid));
}

const liveClusters = new Set<readonly AgentNode[]>();
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

async function killPostmasters(node: AgentNode, signal: NodeJS.Signals = 'SIGQUIT'): Promise<void> {
  const pids = postmasterPids(node);
  if (pids.length === 0) return;
  for (const pid of pids) trySignal(pid, signal);
  try {
    await waitFor(`postmaster of ${node.name} to exit`, () => pids.every((p) => !alive(p)), 5000, 50);
  } catch {
    for (const pid of pids) {
      trySignal(-pid, 'SIGKILL');
      trySignal(pid, 'SIGKILL');
    }
    await waitFor(`postmaster of ${node.name} to die`, () => pids.every((p) => !alive(p)), 5000, 50);
  }
}

type ResolvedOptions = Required<
  Omit<AgentClusterOptions, 'restapiAuth' | 'restapiTls' | 'dcsEndpointFor' | 'connectPortsFor' | 'dcsExtra'>
> &
  Pick<AgentClusterOptions, 'restapiAuth' | 'restapiTls' | 'dcsEndpointFor' | 'connectPortsFor' | 'dcsExtra'>;

function restapiTlsLines(t: RestapiTls | undefined): string {
  if (!t) return '';
  const lines = [`certfile: ${t.certfile}`, `keyfile: ${t.keyfile}`, `cafile: ${t.cafile}`];
  if (t.verifyClient) lines.push(`verify_client: ${t.verifyClient}`);
  if (t.allowlist) lines.push('allowlist:', ...t.allowlist.map((a) => `- ${a}`));
  return lines.map((l) => `\n  ${l}`).join('');
}

function agentYml(o: ResolvedOptions, node: AgentNode, index: number): string {
  const d = node.dir;
  const auth = o.restapiAuth
    ? `\n  authentication:\n    username: ${o.restapiAuth.username}\n    password: ${o.restapiAuth.password}`
    : '';
  const endpoint = o.dcsEndpointFor?.(node, index) ?? o.etcdEndpoint;
  const published = o.connectPortsFor?.(node, index) ?? node;
  const dcsExtra = (o.dcsExtra ?? '')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => `\n  ${l}`)
    .join('');
  const dcsSection =
    (o.dcs === 'zookeeper' ? `zookeeper:\n  hosts:\n  - ${endpoint}` : `etcd3:\n  hosts: ${endpoint}`) +
    dcsExtra;
  return `# generated by test/harness/agents.ts (${o.dcs}, node ${index + 1} of ${o.nodes})
scope: ${o.scope}
namespace: ${o.namespace}
name: ${node.name}

restapi:
  listen: ${HOST}:${node.restPort}
  connect_address: ${HOST}:${published.restPort}${auth}${restapiTlsLines(o.restapiTls)}

${dcsSection}

bootstrap:
  dcs:
    ttl: ${o.ttl}
    loop_wait: ${o.loopWait}
    retry_timeout: ${o.retryTimeout}
    maximum_lag_on_failover: 1048576
${o.bootstrapDcsExtra
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => `    ${l}\n`)
  .join('')}    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        max_connections: 50
        shared_buffers: 32MB
        wal_level: ${o.walLevel}
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
  connect_address: ${HOST}:${published.pgPort}
  data_dir: ${node.dataDir}
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
    fsync: 'off'
    logging_collector: 'on'
    log_directory: '${d}/pglog'
    log_filename: 'postgresql.log'
    log_line_prefix: '%m [%p] '
${o
  .postgresqlExtra(node, index)
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => `  ${l}\n`)
  .join('')}
watchdog:
${o
  .watchdog(node, index)
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => `  ${l}\n`)
  .join('')}
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
${o.topLevelExtra(node, index)}
`;
}

async function restGet(port: number, path: string, tls?: RestapiTls): Promise<RestAnswer> {
  if (!tls) {
    const res = await fetch(`http://${HOST}:${port}${path}`, { signal: AbortSignal.timeout(3000) });
    return { status: res.status, body: await res.text() };
  }
  return httpsRequest({ port, path, tls });
}

/** One HTTPS request to a member's REST API with the harness's client certificate (`localAddress`: the source IP). */
export function httpsRequest(o: {
  readonly port: number;
  readonly path: string;
  readonly tls: RestapiTls;
  readonly method?: string;
  readonly body?: string;
  readonly localAddress?: string;
}): Promise<RestAnswer> {
  return new Promise((resolvePromise, reject) => {
    const req = https.request(
      {
        host: HOST,
        port: o.port,
        path: o.path,
        method: o.method ?? 'GET',
        ca: readFileSync(o.tls.cafile),
        cert: readFileSync(o.tls.client.cert),
        key: readFileSync(o.tls.client.key),
        ...(o.localAddress ? { localAddress: o.localAddress } : {}),
        headers: o.body === undefined ? {} : { 'content-type': 'application/json' },
        timeout: 3000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${HOST}:${o.port}${o.path} within 3 s`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Writes the config files and starts every agent. Does not wait for the cluster (see `waitReady`). */
export async function startAgentCluster(options: AgentClusterOptions): Promise<AgentCluster> {
  const o: ResolvedOptions = {
    dcs: options.dcs ?? 'etcd3',
    etcdEndpoint: options.etcdEndpoint,
    nodes: options.nodes ?? 3,
    scope: options.scope ?? 'agents',
    namespace: options.namespace ?? '/service',
    ttl: options.ttl ?? 20,
    loopWait: options.loopWait ?? 2,
    retryTimeout: options.retryTimeout ?? 5,
    restapiAuth: options.restapiAuth,
    restapiTls: options.restapiTls,
    postgresqlExtra: options.postgresqlExtra ?? (() => ''),
    walLevel: options.walLevel ?? 'replica',
    bootstrapDcsExtra: options.bootstrapDcsExtra ?? '',
    topLevelExtra: options.topLevelExtra ?? (() => ''),
    watchdog: options.watchdog ?? (() => "mode: 'off'"),
    deferStart: options.deferStart ?? false,
    agentArgv: options.agentArgv ?? (() => undefined),
    dcsEndpointFor: options.dcsEndpointFor,
    connectPortsFor: options.connectPortsFor,
    dcsExtra: options.dcsExtra,
  };
  const { uid, gid } = postgresIds();
  const root = tempDir('agents');
  const used = new Set<number>();
  const port = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (!used.has(p)) {
        used.add(p);
        return p;
      }
    }
  };
  const nodes: AgentNode[] = [];
  for (let i = 0; i < o.nodes; i++) {
    const dir = join(root, `pg${i + 1}`);
    nodes.push({
      name: `pg${i + 1}`,
      restPort: await port(),
      pgPort: await port(),
      dir,
      configFile: join(dir, 'pgwarden.yml'),
      logFile: join(dir, 'agent.log'),
      dataDir: join(dir, 'data'),
    });
  }
  for (const [i, node] of nodes.entries()) {
    mkdirSync(join(node.dir, 'pglog'), { recursive: true });
    writeFileSync(node.configFile, agentYml(o, node, i));
    writeFileSync(node.logFile, '');
    for (const p of [node.dir, join(node.dir, 'pglog'), node.configFile, node.logFile])
      chownSync(p, uid, gid);
    chmodSync(node.dir, 0o700);
    chmodSync(node.configFile, 0o644);
  }
  liveClusters.add(nodes);

  const agents: (Managed | undefined)[] = nodes.map(() => undefined);
  const nodeAt = (i: number): AgentNode => {
    const n = nodes[i];
    if (!n) throw new Error(`no node ${i}`);
    return n;
  };
  const running = (i: number): boolean => {
    const a = agents[i];
    return a !== undefined && a.child.exitCode === null && a.child.signalCode === null;
  };
  const start = (i: number): void => {
    const node = nodeAt(i);
    if (running(i)) throw new Error(`agent of ${node.name} is already running`);
    agents[i] = startProcess(
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
        ...(o.agentArgv(node, i) ?? [
          process.execPath,
          join(REPO, 'bin', 'run.js'),
          'agent',
          node.configFile,
        ]),
      ],
      node.logFile,
      { cwd: node.dir },
    );
  };
  const status = async (i: number): Promise<AgentStatusDoc | undefined> => {
    try {
      return JSON.parse((await restGet(nodeAt(i).restPort, '/patroni', o.restapiTls)).body) as AgentStatusDoc;
    } catch {
      return undefined;
    }
  };
  const primaries = async (): Promise<string[]> => {
    const codes = await Promise.all(
      nodes.map(async (n, i) => {
        if (!running(i)) return 0;
        try {
          return (await restGet(n.restPort, '/primary', o.restapiTls)).status;
        } catch {
          return 0;
        }
      }),
    );
    return nodes.filter((_n, i) => codes[i] === 200).map((n) => n.name);
  };
  const logTails = (lines = 20): string =>
    nodes
      .map(
        (n) =>
          `--- ${n.name} agent.log (last ${lines} lines)\n${readText(n.logFile).trimEnd().split('\n').slice(-lines).join('\n')}`,
      )
      .join('\n');

  let stopped = false;
  const cluster: AgentCluster = {
    scope: o.scope,
    namespace: o.namespace,
    dir: root,
    nodes,
    start,
    running,
    rest: (i, path) => restGet(nodeAt(i).restPort, path, o.restapiTls),
    status,
    primaries,
    async waitReady(w = {}) {
      const exclude = new Set(w.exclude ?? []);
      let last = 'nothing checked yet';
      try {
        return await waitFor(
          'one primary and streaming replicas',
          async (): Promise<string | false> => {
            const ps = await primaries();
            if (ps.length !== 1 || ps[0] === undefined) {
              last = `${ps.length} primaries: ${ps.join(', ')}`;
              return false;
            }
            const leader = ps[0];
            const li = nodes.findIndex((n) => n.name === leader);
            const members = nodes.filter((n, i) => n.name !== leader && running(i) && !exclude.has(n.name));
            const ls = await status(li);
            const streaming = (ls?.replication ?? []).filter(
              (r) => r.state === 'streaming' && members.some((m) => m.name === r.application_name),
            );
            if (streaming.length !== members.length) {
              last = `${leader} lists ${streaming.length} of ${members.length} streaming replicas`;
              return false;
            }
            for (const m of members) {
              const s = await status(nodes.indexOf(m));
              if (s?.role !== 'replica' || s.state !== 'running') {
                last = `${m.name} is ${s ? `${s.role ?? '?'}/${s.state ?? '?'}` : 'not answering'}`;
                return false;
              }
            }
            return leader;
          },
          w.timeoutMs ?? 90_000,
          250,
        );
      } catch (e) {
        throw new Error(`${e instanceof Error ? e.message : String(e)} (last seen: ${last})\n${logTails()}`);
      }
    },
    pid(i) {
      return running(i) ? agents[i]?.pid : undefined;
    },
    async kill9(i) {
      const a = agents[i];
      if (a) {
        a.signal('SIGKILL');
        await waitFor(`agent of ${nodeAt(i).name} to die`, () => !running(i), 5000, 50);
      }
      await killPostmasters(nodeAt(i), 'SIGKILL');
    },
    async terminate(i, graceMs = 30_000) {
      const a = agents[i];
      if (a) await a.stop(graceMs);
    },
    psql(i, sql) {
      const n = nodeAt(i);
      return runCommand(
        'setpriv',
        [
          '--reuid=postgres',
          '--regid=postgres',
          '--init-groups',
          join(PG_BIN, 'psql'),
          '-h',
          n.dir,
          '-p',
          String(n.pgPort),
          '-U',
          'postgres',
          '-d',
          'postgres',
          '-XAtq',
          '-c',
          sql,
        ],
        { timeoutMs: 15_000, cwd: '/' },
      );
    },
    patronictl(args) {
      return runCommand('/usr/bin/patronictl', ['-c', nodeAt(0).configFile, ...args], { timeoutMs: 30_000 });
    },
    logTails,
    async stop() {
      if (stopped) return;
      stopped = true;
      const errors: string[] = [];
      await Promise.all(
        agents.map(async (a) => {
          try {
            await a?.stop(20_000);
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
      if (survivors.length === 0 && process.env['PGWARDEN_KEEP_AGENTS'] === undefined) removeDir(root);
      if (errors.length > 0 || survivors.length > 0) {
        throw new Error(
          `stopping agents in ${root}: ${[...errors, ...survivors.map((s) => `${s} survived`)].join('; ')}`,
        );
      }
    },
  };
  if (!o.deferStart) for (let i = 0; i < nodes.length; i++) start(i);
  return cluster;
}
