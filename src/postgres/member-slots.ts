/**
 * The physical replication slots a primary keeps for the other members (Patroni's SlotsHandler, physical slots
 * only): one per member that streams from us, created before a promotion and on every leader cycle; unknown
 * inactive physical slots are dropped. A replica keeps the slots of the members that cascade from it.
 */
import type { Cluster } from '../model/cluster.js';
import { slotNameForMember } from './config-writer.js';
import type { PgLog } from './ports.js';
import { createPhysicalSlot, dropSlot, replicationSlots, type PgSession, type SlotRow } from './queries.js';

/** The slots the other members stream from when `self` is the primary (those replicating from it). */
export function memberSlotNames(cluster: Cluster, self: string): ReadonlySet<string> {
  return new Set(
    cluster.members
      .filter((m) => m.name !== self)
      .filter((m) => {
        const rf = m.data.tags['replicatefrom'];
        return typeof rf !== 'string' || rf === self;
      })
      .map((m) => slotNameForMember(m.name)),
  );
}

/**
 * The slots a replica keeps for cascading (Patroni's `_get_members_slots` on a replica, without slot retention):
 * one per member whose `replicatefrom` tag names us, the leader excepted.
 */
export function cascadeSlotNames(cluster: Cluster, self: string): ReadonlySet<string> {
  return new Set(
    cluster.members
      .filter((m) => m.name !== self && m.name !== cluster.leader?.name)
      .filter((m) => m.data.tags['replicatefrom'] === self)
      .map((m) => slotNameForMember(m.name)),
  );
}

export class MemberSlots {
  constructor(
    private readonly self: () => string,
    private readonly log: PgLog,
    /** False while the dynamic configuration names slots pgwarden does not manage yet (config-check.ts). */
    private readonly mayDropUnknown: () => boolean = () => true,
  ) {}

  /** Creates the members' missing slots; returns the slots that existed before. */
  async create(s: PgSession, cluster: Cluster): Promise<readonly SlotRow[]> {
    const existing = await replicationSlots(s);
    for (const name of memberSlotNames(cluster, this.self())) {
      if (existing.some((e) => e.slotName === name)) continue;
      if (await createPhysicalSlot(s, name)) this.log.info(`created physical replication slot ${name}`);
    }
    return existing;
  }

  /** Replica housekeeping: the slots of the members streaming from us exist (created only, never dropped here). */
  async syncCascade(s: PgSession, cluster: Cluster): Promise<void> {
    const wanted = cascadeSlotNames(cluster, this.self());
    if (wanted.size === 0) return;
    const existing = await replicationSlots(s);
    for (const name of wanted) {
      if (existing.some((e) => e.slotName === name)) continue;
      if (await createPhysicalSlot(s, name)) this.log.info(`created physical replication slot ${name}`);
    }
  }

  /** Leader housekeeping: the members' slots exist, unknown inactive physical slots are gone. */
  async sync(s: PgSession, cluster: Cluster): Promise<void> {
    const wanted = memberSlotNames(cluster, this.self());
    const existing = await this.create(s, cluster);
    for (const slot of existing) {
      if (slot.slotType !== 'physical' || wanted.has(slot.slotName) || slot.active) continue;
      if (!this.mayDropUnknown()) continue;
      const r = await dropSlot(s, slot.slotName);
      if (r.dropped) this.log.info(`dropped unknown replication slot '${slot.slotName}'`);
    }
  }
}
