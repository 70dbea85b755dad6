/**
 * A timer for any delay. Node's setTimeout takes at most 2^31-1 ms (24.8 days) and fires at once (after 1 ms) for
 * anything larger, so a restart scheduled a month ahead would run immediately; this one waits in steps.
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export interface LongTimer {
  cancel(): void;
}

/** Calls `fire` once `at` (epoch ms by `now`) has come; never early. */
export function setLongTimeout(
  fire: () => void,
  at: number,
  now: () => number = Date.now,
  schedule: (fn: () => void, ms: number) => NodeJS.Timeout = setTimeout,
): LongTimer {
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const step = (): void => {
    if (cancelled) return;
    const left = at - now();
    if (left <= 0) {
      fire();
      return;
    }
    timer = schedule(step, Math.min(left, MAX_TIMEOUT_MS));
    timer.unref?.();
  };
  step();
  return {
    cancel() {
      cancelled = true;
      clearTimeout(timer);
    },
  };
}
