/**
 * create_replica_methods (Patroni 3.0.2's create_replica): the argv of a custom method, the methods tried without a
 * member to clone from, and the order with a failing method (data directory emptied between tries unless keep_data).
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createReplica,
  customMethodArgv,
  methodsToTry,
  replicaConnstring,
  worksWithoutLeader,
} from '../../src/postgres/replica-methods.js';
import { dataDirEmpty, removeDataDir } from '../../src/postgres/data-dir.js';

const dir = mkdtempSync(join(tmpdir(), 'pgwarden-rm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ctx = {
  scope: 'demo',
  dataDir: '/data/pg',
  connstring: 'dbname=postgres user=rep host=10.0.0.1 port=5432',
};

describe('custom replica methods: argv', () => {
  it('passes the section keys in order, then --scope --role --datadir --connstring (Python spelling of booleans)', () => {
    expect(
      customMethodArgv(
        'wal_e',
        { command: "/usr/bin/wal-e --x 'a b'", envdir: '/etc/env', keep_data: true, threads: 4 },
        ctx,
      ),
    ).toEqual([
      '/usr/bin/wal-e',
      '--x',
      'a b',
      '--envdir=/etc/env',
      '--keep_data=True',
      '--threads=4',
      '--scope=demo',
      '--role=replica',
      '--datadir=/data/pg',
      `--connstring=${ctx.connstring}`,
    ]);
  });

  it('no_params: only the method own keys, without the flags', () => {
    expect(
      customMethodArgv(
        'restore',
        { command: 'restore.sh', no_params: true, no_master: 1, keep_data: false, from: 's3' },
        ctx,
      ),
    ).toEqual(['restore.sh', '--from=s3']);
  });

  it('a user key of the same name is overridden in place; a missing command runs the method name', () => {
    expect(customMethodArgv('mycopy', { role: 'x', a: 'b' }, ctx)).toEqual([
      'mycopy',
      '--role=replica',
      '--a=b',
      '--scope=demo',
      '--datadir=/data/pg',
      `--connstring=${ctx.connstring}`,
    ]);
  });

  it('without a source only no_leader / no_master methods are tried', () => {
    const sections = {
      a: { command: 'a', no_master: true },
      b: { command: 'b' },
      c: { command: 'c', no_leader: 'on' },
    };
    expect(methodsToTry(['basebackup', 'a', 'b', 'c'], sections, true)).toEqual([
      'basebackup',
      'a',
      'b',
      'c',
    ]);
    expect(methodsToTry(['basebackup', 'a', 'b', 'c'], sections, false)).toEqual(['a', 'c']);
    expect(methodsToTry([], {}, true)).toEqual(['basebackup']);
    expect(worksWithoutLeader('basebackup', { no_leader: true })).toBe(false);
  });

  it('builds the connstring as Patroni does (dbname, user, host, port, libpq params; no password)', () => {
    expect(
      replicaConnstring(
        { host: '127.0.0.1', port: 5433, dbname: 'postgres' },
        { username: 'rep', password: 'secret', connectionParams: { sslmode: 'require' } },
      ),
    ).toBe('dbname=postgres user=rep host=127.0.0.1 port=5433 sslmode=require');
  });
});

describe('custom replica methods: running them in order', () => {
  const log = { info: (): void => undefined, warning: (): void => undefined, error: (): void => undefined };
  const base = (
    dataDir: string,
    methods: readonly string[],
    sections: Record<string, Record<string, unknown>>,
  ) => ({
    scope: 'demo',
    dataDir,
    methods,
    sections,
    source: { host: '127.0.0.1', port: 1, dbname: 'postgres' },
    replication: { username: 'rep', password: 'pw', connectionParams: {} },
    pgpassPath: join(dir, 'pgpass'),
    database: 'postgres',
    bins: {},
    log,
    cancelled: () => false,
    dataDirEmpty: () => readdirSync(dataDir).length === 0,
    wipe: () => {
      for (const e of readdirSync(dataDir)) rmSync(join(dataDir, e), { recursive: true, force: true });
    },
  });

  it('falls through a failing method to the next, emptying the data directory in between', async () => {
    const data = join(dir, 'data1');
    mkdirSync(data);
    const out = join(dir, 'calls.log');
    const failing = join(dir, 'fail.sh');
    writeFileSync(failing, `#!/bin/sh\necho "fail $*" >> ${out}\ntouch ${data}/junk\nexit 2\n`);
    const good = join(dir, 'good.sh');
    writeFileSync(
      good,
      `#!/bin/sh\necho "good $* PGPASSFILE=$PGPASSFILE" >> ${out}\nls ${data} >> ${out}\ntouch ${data}/PG_VERSION\n`,
    );
    chmodSync(failing, 0o755);
    chmodSync(good, 0o755);
    const used = await createReplica(
      base(data, ['first', 'second'], { first: { command: failing }, second: { command: good, opt: 'x' } }),
    );
    expect(used).toBe('second');
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines[0]).toBe(
      `fail --scope=demo --role=replica --datadir=${data} --connstring=dbname=postgres user=rep host=127.0.0.1 port=1`,
    );
    expect(lines[1]).toBe(
      `good --opt=x --scope=demo --role=replica --datadir=${data} --connstring=dbname=postgres user=rep host=127.0.0.1 port=1 PGPASSFILE=${join(dir, 'pgpass')}`,
    );
    expect(lines.slice(2)).toEqual([]); // junk was removed before the second method
    expect(readFileSync(join(dir, 'pgpass'), 'utf8')).toBe('127.0.0.1:1:*:rep:pw\n');
    expect(existsSync(join(data, 'PG_VERSION'))).toBe(true);
  });

  it('keep_data leaves the data directory as it is; all methods failing gives undefined', async () => {
    const data = join(dir, 'data2');
    mkdirSync(data);
    writeFileSync(join(data, 'keep-me'), '');
    const check = join(dir, 'check.sh');
    writeFileSync(check, `#!/bin/sh\n[ -e ${data}/keep-me ] && exit 5\nexit 6\n`);
    chmodSync(check, 0o755);
    const seen: string[] = [];
    const used = await createReplica({
      ...base(data, ['k', 'missing'], {
        k: { command: check, keep_data: true },
        missing: { command: join(dir, 'nope') },
      }),
      log: { ...log, error: (t: string) => seen.push(t) },
    });
    expect(used).toBeUndefined();
    expect(seen[0]).toBe(`Error creating replica using method k: ${check} exited with code=5`);
    expect(seen[1]).toMatch(/^Error creating replica using method missing: .*ENOENT/);
  });

  it('a custom method creates the data directory itself: none is made first, a populated one is removed', async () => {
    const data = join(dir, 'data3');
    const creates = join(dir, 'creates.sh');
    // Like a copytree restore: fails when the target exists at all.
    writeFileSync(
      creates,
      `#!/bin/sh\n[ -e ${data} ] && exit 7\nmkdir ${data} && touch ${data}/PG_VERSION\n`,
    );
    chmodSync(creates, 0o755);
    const real = {
      dataDirEmpty: () => dataDirEmpty(data),
      wipe: () => removeDataDir(data),
    };
    expect(await createReplica({ ...base(data, ['copy'], { copy: { command: creates } }), ...real })).toBe(
      'copy',
    );
    expect(existsSync(join(data, 'PG_VERSION'))).toBe(true);
    // Populated now: removed (not just emptied) before the method runs again.
    expect(await createReplica({ ...base(data, ['copy'], { copy: { command: creates } }), ...real })).toBe(
      'copy',
    );
    // A failing method leaves no half-made data directory behind.
    const half = join(dir, 'half.sh');
    writeFileSync(half, `#!/bin/sh\nmkdir -p ${data} && touch ${data}/base\nexit 3\n`);
    chmodSync(half, 0o755);
    expect(
      await createReplica({ ...base(data, ['half'], { half: { command: half } }), ...real }),
    ).toBeUndefined();
    expect(existsSync(data)).toBe(false);
  });
});
