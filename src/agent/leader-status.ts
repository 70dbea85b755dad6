/**
 * The `status` key as a Patroni 4.1.4 leader writes it (dcs `update_leader` / `write_status`): `optime`, the slot
 * positions under `slots` (the member and permanent slots on the primary, a physical one at its restart_lsn, a
 * logical one at its confirmed_flush_lsn, and our own name at the optime: PostgreSQL 11+; with `member_slots_ttl`
 * 0 only the permanent ones, src/model/slot-config.ts `publishedSlots`), and `retain_slots`, the member slot names
 * (permanent physical slots left out) seen in `slots` during the last `member_slots_ttl` seconds, sorted.
 *
 * A write without slots (the optime after a clean shutdown) keeps the previous `slots` and `retain_slots`, as
 * `write_status` does. Pure apart from the memory it keeps between writes; the caller brings the clock.
 */
import type { Cluster } from '../model/cluster.js';
import type { Lsn } from '../model/lsn.js';
import { pyJson } from '../model/pyjson.js';
import { pyBool } from '../model/python.js';

export interface LeaderStatusInput {
  readonly optime: Lsn;
  /** Our own slot name (slot_name_from_member_name of our member name). */
  readonly ownSlot: string;
  /** The positions of the slots on the primary to publish (member and permanent slots), in pg_replication_slots order. */
  readonly positions: Readonly<Record<string, Lsn>>;
  /** Permanent physical slot names: never in `retain_slots`. */
  readonly permanentPhysical: ReadonlySet<string>;
  /** `member_slots_ttl` in seconds. */
  readonly memberSlotsTtl: number;
  readonly cluster: Cluster;
  readonly self: string;
  readonly slotName: (member: string) => string;
  /** Epoch seconds. */
  readonly now: number;
  /** False before PostgreSQL 11 (no slot advancing): no `slots`, no `retain_slots`. */
  readonly canAdvanceSlots: boolean;
}

export class LeaderStatus {
  private readonly seen = new Map<string, number>();
  private last: { slots?: Record<string, Lsn>; retain?: string[] } = {};

  /** The `status` value (compact JSON) of a leader cycle. */
  value(i: LeaderStatusInput): string {
    let slots: Record<string, Lsn> | undefined;
    if (i.canAdvanceSlots) {
      slots = { ...i.positions };
      // Our own name at the optime, unless filtered out with member_slots_ttl 0 (maybe_filter_permanent_slots).
      if (i.memberSlotsTtl > 0 || i.permanentPhysical.has(i.ownSlot)) slots[i.ownSlot] = i.optime;
    }
    const retain = this.retainSlots(i, slots);
    this.last = {
      ...(slots && Object.keys(slots).length > 0 ? { slots } : {}),
      ...(retain ? { retain } : {}),
    };
    return this.encode(i.optime);
  }

  /** The optime after a clean shutdown, with the slots of the last write. */
  shutdownValue(optime: Lsn): string {
    return this.encode(optime);
  }

  private encode(optime: Lsn): string {
    return pyJson(
      {
        optime,
        ...(this.last.slots ? { slots: this.last.slots } : {}),
        ...(this.last.retain ? { retain_slots: this.last.retain } : {}),
      },
      true,
    );
  }

  /** dcs `_build_retain_slots`: remember member slots seen in `slots`, forget them `member_slots_ttl` later. */
  private retainSlots(i: LeaderStatusInput, slots: Record<string, Lsn> | undefined): string[] | undefined {
    if (slots && Object.keys(slots).length > 0) {
      const members = new Set<string>();
      for (const m of i.cluster.members)
        if (!pyBool(m.data.tags['nostream'])) members.add(i.slotName(m.name));
      if (!i.cluster.members.some((m) => m.name === i.self)) members.add(i.slotName(i.self));
      for (const name of Object.keys(slots))
        if (members.has(name) && !i.permanentPhysical.has(name)) this.seen.set(name, i.now);
    }
    for (const [name, at] of this.seen) if (at + i.memberSlotsTtl <= i.now) this.seen.delete(name);
    const names = [...this.seen.keys()].sort();
    return names.length > 0 ? names : undefined;
  }
}
