/**
 * Probing other members during a leader race: `GET /patroni` with a 2 s timeout, no retries, all in parallel
 * (Patroni's `fetch_nodes_statuses`), each answer distilled into the HA core's `PeerStatus`.
 */
import { requestMember, type RestClientOptions } from '../api/client.js';
import { statusFromJson } from '../api/status.js';
import type { PeerStatus } from '../ha/snapshot.js';
import type { PeerProber } from '../ha/loop.js';
import type { JsonObject } from '../model/cluster.js';
import { tagFailoverPriority, tagNoFailover } from '../model/tags.js';
import { errorText } from '../model/text.js';

export const UNREACHABLE: PeerStatus = Object.freeze({
  reachable: false,
  isPrimary: false,
  walPosition: 0n,
  timeline: 0,
  nofailover: false,
  failoverPriority: 1,
  watchdogFailed: false,
});

/**
 * Patroni's `_MemberStatus.from_api_response`: a document without `xlog` counts as unreachable; a primary is one
 * whose `xlog` has a `location`; a replica's WAL position is max(received, replayed).
 */
export function peerStatusFromDocument(doc: JsonObject): PeerStatus {
  const st = statusFromJson(doc, {
    at: 0,
    postmasterRunning: true,
    standbyCluster: false,
    nextRunAt: 0,
    ttl: 0,
    maximumLagOnFailover: 0,
  });
  const pg = st.postgres;
  if (!pg) return UNREACHABLE;
  const isPrimary = pg.xlog.kind === 'primary' && pg.xlog.location > 0n;
  let wal = 0n;
  if (pg.xlog.kind === 'replica') {
    wal =
      pg.xlog.receivedLocation > pg.xlog.replayedLocation
        ? pg.xlog.receivedLocation
        : pg.xlog.replayedLocation;
  }
  return {
    reachable: true,
    isPrimary,
    walPosition: wal,
    timeline: pg.timeline ?? 0,
    nofailover: tagNoFailover(st.tags),
    failoverPriority: tagFailoverPriority(st.tags),
    watchdogFailed: st.watchdogFailed,
  };
}

export function createProber(
  options: Omit<RestClientOptions, 'timeoutMs'>,
  log: { warning(text: string): void; info(text: string): void },
): PeerProber {
  return async (members) => {
    const results = await Promise.all(
      members.map(async (m): Promise<[string, PeerStatus]> => {
        try {
          const res = await requestMember(m.apiUrl, 'patroni', { ...options, timeoutMs: 2000 });
          log.info(`Got response from ${m.name} ${m.apiUrl}: ${res.body}`);
          const doc = JSON.parse(res.body) as unknown;
          if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return [m.name, UNREACHABLE];
          return [m.name, peerStatusFromDocument(doc as JsonObject)];
        } catch (e) {
          log.warning(`Request failed to ${m.name}: GET ${m.apiUrl} (${errorText(e)})`);
          return [m.name, UNREACHABLE];
        }
      }),
    );
    return new Map(results);
  };
}
