import { describe, expect, it } from 'vitest';
import { resolveBinary } from '../../src/postgres/binaries.js';
import { basebackupArgs } from '../../src/postgres/basebackup.js';
import { standbyClusterOf } from '../../src/model/standby-cluster.js';
import { archiveCommandOf, buildArchiverCommand } from '../../src/postgres/archive-checkpoint.js';
import {
  buildReplicaSettings,
  buildServerParameters,
  cmdlineArgs,
  formatConninfo,
  formatToolOptions,
  parseListen,
  parseSize,
  quoteConfValue,
  renderHbaLines,
  renderPgpass,
  renderPostgresqlConf,
  slotNameForMember,
  type ToolOptions,
} from '../../src/postgres/config-writer.js';
import { initdbArgs } from '../../src/postgres/initdb.js';
import { parseControldata, shellQuote, summarizeControldata } from '../../src/postgres/pg-ctl.js';

describe('formatToolOptions', () => {
  const cases: readonly [string, ToolOptions | null, readonly string[], number][] = [
    [
      'list of flags and maps',
      [{ encoding: 'UTF8' }, 'data-checksums'],
      ['--encoding=UTF8', '--data-checksums'],
      0,
    ],
    ['numbers are stringified', [{ 'max-rate': 100 }], ['--max-rate=100'], 0],
    ['plain map', { encoding: 'UTF8', locale: 'C' }, ['--encoding=UTF8', '--locale=C'], 0],
    ['plain map skips empty values', { encoding: '', 'data-checksums': true }, ['--data-checksums'], 0],
    ['null', null, [], 0],
    ['two keys in one map', [{ a: 'x', b: 'y' }], [], 1],
    ['non-string value', [{ a: ['x'] }], [], 1],
    ['not allowed flag', ['pgdata', 'data-checksums'], ['--data-checksums'], 1],
    ['not allowed key', [{ pwfile: '/x' }], [], 1],
    ['wrong entry type', [42] as unknown as ToolOptions, [], 1],
  ];
  it.each(cases)('%s', (_name, options, args, errors) => {
    const r = formatToolOptions('initdb', options, ['pgdata', 'pwfile']);
    expect(r.args).toEqual(args);
    expect(r.errors).toHaveLength(errors);
  });

  it('initdbArgs adds the data dir and superuser, refuses bad options', () => {
    expect(initdbArgs('/d', [{ encoding: 'UTF8' }, 'data-checksums'], 'postgres')).toEqual([
      '-D',
      '/d',
      '--encoding=UTF8',
      '--data-checksums',
      '--username=postgres',
    ]);
    expect(() => initdbArgs('/d', ['nosync'])).toThrow(/nosync option for initdb is not allowed/);
  });

  it("basebackupArgs: the replication user's SSL keywords go into the dsn (TLS-only pg_hba)", () => {
    const r = basebackupArgs({
      dataDir: '/d',
      source: { host: '127.0.0.1', port: 5361 },
      replication: {
        username: 'replicator',
        connectionParams: {
          sslmode: 'verify-ca',
          sslcert: '/c.crt',
          sslkey: '/c.key',
          sslrootcert: '/ca.crt',
        },
      },
    });
    expect(r.args).toContain(
      '--dbname=dbname=postgres user=replicator host=127.0.0.1 port=5361 sslmode=verify-ca sslcert=/c.crt sslkey=/c.key sslrootcert=/ca.crt',
    );
  });

  it('basebackupArgs: -X stream -c fast, dsn, user options; a checkpoint option replaces -c fast', () => {
    const r = basebackupArgs({
      dataDir: '/d2',
      source: { host: '127.0.0.1', port: 5432 },
      replication: { username: 'rep user' },
      options: [{ 'max-rate': '100M' }, { host: 'evil' }],
    });
    expect(r.args).toEqual([
      '--pgdata=/d2',
      '-X',
      'stream',
      '-c',
      'fast',
      '--dbname=dbname=postgres user=rep\\ user host=127.0.0.1 port=5432',
      '--max-rate=100M',
    ]);
    expect(r.errors).toEqual(['host option for basebackup is not allowed']);
    const c = basebackupArgs({
      dataDir: '/d2',
      source: { host: 'h', port: 1 },
      replication: { username: 'r' },
      options: [{ checkpoint: 'spread' }],
    });
    expect(c.args).not.toContain('fast');
    expect(c.args).toContain('--checkpoint=spread');
  });
});

