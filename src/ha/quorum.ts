/**
 * Quorum commit (`synchronous_mode: quorum`, Patroni 4.0+), the pure part: the state machine that moves the two
 * halves of the synchronous replication state towards the wanted one without ever breaking the invariant that
 * makes a failover lose no acknowledged commit (Patroni 4.1.4's `QuorumStateResolver`, behaviour only).
 *
 * The two halves, both read "ANY n of a set":
 * - PostgreSQL's `synchronous_standby_names = 'ANY numsync (sync...)'`: a commit is acknowledged once `numsync` of
 *   the `sync` standbys have it;
 * - the DCS `/sync` key's `quorum` and `sync_standby` (the voters): a node racing for the lock must see `quorum`
 *   voters (the old leader counted among them) not ahead of it.
 *
 * The invariant: every set of standbys able to acknowledge a commit overlaps every set able to elect a leader,
 * i.e. `|voters ∪ sync ∪ {leader}| <= quorum + numsync + 1`, and one of `voters`, `sync` contains the other. So an
 * increase of `numsync` or `quorum` is applied before, a decrease after, the other half changes. The steady state
 * for the set `active` of eligible streaming standbys is `sync = voters = active`,
 * `numsync = min(synchronous_node_count, |active|)`, `quorum = |active| - numsync`.
 *
 * `resolveQuorum` returns the ordered transitions: `sync` (set synchronous_standby_names), `quorum` (compare-and-set
 * the `/sync` key) and `restart` (stop, wait a little and resolve again), consecutive ones of one kind merged (no
 * one can observe the skipped intermediate state). It throws `QuorumError` when no safe way exists; the caller
 * then changes nothing this cycle. The I/O lives in src/agent/sync-replication.ts.
 */

export class QuorumError extends Error {
  override readonly name = 'QuorumError';
}

/** A set of member names compared case-insensitively (PostgreSQL and Patroni do); keeps the first spelling. */
class Names {
  private readonly byKey: ReadonlyMap<string, string>;

  constructor(names: Iterable<string> = []) {
    const m = new Map<string, string>();
    for (const n of names) if (!m.has(n.toLowerCase())) m.set(n.toLowerCase(), n);
    this.byKey = m;
  }

  get size(): number {
    return this.byKey.size;
  }
  get empty(): boolean {
    return this.byKey.size === 0;
  }
  has(name: string): boolean {
    return this.byKey.has(name.toLowerCase());
  }
  list(): string[] {
    return [...this.byKey.values()];
  }
  sorted(): string[] {
    return this.list().sort(byCodePoint);
  }
  or(o: Names): Names {
    return new Names([...this.list(), ...o.list()]);
  }
  minus(o: Names): Names {
    return new Names(this.list().filter((n) => !o.has(n)));
  }
  and(o: Names): Names {
    return new Names(this.list().filter((n) => o.has(n)));
  }
  within(o: Names): boolean {
    return this.list().every((n) => o.has(n));
  }
  equals(o: Names): boolean {
    return this.size === o.size && this.within(o);
  }
  /** Proper subset. */
  lessThan(o: Names): boolean {
    return this.size < o.size && this.within(o);
  }
}

const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export interface QuorumInput {
  /** `leader` of the `/sync` key. */
  readonly leader: string;
  /** `quorum` of the `/sync` key (0 when absent). */
  readonly quorum: number;
  /** `sync_standby` of the `/sync` key. */
  readonly voters: readonly string[];
  /** The number in synchronous_standby_names. */
  readonly numsync: number;
  /** The names in synchronous_standby_names (empty for none or `*`). */
  readonly sync: readonly string[];
  /** How many listed standbys are known to have caught up since they were listed. */
  readonly numsyncConfirmed: number;
  /** Eligible standbys streaming from this primary. */
  readonly active: readonly string[];
  /** `synchronous_node_count`. */
  readonly syncWanted: number;
  /** This node: the leader the `/sync` key must name (differs from `leader` right after a failover). */
  readonly leaderWanted: string;
}

export interface QuorumTransition {
  /** `sync`: set synchronous_standby_names; `quorum`: CAS-write `/sync`; `restart`: stop and resolve again. */
  readonly type: 'sync' | 'quorum' | 'restart';
  readonly leader: string;
  /** numsync for `sync`, quorum for `quorum`. */
  readonly num: number;
  /** The sync names for `sync`, the voters for `quorum`, sorted. */
  readonly names: readonly string[];
}

class Resolver {
  leader: string;
  quorum: number;
  voters: Names;
  numsync: number;
  sync: Names;
  numsyncConfirmed: number;
  readonly active: Names;
  readonly syncWanted: number;
  readonly leaderWanted: string;
  readonly out: QuorumTransition[] = [];

  constructor(i: QuorumInput) {
    this.leader = i.leader;
    this.quorum = i.quorum;
    this.voters = new Names(i.voters);
    this.sync = new Names(i.sync);
    // The number cannot exceed the names listed.
    this.numsync = Math.min(i.numsync, this.sync.size);
    this.numsyncConfirmed = i.numsyncConfirmed;
    this.active = new Names(i.active);
    this.syncWanted = i.syncWanted;
    this.leaderWanted = i.leaderWanted;
  }

