/**
 * A private network of Linux network namespaces for fault tests: one bridge in the root namespace (the tests'
 * client side, address 10.213.0.1), one namespace per host joined to it by a veth pair, addresses in
 * 10.213.0.0/24 only. Partitions are per-host blackhole routes (`ip route add blackhole PEER/32` inside the
 * host's namespace): this machine has neither nftables nor iptables, and its tc lacks the drop action, but a
 * blackhole route silently drops every packet a host sends to a peer, which breaks TCP both ways as a cut cable
 * does (the peer's SYNs and data arrive, nothing comes back).
 *
 * Every name starts with `pgwf-`; `sweepStale` removes what a killed earlier run left, and the exit hook removes
 * this run's namespaces (killing every process still inside them, PostgreSQL included) and links.
 */
import { execFileSync } from 'node:child_process';

export const PREFIX = 'pgwf-';
const SUBNET = '10.213.0';
export const CLIENT_IP = `${SUBNET}.1`;
const BRIDGE = `${PREFIX}br`;

export interface Host {
  /** Short name, also the namespace suffix: `m1`, `e2`, ... */
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
}

function ip(args: readonly string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

function tryIp(args: readonly string[]): void {
  try {
    ip(args);
  } catch {
    /* already gone */
  }
}

function ourNamespaces(): string[] {
  return ip(['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ', 1)[0] ?? '')
    .filter((n) => n.startsWith(PREFIX));
}

function ourLinks(): string[] {
  return ip(['-o', 'link', 'show'])
    .split('\n')
    .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '')
    .filter((n) => n.startsWith(PREFIX));
}

/** SIGKILL every process inside namespace `ns` (agents, postmasters and their children, DCS servers). */
export function killInside(ns: string): void {
  for (let round = 0; round < 5; round++) {
    let pids: number[] = [];
    try {
      pids = ip(['netns', 'pids', ns])
        .split('\n')
        .filter((l) => /^\d+$/.test(l.trim()))
        .map(Number);
    } catch {
      return;
    }
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGCONT');
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    execFileSync('sleep', ['0.2']);
  }
}

/** Removes every `pgwf-` namespace (and what runs in it) and link: the leftovers of a run that was killed. */
export function sweepStale(): void {
  for (const ns of ourNamespaces()) {
    killInside(ns);
    tryIp(['netns', 'del', ns]);
  }
  for (const link of ourLinks()) tryIp(['link', 'del', link]);
}

export interface Lab {
  readonly hosts: readonly Host[];
  /** Creates namespace `pgwf-<name>` with address 10.213.0.<octet>, joined to the bridge. */
  addHost(name: string, octet: number): Host;
  /** `host` drops every packet it sends to `peers` (addresses), until `heal`. */
  block(host: Host, peers: readonly string[]): void;
  /** A two-way cut between every host of `a` and every host of `b`. */
  cut(a: readonly Host[], b: readonly Host[]): void;
  /** `host` reaches nobody: peers, DCS and clients. */
  isolate(host: Host): void;
  /** Removes every blackhole route of `host` (all hosts when omitted). */
  heal(host?: Host): void;
  /** Whether any cut is in place (for a row's final check). */
  blocked(): number;
  destroy(): void;
}

export function createLab(): Lab {
  sweepStale();
  const hosts: Host[] = [];
  const routes = new Map<string, Set<string>>();
  ip(['link', 'add', BRIDGE, 'type', 'bridge']);
  ip(['addr', 'add', `${CLIENT_IP}/24`, 'dev', BRIDGE]);
  ip(['link', 'set', BRIDGE, 'up']);

  let destroyed = false;
  const destroy = (): void => {
    if (destroyed) return;
    destroyed = true;
    process.removeListener('exit', destroy);
    for (const h of hosts) {
      killInside(h.ns);
      tryIp(['netns', 'del', h.ns]);
    }
    sweepStale();
  };
  process.once('exit', destroy);

  const lab: Lab = {
    hosts,
    addHost(name, octet) {
      const ns = `${PREFIX}${name}`;
      const veth = `${PREFIX}${name}h`;
      const addr = `${SUBNET}.${octet}`;
      ip(['netns', 'add', ns]);
      ip(['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      ip(['link', 'set', veth, 'master', BRIDGE, 'up']);
      ip(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
      ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      const host = { name, ns, ip: addr };
      hosts.push(host);
      routes.set(ns, new Set());
      return host;
    },
    block(host, peers) {
      const mine = routes.get(host.ns);
      if (!mine) throw new Error(`${host.name} is not a host of this lab`);
      for (const peer of peers) {
        if (peer === host.ip || mine.has(peer)) continue;
        ip(['-n', host.ns, 'route', 'add', 'blackhole', `${peer}/32`]);
        mine.add(peer);
      }
    },
    cut(a, b) {
      for (const x of a)
        lab.block(
          x,
          b.map((h) => h.ip),
        );
      for (const y of b)
        lab.block(
          y,
          a.map((h) => h.ip),
        );
    },
    isolate(host) {
      lab.block(host, [CLIENT_IP, ...hosts.map((h) => h.ip)]);
      for (const h of hosts) if (h !== host) lab.block(h, [host.ip]);
    },
    heal(host) {
      for (const h of host ? [host] : hosts) {
        const mine = routes.get(h.ns) ?? new Set<string>();
        for (const peer of mine) tryIp(['-n', h.ns, 'route', 'del', 'blackhole', `${peer}/32`]);
        mine.clear();
      }
    },
    blocked: () => [...routes.values()].reduce((n, s) => n + s.size, 0),
    destroy,
  };
  return lab;
}
