/**
 * `etcd3.srv` / `etcd3.srv_suffix`: the etcd endpoints from DNS SRV records, as Patroni 4.1.4's
 * `_get_machines_cache_from_srv` finds them. The record names are tried in this order, the first that gives
 * endpoints wins and sets the protocol (https for the `-ssl` ones):
 * `_etcd-client-ssl._tcp.<srv>`, `_etcd-client._tcp`, `_etcd-ssl._tcp`, `_etcd._tcp` (client endpoints), then
 * `_etcd-server-ssl._tcp`, `_etcd-server._tcp` (peer endpoints: their `GET /members` lists the members' client
 * URLs). With `srv_suffix` every name gets `-<suffix>` (`_etcd-client-ssl-<suffix>._tcp.<srv>`). When no record
 * answers, the configured `hosts`/`host` are used, as in Patroni; with neither, the DCS cannot be opened.
 */
import { resolveSrv } from 'node:dns/promises';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { DcsError } from '../dcs.js';
import type { Etcd3Target } from '../target.js';

export interface SrvRecord {
  readonly name: string;
  readonly port: number;
}

export interface SrvDeps {
  /** DNS SRV lookup; an empty list (or a throw) when the name has no records. */
  readonly resolveSrv: (name: string) => Promise<readonly SrvRecord[]>;
  /** `GET url` of an etcd peer endpoint, parsed JSON (certificates not verified, as Patroni). */
  readonly getJson: (url: string) => Promise<unknown>;
}

const KINDS = ['-client-ssl', '-client', '-ssl', '', '-server-ssl', '-server'];

function url(protocol: string, host: string, port: number, path = ''): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `${protocol}://${h}:${port}${path}`;
}

function clientUrls(members: unknown): string[] {
  const list = Array.isArray(members)
    ? members
    : typeof members === 'object' &&
        members !== null &&
        Array.isArray((members as { members?: unknown }).members)
      ? (members as { members: unknown[] }).members
      : [];
  return list.flatMap((m: unknown) => {
    const urls = typeof m === 'object' && m !== null ? (m as { clientURLs?: unknown }).clientURLs : undefined;
    return Array.isArray(urls) ? urls.filter((u): u is string => typeof u === 'string') : [];
  });
}

/** The endpoints and protocol the SRV records of `srv` give, or undefined when none does. */
export async function discoverEtcdSrv(
  srv: string,
  suffix: string | undefined,
  deps: SrvDeps,
): Promise<{ readonly endpoints: readonly string[]; readonly protocol: 'http' | 'https' } | undefined> {
  for (const kind of KINDS) {
    const r = suffix ? `${kind}-${suffix}` : kind;
    const protocol = r.includes('-ssl') ? 'https' : 'http';
    const server = r.includes('-server');
    let records: readonly SrvRecord[];
    try {
      records = await deps.resolveSrv(`_etcd${r}._tcp.${srv}`);
    } catch {
      records = [];
    }
    const found: string[] = [];
    for (const rec of records) {
      const host = rec.name.replace(/\.$/, '');
      if (!server) {
        found.push(url(protocol, host, rec.port));
        continue;
      }
      try {
        // The first peer that answers lists the members.
        found.push(...clientUrls(await deps.getJson(url(protocol, host, rec.port, '/members'))));
        break;
      } catch {
        /* the next peer */
      }
    }
    if (found.length > 0) return { endpoints: [...new Set(found)], protocol };
  }
  return undefined;
}

function getJson(target: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const get = target.startsWith('https:') ? httpsGet : httpGet;
    const req = get(target, { timeout: 3000, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        if ((res.statusCode ?? 500) >= 400) reject(new Error(`status ${res.statusCode}`));
        else {
          try {
            resolve(JSON.parse(body) as unknown);
          } catch (e) {
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export const SYSTEM_SRV: SrvDeps = { resolveSrv: (name) => resolveSrv(name), getJson };

/** The target with its endpoints found through SRV when `srv` is set (falling back to its hosts). */
export async function withSrvEndpoints(
  target: Etcd3Target,
  deps: SrvDeps = SYSTEM_SRV,
): Promise<Etcd3Target> {
  if (target.srv === undefined) return target;
  const found = await discoverEtcdSrv(target.srv, target.srvSuffix, deps);
  if (found !== undefined) return { ...target, hosts: found.endpoints, protocol: found.protocol };
  if (target.hosts.length > 0) return target;
  throw new DcsError(
    `etcd3.srv: no DNS SRV record of ${target.srv} names an etcd endpoint (_etcd-client-ssl._tcp.${target.srv} and the others), and no etcd3.hosts to fall back on`,
  );
}
