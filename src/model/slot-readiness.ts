/**
 * When a logical slot copied to a replica is safe to use after a failover (Patroni 4.1.4's
 * `SlotsHandler.check_logical_slots_readiness` and `_ready_logical_slots`), plus the WAL it needs:
 *
 * - every copied slot (and, when PostgreSQL starts as a replica, every logical slot it has) waits in a queue;
 * - once the primary's physical slot for this replica has a catalog_xmin (hot_standby_feedback reaches the primary),
 *   the catalog_xmin of the primary's logical slot is remembered for each waiting slot;
 * - a slot is ready when remembered primary logical catalog_xmin <= primary physical catalog_xmin <= the replica's
 *   own copy's catalog_xmin: the catalog rows its decoding needs are held on the primary until this replica releases
 *   them;
 * - and (pgwarden's addition) when the replica's pg_wal still holds the segment of the copy's restart_lsn: a copy
 *   whose restart_lsn is older than the oldest WAL the replica has (a replica cloned after the primary's slot was
 *   created) cannot decode anything after a promotion ("requested WAL segment ... has already been removed").
 *
 * Transaction ids are compared as numbers, as Patroni does. Pure.
 */
import type { Lsn } from './lsn.js';

/** Waiting slots: name -> the primary's logical catalog_xmin, once remembered (undefined before). */
export type ReadinessQueue = ReadonlyMap<string, number | undefined>;

/** What the replica knows of its own copy of a logical slot. */
export interface StandbyLogicalSlot {
  readonly catalogXmin: number | undefined;
  readonly restartLsn: Lsn | undefined;
}

/** The replica's WAL: its segment size and the lowest segment number in pg_wal (any timeline). */
export interface LocalWal {
  readonly segmentSize: bigint;
  readonly oldestSegment: bigint;
}

/** PostgreSQL's slot state file (`ReplicationSlotOnDisk`): magic, then restart_lsn at byte 96 (9.4 and later). */
const SLOT_MAGIC = 0x1051ca1;
const RESTART_LSN_OFFSET = 96;

/** The restart_lsn a slot's `state` file holds (little-endian, as written on x86/ARM); undefined when unreadable. */
export function stateFileRestartLsn(state: Uint8Array): Lsn | undefined {
  if (state.length < RESTART_LSN_OFFSET + 8) return undefined;
  const view = new DataView(state.buffer, state.byteOffset, state.byteLength);
  if (view.getUint32(0, true) !== SLOT_MAGIC) return undefined;
  return view.getBigUint64(RESTART_LSN_OFFSET, true);
}

/** The segment number of a WAL file name (`TTTTTTTTLLLLLLLLSSSSSSSS`, timeline ignored); undefined for other names. */
export function walFileSegment(name: string, segmentSize: bigint): bigint | undefined {
  if (!/^[0-9A-F]{24}$/.test(name) || segmentSize <= 0n) return undefined;
  const log = BigInt(`0x${name.slice(8, 16)}`);
  const seg = BigInt(`0x${name.slice(16, 24)}`);
  return log * (0x100000000n / segmentSize) + seg;
}

/**
 * Whether the replica's pg_wal still has the WAL from `restartLsn` on (segments are removed oldest first, so the
 * oldest one present tells). Unknown WAL (the query failed): true, as Patroni does not look.
 */
export function walHeld(restartLsn: Lsn | undefined, wal: LocalWal | undefined): boolean {
  if (wal === undefined) return true;
  if (restartLsn === undefined) return false;
  return restartLsn / wal.segmentSize >= wal.oldestSegment;
}

/** A replica (re)started: every logical slot it has waits again (Patroni's `schedule()` with the readiness check). */
export function queueAll(names: Iterable<string>): Map<string, number | undefined> {
  return new Map([...names].map((n) => [n, undefined]));
}

/**
 * `_update_pending_logical_slot_primary` with a valid physical catalog_xmin: remembers the primary's logical
 * catalog_xmin for the slots still waiting for one (`fromPrimary`: what the primary answered for them).
 */
export function rememberPrimaryXmins(
  queue: ReadinessQueue,
  fromPrimary: Readonly<Record<string, number | undefined>>,
): Map<string, number | undefined> {
  const out = new Map(queue);
  for (const [name, xmin] of Object.entries(fromPrimary))
    if (out.get(name) === undefined) out.set(name, xmin);
  return out;
}

/**
 * `_ready_logical_slots`: the slots that leave the queue. A slot the replica no longer has leaves silently; one whose
 * catalog rows and WAL are held leaves as ready. `physicalCatalogXmin` undefined: the primary was not asked (no
 * leader), nothing becomes ready.
 */
export function readyLogicalSlots(
  queue: ReadinessQueue,
  physicalCatalogXmin: number | undefined,
  standby: ReadonlyMap<string, StandbyLogicalSlot>,
  wal: LocalWal | undefined,
): { queue: Map<string, number | undefined>; ready: string[] } {
  const out = new Map(queue);
  const ready: string[] = [];
  for (const [name, primaryXmin] of queue) {
    const slot = standby.get(name);
    if (!slot) {
      out.delete(name);
      continue;
    }
    if (physicalCatalogXmin === undefined || primaryXmin === undefined) continue;
    const held = primaryXmin <= physicalCatalogXmin && physicalCatalogXmin <= (slot.catalogXmin ?? 0);
    if (held && walHeld(slot.restartLsn, wal)) {
      out.delete(name);
      ready.push(name);
    }
  }
  return { queue: out, ready };
}
