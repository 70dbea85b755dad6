/**
 * The pieces the HA loop unit tests (test/unit/ha-loop*.test.ts) share: the member under test (`pg2` in scope
 * `demo`), a running replica's PostgreSQL state, the in-memory DCS options and a clock moved by hand.
 */
import type { DcsOptions } from '../../src/dcs/dcs.js';
import type { LoopClock } from '../../src/ha/loop.js';
import type { PostgresInfo, SelfInfo } from '../../src/ha/snapshot.js';

export const PREFIX = '/service/demo/';
export const SYSID = '7300000000000000001';
export const ME = 'pg2';

export const SELF: SelfInfo = {
  name: ME,
  tags: { nofailover: false, failoverPriority: 1, nosync: false, clonefrom: false },
  hasBootstrapConfig: true,
  canCloneWithoutLeader: false,
  canRewind: false,
};

export const REPLICA: PostgresInfo = {
  state: 'running',
  isRunning: true,
  isPrimary: false,
  timeline: 1,
  walPosition: 50331800n,
  dataDirectoryEmpty: false,
  dataDirectoryAccessible: true,
  sysid: SYSID,
  msInState: 60_000,
};

export const OPTIONS: DcsOptions = {
  namespace: '/service',
  scope: 'demo',
  name: ME,
  ttl: 30,
  retryTimeout: 10,
  ctl: false,
};

/**
 * A clock moved by hand, starting at `t0`; `sleep` returns at once (the `Wait` action and the loop's safety timer).
 * `t += ms` moves both clocks; `stepWall` moves only the wall clock, as an NTP step does.
 */
export class FakeClock implements LoopClock {
  t: number;
  private wallSteps = 0;
  constructor(private readonly t0: number) {
    this.t = t0;
  }
  now(): number {
    return this.t;
  }
  monotonic(): number {
    return this.t - this.wallSteps - this.t0 + 1_000_000;
  }
  stepWall(ms: number): void {
    this.t += ms;
    this.wallSteps += ms;
  }
  async sleep(_ms: number): Promise<void> {
    return;
  }
}
