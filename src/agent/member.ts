/**
 * The member key value exactly as Patroni 3.0.2's `touch_member` writes it (ha.py `touch_member`): field order
 * conn_url, api_url, state, role, version, [proxy_url], [checkpoint_after_promote], [tags], [pending_restart],
 * [xlog_location, timeline]. Pure.
 */
import type { JsonObject } from '../model/cluster.js';
import type { Lsn } from '../model/lsn.js';
import { pyJson } from '../model/pyjson.js';

/** The Patroni version whose wire format pgwarden speaks; peers use it for compatibility decisions. */
export const SPOKEN_PATRONI_VERSION = '3.0.2';

export interface MemberInput {
  readonly connUrl: string;
  readonly apiUrl: string;
  readonly proxyUrl?: string;
  readonly state: string;
  /** `master`, `replica`, `uninitialized`, `demoted`, ... (3.x spelling). */
  readonly role: string;
  /** Published tags (falsy built-in tags already dropped). */
  readonly tags: JsonObject;
  /** We hold the lock and the post-promote CHECKPOINT has not finished yet. */
  readonly checkpointAfterPromotePending: boolean;
  readonly pendingRestart: boolean;
  /** Only while PostgreSQL runs and no long action other than promote is in progress. */
  readonly wal?: { readonly location: Lsn; readonly timeline?: number };
  /** A restart scheduled over POST /restart (its filters and `schedule`). */
  readonly scheduledRestart?: JsonObject;
  /** The cluster is paused (`pause: true` in `config`). */
  readonly pause?: boolean;
}

export function memberRecord(m: MemberInput): Record<string, unknown> {
  const out: Record<string, unknown> = {
    conn_url: m.connUrl,
    api_url: m.apiUrl,
    state: m.state,
    role: m.role,
    version: SPOKEN_PATRONI_VERSION,
  };
  if (m.proxyUrl) out['proxy_url'] = m.proxyUrl;
  if (m.checkpointAfterPromotePending) out['checkpoint_after_promote'] = false;
  if (Object.keys(m.tags).length > 0) out['tags'] = m.tags;
  if (m.pendingRestart) out['pending_restart'] = true;
  if (m.wal) {
    out['xlog_location'] = m.wal.location;
    if (m.wal.timeline) out['timeline'] = m.wal.timeline;
  }
  if (m.scheduledRestart) out['scheduled_restart'] = m.scheduledRestart;
  if (m.pause) out['pause'] = true;
  return out;
}

/** Compact JSON (Patroni's `separators=(',', ':')`). */
export function memberValue(m: MemberInput): string {
  return pyJson(memberRecord(m), true);
}
