/**
 * HAProxy (Debian's /usr/sbin/haproxy) in front of an agent cluster, configured as Patroni's documentation and
 * ../shared/reference/haproxy-up.sh do: a read-write port whose servers pass `OPTIONS /primary` on their REST port,
 * a read-only port (roundrobin) whose servers pass `OPTIONS /replica`, and a stats page. Checks are faster than the
 * reference's (inter 1s fall 2 rise 1 by default) to keep tests short. Free ports on 127.0.0.1, a temp dir, run in
 * the foreground (-db) under startProcess and stopped by pid.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from './patroni.js';
import { freePort, removeDir, startProcess, tempDir, waitFor } from './process.js';

export const HAPROXY = '/usr/sbin/haproxy';
const HOST = '127.0.0.1';

export interface HaproxyBackend {
  readonly name: string;
  readonly pgPort: number;
  readonly restPort: number;
}

export interface HaproxyOptions {
  readonly servers: readonly HaproxyBackend[];
  /** Check interval, HAProxy syntax. Default `1s`. */
  readonly inter?: string;
  readonly fall?: number;
  readonly rise?: number;
}

export interface HaproxyServerState {
  /** `primary` or `replicas`. */
  readonly proxy: string;
  readonly server: string;
  /** `UP`, `DOWN`, `UP 1/2`, ... */
  readonly status: string;
}

/**
 * `server` alone takes new connections on `proxy`: it is UP and every other server is DOWN or in maintenance. A
 * server still going down (`UP 1/3`) takes connections too, and `on-marked-down shutdown-sessions` cuts them later.
 */
export function routesOnlyTo(states: readonly HaproxyServerState[], proxy: string, server: string): boolean {
  const mine = states.filter((s) => s.proxy === proxy);
  return (
    mine.some((s) => s.server === server && s.status === 'UP') &&
    mine.every((s) => s.server === server || s.status.startsWith('DOWN') || s.status.startsWith('MAINT'))
  );
}

export interface Haproxy {
  readonly rwPort: number;
  readonly roPort: number;
  readonly statsPort: number;
  readonly dir: string;
  /** The servers' check states from the stats CSV. */
  states(): Promise<readonly HaproxyServerState[]>;
  log(): string;
  stop(): Promise<void>;
}

export function haproxyConfig(o: {
  readonly servers: readonly HaproxyBackend[];
  readonly rwPort: number;
  readonly roPort: number;
  readonly statsPort: number;
  readonly inter: string;
  readonly fall: number;
  readonly rise: number;
}): string {
  const servers = o.servers
    .map((s) => `    server ${s.name} ${HOST}:${s.pgPort} maxconn 100 check port ${s.restPort}`)
    .join('\n');
  return `global
    maxconn 200

defaults
    mode tcp
    retries 2
    timeout client 30m
    timeout connect 4s
    timeout server 30m
    timeout check 5s

listen stats
    mode http
    bind ${HOST}:${o.statsPort}
    stats enable
    stats uri /

listen primary
    bind ${HOST}:${o.rwPort}
    option httpchk OPTIONS /primary
    http-check expect status 200
    default-server inter ${o.inter} fall ${o.fall} rise ${o.rise} on-marked-down shutdown-sessions
${servers}

listen replicas
    bind ${HOST}:${o.roPort}
    balance roundrobin
    option httpchk OPTIONS /replica
    http-check expect status 200
    default-server inter ${o.inter} fall ${o.fall} rise ${o.rise} on-marked-down shutdown-sessions
${servers}
`;
}

/** Writes the config, validates it (`haproxy -c`) and starts HAProxy; resolves once the stats page answers. */
export async function startHaproxy(options: HaproxyOptions): Promise<Haproxy> {
  const dir = tempDir('haproxy');
  const ports = new Set<number>();
  while (ports.size < 3) ports.add(await freePort());
  const [rwPort = 0, roPort = 0, statsPort = 0] = [...ports];
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    haproxyConfig({
      servers: options.servers,
      rwPort,
      roPort,
      statsPort,
      inter: options.inter ?? '1s',
      fall: options.fall ?? 2,
      rise: options.rise ?? 1,
    }),
  );
  const check = await runCommand(HAPROXY, ['-c', '-q', '-f', cfg], { timeoutMs: 10_000 });
  if (check.code !== 0) {
    removeDir(dir);
    throw new Error(`bad haproxy config:\n${check.stderr}${check.stdout}`);
  }
  const proc = startProcess(HAPROXY, ['-db', '-f', cfg], join(dir, 'haproxy.log'), { cwd: dir });
  const stop = async (): Promise<void> => {
    await proc.stop(5000);
    removeDir(dir);
  };
  const states = async (): Promise<readonly HaproxyServerState[]> => {
    const res = await fetch(`http://${HOST}:${statsPort}/;csv`, { signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    const out: HaproxyServerState[] = [];
    for (const line of text.split('\n')) {
      const f = line.split(',');
      const [proxy, server] = f;
      const status = f[17];
      if (proxy === undefined || server === undefined || status === undefined) continue;
      if (server === 'FRONTEND' || server === 'BACKEND' || proxy.startsWith('#')) continue;
      out.push({ proxy, server, status });
    }
    return out;
  };
  try {
    await waitFor(
      `haproxy stats on ${HOST}:${statsPort}`,
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`haproxy exited with code ${proc.child.exitCode}`);
        return (await states()).length > 0;
      },
      10_000,
      100,
    );
  } catch (e) {
    const log = proc.log();
    await stop();
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${log}`);
  }
  return { rwPort, roPort, statsPort, dir, states, log: () => proc.log(), stop };
}
