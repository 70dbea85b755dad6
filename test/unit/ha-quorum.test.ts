import { describe, expect, it } from 'vitest';
import { QuorumError, resolveQuorum, type QuorumInput } from '../../src/ha/quorum.js';

const BASE: QuorumInput = {
  leader: 'pg1',
  quorum: 0,
  voters: [],
  numsync: 0,
  sync: [],
  numsyncConfirmed: 0,
  active: [],
  syncWanted: 1,
  leaderWanted: 'pg1',
};

type Step = readonly [type: 'sync' | 'quorum' | 'restart', leader: string, num: number, names: string];

const steps = (input: Partial<QuorumInput>): Step[] =>
  resolveQuorum({ ...BASE, ...input }).map((t) => [t.type, t.leader, t.num, t.names.join(',')] as const);

// Each row: the state now (/sync: leader, quorum, voters; synchronous_standby_names: numsync, sync; standbys
// confirmed since listed; streaming eligible standbys; synchronous_node_count) and the transitions, in order.
const CASES: ReadonlyArray<readonly [string, Partial<QuorumInput>, Step[]]> = [
  ['a leader alone stays as it is', {}, []],
  [
    'first standbys: listed all at once, then wait for one to catch up before anyone may vote',
    { active: ['pg2', 'pg3'] },
    [
      ['sync', 'pg1', 1, 'pg2,pg3'],
      ['restart', 'pg1', 0, ''],
    ],
  ],
  [
    'listed but none confirmed yet: resolve again later',
    { numsync: 1, sync: ['pg2', 'pg3'], active: ['pg2', 'pg3'] },
    [['restart', 'pg1', 0, '']],
  ],
  [
    'one confirmed: both become voters, one vote needed besides the candidate',
    { numsync: 1, sync: ['pg2', 'pg3'], active: ['pg2', 'pg3'], numsyncConfirmed: 1 },
    [['quorum', 'pg1', 1, 'pg2,pg3']],
  ],
  [
    'steady state: nothing to do',
    {
      quorum: 1,
      voters: ['pg2', 'pg3'],
      numsync: 1,
      sync: ['pg2', 'pg3'],
      active: ['pg2', 'pg3'],
      numsyncConfirmed: 2,
    },
    [],
  ],
  [
    'a standby stops streaming: unlist it first, then lower the quorum',
    {
      quorum: 1,
      voters: ['pg2', 'pg3'],
      numsync: 1,
      sync: ['pg2', 'pg3'],
      active: ['pg2'],
      numsyncConfirmed: 1,
    },
    [
      ['sync', 'pg1', 1, 'pg2'],
      ['quorum', 'pg1', 0, 'pg2'],
    ],
  ],
  [
    'every standby gone: empty /sync voters first, then synchronous_standby_names',
    { quorum: 1, voters: ['pg2', 'pg3'], numsync: 1, sync: ['pg2', 'pg3'] },
    [
      ['quorum', 'pg1', 0, ''],
      ['sync', 'pg1', 0, ''],
    ],
  ],
  [
    'a new standby: voters and quorum grow first, then it is listed',
    { voters: ['pg2'], numsync: 1, sync: ['pg2'], active: ['pg2', 'pg3'], numsyncConfirmed: 1 },
    [
      ['quorum', 'pg1', 1, 'pg2,pg3'],
      ['sync', 'pg1', 1, 'pg2,pg3'],
    ],
  ],
  [
    'synchronous_node_count raised: numsync first, then the quorum drops',
    {
      quorum: 1,
      voters: ['pg2', 'pg3'],
      numsync: 1,
      sync: ['pg2', 'pg3'],
      active: ['pg2', 'pg3'],
      numsyncConfirmed: 2,
      syncWanted: 2,
    },
    [
      ['sync', 'pg1', 2, 'pg2,pg3'],
      ['quorum', 'pg1', 0, 'pg2,pg3'],
    ],
  ],
  [
    'synchronous_node_count lowered: the quorum rises first, then numsync drops',
    { voters: ['pg2', 'pg3'], numsync: 2, sync: ['pg2', 'pg3'], active: ['pg2', 'pg3'], numsyncConfirmed: 2 },
    [
      ['quorum', 'pg1', 1, 'pg2,pg3'],
      ['sync', 'pg1', 1, 'pg2,pg3'],
    ],
  ],
  [
    'after a failover the new leader takes /sync over, the old leader becoming a voter, then drops the silent one',
    {
      leaderWanted: 'pg2',
      quorum: 1,
      voters: ['pg2', 'pg3'],
      numsync: 1,
      sync: ['pg1', 'pg3'],
      active: ['pg3'],
    },
    [
      ['quorum', 'pg2', 1, 'pg1,pg3'],
      ['sync', 'pg2', 1, 'pg3'],
      ['quorum', 'pg2', 0, 'pg3'],
    ],
  ],
  [
    'after a failover with nobody streaming yet: take /sync over and give the standbys time to reconnect',
    { leaderWanted: 'pg2', quorum: 1, voters: ['pg2', 'pg3'], numsync: 1, sync: ['pg1', 'pg3'] },
    [['quorum', 'pg2', 1, 'pg1,pg3']],
  ],
  [
    'interrupted after /sync grew: the standby is listed now',
    {
      quorum: 1,
      voters: ['pg2', 'pg3'],
      numsync: 1,
      sync: ['pg2'],
      active: ['pg2', 'pg3'],
      numsyncConfirmed: 1,
    },
    [['sync', 'pg1', 1, 'pg2,pg3']],
  ],
  [
    'interrupted after synchronous_standby_names grew: the voters follow',
    { voters: ['pg2'], numsync: 1, sync: ['pg2', 'pg3'], active: ['pg2', 'pg3'], numsyncConfirmed: 1 },
    [['quorum', 'pg1', 1, 'pg2,pg3']],
  ],
  [
    'a quorum too small for the listed standbys (written by hand) is raised',
    { voters: ['pg2', 'pg3'], numsync: 1, sync: ['pg2', 'pg3'], active: ['pg2', 'pg3'], numsyncConfirmed: 2 },
    [['quorum', 'pg1', 1, 'pg2,pg3']],
  ],
  [
    'two of three standbys stop streaming: the quorum lets both go in one step',
    {
      quorum: 2,
      voters: ['a', 'b', 'c'],
      numsync: 1,
      sync: ['a', 'b', 'c'],
      active: ['a'],
      numsyncConfirmed: 1,
    },
    [
      ['sync', 'pg1', 1, 'a'],
      ['quorum', 'pg1', 0, 'a'],
    ],
  ],
  [
    'names compare case-insensitively, as PostgreSQL does',
    {
      quorum: 1,
      voters: ['PG2', 'pg3'],
      numsync: 1,
      sync: ['pg2', 'PG3'],
      active: ['Pg2', 'pg3'],
      numsyncConfirmed: 2,
    },
    [],
  ],
];

