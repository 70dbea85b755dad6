/**
 * The readiness of logical slots copied to a replica (Patroni 4.1.4's `check_logical_slots_readiness`, its
 * `_logical_slots_processing_queue` and the warning of `on_promote`); what counts as ready is
 * src/model/slot-readiness.ts. The queue lives here, between cycles; the primary is asked over a short connection.
 */
import type { ExistingSlot } from '../model/slot-plan.js';
import {
  queueAll,
  readyLogicalSlots,
  rememberPrimaryXmins,
  type LocalWal,
  type StandbyLogicalSlot,
} from '../model/slot-readiness.js';
import { errorText } from '../model/text.js';
import type { LocalSession } from './local-session.js';
import type { PgLog } from './ports.js';
import { primarySlotXmins, type PrimaryAddress } from './slot-queries.js';

export class LogicalSlotReadiness {
  private queue = new Map<string, number | undefined>();
  private role: 'primary' | 'replica' | undefined;

  constructor(
    private readonly session: LocalSession,
    private readonly log: PgLog,
  ) {}

  /** The slots still waiting to be safe for a failover (tests, logs). */
  pending(): string[] {
    return [...this.queue.keys()];
  }

  /**
   * A cycle on a primary: slots that were not ready when we were promoted are reported once (Patroni's
   * `on_promote`), then nothing waits.
   */
  asPrimary(): void {
    if (this.role === 'replica' && this.queue.size > 0)
      this.log.warning(
        `Logical replication slots that might be unsafe to use after promote: ${[...this.queue.keys()].join(', ')}`,
      );
    this.queue.clear();
    this.role = 'primary';
  }

  /** A cycle on a replica: when it was not one (start, demotion), every logical slot it has waits again. */
  asReplica(existing: readonly ExistingSlot[]): void {
    if (this.role !== 'replica')
      this.queue = queueAll(existing.filter((e) => e.type === 'logical').map((e) => e.name));
    this.role = 'replica';
  }

  /** Slots just copied from the primary wait until they are ready. */
  copied(names: readonly string[]): void {
    for (const n of names) this.queue.set(n, undefined);
  }

  /**
   * One readiness check: asks the primary (`at`, undefined without a leader) for the catalog_xmin of our physical
   * slot there (`physicalSlot`) and of the logical slots waiting for it, then lets the ready ones go.
   */
  async check(
    at: PrimaryAddress | undefined,
    physicalSlot: string | undefined,
    existing: readonly ExistingSlot[],
    wal: LocalWal | undefined,
  ): Promise<void> {
    let physical: number | undefined;
    if (this.queue.size > 0 && at && physicalSlot) {
      const waiting = [...this.queue].filter(([, v]) => v === undefined).map(([n]) => n);
      let answer: Map<string, number | undefined>;
      try {
        answer = await primarySlotXmins(at, [...waiting, physicalSlot]);
      } catch (e) {
        this.log.error(`Failed to check ${physicalSlot} physical slot on the primary: ${errorText(e)}`);
        return;
      }
      if (!answer.has(physicalSlot)) {
        this.log.warning(`Physical slot ${physicalSlot} does not exist on the primary`);
        return;
      }
      physical = answer.get(physicalSlot);
      answer.delete(physicalSlot);
      if (physical === undefined) {
        await this.checkFeedback();
        return;
      }
      this.queue = rememberPrimaryXmins(this.queue, Object.fromEntries(answer));
    }
    const standby = new Map<string, StandbyLogicalSlot>(
      existing
        .filter((e) => e.type === 'logical')
        .map((e) => [e.name, { catalogXmin: e.catalogXmin, restartLsn: e.restartLsn }]),
    );
    const r = readyLogicalSlots(this.queue, physical, standby, wal);
    this.queue = r.queue;
    for (const name of r.ready) this.log.info(`Logical slot ${name} is safe to be used after a failover`);
  }

  /** The primary's physical slot has no catalog_xmin: we do not stream, or hot_standby_feedback is off. */
  private async checkFeedback(): Promise<void> {
    try {
      const rows = await this.session.withSession((s) =>
        s.query("SELECT pg_catalog.current_setting('hot_standby_feedback')::boolean AS on"),
      );
      if (rows[0]?.['on'] !== true)
        this.log.error(
          'Logical slot failover requires "hot_standby_feedback". Please check postgresql.auto.conf',
        );
    } catch (e) {
      this.log.error(`Failed to check the hot_standby_feedback setting: ${errorText(e)}`);
    }
  }
}
