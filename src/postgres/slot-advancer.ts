/**
 * Advancing logical slots on a replica off the HA loop (Patroni's `SlotsAdvanceThread`): on a standby
 * pg_replication_slot_advance() can wait for WAL that has not arrived yet, so each cycle only schedules the
 * positions and one background run per node works through them, a connection per database. A slot whose advance
 * can never succeed (its WAL is gone, or it was invalidated) is reported to be copied from the primary again.
 */
import { formatLsn, type Lsn } from '../model/lsn.js';
import { errorText } from '../model/text.js';
import type { PgLog } from './ports.js';
import { connect, type ConnectOptions } from './queries.js';
import { advanceNeedsCopy, advanceSlot } from './slot-queries.js';

export class SlotAdvancer {
  /** database -> slot -> target position. */
  private readonly scheduled = new Map<string, Map<string, Lsn>>();
  private readonly copy = new Set<string>();
  private failed = false;
  private running: Promise<void> | undefined;
  /** The backend running the advances, while connected. */
  private pid: number | undefined;

  constructor(
    private readonly connectTo: (database: string) => ConnectOptions,
    private readonly log: PgLog,
  ) {}

  /**
   * Schedules the advances of this cycle (a slot waiting to be copied is left out); returns whether an advance
   * failed since the last call, and the slots to copy from the primary.
   */
  schedule(advances: readonly { name: string; database: string; lsn: Lsn }[]): {
    failed: boolean;
    copy: string[];
  } {
    for (const a of advances) {
      if (this.copy.has(a.name)) continue;
      const db = this.scheduled.get(a.database) ?? new Map<string, Lsn>();
      db.set(a.name, a.lsn);
      this.scheduled.set(a.database, db);
    }
    const out = { failed: this.failed, copy: [...this.copy] };
    this.copy.clear();
    this.failed = false;
    if (this.scheduled.size > 0 && !this.running) {
      this.running = this.run().finally(() => {
        this.running = undefined;
      });
    }
    return out;
  }

  /** Forget what is scheduled (PostgreSQL restarts for a copy, or is promoted). */
  clean(): void {
    this.scheduled.clear();
    this.copy.clear();
    this.failed = false;
  }

  /**
   * PostgreSQL runs as a primary now: nothing more is scheduled, and an advance still waiting for WAL is cancelled
   * (`cancel` runs pg_cancel_backend on it), since it holds the slot its consumer is about to use.
   */
  async stop(cancel: (pid: number) => Promise<void>): Promise<void> {
    this.clean();
    if (this.running && this.pid !== undefined) await cancel(this.pid);
  }

  /** Resolves when the background run (if any) has finished; for tests and shutdown. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async run(): Promise<void> {
    while (this.scheduled.size > 0) {
      for (const database of [...this.scheduled.keys()]) await this.runDatabase(database);
    }
  }

  private async runDatabase(database: string): Promise<void> {
    let session;
    try {
      session = await connect({ ...this.connectTo(database), statementTimeoutMs: 0, queryTimeoutMs: 0 });
    } catch (e) {
      this.log.error(`failed to advance replication slots in database ${database}: ${errorText(e)}`);
      this.scheduled.delete(database);
      return;
    }
    try {
      const rows = await session.query('SELECT pg_catalog.pg_backend_pid() AS pid');
      this.pid = Number(rows[0]?.['pid']);
      for (const name of [...(this.scheduled.get(database)?.keys() ?? [])]) {
        const lsn = this.scheduled.get(database)?.get(name);
        if (lsn === undefined) continue;
        let needsCopy = false;
        try {
          await advanceSlot(session, name, lsn);
        } catch (e) {
          this.log.error(
            `failed to advance logical replication slot '${name}' to ${formatLsn(lsn)}: ${errorText(e)}`,
          );
          needsCopy = advanceNeedsCopy(e);
          if (this.scheduled.size > 0) {
            this.failed = true;
            if (needsCopy) this.copy.add(name);
          }
        }
        // Done with it unless a newer position was scheduled meanwhile.
        const db = this.scheduled.get(database);
        if (db && (needsCopy || db.get(name) === lsn)) {
          db.delete(name);
          if (db.size === 0) this.scheduled.delete(database);
        }
      }
    } catch (e) {
      this.log.error(`failed to advance replication slots in database ${database}: ${errorText(e)}`);
      this.scheduled.delete(database);
    } finally {
      this.pid = undefined;
      await session.close().catch(() => undefined);
    }
  }
}
