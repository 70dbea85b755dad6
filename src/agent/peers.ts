/**
 * Probing other members during a leader race: `GET /patroni` with a 2 s timeout, no retries, all in parallel
 * (Patroni's `fetch_nodes_statuses`), each answer distilled into the HA core's `PeerStatus`.
 *
 * The api_url comes from the DCS, so the probe trusts it no more than it must: HTTPS peers are verified against the
 * configured CA (Patroni's request.py: `ctl.cacert`, else `restapi.cafile`; `ctl.insecure` turns it off), the
 * member's own certificate is presented (so `verify_client: required` members still see each other), no credentials
 * are sent (GET /patroni needs none), at most `MAX_PROBE_BYTES` of an answer are read, and the log gets an excerpt.
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { endpointUrl } from '../api/client.js';
import type { AgentConfig } from '../config/agent-config.js';
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

export const PROBE_TIMEOUT_MS = 2_000;
/** A status document is about 1 KiB; anything much larger is not one. */
export const MAX_PROBE_BYTES = 64 * 1024;
const LOG_EXCERPT_CHARS = 2_000;

/** TLS settings of the probes (Patroni's `PatroniRequest.reload_config`). */
export interface ProbeTls {
  readonly cacert?: string;
  readonly certfile?: string;
  readonly keyfile?: string;
  readonly keyfilePassword?: string;
  /** `ctl.insecure`: skip verifying the peer's certificate. */
  readonly insecure: boolean;
}

const strAt = (section: unknown, key: string): string | undefined => {
  if (typeof section !== 'object' || section === null) return undefined;
  const v = (section as Record<string, unknown>)[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
};

/** `ctl` settings first, then the member's own `restapi` ones (its certificate doubles as a client certificate). */
export function probeTlsFor(config: AgentConfig): ProbeTls {
  const ctl = (config.raw as Record<string, unknown>)['ctl'];
  const r = config.restapi;
  const ctlCert = strAt(ctl, 'certfile');
  const insecure =
    typeof ctl === 'object' && ctl !== null && (ctl as Record<string, unknown>)['insecure'] === true;
  const certfile = ctlCert ?? r.certfile;
  const keyfile = ctlCert ? strAt(ctl, 'keyfile') : r.keyfile;
  const keyfilePassword = ctlCert ? strAt(ctl, 'keyfile_password') : r.keyfilePassword;
  const cacert = strAt(ctl, 'cacert') ?? r.cafile;
  return {
    insecure,
    ...(cacert ? { cacert } : {}),
    ...(certfile ? { certfile } : {}),
    ...(keyfile ? { keyfile } : {}),
    ...(keyfilePassword ? { keyfilePassword } : {}),
  };
}

/** A bounded excerpt of an answer for the log. */
export function excerpt(text: string, limit = LOG_EXCERPT_CHARS): string {
  // Control characters from a peer (a newline above all) must not forge log lines.
  let flat = '';
  for (const ch of text.slice(0, limit)) {
    const c = ch.charCodeAt(0);
    flat += (c < 0x20 && c !== 0x09) || c === 0x7f ? '?' : ch;
  }
  return text.length <= limit ? flat : `${flat}... (${text.length} characters)`;
}

function tlsRequestOptions(t: ProbeTls): https.RequestOptions {
  return {
    rejectUnauthorized: !t.insecure,
    ...(t.cacert ? { ca: readFileSync(t.cacert) } : {}),
    ...(t.certfile ? { cert: readFileSync(t.certfile), key: readFileSync(t.keyfile ?? t.certfile) } : {}),
    ...(t.keyfilePassword ? { passphrase: t.keyfilePassword } : {}),
  };
}

/** One `GET /patroni`: the body (at most `MAX_PROBE_BYTES`) of a 200 answer. */
export function fetchStatus(apiUrl: string, tls: ProbeTls, timeoutMs = PROBE_TIMEOUT_MS): Promise<string> {
  const url = new URL(endpointUrl(apiUrl, 'patroni'));
  const secure = url.protocol === 'https:';
  if (!secure && url.protocol !== 'http:')
    return Promise.reject(new Error(`unsupported scheme ${url.protocol}`));
  return new Promise<string>((resolve, reject) => {
    const options: https.RequestOptions = {
      method: 'GET',
      headers: { 'user-agent': 'pgwarden' },
      agent: false,
      ...(secure ? tlsRequestOptions(tls) : {}),
    };
    const req = (secure ? https : http).request(url, options);
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const fail = (e: Error): void => {
      clearTimeout(timer);
      reject(e);
    };
    req.on('error', fail);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_PROBE_BYTES) req.destroy(new Error(`answer larger than ${MAX_PROBE_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('error', fail);
      res.on('end', () => {
        clearTimeout(timer);
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode === 200) resolve(body);
        else reject(new Error(`HTTP ${res.statusCode ?? 0}: ${excerpt(body, 200)}`));
      });
    });
    req.end();
  });
}

/** `tls` is read on every probe, so a reload changes what the next probe uses. */
export function createProber(
  tls: () => ProbeTls,
  log: { warning(text: string): void; info(text: string): void },
): PeerProber {
  return async (members) => {
    const settings = tls();
    const results = await Promise.all(
      members.map(async (m): Promise<[string, PeerStatus]> => {
        try {
          const body = await fetchStatus(m.apiUrl, settings);
          log.info(`Got response from ${m.name} ${m.apiUrl}: ${excerpt(body)}`);
          const doc = JSON.parse(body) as unknown;
          if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return [m.name, UNREACHABLE];
          return [m.name, peerStatusFromDocument(doc as JsonObject)];
        } catch (e) {
          log.warning(`Request failed to ${m.name}: GET ${m.apiUrl} (${excerpt(errorText(e), 500)})`);
          return [m.name, UNREACHABLE];
        }
      }),
    );
    return new Map(results);
  };
}