describe('slotNameForMember', () => {
  it.each([
    ['node1', 'node1'],
    ['Node-2.dc1', 'node_2_dc1'],
    ['a b', 'au0032b'],
    ['pg@host', 'pgu0064host'],
    ['süd', 'su0252d'],
    ['ÄÖ', 'u0228u0246'],
    ['节点', 'u33410u28857'],
    ['😀', 'u128512'],
    ['x'.repeat(70), 'x'.repeat(63)],
    ['a'.repeat(60) + '/b', 'a'.repeat(60) + 'u00'],
  ])('%s -> %s', (name, slot) => {
    expect(slotNameForMember(name)).toBe(slot);
  });
});

describe('pgpass', () => {
  it.each([
    [{ host: '127.0.0.1', port: 5432, user: 'rep', password: 'pw' }, '127.0.0.1:5432:*:rep:pw'],
    [{ host: 'h', port: '5432', user: 'u', password: 'a:b\\c' }, 'h:5432:*:u:a\\:b\\\\c'],
    [{ host: 'h1,h2', port: 5432, user: 'u', password: 'p' }, 'h1:5432:*:u:p\nh2:5432:*:u:p'],
    [{ host: '', user: 'u', password: 'p' }, '*:*:*:u:p'],
    [{ host: 'h', port: 1, user: 'u' }, ''],
    [{ host: '::1', port: 1, user: 'u:x', password: '' }, '\\:\\:1:1:*:u\\:x:*'],
  ])('%j', (record, line) => {
    expect(renderPgpass(record)).toBe(line);
  });
});

describe('server parameters (CMDLINE_OPTIONS)', () => {
  const base = { scope: 'demo', listen: '127.0.0.1:5433', majorVersion: 150000 } as const;

  it('defaults', () => {
    const sp = buildServerParameters(base);
    expect(Object.fromEntries(sp.cmdline)).toEqual({
      listen_addresses: '127.0.0.1',
      port: '5433',
      cluster_name: 'demo',
      wal_level: 'replica',
      hot_standby: 'on',
      max_connections: '100',
      max_wal_senders: '10',
      max_prepared_transactions: '0',
      max_locks_per_transaction: '64',
      track_commit_timestamp: 'off',
      max_replication_slots: '10',
      max_worker_processes: '8',
      wal_log_hints: 'on',
    });
    expect(sp.parameters.get('wal_keep_size')).toBe('128MB');
    expect(sp.parameters.has('wal_keep_segments')).toBe(false);
    expect(sp.warnings).toEqual([]);
    expect(cmdlineArgs(sp.cmdline).slice(0, 4)).toEqual([
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'port=5433',
    ]);
  });

  it.each([
    ['max_connections', 200, '200', 0],
    ['max_connections', '150', '150', 0],
    ['max_connections', 10, '100', 1],
    ['max_connections', 'lots', '100', 1],
    ['max_wal_senders', 2, '10', 1],
    ['max_locks_per_transaction', 31, '64', 1],
    ['max_replication_slots', 4, '4', 0],
    ['max_worker_processes', 1, '8', 1],
    ['max_prepared_transactions', -1, '0', 1],
    ['max_prepared_transactions', 5, '5', 0],
    ['wal_level', 'logical', 'logical', 0],
    ['wal_level', 'minimal', 'replica', 1],
    ['track_commit_timestamp', true, 'on', 0],
    ['track_commit_timestamp', 'maybe', 'off', 1],
    ['hot_standby', 'off', 'on', 1],
    ['wal_log_hints', 'off', 'off', 0],
    ['port', 1234, '5433', 1],
    ['listen_addresses', '*', '127.0.0.1', 1],
    ['cluster_name', 'other', 'demo', 1],
  ] as const)('dynamic %s=%j -> %s', (name, value, expected, warnings) => {
    const sp = buildServerParameters({ ...base, dynamicParameters: { [name]: value } });
    expect(Object.fromEntries(sp.cmdline)[name]).toBe(expected);
    expect(sp.warnings).toHaveLength(warnings);
  });

  it('local parameters cannot set command-line GUCs but set others; names are case-insensitive', () => {
    const sp = buildServerParameters({
      ...base,
      dynamicParameters: { Max_Connections: 50, work_mem: '8MB' },
      localParameters: { max_connections: 500, work_mem: '16MB', shared_buffers: '1GB' },
    });
    expect(sp.parameters.get('max_connections')).toBe('50');
    expect(sp.parameters.get('work_mem')).toBe('16MB');
    expect(sp.parameters.get('shared_buffers')).toBe('1GB');
    expect(sp.warnings).toHaveLength(1);
  });

  it('wal_keep_segments converts to wal_keep_size on 13+, and back before 13', () => {
    expect(
      buildServerParameters({ ...base, dynamicParameters: { wal_keep_segments: 4 } }).parameters.get(
        'wal_keep_size',
      ),
    ).toBe('64MB');
    const pg12 = buildServerParameters({
      ...base,
      majorVersion: 120000,
      dynamicParameters: { wal_keep_size: '1GB' },
    });
    expect(pg12.parameters.get('wal_keep_segments')).toBe('64');
    expect(pg12.parameters.has('wal_keep_size')).toBe(false);
    expect(parseSize('16384kB', 'MB')).toBe(16);
  });

  it.each([
    ['127.0.0.1:5432', '127.0.0.1', 5432],
    ['127.0.0.1,10.0.0.1:6000', '127.0.0.1,10.0.0.1', 6000],
    ['*:5432', '*', 5432],
    ['[::1]:5432', '::1', 5432],
    ['localhost', 'localhost', 5432],
  ])('parseListen(%s)', (listen, addresses, port) => {
    expect(parseListen(listen)).toEqual({ listenAddresses: addresses, port });
  });

  it('parseListen rejects a bad port', () => {
    expect(() => parseListen('127.0.0.1:abc')).toThrow(/invalid port/);
  });
});

