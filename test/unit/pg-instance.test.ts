import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { peerPostgres } from '../../src/agent/self-and-peers.js';
import type { Cluster, Member } from '../../src/model/cluster.js';
import { RoleCallbacks, type CallbackAction } from '../../src/postgres/callbacks.js';
import { dataDirState, moveDataDirAside, wipeDataDir } from '../../src/postgres/data-dir.js';
import { walPosition } from '../../src/postgres/inspect.js';
import { memberSlotNames } from '../../src/postgres/member-slots.js';
import type { InstanceStatus } from '../../src/postgres/queries.js';
import { historyValue, isoLocal, parseHistoryFile } from '../../src/postgres/timeline-history.js';

const dirs: string[] = [];
function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'pgwarden-pg-instance-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function member(name: string, data: Partial<Member['data']> = {}): Member {
  return {
    name,
    version: '1',
    data: {
      raw: {},
      state: 'running',
      role: 'replica',
      tags: {},
      pendingRestart: false,
      pause: false,
      ...data,
    },
  };
}

function cluster(members: readonly Member[], history?: Cluster['history']): Cluster {
  return {
    scope: 'demo',
    status: { optime: 0n, slots: {}, retainSlots: [] },
    members,
    sync: { members: [] },
    ...(history ? { history } : {}),
  };
}

describe('timeline history (the history key as update_history builds it)', () => {
  it('parses <tli>.history rows, skipping comments and junk', () => {
    const text =
      '1\t0/3000060\tno recovery target specified\n# comment\n\nbad line\n2\t1/A0\tbefore 2000-01-01\n';
    expect(parseHistoryFile(text)).toEqual([
      [1, 0x3000060n, 'no recovery target specified'],
      [2, (1n << 32n) + 0xa0n, 'before 2000-01-01'],
    ]);
  });

  it('formats an mtime as Python isoformat with microseconds only when non-zero', () => {
    expect(isoLocal(1_700_000_000_123_456_000n)).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.123456[+-]\d\d:\d\d$/,
    );
    expect(isoLocal(1_700_000_000_000_000_000n)).toMatch(/T\d\d:\d\d:\d\d[+-]\d\d:\d\d$/);
  });

  it('stamps the newest row with the file mtime and this member; keeps known timestamps', () => {
    const dataDir = scratch();
    mkdirSync(join(dataDir, 'pg_wal'));
    const file = join(dataDir, 'pg_wal', '00000003.history');
    writeFileSync(
      file,
      '1\t0/3000060\tno recovery target specified\n2\t0/5000060\tno recovery target specified\n',
    );
    utimesSync(file, 1_700_000_000, 1_700_000_000);
    const known = cluster([], {
      version: '1',
      raw: '',
      lines: [{ timeline: 1, lsn: 0x3000060n, reason: 'r', timestamp: 'T1', newLeader: 'pg2' }],
    });
    const value = historyValue({
      timeline: 3,
      cluster: known,
      dataDir,
      name: 'pg1',
      maxTimelines: undefined,
    });
    const rows = JSON.parse(value ?? 'null') as unknown[][];
    expect(rows[0]).toEqual([1, 50331744, 'no recovery target specified', 'T1', 'pg2']);
    expect(rows[1]?.slice(0, 3)).toEqual([2, 83886176, 'no recovery target specified']);
    expect(rows[1]?.[3]).toBe(isoLocal(1_700_000_000_000_000_000n));
    expect(rows[1]?.[4]).toBe('pg1');
    const kept = historyValue({ timeline: 3, cluster: known, dataDir, name: 'pg1', maxTimelines: 1 });
    expect((JSON.parse(kept ?? 'null') as unknown[][]).map((r) => r[0])).toEqual([2]);
  });

  it('writes nothing when the key already names the new leader, [] on timeline 1 over an old history', () => {
    const dataDir = scratch();
    const done = cluster([], {
      version: '1',
      raw: '',
      lines: [{ timeline: 1, lsn: 1n, reason: 'r', timestamp: 'T', newLeader: 'pg1' }],
    });
    expect(
      historyValue({ timeline: 2, cluster: done, dataDir, name: 'pg1', maxTimelines: 0 }),
    ).toBeUndefined();
    expect(historyValue({ timeline: 1, cluster: done, dataDir, name: 'pg1', maxTimelines: 0 })).toBe('[]');
    expect(historyValue({ timeline: 1, cluster: cluster([]), dataDir, name: 'pg1', maxTimelines: 0 })).toBe(
      undefined,
    );
    expect(historyValue({ timeline: 4, cluster: cluster([]), dataDir, name: 'pg1', maxTimelines: 0 })).toBe(
      undefined,
    );
  });
});