  private emit(type: QuorumTransition['type'], num: number, names: Names): void {
    this.out.push({ type, leader: this.leader, num, names: names.sorted() });
  }

  checkInvariants(): void {
    const voters = this.voters.or(new Names([this.leader]));
    const sync = this.sync.or(new Names([this.leaderWanted]));
    const all = voters.or(sync).size;
    // With no voter yet nobody may be promoted, whatever the numbers.
    if (!this.voters.empty && all > this.quorum + this.numsync + 1) {
      throw new QuorumError(
        `Quorum and sync not guaranteed to overlap: nodes ${all} >= quorum ${this.quorum} + sync ${this.numsync} + 1`,
      );
    }
    if (!voters.within(sync) && !sync.within(voters)) {
      throw new QuorumError(
        `Mismatched sets: voter only=${voters.minus(sync).sorted().join(',')} sync only=${sync.minus(voters).sorted().join(',')}`,
      );
    }
  }

  /** New `/sync` content; `adjust` raises quorum by the listed standbys not yet confirmed. */
  quorumUpdate(quorum: number, voters: Names, leader?: string, adjust = true): void {
    if (quorum < 0) throw new QuorumError(`Quorum ${quorum} < 0 of (${voters.sorted().join(',')})`);
    if (quorum > 0 && quorum >= voters.size) {
      throw new QuorumError(`Quorum ${quorum} >= N of (${voters.sorted().join(',')})`);
    }
    const oldLeader = this.leader;
    let q = quorum;
    let v = voters;
    if (leader !== undefined) this.leader = leader;
    else if (this.numsyncConfirmed === 0 && this.voters.empty) {
      // Nobody has caught up yet: nobody may vote.
      q = 0;
      v = new Names();
    } else if (adjust) q += Math.max(this.numsync - this.numsyncConfirmed, 0);
    if (this.leader === oldLeader && q === this.quorum && v.equals(this.voters)) {
      if (!this.voters.empty) return;
      // Still no voter: the caller should wait for standbys to catch up and resolve again.
      this.emit('restart', this.quorum, this.voters);
    }
    this.quorum = q;
    this.voters = v;
    this.checkInvariants();
    this.emit('quorum', this.quorum, this.voters);
  }

  /** New synchronous_standby_names. */
  syncUpdate(numsync: number, sync: Names): void {
    if (numsync < 0) throw new QuorumError(`Sync ${numsync} < 0 of (${sync.sorted().join(',')})`);
    if (numsync > sync.size) throw new QuorumError(`Sync ${numsync} > N of (${sync.sorted().join(',')})`);
    this.numsync = numsync;
    this.sync = sync;
    this.checkInvariants();
    this.emit('sync', this.numsync, this.sync);
  }

  /** Finishes what an interrupted earlier resolution started. */
  nonSteady(): void {
    if (this.sync.lessThan(this.voters)) {
      const dropVoters = this.voters.minus(this.sync.or(this.active));
      if (!dropVoters.empty) {
        this.quorumUpdate(
          this.voters.size - dropVoters.size - this.numsync,
          this.voters.minus(dropVoters),
          undefined,
          this.sync.minus(this.active).empty,
        );
      }
      const addSync = this.voters.and(this.active).minus(this.sync);
      if (!addSync.empty) this.syncUpdate(this.numsync, this.sync.or(addSync));
    } else if (this.voters.lessThan(this.sync)) {
      const gone = this.sync.minus(this.active);
      const kept = this.sync.minus(gone);
      if (!gone.empty && !kept.empty && (this.voters.empty || !kept.and(this.voters).empty)) {
        this.syncUpdate(Math.min(this.numsync, this.sync.size - gone.size), kept);
      }
      const addVoters = this.sync.minus(this.voters).and(this.active);
      if (!addVoters.empty) {
        const voters = this.voters.or(addVoters);
        this.quorumUpdate(voters.size - this.numsync, voters);
      }
      const extra = this.sync.minus(this.voters);
      if (!extra.empty) {
        this.syncUpdate(Math.min(this.numsync, this.sync.size - extra.size), this.sync.minus(extra));
      }
    }
    if (!this.voters.equals(this.sync)) {
      throw new QuorumError(
        `voters ${this.voters.sorted().join(',')} differ from sync ${this.sync.sorted().join(',')}`,
      );
    }
    const margin =
      this.quorum + Math.min(this.numsync, this.numsyncConfirmed) - this.voters.or(this.sync).size;
    if (margin > 0) {
      // Interrupted in the middle of a replication factor change.
      if (this.numsync > this.syncWanted) {
        this.syncUpdate(Math.max(this.syncWanted, this.voters.size - this.quorum), this.sync);
      } else {
        this.quorumUpdate(this.sync.size - this.numsync, this.voters);
      }
    } else {
      const unconfirmed = this.quorum + this.numsync - this.voters.or(this.sync).size;
      if (this.numsync === this.syncWanted && unconfirmed > 0 && this.numsync > this.numsyncConfirmed) {
        this.quorumUpdate(this.sync.size - this.numsync, this.voters);
      }
    }
  }

