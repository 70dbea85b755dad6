import { describe, expect, it } from 'vitest';
import { parseGucInt } from '../../src/model/guc-values.js';
import {
  gucValuesEqual,
  planReload,
  settingsToQuery,
  type EffectivePgConfig,
  type PgSettingRow,
} from '../../src/postgres/reload-plan.js';

const row = (
  name: string,
  setting: string,
  vartype: string,
  context: string,
  unit: string | null = null,
): PgSettingRow => ({ name, setting, unit, vartype, context });

/** What a PostgreSQL 15 started with shared_buffers=32MB, work_mem=4MB, max_connections=50 reports. */
const SETTINGS: readonly PgSettingRow[] = [
  row('shared_buffers', '4096', 'integer', 'postmaster', '8kB'),
  row('work_mem', '4096', 'integer', 'user', 'kB'),
  row('max_connections', '50', 'integer', 'postmaster'),
  row('wal_level', 'replica', 'enum', 'postmaster'),
  row('fsync', 'off', 'bool', 'sighup'),
  row('log_line_prefix', '%m [%p] ', 'string', 'sighup'),
  row('checkpoint_timeout', '300', 'integer', 'sighup', 's'),
  row('wal_keep_size', '128', 'integer', 'sighup', 'MB'),
  row('random_page_cost', '4', 'real', 'user'),
  row('port', '5432', 'integer', 'postmaster'),
  row('wal_buffers', '-1', 'integer', 'postmaster', '8kB'),
  row('wal_segment_size', '16777216', 'integer', 'internal', 'B'),
  row('wal_block_size', '8192', 'integer', 'internal'),
  row('server_version', '15.8', 'string', 'internal'),
  row('hba_file', '/data/pg_hba.conf', 'string', 'postmaster'),
];

const BASE: Readonly<Record<string, string>> = {
  shared_buffers: '32MB',
  work_mem: '4MB',
  max_connections: '50',
  wal_level: 'replica',
  fsync: 'off',
  log_line_prefix: '%m [%p] ',
  checkpoint_timeout: '5min',
  wal_keep_size: '128MB',
  random_page_cost: '4',
  port: '5432',
};

const cfg = (
  params: Readonly<Record<string, string | undefined>>,
  hba?: readonly string[],
): EffectivePgConfig => {
  const merged = new Map<string, string>();
  for (const [k, v] of Object.entries({ ...BASE, ...params })) if (v !== undefined) merged.set(k, v);
  return { parameters: merged, ...(hba ? { pgHba: hba } : {}) };
};

describe('gucValuesEqual / parseGucInt (Patroni utils.compare_values, parse_int)', () => {
  it.each([
    ['integer', '8kB', '4096', '32MB', true],
    ['integer', '8kB', '4096', '48MB', false],
    ['integer', '8kB', '4096', '4096', true],
    ['integer', 'kB', '4096', '4MB', true],
    ['integer', 'kB', '4096', '4096kB', true],
    ['integer', 's', '300', '5min', true],
    ['integer', 's', '300', '300s', true],
    ['integer', 'ms', '200', '0.2s', true],
    ['integer', null, '50', '0x32', true],
    ['integer', null, '50', 'fifty', false],
    ['real', null, '4', '4.0', true],
    ['real', null, '1e-06', '0.000001', true],
    ['bool', null, 'off', 'false', true],
    ['bool', null, 'on', 'OFF', false],
    ['bool', null, 'on', 'maybe', false],
    ['enum', null, 'replica', 'REPLICA', true],
    ['string', null, '%m [%p] ', '%m [%p] ', true],
    ['string', null, 'a', 'A', false],
  ] as const)('%s in %s: %s vs %s -> %s', (vartype, unit, old, value, equal) => {
    expect(gucValuesEqual(vartype, unit, old, value)).toBe(equal);
  });

  it.each([
    ['1', null, 1],
    [' 0x400 MB ', '16384kB', 64],
    ['1MB', 'kB', 1024],
    ['1000 ms', 's', 1],
    ['1TB', 'GB', undefined],
    ['6GB', '16MB', 384],
    ['4097.4kB', 'kB', 4097],
    ['4097.5kB', 'kB', 4098],
  ] as const)('parse_int(%s, %s) = %s', (value, unit, expected) => {
    expect(parseGucInt(value, unit)).toBe(expected);
  });
});