describe('member slots', () => {
  it('one per other member streaming from us, named as Patroni names slots', () => {
    const c = cluster([
      member('pg1'),
      member('Pg-2'),
      member('pg3', { tags: { replicatefrom: 'pg2' } }),
      member('pg4', { tags: { replicatefrom: 'pg1' } }),
    ]);
    expect([...memberSlotNames(c, 'pg1')].sort()).toEqual(['pg4', 'pg_2']);
  });
});

describe('role callbacks (which callback a start, restart or inspection fires)', () => {
  function harness(): { readonly fired: string[]; readonly cb: RoleCallbacks; role: string } {
    const h = { fired: [] as string[], role: 'uninitialized', cb: undefined as unknown as RoleCallbacks };
    h.cb = new RoleCallbacks(
      {
        call: (action: CallbackAction, role: string) => void h.fired.push(`${action}/${role}`),
        setCommands: () => undefined,
      },
      () => h.role,
    );
    return h;
  }

  it('a start fires on_start, a restart on_restart, a former primary back as replica on_role_change', () => {
    const h = harness();
    h.role = 'replica';
    h.cb.startEnded(h.cb.startBegins('replica', 'uninitialized'), true);
    h.cb.restartBegins();
    h.cb.startEnded(h.cb.startBegins('replica', 'replica'), true);
    h.role = 'replica';
    h.cb.startEnded(h.cb.startBegins('replica', 'demoted'), false);
    expect(h.fired).toEqual(['on_start/replica', 'on_restart/replica', 'on_role_change/replica']);
  });

  it('a start that failed leaves its callback to the inspection that sees PostgreSQL running', () => {
    const h = harness();
    h.role = 'master';
    h.cb.restartBegins();
    h.cb.startEnded(h.cb.startBegins('primary', 'master'), false);
    expect(h.fired).toEqual([]);
    h.cb.seenRunning();
    h.cb.seenRunning();
    expect(h.fired).toEqual(['on_restart/master']);
  });

  it('found running at agent start: on_start once', () => {
    const h = harness();
    h.role = 'replica';
    h.cb.seenRunning();
    h.cb.seenRunning();
    expect(h.fired).toEqual(['on_start/replica']);
  });

  it('nothing fires during a bootstrap; post_bootstrap done fires on_start', () => {
    const h = harness();
    h.cb.bootstrapBegins();
    h.role = 'master';
    h.cb.seenRunning();
    h.cb.fire('on_stop');
    expect(h.fired).toEqual([]);
    h.cb.bootstrapDone();
    h.cb.seenRunning();
    expect(h.fired).toEqual(['on_start/master']);
  });
});

describe('data directory', () => {
  it('missing counts as empty; a file is inaccessible', () => {
    const d = scratch();
    expect(dataDirState(join(d, 'missing'))).toBe('empty');
    writeFileSync(join(d, 'file'), '');
    expect(dataDirState(join(d, 'file'))).toBe('inaccessible');
    expect(dataDirState(d)).toBe('populated');
  });

  it('wipe empties a symlinked pg_wal target too; move aside renames with a timestamp', () => {
    const d = scratch();
    const data = join(d, 'data');
    const wal = join(d, 'wal');
    mkdirSync(join(data, 'base'), { recursive: true });
    mkdirSync(wal);
    writeFileSync(join(wal, '000000010000000000000001'), 'x');
    symlinkSync(wal, join(data, 'pg_wal'));
    wipeDataDir(data);
    expect(readdirSync(data)).toEqual([]);
    expect(readdirSync(wal)).toEqual([]);
    const aside = moveDataDirAside(data, new Date(2026, 0, 2, 3, 4, 5));
    expect(aside).toBe(`${data}_2026-01-02-03-04-05`);
    expect(existsSync(data)).toBe(false);
  });
});

describe('agent wiring', () => {
  it('resolves a member to its PostgreSQL address and database', () => {
    const p = peerPostgres(
      member('pg2', {
        connUrl: 'postgres://[::1]:5433/my%20db',
        role: 'master',
        checkpointAfterPromote: false,
      }),
    );
    expect(p).toEqual({
      name: 'pg2',
      address: { host: '::1', port: 5433 },
      dbname: 'my db',
      role: 'master',
      checkpointAfterPromote: false,
    });
    expect(peerPostgres(member('pg3', { connUrl: 'postgres://h' }))).toMatchObject({
      address: { host: 'h', port: 5432 },
      dbname: undefined,
    });
    expect(peerPostgres(member('pg4')).address).toBeUndefined();
  });

  it('a replica position is the further of received and replayed', () => {
    const st = (s: Partial<InstanceStatus>): InstanceStatus =>
      ({ inRecovery: true, replayPaused: false, ...s }) as InstanceStatus;
    expect(walPosition(st({ receiveLsn: 5n, replayLsn: 7n }))).toBe(7n);
    expect(walPosition(st({ receiveLsn: 9n, replayLsn: 7n }))).toBe(9n);
    expect(walPosition(st({ inRecovery: false, flushLsn: 3n }))).toBe(3n);
  });
});