describe('resolveQuorum (Patroni QuorumStateResolver)', () => {
  it.each(CASES)('%s', (_name, input, want) => {
    expect(steps(input)).toEqual(want);
  });

  it('refuses a state it cannot move safely (a quorum larger than its voters)', () => {
    expect(() =>
      resolveQuorum({ ...BASE, leaderWanted: 'pg2', quorum: 3, voters: ['pg1'], numsync: 5, sync: ['pg3'] }),
    ).toThrow(QuorumError);
  });

  it('applying the transitions in order, every intermediate state keeps the overlap invariant', () => {
    // From each row's state, walk the transitions and check that any set able to acknowledge a commit meets
    // any set able to elect a leader: |voters ∪ sync ∪ {leader}| <= quorum + numsync + 1 once voters exist.
    for (const [, input] of CASES) {
      const s = { ...BASE, ...input };
      let { quorum, numsync } = s;
      let voters = s.voters.map((n) => n.toLowerCase());
      let sync = s.sync.map((n) => n.toLowerCase());
      numsync = Math.min(numsync, sync.length);
      for (const t of resolveQuorum(s)) {
        if (t.type === 'quorum') [quorum, voters] = [t.num, t.names.map((n) => n.toLowerCase())];
        if (t.type === 'sync') [numsync, sync] = [t.num, t.names.map((n) => n.toLowerCase())];
        if (t.type === 'restart') break;
        const all = new Set([...voters, ...sync, t.leader.toLowerCase()]);
        if (voters.length > 0) expect(all.size).toBeLessThanOrEqual(quorum + numsync + 1);
      }
    }
  });
});
