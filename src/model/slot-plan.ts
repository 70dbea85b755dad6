/**
 * What one HA cycle does to the replication slots of the local PostgreSQL (Patroni 4.1.4's
 * `SlotsHandler.sync_replication_slots`), as a list of actions computed from the slots the node should have
 * (src/model/slot-config.ts) and the slots pg_replication_slots shows (temporary slots and, from PostgreSQL 17,
 * failover slots left out):
 *
 * 1. a slot nobody wants is dropped, unless `ignore_slots` matches it or the cluster is paused; so is a wanted slot
 *    whose WAL is lost (`wal_status = lost`, PostgreSQL 13+);
 * 2. a wanted slot of another kind (physical/logical, database, plugin) is dropped, to be created again;
 * 3. physical slots: an inactive one holding an `xmin` where nobody should stream from it is dropped and created
 *    again, a missing one is created, one nobody streams from is advanced to the position the status key (or a
 *    cascading member) reports; one without restart_lsn (made by someone else) is dropped;
 * 4. logical slots: created on the primary; on a replica advanced towards the primary's published position (never
 *    past our replay position), or copied from the primary when missing or when the WAL from its restart_lsn is no
 *    longer in the replica's pg_wal (it could not decode after a promotion).
 *
 * Pure.
 */
import type { Lsn } from './lsn.js';
import { slotIgnored, type DesiredSlot, type DesiredSlots, type IgnoreMatcher } from './slot-config.js';
import { walHeld, type LocalWal } from './slot-readiness.js';

export interface ExistingSlot {
  readonly name: string;
  /** `physical` or `logical`. */
  readonly type: string;
  readonly plugin?: string | undefined;
  readonly database?: string | undefined;
  readonly active: boolean;
  /** Physical: the xmin hot_standby_feedback left (text); undefined when null. */
  readonly xmin?: string | undefined;
  readonly restartLsn?: Lsn | undefined;
  readonly confirmedFlushLsn?: Lsn | undefined;
  /** Logical: catalog_xmin (a transaction id); undefined when null. */
  readonly catalogXmin?: number | undefined;
  /** PostgreSQL 13+. */
  readonly walStatus?: string | undefined;
}

export type DropReason = 'unknown' | 'lost' | 'changed' | 'xmin' | 'no_restart_lsn';

export type SlotAction =
  | { readonly kind: 'drop'; readonly name: string; readonly why: DropReason }
  | { readonly kind: 'create_physical'; readonly name: string }
  | { readonly kind: 'advance_physical'; readonly name: string; readonly lsn: Lsn }
  | {
      readonly kind: 'create_logical';
      readonly name: string;
      readonly database: string;
      readonly plugin: string;
    }
  | { readonly kind: 'advance_logical'; readonly name: string; readonly database: string; readonly lsn: Lsn }
  | { readonly kind: 'copy_logical'; readonly name: string };

export interface SlotPlanInput {
  readonly desired: DesiredSlots;
  readonly existing: readonly ExistingSlot[];
  /** PostgreSQL runs as a primary (not in recovery). */
  readonly isPrimary: boolean;
  /** Paused cluster: no slot is dropped as unknown or lost. */
  readonly paused: boolean;
  readonly ignore: readonly IgnoreMatcher[];
  readonly canAdvanceSlots: boolean;
  readonly majorVersion: number;
  /**
   * Drop inactive physical slots holding an xmin where nobody should stream (the cluster has a leader, and it is
   * another node or we run as the primary).
   */
  readonly cleanInactivePhysical: boolean;
  /** A replica's replay position: logical slots are never advanced past it. */
  readonly replayLsn?: Lsn | undefined;
  /**
   * A replica's pg_wal (src/model/slot-readiness.ts): a logical slot whose restart_lsn is older than the oldest WAL
   * it holds can never decode, and is copied from the primary again. Undefined: not known, not checked.
   */
  readonly wal?: LocalWal | undefined;
}

/** slots.py `compare_slots`: same kind, and for a logical slot the same database and plugin. */
export function sameSlotKind(want: DesiredSlot, have: ExistingSlot): boolean {
  return (
    want.type === have.type &&
    (want.type === 'physical' || (want.database === have.database && want.plugin === have.plugin))
  );
}

