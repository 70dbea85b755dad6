import { describe, expect, it } from 'vitest';
import { clusterFromNodes } from '../../src/dcs/codec.js';
import type { DcsNode } from '../../src/dcs/dcs.js';
import { buildMembersTable, roundHalfEven, topologyOrder } from '../../src/ctl/list.js';
import { clusterView, clusterViewJson } from '../../src/model/cluster-view.js';
import { renderMembersTable } from '../../src/render/members.js';
import { dsnFor, formatPgVersion, membersWithRole, renderHistory } from '../../src/ctl/read-commands.js';
import { UserError } from '../../src/config/errors.js';

let rev = 0;
function node(key: string, value: unknown): DcsNode {
  rev++;
  return {
    key,
    value: typeof value === 'string' ? value : JSON.stringify(value),
    version: String(rev),
    modifyVersion: String(rev),
  };
}
function member(name: string, port: number, extra: Record<string, unknown> = {}): DcsNode {
  return node(`members/${name}`, {
    conn_url: `postgres://127.0.0.1:${port}/postgres`,
    api_url: `http://127.0.0.1:${port + 3000}/patroni`,
    state: 'running',
    role: 'replica',
    version: '3.0.2',
    xlog_location: 67108960,
    timeline: 1,
    ...extra,
  });
}
const cluster = (...nodes: DcsNode[]) => clusterFromNodes('demo', nodes);
const render = (
  c: ReturnType<typeof cluster>,
  format: 'pretty' | 'tsv' | 'json' | 'yaml' | 'topology',
  extended = false,
) => renderMembersTable(buildMembersTable(c, 'demo', { extended, format }), format);

describe('roundHalfEven (Python round)', () => {
  it.each([
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [2.4999, 2],
    [2.5001, 3],
    [0, 0],
    [7, 7],
  ])('%d -> %d', (x, r) => expect(roundHalfEven(x)).toBe(r));
});