describe('postgresql.conf and pg_hba.conf', () => {
  it('renders the header, the include, sorted parameters, hba/ident files and the recovery section', () => {
    const text = renderPostgresqlConf({
      parameters: new Map([
        ['wal_level', 'replica'],
        ['archive_command', "cp '%p' /x\\y"],
        ['primary_conninfo', 'ignored here'],
        ['max_connections', '100'],
      ]),
      hbaFile: '/data/pg_hba.conf',
      identFile: '/data/pg_ident.conf',
      recovery: [['recovery_target_timeline', 'latest']],
    });
    expect(text).toBe(
      [
        '# Do not edit this file manually!',
        '# It will be overwritten by Patroni!',
        "include 'postgresql.base.conf'",
        '',
        "archive_command = 'cp ''%p'' /x\\\\y'",
        "max_connections = '100'",
        "wal_level = 'replica'",
        "hba_file = '/data/pg_hba.conf'",
        "ident_file = '/data/pg_ident.conf'",
        '',
        '# recovery.conf',
        "recovery_target_timeline = 'latest'",
        '',
      ].join('\n'),
    );
  });

  it('keeps a configured hba_file and a custom include', () => {
    const text = renderPostgresqlConf({
      parameters: { hba_file: '/etc/hba' },
      include: "/etc/my'conf",
      hbaFile: '/data/pg_hba.conf',
    });
    expect(text).toContain("include '/etc/my''conf'");
    expect(text).toContain("hba_file = '/etc/hba'");
    expect(text).not.toContain('/data/pg_hba.conf');
  });

  it('pg_hba lines', () => {
    expect(renderHbaLines(['local all all trust', 'host all all 0.0.0.0/0 md5'])).toBe(
      '# Do not edit this file manually!\n# It will be overwritten by Patroni!\nlocal all all trust\nhost all all 0.0.0.0/0 md5\n',
    );
  });

  it('quoteConfValue doubles quotes and backslashes', () => {
    expect(quoteConfValue("it's a\\b")).toBe("'it''s a\\\\b'");
  });
});

