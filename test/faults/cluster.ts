/**
 * The fault suite's cluster, each server in a namespace of its own (test/harness/netns-lab.ts): a 3-node etcd
 * cluster (e1..e3, 10.213.0.21-23), three members (m1..m3, 10.213.0.11-13: an agent and its PostgreSQL, run as
 * user postgres) of pgwarden, Patroni 4.1.4 or Patroni 3.0.2 on the same patroni.yml, and HAProxy on the client
 * side (the root namespace) configured as the Patroni guides do: `OPTIONS /primary` checks on the REST port.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { etcdPost } from '../harness/etcd.js';
import { childPids } from '../harness/ha-probe.js';
import { fourLetterWord, ZK_SERVER } from '../harness/zookeeper.js';
import type { Host, Lab } from '../harness/netns-lab.js';
import { runCommand } from '../harness/patroni.js';
import { freePort, startProcess, waitFor, type Managed } from '../harness/process.js';
import { startWatchdogMonitor } from './watchdog.js';

const REPO = resolve(import.meta.dirname, '..', '..');
export const PG_BIN = '/usr/lib/postgresql/15/bin';
const PG_PORT = 5432;
const REST_PORT = 8008;
export const SUPERUSER = { user: 'postgres', password: 'zalando' } as const;

export type Implementation = 'pgwarden' | 'patroni-4.1.4' | 'patroni-3.0.2';
export type SyncMode = 'off' | 'on' | 'strict';

/** The agent command of each implementation; each takes the config file as its last argument. */
const AGENT: Record<Implementation, readonly string[]> = {
  pgwarden: [process.execPath, join(REPO, 'bin', 'run.js'), 'agent'],
  'patroni-4.1.4': [resolve(REPO, '..', 'shared', 'reference', 'patroni-4.1.4', 'bin', 'patroni')],
  'patroni-3.0.2': ['/usr/bin/patroni'],
};