  /** Drops the standbys that stopped streaming (or became ineligible). */
  removeGone(): void {
    let gone = this.sync.minus(this.active);
    if (gone.empty) return;
    if (this.sync.equals(gone)) {
      this.quorumUpdate(0, new Names(), undefined, false);
      this.syncUpdate(0, new Names());
      return;
    }
    if (this.quorum > 0) {
      // The quorum lets us drop this many at once, the ones last in reverse name order first.
      const drop = new Names(gone.sorted().reverse().slice(0, this.quorum));
      const sync = this.sync.minus(drop);
      const wanted = this.syncWanted > this.numsync ? this.syncWanted : this.numsync;
      this.syncUpdate(Math.min(wanted, sync.size), sync);
      const voters = this.voters.minus(drop);
      gone = gone.and(this.sync);
      this.quorumUpdate(voters.size - this.numsync, voters, undefined, gone.empty);
    }
    if (!gone.empty) {
      if (this.quorum !== 0) throw new QuorumError(`quorum ${this.quorum} left while removing nodes`);
      const numsync = this.numsync - gone.size;
      const sync = this.sync.minus(gone);
      const voters = this.voters.minus(gone);
      const decrease = numsync - Math.min(this.syncWanted, sync.size);
      const quorum = decrease !== 0 ? Math.min(decrease, voters.size - 1) : 0;
      this.quorumUpdate(quorum, voters, undefined, false);
      this.syncUpdate(numsync, sync);
    }
  }

  /** Lists the new streaming standbys. */
  addNew(): void {
    let add = this.active.minus(this.sync);
    if (add.empty) return;
    const wanted = Math.min(this.syncWanted, this.sync.or(add).size);
    let grow = wanted - this.numsync;
    if (grow > 0) {
      let first: Names;
      if (!this.sync.empty) {
        first = new Names(add.sorted().slice(0, grow));
        grow = first.size;
      } else {
        // Only the leader so far: all may be listed at once.
        first = add;
      }
      this.syncUpdate(this.numsync + grow, this.sync.or(first));
      const voters = this.voters.or(first);
      this.quorumUpdate(voters.size - wanted, voters);
      add = add.minus(this.sync);
    }
    if (!add.empty) {
      const voters = this.voters.or(add);
      this.quorumUpdate(voters.size - wanted, voters, undefined, wanted > this.numsyncConfirmed);
      this.syncUpdate(wanted, this.sync.or(add));
    }
  }

  /** Follows a change of synchronous_node_count. */
  replicationFactor(): void {
    const change = Math.min(this.syncWanted, this.sync.size) - this.numsync;
    if (change > 0) {
      this.syncUpdate(this.numsync + change, this.sync);
      this.quorumUpdate(this.voters.size - this.numsync, this.voters);
    } else if (change < 0) {
      if (this.quorum - change < this.voters.size) {
        this.quorumUpdate(
          this.voters.size - this.numsync - change,
          this.voters,
          undefined,
          this.syncWanted > this.numsyncConfirmed,
        );
      }
      this.syncUpdate(this.numsync + change, this.sync);
    }
  }

  /** Takes over the `/sync` key after a failover; false: stop here for this cycle. */
  private takeOver(): boolean {
    const voters = this.voters.minus(new Names([this.leaderWanted])).or(new Names([this.leader]));
    if (this.sync.empty) this.syncUpdate(voters.size - this.quorum, voters);
    this.quorumUpdate(this.quorum, voters, this.leaderWanted);
    // Give the standbys a loop_wait to reconnect before dropping them from the quorum.
    return !this.sync.and(this.active).empty;
  }

  run(): void {
    try {
      if (this.leaderWanted !== this.leader) {
        if (!this.takeOver()) return;
      } else this.checkInvariants();
    } catch (e) {
      if (!(e instanceof QuorumError)) throw e;
      this.quorumUpdate(this.sync.size - this.numsync, this.sync);
    }
    if (this.leader !== this.leaderWanted) {
      throw new QuorumError(`the /sync key still names ${this.leader}, not ${this.leaderWanted}`);
    }
    const streaming = this.sync.and(this.active);
    if (this.numsyncConfirmed === 0 && !streaming.empty) {
      this.numsyncConfirmed = Math.min(streaming.size, this.voters.size - this.quorum);
    }
    this.nonSteady();
    this.removeGone();
    this.addNew();
    this.replicationFactor();
  }
}

/**
 * The ordered transitions from the current state to the wanted one (Patroni 4.1.4's `QuorumStateResolver`
 * iteration): consecutive transitions of one type merged into the last, nothing after a `restart`.
 * Throws `QuorumError` when the state cannot be moved safely; then nothing is to be changed.
 */
export function resolveQuorum(input: QuorumInput): readonly QuorumTransition[] {
  const r = new Resolver(input);
  r.run();
  const out: QuorumTransition[] = [];
  r.out.forEach((t, i) => {
    if (out.length > 0 && out[out.length - 1]?.type === 'restart') return;
    const next = r.out[i + 1];
    if (next !== undefined && next.type === t.type) return;
    out.push(t);
  });
  return out;
}
