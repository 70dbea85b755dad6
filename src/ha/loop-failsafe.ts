/**
 * Failsafe mode's state between cycles (Patroni 4.1.4's ha.py `Failsafe` and `dcs.failsafe`), kept by the HA loop
 * and shared with the REST API's POST /failsafe: the last known `/failsafe` topology, when failsafe mode was last
 * active, and (on a replica) the leader that contacted us. Time is the loop's monotonic clock; no I/O here.
 */
import type { Lsn } from '../model/lsn.js';
import { errorText } from '../model/text.js';
import type { FailsafeCheck } from './actions.js';
import type { FailsafeCaller, LoopLogger } from './loop-ports.js';
import type { FailsafeLeader, FailsafeView } from './snapshot.js';

export class FailsafeState {
  /** Monotonic ms of the last activation (leader: a passed check; replica: a POST /failsafe); undefined: never. */
  private lastUpdate: number | undefined;
  private leader: FailsafeLeader | undefined;
  /** Primary: the positions the members sent back to the last passed check, by member name (`update_slots`). */
  memberLsns: Readonly<Record<string, Lsn>> = {};
  /** Patroni's `dcs.failsafe`: last read from the DCS or written by this node. */
  topology: Readonly<Record<string, string>> | undefined;

  constructor(private readonly monotonic: () => number) {}

  /** Patroni's `Failsafe.is_active`: activated less than ttl ago. */
  isActive(ttlSeconds: number): boolean {
    return this.lastUpdate !== undefined && this.lastUpdate + ttlSeconds * 1000 > this.monotonic();
  }

  /** The leader that contacted us, while that is younger than ttl (Patroni's `Failsafe.leader`). */
  activeLeader(ttlSeconds: number): FailsafeLeader | undefined {
    return this.isActive(ttlSeconds) ? this.leader : undefined;
  }

  view(ttlSeconds: number): FailsafeView {
    const leader = this.activeLeader(ttlSeconds);
    return {
      ...(this.topology ? { topology: this.topology } : {}),
      ...(leader ? { leader } : {}),
    };
  }

  /** A leader's POST /failsafe reached this replica (Patroni's `Failsafe.update`). */
  contactedBy(leader: FailsafeLeader): void {
    this.lastUpdate = this.monotonic();
    this.leader = leader;
  }

  /** The leader passed the check: failsafe mode is active for ttl (Patroni's `set_is_active(time.time())`). */
  activate(): void {
    this.lastUpdate = this.monotonic();
  }

  /** Patroni's `set_is_active(0)`: after a cycle with the DCS as leader, after a failed check, on promotion. */
  reset(): void {
    this.lastUpdate = undefined;
    this.leader = undefined;
    this.memberLsns = {};
  }

  /**
   * Patroni's `check_failsafe_topology` (the topology check was done by decide()): every member must answer
   * `Accepted`. Any failure (no caller, a thrown error) counts as a refusal.
   */
  async check(action: FailsafeCheck, caller: FailsafeCaller | undefined, log: LoopLogger): Promise<boolean> {
    if (action.members.length === 0) return true; // a one-node cluster
    if (caller === undefined) return false;
    try {
      const answers = await caller(action.members);
      const byName = new Map(answers.map((a) => [a.name, a.accepted]));
      if (!action.members.every((m) => byName.get(m.name) === true)) return false;
      // Patroni's `update_slots`: the members' received/replayed positions, for the slots of cascading members.
      const lsns: Record<string, Lsn> = {};
      for (const a of answers) if (a.lsn) lsns[a.name] = a.lsn;
      this.memberLsns = lsns;
      return true;
    } catch (e) {
      log.warning(`failsafe check failed: ${errorText(e)}`);
      return false;
    }
  }
}
