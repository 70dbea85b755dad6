/** setLongTimeout: delays beyond setTimeout's 2^31-1 ms fire on time, never early, and can be cancelled. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMEOUT_MS, setLongTimeout } from '../../src/agent/routes/long-timer.js';

const DAY = 86_400_000;

describe('setLongTimeout', () => {
  beforeEach(() => vi.useFakeTimers({ now: Date.parse('2026-01-01T00:00:00Z') }));
  afterEach(() => vi.useRealTimers());

  it('fires 40 days ahead at 40 days, not at the 24.8-day setTimeout limit', () => {
    const fired: number[] = [];
    const start = Date.now();
    setLongTimeout(() => fired.push(Date.now() - start), start + 40 * DAY);
    vi.advanceTimersByTime(MAX_TIMEOUT_MS + 1000);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(40 * DAY - MAX_TIMEOUT_MS - 1001);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual([40 * DAY]);
  });

  it('fires at once for a time already past; cancel stops a pending one', () => {
    let count = 0;
    setLongTimeout(() => count++, Date.now() - 5);
    expect(count).toBe(1);
    const t = setLongTimeout(() => count++, Date.now() + 30 * DAY);
    vi.advanceTimersByTime(25 * DAY);
    t.cancel();
    vi.advanceTimersByTime(10 * DAY);
    expect(count).toBe(1);
  });
});