describe('member table', () => {
  it('shows Sync Standby for names in /sync only while synchronous_mode is on (3.3+), always in 3.0.2', () => {
    const nodes = (version: string, mode: boolean) => [
      node('config', { synchronous_mode: mode }),
      node('leader', 'a'),
      member('a', 5432, { role: 'master', version }),
      member('b', 5433, { version }),
      node('sync', { leader: 'a', sync_standby: 'B' }),
    ];
    const roles = (v: string, mode: boolean) =>
      clusterView(cluster(...nodes(v, mode))).members.map((m) => m.role);
    expect(roles('3.0.2', false)).toEqual(['leader', 'sync_standby']);
    expect(roles('3.3.0', false)).toEqual(['leader', 'replica']);
    expect(roles('3.3.0', true)).toEqual(['leader', 'sync_standby']);
  });

  it('uses quorum_standby in quorum mode and standby_leader in a standby cluster', () => {
    const c = cluster(
      node('config', { synchronous_mode: 'quorum', standby_cluster: { host: '10.0.0.1' } }),
      node('leader', 'a'),
      member('a', 5432, { role: 'standby_leader', version: '4.1.4' }),
      member('b', 5433, { version: '4.1.4' }),
      node('sync', { leader: 'a', quorum: 1, sync_standby: 'b' }),
    );
    expect(clusterView(c).members.map((m) => m.role)).toEqual(['standby_leader', 'quorum_standby']);
    expect(render(c, 'pretty')).toContain('| Quorum Standby |');
    expect(render(c, 'pretty')).toContain('| Standby Leader |');
  });

  it('prints host only when every member is on 5432 and hosts differ, host:port otherwise', () => {
    const distinct = cluster(
      node('members/a', { conn_url: 'postgres://10.0.0.1:5432/postgres', state: 'running', role: 'replica' }),
      node('members/b', { conn_url: 'postgres://10.0.0.2/postgres', state: 'running', role: 'replica' }),
    );
    expect(
      render(distinct, 'tsv')
        .split('\n')
        .map((l) => l.split('\t')[2]),
    ).toEqual(['Host', '10.0.0.1', '10.0.0.2']);
    const shared = cluster(
      node('members/a', { conn_url: 'postgres://10.0.0.1:5432/postgres', state: 'running' }),
      node('members/b', { conn_url: 'postgres://10.0.0.1/postgres', state: 'running' }),
    );
    expect(
      render(shared, 'tsv')
        .split('\n')
        .map((l) => l.split('\t')[2]),
    ).toEqual(['Host', '10.0.0.1:5432', '10.0.0.1:5432']);
  });

  it('computes lag from status optime, unknown without an LSN, 0 when ahead', () => {
    const c = cluster(
      node('leader', 'a'),
      node('status', { optime: 3 * 1048576 + 524288 }),
      member('a', 5432, { role: 'master' }),
      member('b', 5433, { xlog_location: 1048576 }),
      member('c', 5434, { xlog_location: 10 * 1048576 }),
      node('members/d', {
        conn_url: 'postgres://127.0.0.1:5435/postgres',
        state: 'stopped',
        role: 'replica',
      }),
    );
    const json = JSON.parse(render(c, 'json')) as Record<string, unknown>[];
    expect(json.map((r) => r['Lag in MB'])).toEqual([undefined, 2, 0, 'unknown']);
    expect(clusterViewJson(clusterView(c))['members']).toMatchObject([
      { name: 'a', role: 'leader' },
      { name: 'b', lag: 2n * 1048576n + 524288n },
      { name: 'c', lag: 0n },
      { name: 'd', lag: 'unknown', state: 'stopped' },
    ]);
  });

  it('adds optional columns when any member has a value, rules between rows for multi-line cells', () => {
    const c = cluster(
      node('leader', 'a'),
      member('a', 5432, {
        role: 'master',
        tags: { nofailover: false, mytag: 'hello' },
        pending_restart: true,
      }),
      member('b', 5433, {
        scheduled_restart: { schedule: '2026-11-22T04:48:00+00:00', postgres_version: '16.1' },
      }),
    );
    const out = render(c, 'pretty');
    expect(out.split('\n')[1]).toBe(
      '| Member | Host           | Role    | State   | TL | Lag in MB | Pending restart | Scheduled restart                           | Tags              |',
    );
    expect(out).toContain('| 2026-11-22T04:48:00+00:00 if version < 16.1 |');
    expect(out).toContain('| *               |');
    // two tags on one member: YAML block lines in pretty, and a rule between the rows (FRAME style would have 2)
    expect(out.split('\n').filter((l) => l.startsWith('+-')).length).toBe(3);
    expect(render(c, 'tsv')).toContain('\t{mytag: hello, nofailover: false}');
  });

  it('prints maintenance mode and the scheduled switchover under the table, not in machine formats', () => {
    const c = cluster(
      node('config', { pause: true }),
      node('leader', 'a'),
      member('a', 5432, { role: 'master' }),
      member('b', 5433),
      node('failover', { leader: 'a', member: 'b', scheduled_at: '2026-11-22T03:49:00+00:00' }),
    );
    const lines = render(c, 'pretty').split('\n');
    expect(lines.slice(-4)).toEqual([
      ' Maintenance mode: on',
      ' Switchover scheduled at: 2026-11-22T03:49:00+00:00',
      '                    from: a',
      '                      to: b',
    ]);
    expect(render(c, 'json')).not.toContain('Maintenance');
  });

  it('puts the system identifier in the title from 3.1.1 on, and uninitialized/initializing states', () => {
    const title = (...n: DcsNode[]) => render(cluster(...n), 'pretty').split('\n')[0]!;
    expect(title(node('initialize', '7710821883631976027'), member('a', 5432, { version: '3.0.2' }))).toMatch(
      /^\+ Cluster: demo -+\+/,
    );
    expect(title(node('initialize', '7710821883631976027'), member('a', 5432, { version: '3.1.1' }))).toMatch(
      /^\+ Cluster: demo \(7710821883631976027\) -*\+/,
    );
    expect(title(member('a', 5432, { version: '4.0.1' }))).toMatch(/^\+ Cluster: demo \(uninit/);
    expect(title(node('initialize', ''), member('a', 5432, { version: '4.0.1' }))).toMatch(
      /^\+ Cluster: demo \(initi/,
    );
  });

  it('prints an empty table for a cluster without members', () => {
    const lines = render(cluster(), 'pretty').split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^\+ Cluster: demo \(uninitialized\) -*\+/);
    expect(lines[1]).toBe('| Member | Host | Role | State | TL | Receive LSN | Lag | Replay LSN | Lag |');
    expect(lines[2]).toBe(lines[3]);
  });

  it('shows 4.1 LSN columns with the two lag headers named Lag in pretty output', () => {
    const c = cluster(
      node('leader', 'a'),
      node('status', { optime: 67108960 }),
      member('a', 5432, { role: 'primary', version: '4.1.4' }),
      member('b', 5433, {
        version: '4.1.4',
        receive_lsn: 67108960,
        replay_lsn: 67108960,
        replication_state: 'streaming',
      }),
      node('members/c', {
        conn_url: 'postgres://127.0.0.1:5434/postgres',
        state: 'stopped',
        role: 'replica',
        version: '4.1.4',
      }),
    );
    const out = render(c, 'pretty').split('\n');
    expect(out[1]).toBe(
      '| Member | Host           | Role    | State     | TL | Receive LSN | Lag | Replay LSN | Lag |',
    );
    expect(out[4]).toBe(
      '| b      | 127.0.0.1:5433 | Replica | streaming |  1 |   0/4000060 |   0 |  0/4000060 |   0 |',
    );
    expect(out[5]).toBe(
      '| c      | 127.0.0.1:5434 | Replica | stopped   |    |     unknown |     |    unknown |     |',
    );
    expect(JSON.parse(render(c, 'json'))).toContainEqual({
      Cluster: 'demo',
      Member: 'b',
      Host: '127.0.0.1:5433',
      Role: 'Replica',
      State: 'streaming',
      TL: 1,
      'Receive LSN': '0/4000060',
      'Receive Lag': 0,
      'Replay LSN': '0/4000060',
      'Replay Lag': 0,
    });
  });
});

describe('topology', () => {
  it('nests members under their replicatefrom source, and falls back to the leader', () => {
    const c = cluster(
      node('leader', 'a'),
      member('a', 5432, { role: 'master' }),
      member('b', 5433, { tags: { replicatefrom: 'c' } }),
      member('c', 5434),
      member('d', 5435, { tags: { replicatefrom: 'nosuch' } }),
      member('e', 5436, { tags: { replicatefrom: 'b' } }),
    );
    const names = render(c, 'topology')
      .split('\n')
      .slice(3, -1)
      .map((l) => l.split('|')[1]!.trimEnd());
    expect(names).toEqual([' a', ' + c', '   + b', '     + e', ' + d']);
  });

  it('lists every member one level down when there is no leader, including replication loops', () => {
    const view = clusterView(
      cluster(
        member('a', 5432, { tags: { replicatefrom: 'b' } }),
        member('b', 5433, { tags: { replicatefrom: 'a' } }),
        member('c', 5434),
      ),
    );
    expect(topologyOrder(view.members).map((x) => [x.member.name, x.level])).toEqual([
      ['c', 1],
      ['a', 1],
      ['b', 1],
    ]);
  });
});

describe('member selection, dsn, history, versions', () => {
  const c = cluster(
    node('leader', 'a'),
    member('a', 5432, { role: 'master' }),
    member('b', 5433),
    member('c', 5434),
  );

  it.each([
    ['leader', ['a']],
    ['primary', ['a']],
    ['master', ['a']],
    ['standby-leader', []],
    ['replica', ['b', 'c']],
    ['standby', ['b', 'c']],
    ['any', ['a', 'b', 'c']],
  ] as const)('role %s', (role, names) => {
    expect(membersWithRole(c, role).map((m) => m.name)).toEqual(names);
  });

  it('builds dsn for the leader, a role or a member', () => {
    expect(dsnFor(c, undefined, undefined)).toBe('host=127.0.0.1 port=5432');
    expect(dsnFor(c, 'replica', undefined)).toBe('host=127.0.0.1 port=5433');
    expect(dsnFor(c, undefined, 'c')).toBe('host=127.0.0.1 port=5434');
    expect(() => dsnFor(c, 'replica', 'c')).toThrow(
      new UserError('--role and --member are mutually exclusive options'),
    );
    expect(() => dsnFor(c, undefined, 'zz')).toThrow(new UserError('Can not find a suitable member'));
    expect(() => dsnFor(cluster(member('b', 5433)), undefined, undefined)).toThrow(
      'Can not find a suitable member',
    );
  });

  it('pads short history lines and keeps empty cells in json', () => {
    const h = cluster(
      node('history', [
        [1, 100, 'no recovery target specified'],
        [2, 200, 'x', '2026-11-22T02:53:51+00:00', 'b'],
      ]),
    );
    expect(renderHistory(h, 'json')).toBe(
      '[{"TL": 1, "LSN": 100, "Reason": "no recovery target specified", "Timestamp": "", "New Leader": ""}, {"TL": 2, "LSN": 200, "Reason": "x", "Timestamp": "2026-11-22T02:53:51+00:00", "New Leader": "b"}]',
    );
    expect(renderHistory(h, 'tsv').split('\n')[1]).toBe('1\t100\tno recovery target specified\t\t');
  });

  it.each([
    [150018, '15.18'],
    [100000, '10.0'],
    [90624, '9.6.24'],
  ])('formats server_version %d as %s', (v, text) => expect(formatPgVersion(v)).toBe(text));
});
