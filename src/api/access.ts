/**
 * Access checks of unsafe endpoints, in Patroni's order (api.py `check_access`): the source address against
 * `restapi.allowlist` (and the members' api_url hosts with `allowlist_include_members`) -> 403 `Access is denied`;
 * a missing client certificate when `verify_client` is set -> 403; Basic auth -> 401 with WWW-Authenticate.
 */
import { timingSafeEqual } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ApiReply, ApiSecurity } from './types.js';

/** Name resolution of allowlist entries and member hosts never holds a request longer than this. */
const RESOLVE_TIMEOUT_MS = 2_000;

/** `::ffff:10.0.0.1` (a v4 client on a dual-stack listener) is 10.0.0.1. */
export function plainAddress(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m?.[1] ?? address;
}

async function resolveHost(host: string): Promise<readonly string[]> {
  if (isIP(host)) return [plainAddress(host)];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<readonly string[]>((resolve) => {
    timer = setTimeout(() => resolve([]), RESOLVE_TIMEOUT_MS);
  });
  try {
    const found = lookup(host, { all: true }).then(
      (rows) => rows.map((r) => plainAddress(r.address)),
      () => [],
    );
    return await Promise.race([found, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function addAddress(list: BlockList, address: string): void {
  list.addAddress(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}

/** Python `ip_network(entry, strict=False)`; undefined when the entry is not a network. */
function addNetwork(list: BlockList, entry: string): boolean {
  const [addr = '', bits = ''] = entry.split('/');
  const family = isIP(addr);
  const prefix = Number(bits);
  if (family === 0 || !/^\d+$/.test(bits) || prefix > (family === 4 ? 32 : 128)) return false;
  list.addSubnet(plainAddress(addr), prefix, family === 6 ? 'ipv6' : 'ipv4');
  return true;
}

async function allowlistOf(entries: readonly string[], warn: (text: string) => void): Promise<BlockList> {
  const list = new BlockList();
  for (const entry of entries) {
    if (entry.includes('/')) {
      if (!addNetwork(list, entry)) warn(`Invalid value "${entry}" in the allowlist`);
      continue;
    }
    const addresses = await resolveHost(entry);
    if (addresses.length === 0) warn(`Failed to resolve ${entry} in the allowlist`);
    for (const a of addresses) addAddress(list, a);
  }
  return list;
}

function hostOfUrl(url: string): string | undefined {
  try {
    const host = new URL(url).hostname;
    return host.startsWith('[') ? host.slice(1, -1) : host || undefined;
  } catch {
    return undefined;
  }
}

export interface AccessRequest {
  readonly remoteAddress: string;
  readonly authorization: string | undefined;
  readonly socket: unknown;
  /** False for POST /failsafe (Patroni's `allowlist_check_members=False`). */
  readonly checkMembers: boolean;
}

/** The access policy of one `restapi` configuration (a reload builds a new one). */
export class AccessPolicy {
  private allowlist: Promise<BlockList> | undefined;
  private readonly authKey: Buffer | undefined;

  constructor(
    private readonly security: ApiSecurity,
    /** The cluster members' api_url values (from the cached DCS view). */
    private readonly memberApiUrls: () => readonly string[],
    private readonly warn: (text: string) => void = () => undefined,
  ) {
    const a = security.auth;
    this.authKey = a ? Buffer.from(Buffer.from(`${a.username}:${a.password}`).toString('base64')) : undefined;
  }

  /** The refusal to send, or undefined when the request may proceed. */
  async check(r: AccessRequest): Promise<ApiReply | undefined> {
    if (!(await this.addressAllowed(r.remoteAddress, r.checkMembers)))
      return { code: 403, body: 'Access is denied' };
    const verify = this.security.tls?.verifyClient ?? 'none';
    if (this.security.tls && verify !== 'none' && !hasClientCertificate(r.socket)) {
      return { code: 403, body: 'client certificate required' };
    }
    const reason = this.authFailure(r.authorization);
    if (reason) return { code: 401, body: reason, headers: { 'WWW-Authenticate': 'Basic realm="Patroni"' } };
    return undefined;
  }

  private async addressAllowed(remoteAddress: string, checkMembers: boolean): Promise<boolean> {
    const entries = this.security.allowlist ?? [];
    const members = checkMembers && this.security.allowlistIncludeMembers === true;
    if (entries.length === 0 && !members) return true;
    const address = plainAddress(remoteAddress);
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (isIP(address) === 0) return false;
    this.allowlist ??= allowlistOf(entries, this.warn);
    if ((await this.allowlist).check(address, family)) return true;
    if (!members) return false;
    const hosts = this.memberApiUrls().flatMap((u) => hostOfUrl(u) ?? []);
    const resolved = await Promise.all(hosts.map(resolveHost));
    return resolved.some((addresses) => addresses.includes(address));
  }

  private authFailure(header: string | undefined): string | undefined {
    if (!this.authKey) return undefined;
    if (header === undefined) return 'no auth header received';
    if (!header.startsWith('Basic ')) return 'not authenticated';
    const given = Buffer.from(header.slice(6), 'utf8');
    return given.length === this.authKey.length && timingSafeEqual(given, this.authKey)
      ? undefined
      : 'not authenticated';
  }
}

function hasClientCertificate(socket: unknown): boolean {
  const t = socket as Partial<TLSSocket>;
  if (typeof t.getPeerCertificate !== 'function' || t.authorized !== true) return false;
  return Object.keys(t.getPeerCertificate()).length > 0;
}
