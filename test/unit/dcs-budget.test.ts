/**
 * The cycle's DCS budget (src/ha/dcs-budget.ts): calls through the wrapped view share one budget while a cycle runs;
 * calls made outside a cycle, and a long action's calls through the DCS itself, are never charged.
 */
import { describe, expect, it } from 'vitest';
import { DcsError, type Dcs } from '../../src/dcs/dcs.js';
import { CycleDcsBudget } from '../../src/ha/dcs-budget.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A DCS whose every method takes `ms` and then answers true. */
function slowDcs(ms: number): Dcs {
  return new Proxy({} as Dcs, {
    get: () => async () => {
      await sleep(ms);
      return true;
    },
  });
}

describe('CycleDcsBudget', () => {
  it('charges the calls of a running cycle: past the budget a call is abandoned, then not attempted', async () => {
    const budget = new CycleDcsBudget(() => performance.now());
    const dcs = budget.wrap(slowDcs(200));
    const outcome = await budget.run(50, async () => {
      const first = await dcs.touchMember('x').catch((e: unknown) => e);
      const second = await dcs.touchMember('x').catch((e: unknown) => e);
      return [first, second];
    });
    expect(outcome[0]).toBeInstanceOf(DcsError);
    expect(String(outcome[0])).toMatch(/touchMember abandoned/);
    expect(String(outcome[1])).toMatch(/touchMember not attempted/);
  });

  it('a call abandoned by its timer spends the whole budget, even when the clock says a little less passed', async () => {
    // Timers may fire a fraction of a millisecond early against performance.now(); a clock running at 90 % makes
    // that gap certain: 50 ms of timer read as 45 ms.
    const budget = new CycleDcsBudget(() => performance.now() * 0.9);
    const dcs = budget.wrap(slowDcs(200));
    const outcome = await budget.run(50, async () => {
      const first = await dcs.touchMember('x').catch((e: unknown) => e);
      const second = await dcs.touchMember('x').catch((e: unknown) => e);
      return [first, second];
    });
    expect(String(outcome[0])).toMatch(/touchMember abandoned/);
    expect(String(outcome[1])).toMatch(/touchMember not attempted/);
  });

  it("charges nothing outside a cycle, nor a long action's calls to the DCS itself during one", async () => {
    const budget = new CycleDcsBudget(() => performance.now());
    const raw = slowDcs(100);
    const dcs = budget.wrap(raw);
    // Outside any cycle: no budget, however long the call takes.
    await expect(dcs.touchMember('x')).resolves.toBe(true);
    let task: Promise<boolean> | undefined;
    await budget.run(20, async () => {
      // A long action started by the cycle uses the DCS directly and outlives the exhausted budget.
      task = raw.touchMember('x');
      await expect(dcs.touchMember('x')).rejects.toThrow(/abandoned/);
    });
    await expect(task).resolves.toBe(true);
    // The cycle is over: the wrapped view is unbudgeted again.
    await expect(dcs.touchMember('x')).resolves.toBe(true);
  });

  it('a new cycle starts with the whole budget', async () => {
    const budget = new CycleDcsBudget(() => performance.now());
    const dcs = budget.wrap(slowDcs(30));
    for (let i = 0; i < 3; i++) {
      await budget.run(50, async () => {
        await expect(dcs.touchMember('x')).resolves.toBe(true);
      });
    }
  });
});