describe('planReload (Patroni 3.0.2 reload_config)', () => {
  const plan = (
    next: EffectivePgConfig,
    o: { previous?: EffectivePgConfig; running?: boolean; sighup?: boolean } = {},
  ): ReturnType<typeof planReload> =>
    planReload({
      previous: o.previous ?? cfg({}),
      next,
      running: o.running ?? true,
      settings: SETTINGS,
      sighup: o.sighup ?? false,
    });

  it.each([
    // name, new parameters, write+reload, restart-needed names, reload-applied names
    ['nothing changed', {}, false, [], []],
    ['same value spelled differently', { shared_buffers: '4096', work_mem: '4096kB' }, false, [], []],
    ['reload-only work_mem', { work_mem: '8MB' }, true, [], ['work_mem']],
    ['postmaster shared_buffers', { shared_buffers: '48MB' }, true, ['shared_buffers'], []],
    [
      'both kinds',
      { shared_buffers: '48MB', max_connections: '60', fsync: 'on' },
      true,
      ['shared_buffers', 'max_connections'],
      ['fsync'],
    ],
    ['a parameter removed', { random_page_cost: undefined }, true, [], ['random_page_cost']],
    ['wal_buffers -1 = the default 128 pages', { wal_buffers: '1MB' }, false, [], []],
    ['wal_buffers bigger than the default', { wal_buffers: '2MB' }, true, ['wal_buffers'], []],
  ] as const)('%s', (_name, params, changed, restart, reloaded) => {
    const p = plan(cfg(params));
    expect(p.writeConf).toBe(changed);
    expect(p.reload).toBe(changed);
    expect(p.restartNeeded.map((c) => c.name)).toEqual(restart);
    expect(p.reloadApplies.map((c) => c.name)).toEqual(reloaded);
  });

  it('keeps the old value with its unit and the new value for a pending restart (and 4.x reason values)', () => {
    expect(plan(cfg({ shared_buffers: '48MB' })).restartNeeded).toEqual([
      { name: 'shared_buffers', oldValue: '4096', newValue: '48MB', reasonOld: '32MB', reasonNew: '48MB' },
    ]);
    expect(plan(cfg({ work_mem: '8MB' })).reloadApplies).toEqual([
      { name: 'work_mem', oldValue: '4096kB', newValue: '8MB', reasonOld: '4MB', reasonNew: '8MB' },
    ]);
    expect(plan(cfg({ shared_buffers: '48MB' })).logs).toContainEqual({
      level: 'info',
      text: 'Changed shared_buffers from 4096 to 48MB (restart might be required)',
    });
  });

  it('drops a parameter PostgreSQL does not know, with a warning, without a reload for it alone', () => {
    const p = plan(cfg({ no_such_guc: '1' }));
    expect(p.parameters.has('no_such_guc')).toBe(false);
    expect(p.logs).toContainEqual({
      level: 'warning',
      text: 'Removing invalid parameter `no_such_guc` from postgresql.parameters',
    });
    expect(p.reload).toBe(false);
  });

  it('compares extension parameters (with a dot) with what was written before', () => {
    const previous = cfg({ 'pg_stat_statements.max': '1000' });
    expect(plan(cfg({ 'pg_stat_statements.max': '1000' }), { previous }).writeConf).toBe(false);
    expect(plan(cfg({ 'pg_stat_statements.max': '2000' }), { previous }).writeConf).toBe(true);
    expect(plan(cfg({}), { previous }).writeConf).toBe(true);
    expect(
      plan(cfg({ 'pg_stat_statements.max': '1000' }), { previous }).parameters.has('pg_stat_statements.max'),
    ).toBe(true);
  });

  it('rewrites pg_hba.conf and reloads when the pg_hba lines change', () => {
    const previous = cfg({}, ['local all all trust']);
    expect(plan(cfg({}, ['local all all trust']), { previous })).toMatchObject({
      writeHba: false,
      reload: false,
    });
    expect(
      plan(cfg({}, ['local all all trust', 'host all all 127.0.0.1/32 md5']), { previous }),
    ).toMatchObject({
      writeHba: true,
      writeConf: false,
      reload: true,
    });
    // hba_file set by the user: Patroni leaves pg_hba alone.
    expect(
      plan(cfg({ hba_file: '/etc/hba.conf' }, ['host all all 0.0.0.0/0 md5']), { previous }).writeHba,
    ).toBe(false);
  });

  it('reloads on SIGHUP even when nothing changed', () => {
    expect(plan(cfg({}), { sighup: true })).toMatchObject({ writeConf: false, reload: true });
  });

  it('does nothing while PostgreSQL is not running (the next start writes the files)', () => {
    expect(plan(cfg({ shared_buffers: '48MB' }), { running: false })).toMatchObject({
      writeConf: false,
      reload: false,
      restartNeeded: [],
    });
  });

  it('flags a changed port as a change of the local connection address', () => {
    const p = plan(cfg({ port: '5433' }));
    expect(p.localConnectionChanged).toBe(true);
    expect(p.restartNeeded.map((c) => c.name)).toEqual(['port']);
  });

  it('asks pg_settings about new, old and wal_buffers-related names, never recovery parameters', () => {
    expect(
      settingsToQuery(
        cfg({ random_page_cost: undefined }),
        cfg({ wal_buffers: '1MB', primary_conninfo: 'x' }),
      ),
    ).toEqual([...Object.keys(BASE), 'wal_buffers', 'wal_block_size', 'wal_segment_size'].sort());
  });
});