describe('replica settings', () => {
  it('primary_conninfo with passfile, slot, timeline latest, empty targets', () => {
    const r = buildReplicaSettings({
      memberName: 'node-2',
      primary: { host: '127.0.0.1', port: 5432 },
      replication: { username: 'replicator', password: "p:w'd" },
      majorVersion: 150000,
      pgpassPath: '/home/pg/my pgpass',
      recoveryConf: { restore_command: 'cp /a/%f %p', recovery_target_time: 'x', primary_slot_name: 'nope' },
    });
    expect(Object.fromEntries(r.recovery)).toEqual({
      primary_conninfo:
        'user=replicator passfile=/home/pg/my\\ pgpass host=127.0.0.1 port=5432 sslmode=prefer application_name=node-2 gssencmode=prefer channel_binding=prefer',
      primary_slot_name: 'node_2',
      recovery_target: '',
      recovery_target_lsn: '',
      recovery_target_name: '',
      recovery_target_time: '',
      recovery_target_timeline: 'latest',
      recovery_target_xid: '',
      restore_command: 'cp /a/%f %p',
    });
    expect(r.recovery.map(([n]) => n)).toEqual([...r.recovery.map(([n]) => n)].sort());
    expect(r.pgpass).toBe("127.0.0.1:5432:*:replicator:p\\:w'd");
    expect(r.standbySignal).toBe(true);
  });

  it('without a pgpass path the password goes into the conninfo, quoted; no slot without use_slots', () => {
    const r = buildReplicaSettings({
      memberName: 'Node 3',
      primary: { host: '10.0.0.1', port: 5433 },
      replication: { username: 'rep', password: "it's \\ me", sslmode: 'require' },
      majorVersion: 120000,
      useSlots: false,
    });
    const conninfo = new Map(r.recovery).get('primary_conninfo');
    expect(conninfo).toBe(
      "user=rep password=it\\'s\\ \\\\\\ me host=10.0.0.1 port=5433 sslmode=require application_name=Node\\ 3 gssencmode=prefer",
    );
    expect(new Map(r.recovery).has('primary_slot_name')).toBe(false);
    expect(r.pgpass).toBe('');
  });

  it('following nobody (nostream): the recovery settings without primary_conninfo, slot or pgpass', () => {
    const r = buildReplicaSettings({
      memberName: 'node-2',
      primary: undefined,
      replication: { username: 'replicator', password: 'secret' },
      majorVersion: 150000,
      pgpassPath: '/home/pg/pgpass',
      recoveryConf: { restore_command: 'cp /a/%f %p', archive_cleanup_command: 'true' },
    });
    expect(Object.fromEntries(r.recovery)).toEqual({
      archive_cleanup_command: 'true',
      recovery_target: '',
      recovery_target_lsn: '',
      recovery_target_name: '',
      recovery_target_time: '',
      recovery_target_timeline: 'latest',
      recovery_target_xid: '',
      restore_command: 'cp /a/%f %p',
    });
    expect(r.pgpass).toBe('');
  });

  it('a standby leader: the remote primary with standby_cluster.primary_slot_name and its recovery settings', () => {
    const r = buildReplicaSettings({
      memberName: 'node-2',
      primary: { host: 'db1,db2', port: 5432 },
      replication: { username: 'rep' },
      majorVersion: 160000,
      recoveryConf: { restore_command: 'local', recovery_min_apply_delay: '5s' },
      remote: { slot: 'pm-1' },
      overrides: { restore_command: 'remote %f %p', recovery_min_apply_delay: '1min' },
    });
    const m = new Map(r.recovery);
    expect(m.get('primary_slot_name')).toBe('pm_1');
    expect(m.get('primary_conninfo')).toContain('host=db1,db2 port=5432');
    expect(m.get('primary_conninfo')).toContain('target_session_attrs=read-write');
    expect(m.get('restore_command')).toBe('remote %f %p');
    expect(m.get('recovery_min_apply_delay')).toBe('1min');
  });

  it('a standby leader without standby_cluster.primary_slot_name uses no slot; archive alone keeps the overrides', () => {
    const noSlot = buildReplicaSettings({
      memberName: 'node-2',
      primary: { host: 'db1', port: 5432 },
      replication: { username: 'rep' },
      majorVersion: 160000,
      remote: {},
    });
    expect(new Map(noSlot.recovery).has('primary_slot_name')).toBe(false);
    expect(new Map(noSlot.recovery).get('primary_conninfo')).not.toContain('target_session_attrs');
    const archive = buildReplicaSettings({
      memberName: 'node-2',
      primary: undefined,
      replication: { username: 'rep' },
      majorVersion: 160000,
      remote: {},
      overrides: { restore_command: 'cp /arch/%f %p' },
    });
    expect(new Map(archive.recovery).get('restore_command')).toBe('cp /arch/%f %p');
    expect(new Map(archive.recovery).has('primary_conninfo')).toBe(false);
  });

  it('standbyClusterOf: Patroni is_standby_cluster (a truthy host, port or restore_command), typed settings', () => {
    expect(standbyClusterOf({})).toBeUndefined();
    expect(standbyClusterOf({ standby_cluster: null })).toBeUndefined();
    expect(standbyClusterOf({ standby_cluster: { primary_slot_name: 'x' } })).toBeUndefined();
    expect(standbyClusterOf({ standby_cluster: { host: '', port: 0, restore_command: '' } })).toBeUndefined();
    expect(
      standbyClusterOf({
        standby_cluster: {
          host: 'h',
          port: '5433',
          primary_slot_name: 'pm_1',
          create_replica_methods: ['backup_restore', 'basebackup'],
          recovery_min_apply_delay: 1000,
        },
      }),
    ).toEqual({
      host: 'h',
      port: 5433,
      primarySlotName: 'pm_1',
      createReplicaMethods: ['backup_restore', 'basebackup'],
      recoveryMinApplyDelay: '1000',
    });
    expect(standbyClusterOf({ standby_cluster: { restore_command: 'cp %f %p' } })).toEqual({
      restoreCommand: 'cp %f %p',
    });
  });

  it('buildArchiverCommand: %p, %f, %r and %% as Patroni substitutes them', () => {
    expect(
      buildArchiverCommand('arch --p %p --f %f --r %r 100%% %x', '/d/pg_wal', '000000010000000000000003'),
    ).toBe(
      'arch --p /d/pg_wal/000000010000000000000003 --f 000000010000000000000003 --r 000000010000000000000001 100% %x',
    );
    expect(
      archiveCommandOf(
        new Map([
          ['archive_mode', 'on'],
          ['archive_command', 'cp %p /a/%f'],
        ]),
      ),
    ).toBe('cp %p /a/%f');
    expect(
      archiveCommandOf(
        new Map([
          ['archive_mode', 'off'],
          ['archive_command', 'cp'],
        ]),
      ),
    ).toBeUndefined();
  });

  it('refuses PostgreSQL < 12', () => {
    expect(() =>
      buildReplicaSettings({
        memberName: 'n',
        primary: { host: 'h', port: 1 },
        replication: { username: 'r' },
        majorVersion: 110000,
      }),
    ).toThrow(/PostgreSQL < 12/);
  });

  it('formatConninfo keeps libpq keyword order and drops password when a passfile is set', () => {
    expect(
      formatConninfo({ port: 1, host: 'h', password: 'x', passfile: '/p', user: 'u', dbname: 'd' }),
    ).toBe('dbname=d user=u passfile=/p host=h port=1');
  });
});