function dropUnknownAndLost(i: SlotPlanInput, have: Map<string, ExistingSlot>, out: SlotAction[]): void {
  for (const e of i.existing) {
    const wanted = i.desired.has(e.name);
    const lost = wanted && i.majorVersion >= 130000 && e.walStatus === 'lost';
    if (wanted && !lost) continue;
    if (i.paused) continue;
    if (slotIgnored(i.ignore, e)) continue;
    out.push({ kind: 'drop', name: e.name, why: lost ? 'lost' : 'unknown' });
    have.delete(e.name);
  }
  for (const [name, want] of i.desired) {
    const e = have.get(name);
    if (e && !sameSlotKind(want, e)) {
      out.push({ kind: 'drop', name, why: 'changed' });
      have.delete(name);
    }
  }
}

function physicalSlots(i: SlotPlanInput, have: Map<string, ExistingSlot>, out: SlotAction[]): void {
  for (const [name, want] of i.desired) {
    if (want.type !== 'physical') continue;
    let e = have.get(name);
    if (i.canAdvanceSlots && e?.type === 'physical' && i.cleanInactivePhysical) {
      if (want.expectedActive === false && e.xmin) {
        out.push({ kind: 'drop', name, why: 'xmin' });
        have.delete(name);
        e = undefined;
      }
    }
    if (!e) {
      out.push({ kind: 'create_physical', name });
      continue;
    }
    if (!i.canAdvanceSlots || e.type !== 'physical' || want.expectedActive === true || e.xmin) continue;
    if (!e.restartLsn) {
      out.push({ kind: 'drop', name, why: 'no_restart_lsn' });
      continue;
    }
    if (want.lsn !== undefined && want.lsn > e.restartLsn)
      out.push({ kind: 'advance_physical', name, lsn: want.lsn });
  }
}

function logicalSlots(i: SlotPlanInput, have: Map<string, ExistingSlot>, out: SlotAction[]): void {
  for (const [name, want] of i.desired) {
    if (want.type !== 'logical') continue;
    const database = want.database ?? '';
    const e = have.get(name);
    if (i.isPrimary) {
      if (!e) out.push({ kind: 'create_logical', name, database, plugin: want.plugin ?? '' });
      continue;
    }
    if (e && sameSlotKind(want, e)) {
      if (!walHeld(e.restartLsn, i.wal)) {
        out.push({ kind: 'copy_logical', name });
        continue;
      }
      if (want.lsn === undefined || i.replayLsn === undefined) continue;
      const target = want.lsn < i.replayLsn ? want.lsn : i.replayLsn;
      if (e.confirmedFlushLsn !== undefined && e.confirmedFlushLsn < target)
        out.push({ kind: 'advance_logical', name, database, lsn: target });
    } else if (!e && want.lsn !== undefined) {
      // Only a slot the primary reports a position for is copied from it.
      out.push({ kind: 'copy_logical', name });
    }
  }
}

/** The actions of one cycle, in order: drops, physical slots, logical slots. */
export function planSlotSync(i: SlotPlanInput): SlotAction[] {
  const have = new Map(i.existing.map((e) => [e.name, e]));
  const out: SlotAction[] = [];
  dropUnknownAndLost(i, have, out);
  physicalSlots(i, have, out);
  logicalSlots(i, have, out);
  return out;
}

/**
 * slots.py `process_permanent_slots`: the positions of the wanted slots that exist as wanted (a physical slot's
 * restart_lsn, a logical slot's confirmed_flush_lsn), for the leader to publish in the status key.
 */
export function slotPositions(desired: DesiredSlots, existing: readonly ExistingSlot[]): Record<string, Lsn> {
  const out: Record<string, Lsn> = {};
  for (const e of existing) {
    const want = desired.get(e.name);
    if (!want || !sameSlotKind(want, e)) continue;
    const lsn = e.type === 'logical' ? e.confirmedFlushLsn : e.restartLsn;
    if (lsn !== undefined) out[e.name] = lsn;
  }
  return out;
}
