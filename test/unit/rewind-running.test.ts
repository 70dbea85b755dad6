/**
 * The divergence check of a running replica (docs/faults.md: `isolated`, `dcs-split-leader-minority`): when it is
 * due (Patroni's trigger_check_diverged_lsn call sites) and what the comparison decides for a replica that replays
 * past the new leader's switch point, e.g. an ex-primary demoted offline with writes past the fork.
 */
import { describe, expect, it } from 'vitest';
import { runningCheckTrigger, type SeenRunning } from '../../src/postgres/rewinder.js';
import { rewindNeeded } from '../../src/postgres/rewind.js';

type Now = Parameters<typeof runningCheckTrigger>[1];

const now = (o: Partial<Now> = {}): Now => ({
  pid: 100,
  leader: 'm1',
  leaderTimeline: 2,
  localTimeline: 2,
  ...o,
});

describe('runningCheckTrigger: when a running replica is compared with the leader', () => {
  const cases: readonly [string, SeenRunning, Now, ReturnType<typeof runningCheckTrigger>][] = [
    ['first sighting after the agent started', {}, now(), 'started'],
    [
      'a new postmaster (started again as a replica after an offline demotion), DCS still away',
      { pid: 99, leader: 'm3', timelines: 'undefined/1' },
      now({ leader: undefined, leaderTimeline: undefined, localTimeline: 1 }),
      'started',
    ],
    [
      'same postmaster, same leader, same timelines',
      { pid: 100, leader: 'm1', timelines: '2/2' },
      now(),
      undefined,
    ],
    [
      'the leader changed (primary_conninfo re-pointed)',
      { pid: 100, leader: 'm3', timelines: '1/1' },
      now({ leaderTimeline: 2, localTimeline: 1 }),
      'new leader',
    ],
    [
      'the DCS is away: no leader, nothing new',
      { pid: 100, leader: 'm1', timelines: '2/2' },
      now({ leader: undefined, leaderTimeline: undefined }),
      undefined,
    ],
    [
      'the leader published a later timeline than ours',
      { pid: 100, leader: 'm1', timelines: '1/1' },
      now({ leaderTimeline: 2, localTimeline: 1 }),
      'leader timeline ahead',
    ],
    [
      'still behind, nothing changed since the last check: not every cycle',
      { pid: 100, leader: 'm1', timelines: '2/1' },
      now({ leaderTimeline: 2, localTimeline: 1 }),
      undefined,
    ],
    [
      'our timeline ahead of the leader is not this trigger (the check compares it when due)',
      { pid: 100, leader: 'm1', timelines: '1/2' },
      now({ leaderTimeline: 1, localTimeline: 2 }),
      undefined,
    ],
    [
      'timelines unknown',
      { pid: 100, leader: 'm1', timelines: '2/2' },
      now({ leaderTimeline: undefined, localTimeline: undefined }),
      undefined,
    ],
    [
      "standby cluster: the remote primary moved to a new timeline (history of the one after the leader's in pg_wal)",
      { pid: 100, leader: 'remote_member@10.0.0.9:5432', timelines: '1/1' },
      now({ leader: 'remote_member@10.0.0.9:5432', leaderTimeline: 1, localTimeline: 1, historyAhead: true }),
      'timeline history ahead',
    ],
    [
      'standby cluster: that history file already checked for this leader timeline',
      { pid: 100, leader: 'remote_member@10.0.0.9:5432', timelines: '1/1', historyFor: 1 },
      now({ leader: 'remote_member@10.0.0.9:5432', leaderTimeline: 1, localTimeline: 1, historyAhead: true }),
      undefined,
    ],
    [
      'standby cluster: standby_cluster names another remote primary',
      { pid: 100, leader: 'remote_member@10.0.0.9:5432', timelines: '1/1' },
      now({ leader: 'remote_member@10.0.0.8:5432', leaderTimeline: 1, localTimeline: 1 }),
      'new leader',
    ],
  ];
  it.each(cases)('%s', (_what, seen, n, expected) => {
    expect(runningCheckTrigger(seen, n)).toBe(expected);
  });
});

describe('rewindNeeded for a running replica (replayed LSN, in recovery)', () => {
  // The new leader m1 forked timeline 2 off timeline 1 at 0/402FF98 (the last WAL the replicas received).
  const primary = { timeline: 2, history: '1\t0/402FF98\tno recovery target specified\n' };
  const never = (): Promise<bigint | undefined> => Promise.reject(new Error('pg_waldump must not run'));
  const cases: readonly [string, number, bigint, boolean][] = [
    [
      'ex-primary demoted offline, replayed its own writes and shutdown checkpoint past the fork',
      1,
      0x4030148n,
      true,
    ],
    ['replica that replayed exactly up to the switch point', 1, 0x402ff98n, false],
    ['replica behind the switch point', 1, 0x4000000n, false],
    ['replica already on the leader timeline', 2, 0x5000000n, false],
    ['replica on a later timeline than the leader', 3, 0x5000000n, true],
  ];
  it.each(cases)('%s', async (_what, timeline, lsn, expected) => {
    expect(await rewindNeeded({ inRecovery: true, timeline, lsn }, primary, never)).toBe(expected);
  });
});
