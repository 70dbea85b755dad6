/**
 * One HA cycle's DCS time: all the calls a cycle makes share one retry_timeout, not one each. Two calls that each
 * took retry_timeout would leave the lock no time for the demotion (Patroni sizes ttl for one retry_timeout per
 * cycle). Past the budget a call fails as a DcsError and the cycle decides as if the DCS were unreachable.
 *
 * The budget is the cycle's by call site, not by async context: the loop makes a cycle's DCS calls through the
 * wrapped view (`wrap`), charged while a cycle runs, and a long action's through the DCS itself (exempt: a long
 * action's DCS calls are not part of the heartbeat). An AsyncLocalStorage did this by context before, but it turns
 * on node's promise hooks for the whole process: every promise of every request then paid for them (about a tenth
 * of an idle agent's CPU, test/bench/idle-cpu-ab.ts).
 */
import { DcsError, type Dcs } from '../dcs/dcs.js';

/** What one cycle may still spend, ms. */
export interface DcsBudget {
  readonly limitMs: number;
  spentMs: number;
}

/** Methods that make no request (or wait on purpose, like watch): never charged to a budget. */
const UNBUDGETED = new Set<string>(['watch', 'close', 'setTimings', 'lockLifetime', 'leaseRefreshedAt']);

export class CycleDcsBudget {
  /** The budget of the cycle running now, if one is. */
  private current: DcsBudget | undefined;

  /** `monotonic`: ms that an NTP step does not move. */
  constructor(private readonly monotonic: () => number) {}

  /** Runs `body` (a cycle) with a budget of `limitMs` for every call made through the wrapped view meanwhile. */
  async run<T>(limitMs: number, body: () => Promise<T>): Promise<T> {
    const outer = this.current;
    const budget: DcsBudget = { limitMs, spentMs: 0 };
    this.current = budget;
    try {
      return await body();
    } finally {
      if (this.current === budget) this.current = outer;
    }
  }

  /** `dcs` with every request made while a cycle runs charged to that cycle's budget. */
  wrap(dcs: Dcs): Dcs {
    return new Proxy(dcs, {
      get: (target, prop, receiver) => {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        const method = value as (...args: unknown[]) => unknown;
        if (typeof prop !== 'string' || UNBUDGETED.has(prop)) return method.bind(target);
        return (...args: unknown[]) =>
          this.within(prop, () => method.apply(target, args) as Promise<unknown>);
      },
    });
  }

  private async within<T>(what: string, call: () => Promise<T>): Promise<T> {
    const budget = this.current;
    if (budget === undefined) return call();
    const left = budget.limitMs - budget.spentMs;
    const spent = (): string =>
      `this cycle's DCS calls took ${(budget.spentMs / 1000).toFixed(1)} s of retry_timeout ${budget.limitMs / 1000} s`;
    if (left <= 0) throw new DcsError(`${what} not attempted: ${spent()}`);
    const started = this.monotonic();
    let timer: NodeJS.Timeout | undefined;
    let abandoned = false;
    const pending = call();
    // Past the budget the call is abandoned, not cancelled: its late failure must not be an unhandled rejection.
    pending.catch(() => undefined);
    try {
      return await Promise.race([
        pending,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            abandoned = true;
            reject(new DcsError(`${what} abandoned: ${spent()}`));
          }, left);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      // A timer may fire a fraction of a millisecond before the monotonic clock says `left` has passed: an abandoned
      // call has spent the whole budget, so the next one is not attempted.
      const elapsed = Math.max(0, this.monotonic() - started);
      budget.spentMs += abandoned ? Math.max(left, elapsed) : elapsed;
    }
  }
}