describe('binaries and pg_ctl helpers', () => {
  it('resolveBinary honours bin_dir and bin_name', () => {
    expect(resolveBinary({}, 'pg_ctl')).toBe('pg_ctl');
    expect(resolveBinary({ binDir: '/usr/lib/postgresql/15/bin' }, 'initdb')).toBe(
      '/usr/lib/postgresql/15/bin/initdb',
    );
    expect(resolveBinary({ binDir: '/opt/pg', binName: { pg_ctl: 'pg_ctl15' } }, 'pg_ctl')).toBe(
      '/opt/pg/pg_ctl15',
    );
  });

  it('shellQuote', () => {
    expect(shellQuote('-c')).toBe('-c');
    expect(shellQuote('listen_addresses=127.0.0.1')).toBe('listen_addresses=127.0.0.1');
    expect(shellQuote("a b'c")).toBe(`'a b'\\''c'`);
  });

  it('parses pg_controldata output', () => {
    const data = parseControldata(
      [
        'pg_control version number:            1300',
        'Database system identifier:           7312345678901234567',
        'Database cluster state:               shut down',
        'pg_control last modified:             Sat 22 Nov 2026 04:00:00 AM UTC',
        'Latest checkpoint location:           0/3000028',
        "Latest checkpoint's REDO location:    0/3000028",
        "Latest checkpoint's TimeLineID:       2",
      ].join('\n'),
    );
    expect(data.get('pg_control last modified')).toBe('Sat 22 Nov 2026 04:00:00 AM UTC');
    expect(summarizeControldata(data)).toEqual({
      systemIdentifier: '7312345678901234567',
      clusterState: 'shut down',
      latestCheckpointLocation: 0x3000028n,
      latestCheckpointRedoLocation: 0x3000028n,
      timeline: 2,
    });
  });
});
