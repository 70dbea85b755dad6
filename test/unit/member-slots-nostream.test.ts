/**
 * The primary keeps no physical slot for a `nostream` member (dcs `_get_members_slots` filters them out), the tag
 * read with parse_bool as tags.py `Tags.nostream` does.
 */
import { describe, expect, it } from 'vitest';
import type { Cluster, Member } from '../../src/model/cluster.js';
import { memberSlotNames } from '../../src/postgres/member-slots.js';

function member(name: string, tags: Record<string, unknown> = {}): Member {
  return {
    name,
    version: '1',
    data: { raw: {}, state: 'running', role: 'replica', tags, pendingRestart: false, pause: false },
  };
}

function cluster(members: readonly Member[]): Cluster {
  return {
    scope: 'demo',
    status: { optime: 0n, slots: {}, retainSlots: [] },
    members,
    sync: { members: [] },
  };
}

describe('member slots and the nostream tag', () => {
  it.each([
    [{ nostream: true }, []],
    [{ nostream: 'true' }, []],
    [{ nostream: 'on' }, []],
    // parse_bool: 'false', 'off' and anything unparseable do not stop streaming.
    [{ nostream: 'false' }, ['pg2']],
    [{ nostream: 'off' }, ['pg2']],
    [{ nostream: 'x' }, ['pg2']],
    [{ nostream: false }, ['pg2']],
    [{}, ['pg2']],
  ])('a member tagged %j gets a slot: %j', (tags, want) => {
    expect([...memberSlotNames(cluster([member('pg1'), member('pg2', tags)]), 'pg1')]).toEqual(want);
  });

  it('a member cascading from a nostream member streams from it: no slot for it on the primary either', () => {
    const c = cluster([
      member('pg1'),
      member('pg2', { nostream: true }),
      member('pg3', { replicatefrom: 'pg2' }),
    ]);
    expect([...memberSlotNames(c, 'pg1')]).toEqual([]);
  });
});
