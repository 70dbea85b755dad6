/**
 * etcd member discovery, the pure part (the gateway, src/dcs/etcd3/gateway.ts, does the requests). As Patroni 4.1.4's
 * etcd client with `use_proxies: false` (the default): the configured hosts only bootstrap the list; the endpoints
 * used are the client URLs etcd's `POST /v3/cluster/member/list` names, asked again
 * - before the first request, and whenever the last attempt to learn the list failed ("reload": from the configured
 *   hosts plus the last known list, and a failure fails the request);
 * - once the list is older than its lifetime (ttl x 10, 300 s by default: "refresh", a failure keeps the old list);
 * - after a request that only succeeded on a later endpoint, and after a round in which every endpoint failed (then
 *   by "reload" at the next request).
 * With `use_proxies: true` the configured hosts are the endpoints, never replaced.
 */

export type DiscoveryStep = 'none' | 'refresh' | 'reload';

export interface DiscoveryState {
  /** Whether the list comes from etcd (use_proxies false). */
  readonly discover: boolean;
  /** No list learnt yet, or the last reload failed. */
  readonly needsReload: boolean;
  /** When the list was last learnt (monotonic ms), or undefined. */
  readonly updatedMs: number | undefined;
  /** How long a learnt list is trusted, ms. */
  readonly lifetimeMs: number;
}

/** What to do before a request. */
export function discoveryStep(state: DiscoveryState, nowMs: number): DiscoveryStep {
  if (!state.discover) return 'none';
  if (state.needsReload || state.updatedMs === undefined) return 'reload';
  return nowMs - state.updatedMs > state.lifetimeMs ? 'refresh' : 'none';
}

/**
 * The client URLs a member-list answer names (`{"members":[{"clientURLs":[...]}, ...]}`), each once, in answer order.
 * A member that has not started yet has none.
 */
export function clientUrlsOf(answer: unknown): string[] {
  const members =
    typeof answer === 'object' && answer !== null ? (answer as { members?: unknown }).members : undefined;
  if (!Array.isArray(members)) return [];
  const out: string[] = [];
  for (const m of members) {
    const urls = typeof m === 'object' && m !== null ? (m as { clientURLs?: unknown }).clientURLs : undefined;
    if (!Array.isArray(urls)) continue;
    for (const u of urls) if (typeof u === 'string' && u !== '' && !out.includes(u)) out.push(u);
  }
  return out;
}

/** Where an endpoint points: the same for `127.0.0.1:2379` and `http://127.0.0.1:2379`. */
export interface Addressed {
  readonly https: boolean;
  readonly hostname: string;
  readonly port: number;
}

export const addressOf = (e: Addressed): string => `${e.https ? 'https' : 'http'}://${e.hostname}:${e.port}`;

/** `first` followed by what of `rest` it lacks (by address): the endpoints to ask for the member list. */
export function unionByAddress<T extends Addressed>(first: readonly T[], rest: readonly T[]): T[] {
  const seen = new Set(first.map(addressOf));
  return [...first, ...rest.filter((e) => !seen.has(addressOf(e)) && seen.add(addressOf(e)))];
}

/**
 * The order to use a new list in: the endpoint in use stays first when the list still has it (as Patroni keeps its
 * base URI), the others shuffled (`random` in [0, 1)) so that the members of a cluster spread over etcd.
 */
export function orderedEndpoints(
  urls: readonly string[],
  current: string | undefined,
  random: () => number,
): string[] {
  const rest = urls.filter((u) => u !== current);
  for (let i = rest.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [rest[i], rest[j]] = [rest[j]!, rest[i]!];
  }
  return current !== undefined && urls.includes(current) ? [current, ...rest] : rest;
}

/** The lifetime of a learnt list for a DCS ttl, ms (Patroni: ttl x 10 seconds). */
export const membersLifetimeMs = (ttlSeconds: number): number => Math.max(1, ttlSeconds) * 10_000;
