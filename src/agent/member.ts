/**
 * The member key value exactly as Patroni 4.1.4's `touch_member` writes it (ha.py `touch_member`): field order
 * conn_url, api_url, state, role, version, [proxy_url], [checkpoint_after_promote], [tags], [pending_restart,
 * pending_restart_reason], [xlog_location, [replay_lsn], [receive_lsn], [replication_state], timeline],
 * [scheduled_restart], [pause]. Roles use 4.x names (`primary`, not `master`). Pure.
 *
 * A 4.1.4 node publishes the same in a cluster of 3.0.x members (rolling upgrade); pgwarden does likewise and reads
 * 3.0.x values (`master`) from the others (src/dcs/codec.ts).
 */
import type { JsonObject } from '../model/cluster.js';
import type { Lsn } from '../model/lsn.js';
import { pyJson } from '../model/pyjson.js';

/** The Patroni version whose wire format pgwarden speaks; peers and patronictl infer features from it. */
export const SPOKEN_PATRONI_VERSION = '4.1.4';

export interface MemberWal {
  /** `xlog_location`: a primary's flush LSN, a standby's max(receive, replay). */
  readonly location: Lsn;
  readonly timeline?: number;
  /** Standby only (4.1+): `replay_lsn`, `receive_lsn`, and `replication_state` (3.0.4+). */
  readonly replayLsn?: Lsn;
  readonly receiveLsn?: Lsn;
  readonly replicationState?: string;
}

export interface MemberInput {
  readonly connUrl: string;
  readonly apiUrl: string;
  readonly proxyUrl?: string;
  readonly state: string;
  /** `primary`, `replica`, `standby_leader`, `uninitialized`, `demoted`, ...; 3.x `master` is published as `primary`. */
  readonly role: string;
  /** Published tags (falsy built-in tags already dropped). */
  readonly tags: JsonObject;
  /** We hold the lock and the post-promote CHECKPOINT has not finished yet. */
  readonly checkpointAfterPromotePending: boolean;
  readonly pendingRestart: boolean;
  /** Why a restart is pending (4.0+): parameter name -> old and new value. */
  readonly pendingRestartReason?: Readonly<Record<string, { old_value: string; new_value: string }>>;
  /** Only while PostgreSQL runs and no long action other than promote is in progress. */
  readonly wal?: MemberWal;
  /** A restart scheduled over POST /restart (its filters and `schedule`). */
  readonly scheduledRestart?: JsonObject;
  /** The cluster is paused (`pause: true` in `config`). */
  readonly pause?: boolean;
}

/** 4.x role names: Patroni 4.0 renamed `master` to `primary` (and `demoted`/`promoted` stay as they are). */
export function wireRole(role: string): string {
  return role === 'master' ? 'primary' : role;
}

export function memberRecord(m: MemberInput): Record<string, unknown> {
  const out: Record<string, unknown> = {
    conn_url: m.connUrl,
    api_url: m.apiUrl,
    state: m.state,
    role: wireRole(m.role),
    version: SPOKEN_PATRONI_VERSION,
  };
  if (m.proxyUrl) out['proxy_url'] = m.proxyUrl;
  if (m.checkpointAfterPromotePending) out['checkpoint_after_promote'] = false;
  if (Object.keys(m.tags).length > 0) out['tags'] = m.tags;
  if (m.pendingRestart) {
    out['pending_restart'] = true;
    out['pending_restart_reason'] = m.pendingRestartReason ?? {};
  }
  if (m.wal) {
    out['xlog_location'] = m.wal.location;
    // Patroni skips a zero LSN (`if replay_lsn:`).
    if (m.wal.replayLsn) out['replay_lsn'] = m.wal.replayLsn;
    if (m.wal.receiveLsn) out['receive_lsn'] = m.wal.receiveLsn;
    if (m.wal.replicationState) out['replication_state'] = m.wal.replicationState;
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
