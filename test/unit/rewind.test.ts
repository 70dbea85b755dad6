import { describe, expect, it } from 'vitest';
import {
  configurationAllowsRewind,
  localPositionFromControldata,
  parseTimelineHistory,
  rewindDsn,
  rewindNeeded,
} from '../../src/postgres/rewind.js';

const cd = (entries: Record<string, string>): ReadonlyMap<string, string> => new Map(Object.entries(entries));
const never = (): Promise<bigint | undefined> => Promise.reject(new Error('pg_waldump must not run'));

describe('pg_rewind support (spec 6.9)', () => {
  it('allows rewind with wal_log_hints or data checksums', () => {
    expect(configurationAllowsRewind(cd({ 'wal_log_hints setting': 'on' }))).toBe(true);
    expect(configurationAllowsRewind(cd({ 'Data page checksum version': '1' }))).toBe(true);
    expect(
      configurationAllowsRewind(cd({ 'wal_log_hints setting': 'off', 'Data page checksum version': '0' })),
    ).toBe(false);
    expect(configurationAllowsRewind(cd({}))).toBe(false);
  });

  it('reads the local position from pg_controldata like Patroni', () => {
    expect(
      localPositionFromControldata(
        cd({
          'Database cluster state': 'shut down',
          'Latest checkpoint location': '0/6000028',
          "Latest checkpoint's TimeLineID": '1',
        }),
      ),
    ).toEqual({ inRecovery: false, timeline: 1, lsn: 0x6000028n });
    expect(
      localPositionFromControldata(
        cd({
          'Database cluster state': 'shut down in recovery',
          'Minimum recovery ending location': '0/5000100',
          "Min recovery ending loc's timeline": '2',
        }),
      ),
    ).toEqual({ inRecovery: true, timeline: 2, lsn: 0x5000100n });
    // A replica that was a primary when it stopped: the checkpoint counts.
    expect(
      localPositionFromControldata(
        cd({
          'Database cluster state': 'shut down in recovery',
          'Minimum recovery ending location': '0/0',
          "Min recovery ending loc's timeline": '0',
          'Latest checkpoint location': '0/3000060',
          "Latest checkpoint's TimeLineID": '1',
        }),
      ),
    ).toEqual({ inRecovery: false, timeline: 1, lsn: 0x3000060n });
    expect(localPositionFromControldata(cd({ 'Database cluster state': 'in production' }))).toBeUndefined();
  });

  it('parses a timeline history file', () => {
    expect(
      parseTimelineHistory('1\t0/5018038\tno recovery target specified\n\n2\t0/7000000\treason\n'),
    ).toEqual([
      [1, 0x5018038n],
      [2, 0x7000000n],
    ]);
  });

  it('decides whether a rewind is needed', async () => {
    const history = '1\t0/5018038\tno recovery target specified\n';
    // Same timeline: nothing to do; our timeline ahead of the primary's: rewind.
    expect(await rewindNeeded({ inRecovery: false, timeline: 2, lsn: 1n }, { timeline: 2 }, never)).toBe(
      false,
    );
    expect(await rewindNeeded({ inRecovery: false, timeline: 3, lsn: 1n }, { timeline: 2 }, never)).toBe(
      true,
    );
    // Former primary whose checkpoint is past the switch point (killed, then crash recovery): rewind.
    expect(
      await rewindNeeded(
        { inRecovery: false, timeline: 1, lsn: 0x6000028n },
        { timeline: 2, history },
        never,
      ),
    ).toBe(true);
    // Replica that replayed up to the switch point: no rewind; past it: rewind.
    expect(
      await rewindNeeded({ inRecovery: true, timeline: 1, lsn: 0x5018038n }, { timeline: 2, history }, never),
    ).toBe(false);
    expect(
      await rewindNeeded({ inRecovery: true, timeline: 1, lsn: 0x5018039n }, { timeline: 2, history }, never),
    ).toBe(true);
    // Former primary shut down cleanly: no rewind when its shutdown checkpoint ends exactly at the switch point.
    const local = { inRecovery: false, timeline: 1, lsn: 0x5017fc0n };
    expect(await rewindNeeded(local, { timeline: 2, history }, () => Promise.resolve(0x5018038n))).toBe(
      false,
    );
    expect(await rewindNeeded(local, { timeline: 2, history }, () => Promise.resolve(undefined))).toBe(true);
    // Our timeline is not in the primary's history.
    expect(
      await rewindNeeded(
        { inRecovery: true, timeline: 2, lsn: 1n },
        { timeline: 4, history: '1\t0/10\tx\n3\t0/20\ty\n' },
        never,
      ),
    ).toBe(true);
  });

  it('builds the --source-server connection string', () => {
    expect(
      rewindDsn({
        source: { host: '127.0.0.1', port: 5433 },
        user: { username: 'rewind_user' },
        database: 'postgres',
      }),
    ).toBe('dbname=postgres user=rewind_user host=127.0.0.1 port=5433 target_session_attrs=read-write');
  });

  it("passes the rewind user's SSL keywords in the --source-server string, in Patroni's format_dsn order", () => {
    expect(
      rewindDsn({
        source: { host: '127.0.0.1', port: 5433 },
        user: {
          username: 'rewind_user',
          connectionParams: {
            sslrootcert: '/c/ca.crt',
            sslmode: 'verify-ca',
            sslkey: '/c/k.key',
            sslcert: '/c/c.crt',
          },
        },
        database: 'postgres',
      }),
    ).toBe(
      'dbname=postgres user=rewind_user host=127.0.0.1 port=5433 sslmode=verify-ca sslcert=/c/c.crt sslkey=/c/k.key sslrootcert=/c/ca.crt target_session_attrs=read-write',
    );
  });
});
