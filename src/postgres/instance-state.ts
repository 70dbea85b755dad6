/**
 * What Patroni tracks about the local instance between cycles: its state (`running`, `starting`, `creating
 * replica`...) and since when, its role (`master`, `replica`, `demoted`, `uninitialized`), and whether a long action
 * (start, stop, clone, rewind...) is under way, so that the inspection does not overwrite the state it set.
 */
import type { PostgresState } from '../model/postgres-info.js';

export class InstanceState {
  private current: PostgresState = 'stopped';
  private since = Date.now();
  /** `master`, `replica`, `demoted` or `uninitialized`. */
  role: string;
  /** A long action is under way: the inspection leaves the state alone. */
  busy = false;

  constructor(role: string) {
    this.role = role;
  }

  get state(): PostgresState {
    return this.current;
  }

  set(state: PostgresState): void {
    if (state !== this.current) {
      this.current = state;
      this.since = Date.now();
    }
  }

  msInState(): number {
    return Date.now() - this.since;
  }
}