export const TIMING = { ttl: 20, loopWait: 2, retryTimeout: 5 } as const;

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function signalPid(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

/** Rows of one query on the PostgreSQL at `ip`:5432 as the superuser, or undefined when it does not answer. */
export async function sqlRows(ip: string, sql: string): Promise<Record<string, unknown>[] | undefined> {
  const c = new pg.Client({
    host: ip,
    port: PG_PORT,
    ...SUPERUSER,
    database: 'postgres',
    connectionTimeoutMillis: 2000,
    query_timeout: 2000,
    application_name: 'faults-check',
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return (await c.query<Record<string, unknown>>(sql)).rows;
  } catch {
    return undefined;
  } finally {
    await c.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------------- etcd

export type DcsKind = 'etcd3' | 'zookeeper';

/** The DCS servers of a row: a 3-node etcd cluster or a 3-node ZooKeeper ensemble. */
export interface EtcdCluster {
  readonly kind: DcsKind;
  readonly hosts: readonly Host[];
  /** `ip:port,ip:port,ip:port` */
  readonly endpoints: string;
  /** Index of the DCS's own leader (etcd's raft leader, ZooKeeper's `Mode: leader`), or undefined when none answers. */
  leader(): Promise<number | undefined>;
  kill9(i: number): void;
  start(i: number): void;
  stop(): Promise<void>;
}

export async function startEtcdCluster(lab: Lab, dir: string): Promise<EtcdCluster> {
  const hosts = [1, 2, 3].map((k) => lab.addHost(`e${k}`, 20 + k));
  const initial = hosts.map((h) => `${h.name}=http://${h.ip}:2380`).join(',');
  const procs: (Managed | undefined)[] = [];
  const start = (i: number): void => {
    const h = hosts[i];
    if (!h) throw new Error(`no etcd ${i}`);
    const client = `http://${h.ip}:2379`;
    const peer = `http://${h.ip}:2380`;
    procs[i] = startProcess(
      'ip',
      [
        'netns',
        'exec',
        h.ns,
        '/usr/bin/etcd',
        ...['--name', h.name, '--data-dir', join(dir, `${h.name}.data`)],
        ...['--listen-client-urls', client, '--advertise-client-urls', client],
        ...['--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer],
        ...['--initial-cluster', initial, '--initial-cluster-state', 'new'],
        ...['--initial-cluster-token', 'pgwf', '--logger', 'zap', '--log-outputs', 'stderr'],
      ],
      join(dir, `${h.name}.log`),
    );
  };
  hosts.forEach((_h, i) => start(i));
  await waitFor(
    'a healthy 3-node etcd cluster',
    async () => {
      for (const h of hosts) {
        const res = await fetch(`http://${h.ip}:2379/health`, { signal: AbortSignal.timeout(2000) });
        if ((JSON.parse(await res.text()) as { health?: unknown }).health !== 'true') return false;
      }
      return true;
    },
    60_000,
    250,
  );
  const leader = async (): Promise<number | undefined> => {
    for (const [i, h] of hosts.entries()) {
      try {
        const s = await etcdPost(`${h.ip}:2379`, '/v3/maintenance/status', {}, 1000);
        const header = s['header'] as { member_id?: string } | undefined;
        if (header?.member_id !== undefined && header.member_id === s['leader']) return i;
      } catch {
        /* down or cut off */
      }
    }
    return undefined;
  };
  return {
    kind: 'etcd3',
    hosts,
    endpoints: hosts.map((h) => `${h.ip}:2379`).join(','),
    leader,
    kill9: (i) => procs[i]?.signal('SIGKILL'),
    start: (i) => {
      const p = procs[i];
      if (p && p.child.exitCode === null && p.child.signalCode === null)
        throw new Error(`etcd ${i} still runs`);
      start(i);
    },
    async stop() {
      await Promise.all(procs.map((p) => (p ? p.stop(3000) : Promise.resolve())));
    },
  };
}

// ------------------------------------------------------------------------------------------------ ZooKeeper

/** A 3-node ZooKeeper ensemble (z1..z3, 10.213.0.31-33), each server in its namespace; tickTime 1 s. */
export async function startZooKeeperEnsemble(lab: Lab, dir: string): Promise<EtcdCluster> {
  const hosts = [1, 2, 3].map((k) => lab.addHost(`z${k}`, 30 + k));
  const servers = hosts.map((h, i) => `server.${i + 1}=${h.ip}:2888:3888`);
  const procs: (Managed | undefined)[] = [];
  const cfgs = hosts.map((h, i) => {
    const data = join(dir, `${h.name}.data`);
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'myid'), `${i + 1}\n`);
    const cfg = join(dir, `${h.name}.cfg`);
    writeFileSync(
      cfg,
      [
        'tickTime=1000',
        'initLimit=10',
        'syncLimit=5',
        `dataDir=${data}`,
        'clientPort=2181',
        `clientPortAddress=${h.ip}`,
        'maxSessionTimeout=60000',
        'maxClientCnxns=200',
        'admin.enableServer=false',
        '4lw.commands.whitelist=ruok,srvr,stat,mntr',
        'autopurge.purgeInterval=0',
        ...servers,
        '',
      ].join('\n'),
    );
    return cfg;
  });
  const start = (i: number): void => {
    const h = hosts[i];
    if (!h) throw new Error(`no zookeeper ${i}`);
    procs[i] = startProcess(
      'ip',
      ['netns', 'exec', h.ns, ZK_SERVER, 'start-foreground', cfgs[i] ?? ''],
      join(dir, `${h.name}.log`),
      {
        cwd: dir,
        env: {
          ...process.env,
          JMXDISABLE: 'true',
          SERVER_JVMFLAGS:
            '-Xms32m -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dzookeeper.admin.enableServer=false',
        },
      },
    );
  };
  hosts.forEach((_h, i) => start(i));
  const mode = async (h: Host): Promise<string | undefined> => {
    try {
      return /^Mode: (\S+)/m.exec(await fourLetterWord(h.ip, 2181, 'srvr', 1000))?.[1];
    } catch {
      return undefined;
    }
  };
  await waitFor(
    'a 3-node ZooKeeper ensemble with a leader',
    async () => {
      const modes = await Promise.all(hosts.map(mode));
      return modes.every((m) => m === 'leader' || m === 'follower') && modes.includes('leader');
    },
    90_000,
    500,
  );
  return {
    kind: 'zookeeper',
    hosts,
    endpoints: hosts.map((h) => `${h.ip}:2181`).join(','),
    async leader() {
      for (const [i, h] of hosts.entries()) if ((await mode(h)) === 'leader') return i;
      return undefined;
    },
    kill9: (i) => procs[i]?.signal('SIGKILL'),
    start: (i) => {
      const p = procs[i];
      if (p && p.child.exitCode === null && p.child.signalCode === null)
        throw new Error(`zookeeper ${i} still runs`);
      start(i);
    },
    async stop() {
      await Promise.all(procs.map((p) => (p ? p.stop(5000) : Promise.resolve())));
    },
  };
}

// ------------------------------------------------------------------------------------------------- members

const mounts = new Set<string>();

/** Lazily unmounts the members' data filesystems: gone from the tree now, freed when the last process exits. */
export function unmountDisks(): void {
  for (const m of mounts) {
    try {
      execFileSync('umount', ['-l', m], { timeout: 10_000, stdio: 'ignore' });
    } catch {
      /* not mounted */
    }
    mounts.delete(m);
  }
}
process.once('exit', unmountDisks);

/** Unmounts data filesystems a killed earlier run left under `root` (its temp dirs' prefix). */
export function sweepStaleDisks(prefix: string): void {
  for (const line of readText('/proc/mounts').split('\n')) {
    const mountPoint = line.split(' ')[1];
    if (mountPoint?.startsWith(prefix)) {
      try {
        execFileSync('umount', ['-l', mountPoint], { timeout: 10_000, stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    }
  }
}

export interface Member {
  readonly host: Host;
  readonly name: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly configFile: string;
  readonly logFile: string;
}

export interface Members {
  readonly list: readonly Member[];
  start(i: number): void;
  running(i: number): boolean;
  agentPid(i: number): number | undefined;
  postmasterPid(i: number): number | undefined;
  /** GET `path` on member i's REST API: the status code, or 0 when it does not answer. */
  restStatus(i: number, path: string, timeoutMs?: number): Promise<number>;
  /**
   * Exactly one member answers GET /primary with 200 (what HAProxy routes by), its PostgreSQL streams to the two
   * others, and they are in recovery: the leader's index, or undefined.
   */
  healthyLeader(): Promise<number | undefined>;
  /** How often member i's watchdog expired and reset its host (0 without a watchdog). */
  watchdogExpirations(i: number): number;
  /** What the last `healthyLeader` call that found no healthy leader saw. */
  unhealthyBecause(): string;
  logTails(lines?: number): string;
  stop(): Promise<void>;
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

function syncLines(sync: SyncMode): string {
  if (sync === 'off') return '    synchronous_mode: false';
  if (sync === 'on') return '    synchronous_mode: true';
  return '    synchronous_mode: true\n    synchronous_mode_strict: true';
}

function dcsSection(dcs: Pick<EtcdCluster, 'kind' | 'endpoints'>): string {
  if (dcs.kind === 'etcd3') return `etcd3:\n  hosts: ${dcs.endpoints}`;
  return `zookeeper:\n  hosts:\n${dcs.endpoints
    .split(',')
    .map((e) => `  - ${e}`)
    .join('\n')}`;
}

/** The watchdog section: off, or required on the suite's stand-in device (watchdog.ts), as Patroni's acceptance suite configures it. */
function watchdogSection(m: Member, watchdog: boolean): string {
  if (!watchdog) return `watchdog:\n  mode: 'off'`;
  return `watchdog:\n  mode: required\n  driver: testing\n  device: ${watchdogFifo(m)}\n  safety_margin: 5`;
}

const watchdogFifo = (m: Member): string => join(m.dir, 'watchdog.fifo');

export function memberYml(
  m: Member,
  dcs: Pick<EtcdCluster, 'kind' | 'endpoints'>,
  sync: SyncMode,
  watchdog = false,
): string {
  return `# generated by test/faults/cluster.ts
scope: faults
namespace: /service
name: ${m.name}

restapi:
  listen: ${m.host.ip}:${REST_PORT}
  connect_address: ${m.host.ip}:${REST_PORT}

${dcsSection(dcs)}

bootstrap:
  dcs:
    ttl: ${TIMING.ttl}
    loop_wait: ${TIMING.loopWait}
    retry_timeout: ${TIMING.retryTimeout}
    maximum_lag_on_failover: 1048576
${syncLines(sync)}
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
  listen: ${m.host.ip}:${PG_PORT}
  connect_address: ${m.host.ip}:${PG_PORT}
  data_dir: ${m.dataDir}
  bin_dir: ${PG_BIN}
  pgpass: ${m.dir}/pgpass
  authentication:
    replication:
      username: replicator
      password: rep-pass
    superuser:
      username: ${SUPERUSER.user}
      password: ${SUPERUSER.password}
    rewind:
      username: rewind_user
      password: rewind_password
  pg_hba:
  - local all all trust
  - host replication replicator 10.213.0.0/24 md5
  - host all all 10.213.0.0/24 md5
  parameters:
    unix_socket_directories: '${m.dir}'
    fsync: 'off'
    logging_collector: 'on'
    log_directory: '${m.dir}/pglog'
    log_filename: 'postgresql.log'
    log_line_prefix: '%m [%p] '

${watchdogSection(m, watchdog)}
`;
}

export function startMembers(
  lab: Lab,
  dir: string,
  impl: Implementation,
  sync: SyncMode,
  dcs: Pick<EtcdCluster, 'kind' | 'endpoints'>,
  diskMb?: number,
  watchdog = false,
): Members {
  const { uid, gid } = postgresIds();
  const list: Member[] = [1, 2, 3].map((k) => {
    const host = lab.addHost(`m${k}`, 10 + k);
    const mdir = join(dir, host.name);
    return {
      host,
      name: host.name,
      dir: mdir,
      dataDir: diskMb === undefined ? join(mdir, 'data') : join(mdir, 'disk', 'data'),
      configFile: join(mdir, 'node.yml'),
      logFile: join(mdir, 'agent.log'),
    };
  });
  for (const m of list) {
    mkdirSync(join(m.dir, 'pglog'), { recursive: true });
    writeFileSync(m.configFile, memberYml(m, dcs, sync, watchdog));
    writeFileSync(m.logFile, '');
    for (const p of [m.dir, join(m.dir, 'pglog'), m.configFile, m.logFile]) chownSync(p, uid, gid);
    chmodSync(m.dir, 0o700);
    if (diskMb !== undefined) {
      // The data dir (pg_wal included) on a filesystem of its own that a fault can fill.
      const disk = join(m.dir, 'disk');
      mkdirSync(disk);
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${diskMb}m,mode=0700`, 'tmpfs', disk], {
        timeout: 10_000,
      });
      mounts.add(disk);
      chownSync(disk, uid, gid);
    }
  }
  const agents: (Managed | undefined)[] = [];
  const at = (i: number): Member => {
    const m = list[i];
    if (!m) throw new Error(`no member ${i}`);
    return m;
  };
  const running = (i: number): boolean => {
    const a = agents[i];
    return a !== undefined && a.child.exitCode === null && a.child.signalCode === null;
  };
  const start = (i: number): void => {
    const m = at(i);
    if (running(i)) throw new Error(`agent of ${m.name} already runs`);
    agents[i] = startProcess(
      'ip',
      [
        ...['netns', 'exec', m.host.ns, 'setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups'],
        ...['env', '-i', `HOME=${m.dir}`, 'PATH=/usr/bin:/bin', 'LANG=C.UTF-8'],
        ...AGENT[impl],
        m.configFile,
      ],
      m.logFile,
      { cwd: m.dir },
    );
  };
  const restStatus = async (i: number, path: string, timeoutMs = 2000): Promise<number> => {
    try {
      const res = await fetch(`http://${at(i).host.ip}:${REST_PORT}${path}`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.arrayBuffer();
      return res.status;
    } catch {
      return 0;
    }
  };
  const postmasterPid = (i: number): number | undefined => {
    const pid = Number.parseInt(readText(join(at(i).dataDir, 'postmaster.pid')).split('\n', 1)[0] ?? '', 10);
    return Number.isInteger(pid) && pid > 0 && readText(`/proc/${pid}/cmdline`).includes('postgres')
      ? pid
      : undefined;
  };
  let why = 'not checked yet';
  const healthyLeader = async (): Promise<number | undefined> => {
    const codes = await Promise.all(list.map((_m, i) => restStatus(i, '/primary')));
    const leaders = codes.flatMap((c, i) => (c === 200 ? [i] : []));
    const li = leaders[0];
    if (leaders.length !== 1 || li === undefined) {
      why = `GET /primary answers ${codes.join(', ')}`;
      return undefined;
    }
    // Replication as PostgreSQL itself reports it, not through the agent under test.
    const others = list.filter((_m, i) => i !== li);
    const streaming = await sqlRows(
      at(li).host.ip,
      "SELECT application_name AS name FROM pg_stat_replication WHERE state = 'streaming'",
    );
    const names = streaming?.map((r) => r['name']) ?? [];
    if (!others.every((o) => names.includes(o.name))) {
      why = `leader ${at(li).name} streams to ${streaming ? `[${names.join(', ')}]` : '(no answer)'}`;
      return undefined;
    }
    // A replica whose timeline forked off the leader's still shows up as `streaming` for a moment every few seconds
    // (it re-reads the old timeline's history, then stops): each replica must stream the leader's timeline.
    const tl = await sqlRows(
      at(li).host.ip,
      "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int::text AS tli",
    );
    const leaderTimeline = tl?.[0]?.['tli'];
    for (const o of others) {
      const r = await sqlRows(
        o.host.ip,
        `SELECT pg_is_in_recovery()::text AS standby,
                (SELECT received_tli::text FROM pg_stat_wal_receiver WHERE status = 'streaming') AS tli`,
      );
      if (r?.[0]?.['standby'] !== 'true') {
        why = `${o.name} is ${r ? 'not in recovery' : 'not answering SQL'}`;
        return undefined;
      }
      if (leaderTimeline === undefined || r[0]['tli'] !== leaderTimeline) {
        why = `${o.name} streams timeline ${String(r[0]['tli'])}, the leader is on ${String(leaderTimeline)}`;
        return undefined;
      }
    }
    return li;
  };
  // A watchdog that expires resets the host: agent and PostgreSQL killed, the agent started again 5 s later.
  let stopping = false;
  const reboots = new Set<NodeJS.Timeout>();
  const resetHost = (i: number): void => {
    if (stopping) return;
    const pm = postmasterPid(i);
    for (const pid of [agents[i]?.pid, pm, ...(pm === undefined ? [] : childPids(pm))])
      signalPid(pid, 'SIGKILL');
    const t = setTimeout(() => {
      reboots.delete(t);
      if (!stopping && !running(i)) start(i);
    }, 5000);
    reboots.add(t);
  };
  const monitors = watchdog
    ? list.map((m, i) => startWatchdogMonitor(watchdogFifo(m), { uid, gid }, () => resetHost(i)))
    : [];
  list.forEach((_m, i) => start(i));
  return {
    list,
    start,
    running,
    agentPid: (i) => (running(i) ? agents[i]?.pid : undefined),
    postmasterPid,
    restStatus,
    healthyLeader,
    unhealthyBecause: () => why,
    logTails(lines = 25) {
      return list
        .map((m) => {
          const agent = readText(m.logFile).trimEnd().split('\n').slice(-lines);
          const pgLines = readText(join(m.dir, 'pglog', 'postgresql.log'))
            .trimEnd()
            .split('\n');
          const pgTail = pgLines
            .filter((l) => !/checkpoint|restartpoint|faults_probe|read-only transaction/.test(l))
            .slice(-lines);
          return `--- ${m.name} agent\n${agent.join('\n')}\n--- ${m.name} postgresql\n${pgTail.join('\n')}`;
        })
        .join('\n');
    },
    watchdogExpirations: (i) => monitors[i]?.expirations ?? 0,
    async stop() {
      stopping = true;
      for (const t of reboots) clearTimeout(t);
      for (const [i] of list.entries()) signalPid(agents[i]?.pid, 'SIGCONT');
      for (const [i] of list.entries()) signalPid(postmasterPid(i), 'SIGCONT');
      await Promise.all(agents.map((a) => (a ? a.stop(15_000) : Promise.resolve())));
      for (const m of monitors) m.stop();
      // What the agents left running (a postmaster in its own session) goes with the namespace (killInside).
    },
  };
}

// ------------------------------------------------------------------------------------------------- haproxy

export interface FaultHaproxy {
  readonly rwPort: number;
  stop(): Promise<void>;
}

/** HAProxy in the client (root) namespace: a read-write port on 127.0.0.1 routed by `OPTIONS /primary`. */
export async function startFaultHaproxy(members: readonly Member[], dir: string): Promise<FaultHaproxy> {
  const rwPort = await freePort();
  const servers = members
    .map((m) => `    server ${m.name} ${m.host.ip}:${PG_PORT} maxconn 100 check port ${REST_PORT}`)
    .join('\n');
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    `global
    maxconn 200

defaults
    mode tcp
    retries 2
    timeout client 30m
    timeout connect 4s
    timeout server 30m
    timeout check 5s

listen primary
    bind 127.0.0.1:${rwPort}
    option httpchk OPTIONS /primary
    http-check expect status 200
    default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions
${servers}
`,
  );
  const check = await runCommand('/usr/sbin/haproxy', ['-c', '-q', '-f', cfg], { timeoutMs: 10_000 });
  if (check.code !== 0) throw new Error(`bad haproxy config:\n${check.stderr}${check.stdout}`);
  const proc = startProcess('/usr/sbin/haproxy', ['-db', '-f', cfg], join(dir, 'haproxy.log'), { cwd: dir });
  return { rwPort, stop: () => proc.stop(3000) };
}
