/**
 * The physical slots of the members that will stream from us, created just before a promotion so that no replica
 * finds its slot missing on the new primary. The housekeeping of every cycle (member, cascading and permanent
 * slots, what is dropped) is src/postgres/slots-sync.ts, planned by src/model/slot-plan.ts.
 */
import type { Cluster } from '../model/cluster.js';
import { tagNoStream } from '../model/tags.js';
import { slotNameForMember } from './config-writer.js';
import type { PgLog } from './ports.js';
import { createPhysicalSlot, replicationSlots, type PgSession, type SlotRow } from './queries.js';

/** The slots the other members stream from when `self` is the primary (those replicating from it). */
export function memberSlotNames(cluster: Cluster, self: string): ReadonlySet<string> {
  return new Set(
    cluster.members
      // A `nostream` member does not stream: no slot for it (dcs `_get_members_slots`).
      .filter((m) => m.name !== self && !tagNoStream(m.data.tags))
      .filter((m) => {
        const rf = m.data.tags['replicatefrom'];
        return typeof rf !== 'string' || rf === self;
      })
      .map((m) => slotNameForMember(m.name)),
  );
}

export class MemberSlots {
  constructor(
    private readonly self: () => string,
    private readonly log: PgLog,
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
}
