/**
 * `pgwarden agent --validate-config / --generate-sample-config / --generate-config` next to the real Patroni 4.1.4
 * (`bin/patroni` of the shared/ checkout) on the same files, the same etcd and the same running PostgreSQL 15:
 * - validate: the same exit code for each case of a table of files (valid, a listen port in use with and without
 *   -i, loopback connect addresses, a bad data directory, a missing bin_dir, an unreachable etcd, a missing or
 *   mistyped key, before_stop), pgwarden naming the dotted path; `-p` prints the same YAML; a key pgwarden refuses
 *   (Patroni accepts it and ignores it) fails pgwarden's check only, with its path and what to do;
 * - generate: byte-identical documents for the sample and for a running instance (DSN, stdout and FILE), and the
 *   same exit code and message for a DSN that cannot be parsed and for a user without superuser privilege.
 */
import { chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { PATRONI4, PG_BIN, runCommand } from '../harness/patroni.js';
import { freePort, removeDir, tempDir } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

type Tree = Record<string, unknown>;

const PGWARDEN = join(REPO_ROOT, 'bin', 'run.js');
const env = { ...process.env, PATH: `${PG_BIN}:${process.env['PATH'] ?? '/usr/bin:/bin'}` };

function postgresUid(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const f = line?.split(':') ?? [];
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

async function asPostgres(cmd: string, args: readonly string[]): Promise<void> {
  const r = await runCommand('runuser', ['-u', 'postgres', '--', cmd, ...args], { env, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`${cmd} failed: ${r.stderr}${r.stdout}`);
}

const patroni = (args: readonly string[], cwd: string) => runCommand(PATRONI4, args, { env, cwd });
const pgwarden = (args: readonly string[], cwd: string) =>
  runCommand(process.execPath, [PGWARDEN, 'agent', ...args], { env, cwd });

describeNeeding(
  'postgres',
  'etcd',
  'patroni4',
  'bundle',
  'root',
)('agent --validate-config / --generate-config next to Patroni 4.1.4', () => {
  const dir = tempDir('cfgtools');
  const dataDir = join(dir, 'data');
  const sock = join(dir, 'sock');
  let etcd: EtcdServer | undefined;
  let busy: Server | undefined;
  let busyPort = 0;
  let pgPort = 0;
  let started = false;

  beforeAll(async () => {
    const owner = postgresUid();
    mkdirSync(sock);
    chownSync(dir, owner.uid, owner.gid);
    chownSync(sock, owner.uid, owner.gid);
    etcd = await startEtcd();
    busy = createServer();
    busyPort = await new Promise<number>((resolve) => {
      busy?.listen(0, '127.0.0.1', () => {
        const a = busy?.address();
        resolve(typeof a === 'object' && a ? a.port : 0);
      });
    });
    pgPort = await freePort();
    await asPostgres(join(PG_BIN, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
    writeFileSync(join(dataDir, 'pg_ident.conf'), 'mymap root postgres\n', { flag: 'a' });
    const options = `-p ${pgPort} -k ${sock} -c listen_addresses=127.0.0.1 -c cluster_name=cfgdemo`;
    await asPostgres(join(PG_BIN, 'pg_ctl'), [
      '-D',
      dataDir,
      '-l',
      join(dir, 'pg.log'),
      '-w',
      '-o',
      options,
      'start',
    ]);
    started = true;
  }, 180_000);

  afterAll(async () => {
    try {
      if (started) await asPostgres(join(PG_BIN, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
    } finally {
      busy?.close();
      try {
        await etcd?.stop();
      } finally {
        removeDir(dir);
      }
    }
  });

  const base = (): Tree => ({
    scope: 'demo',
    name: 'node1',
    restapi: { listen: `127.0.0.1:${busyPort + 1}`, connect_address: '203.0.113.10:8008' },
    etcd3: { hosts: etcd?.endpoint ?? '' },
    bootstrap: { dcs: { ttl: 30, loop_wait: 10 } },
    postgresql: {
      listen: `127.0.0.1:${busyPort + 2}`,
      connect_address: '203.0.113.10:5432',
      data_dir: join(dir, 'new-data'),
      bin_dir: PG_BIN,
      authentication: {
        superuser: { username: 'postgres', password: 'su' },
        replication: { username: 'repl', password: 'y' },
      },
    },
  });

  const set = (tree: Tree, path: string, value: unknown): Tree => {
    const keys = path.split('.');
    let node = tree;
    for (const k of keys.slice(0, -1)) node = node[k] as Tree;
    const last = keys[keys.length - 1] ?? '';
    if (value === undefined) delete node[last];
    else node[last] = value;
    return tree;
  };

  let n = 0;
  const file = (tree: Tree): string => {
    const path = join(dir, `case-${n++}.yml`);
    writeFileSync(path, stringify(tree));
    return path;
  };

  // [case, patch path, value, extra flags, expected exit code of both, dotted path pgwarden must name]
  const cases: readonly [string, string, unknown, readonly string[], number, string | undefined][] = [
    ['a valid file', 'scope', 'demo', [], 0, undefined],
    ['before_stop set', 'postgresql.before_stop', '/bin/true', [], 0, undefined],
    [
      'an initialized data directory of the installed version',
      'postgresql.data_dir',
      dataDir,
      [],
      0,
      undefined,
    ],
    ['restapi.listen on a port in use', 'restapi.listen', 'BUSY', [], 1, 'restapi.listen'],
    ['restapi.listen on a port in use, -i', 'restapi.listen', 'BUSY', ['-i'], 0, undefined],
    [
      'a loopback restapi.connect_address',
      'restapi.connect_address',
      '127.0.0.1:8008',
      [],
      1,
      'restapi.connect_address',
    ],
    [
      'a loopback postgresql.connect_address',
      'postgresql.connect_address',
      'localhost:5432',
      [],
      1,
      'postgresql.connect_address',
    ],
    ['a data_dir that is no data directory', 'postgresql.data_dir', dir, [], 1, 'postgresql.data_dir'],
    ['a bin_dir that does not exist', 'postgresql.bin_dir', join(dir, 'nobin'), [], 1, 'postgresql.bin_dir'],
    ['an unreachable etcd', 'etcd3.hosts', 'UNREACHABLE', [], 1, 'etcd3.hosts'],
    // What Patroni's validator refuses although its agent runs with it (src/config/patroni-validator.ts).
    ['nosync with sync_priority', 'tags', { nosync: true, sync_priority: 1 }, [], 1, 'tags'],
    ['nofailover with failover_priority', 'tags', { nofailover: false, failover_priority: 0 }, [], 1, 'tags'],
    ['nosync with failover_priority', 'tags', { nosync: true, failover_priority: 1 }, [], 0, undefined],
    ['bootstrap.dcs.ttl 19', 'bootstrap.dcs.ttl', 19, [], 1, 'bootstrap.dcs.ttl'],
    ['bootstrap.dcs.ttl 20', 'bootstrap.dcs.ttl', 20, [], 0, undefined],
    ['bootstrap.dcs.retry_timeout 2', 'bootstrap.dcs.retry_timeout', 2, [], 1, 'bootstrap.dcs.retry_timeout'],
    ['etcd3.use_proxies true', 'etcd3.use_proxies', true, [], 0, undefined],
    ['etcd3.srv_domain next to hosts', 'etcd3.srv_domain', 'example.invalid', [], 0, undefined],
    ['no name', 'name', undefined, [], 1, 'name'],
    ['loop_wait not a number', 'bootstrap.dcs.loop_wait', 'soon', [], 1, 'bootstrap.dcs.loop_wait'],
    ['restapi missing', 'restapi', undefined, [], 1, 'restapi'],
  ];

  it.each(cases)('validate: %s', async (_name, path, value, flags, code, named) => {
    // Ports are only known once the servers run: BUSY is the listening socket, UNREACHABLE a free port.
    const v =
      value === 'BUSY'
        ? `127.0.0.1:${busyPort}`
        : value === 'UNREACHABLE'
          ? `127.0.0.1:${await freePort()}`
          : value;
    const f = file(set(base(), path, v));
    const p = await patroni(['--validate-config', ...flags, f], dir);
    const w = await pgwarden(['--validate-config', ...flags, f], dir);
    console.log(`${_name}: patroni ${p.code} ${p.stderr.trim()} | pgwarden ${w.code} ${w.stderr.trim()}`);
    expect(p.code, p.stderr).toBe(code);
    expect(w.code, w.stderr).toBe(code);
    const problems = w.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('WARNING: '));
    if (named === undefined) expect(problems).toEqual([]);
    // `<path>: <what is wrong>`, or `<path> is missing` for a required key.
    else
      expect(problems.join('\n')).toMatch(new RegExp(`^${named.replace(/\./g, '\\.')}(: | is missing)`, 'm'));
  });

  it('validate -p prints the same local configuration', async () => {
    const f = file(base());
    const p = await patroni(['--validate-config', '-p', f], dir);
    const w = await pgwarden(['--validate-config', '-p', f], dir);
    expect([p.code, w.code]).toEqual([0, 0]);
    expect(parse(w.stdout)).toEqual(parse(p.stdout));
    expect(w.stdout).toBe(p.stdout);
  });

  it('validate: a key pgwarden refuses fails its check only, with the path and what to do', async () => {
    const f = file(set(base(), 'postgresql.krbsrvname', 'postgres'));
    const p = await patroni(['--validate-config', f], dir);
    const w = await pgwarden(['--validate-config', f], dir);
    expect(p.code).toBe(0);
    expect(w.code).toBe(1);
    expect(w.stderr).toMatch(
      /^postgresql\.krbsrvname: not supported by pgwarden.*; remove postgresql\.krbsrvname$/m,
    );
  });

  it('validate: krbsrvname with a user (Patroni passes it on to libpq) is refused with its path', async () => {
    const f = file(set(base(), 'postgresql.authentication.replication.krbsrvname', 'postgres'));
    const p = await patroni(['--validate-config', f], dir);
    const w = await pgwarden(['--validate-config', f], dir);
    expect(p.code).toBe(0);
    expect(w.code).toBe(1);
    expect(w.stderr).toMatch(
      /^postgresql\.authentication\.replication\.krbsrvname: not supported by pgwarden.*; remove postgresql\.authentication\.replication\.krbsrvname$/m,
    );
  });

  it('validate: etcd3.discovery_srv alone fails both, pgwarden saying to rename it to srv', async () => {
    const t = base();
    t['etcd3'] = { discovery_srv: 'example.invalid' };
    const f = file(t);
    const p = await patroni(['--validate-config', f], dir);
    const w = await pgwarden(['--validate-config', f], dir);
    expect([p.code, w.code]).toEqual([1, 1]);
    expect(p.stderr).toMatch(/^etcd3\.srv +is not defined/m);
    expect(w.stderr).toMatch(/^etcd3\.discovery_srv: .*; rename etcd3\.discovery_srv to etcd3\.srv$/m);
  });

  it('validate: PATRONI_ZOOKEEPER_USE_SSL=false is text to both (Patroni: not a boolean), use_ssl: false is not', async () => {
    const t = base();
    delete t['etcd3'];
    t['zookeeper'] = { hosts: [`127.0.0.1:${busyPort}`] };
    const f = file(t);
    const withEnv = { env: { ...env, PATRONI_ZOOKEEPER_USE_SSL: 'false' }, cwd: dir };
    const p = await runCommand(PATRONI4, ['--validate-config', f], withEnv);
    const w = await runCommand(process.execPath, [PGWARDEN, 'agent', '--validate-config', f], withEnv);
    expect([p.code, w.code]).toEqual([1, 1]);
    expect(p.stderr).toMatch(/^zookeeper\.use_ssl false is not a boolean$/m);
    expect(w.stderr).toMatch(
      /^zookeeper\.use_ssl: "false" is not a boolean .*unset PATRONI_ZOOKEEPER_USE_SSL$/m,
    );
    (t['zookeeper'] as Tree)['use_ssl'] = false;
    const g = file(t);
    const p2 = await patroni(['--validate-config', g], dir);
    const w2 = await pgwarden(['--validate-config', g], dir);
    expect([p2.code, w2.code], p2.stderr + w2.stderr).toEqual([0, 0]);
  });

  it('generate-sample-config: the same document, on stdout and in a new directory', async () => {
    const p = await patroni(['--generate-sample-config'], dir);
    const w = await pgwarden(['--generate-sample-config'], dir);
    expect([p.code, w.code]).toEqual([0, 0]);
    expect(w.stdout).toBe(p.stdout);
    expect(w.stdout).toContain('wal_keep_size: 128MB');
    const out = join(dir, 'gen', 'sample.yml');
    expect((await pgwarden(['--generate-sample-config', out], dir)).code).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(p.stdout);
  });

  it('generate-config --dsn: the same document from the running instance', async () => {
    const dsn = `host=${sock} port=${pgPort} user=postgres password=secret`;
    const p = await patroni(['--generate-config', '--dsn', dsn], dir);
    const out = join(dir, 'gen2', 'node.yml');
    const w = await pgwarden(['--generate-config', '--dsn', dsn, out], dir);
    expect([p.code, w.code], p.stderr + w.stderr).toEqual([0, 0]);
    const text = readFileSync(out, 'utf8');
    expect(text).toBe(p.stdout);
    const doc = parse(text) as Tree;
    expect(doc['scope']).toBe('cfgdemo');
    expect(doc['postgresql']).toMatchObject({
      data_dir: dataDir,
      bin_dir: PG_BIN,
      listen: `127.0.0.1:${pgPort}`,
      pg_ident: ['mymap root postgres'],
    });
  });

  it('generate-config: the same refusals (a DSN that cannot be parsed, a user without superuser)', async () => {
    await asPostgres(join(PG_BIN, 'psql'), [
      '-h',
      sock,
      '-p',
      String(pgPort),
      '-U',
      'postgres',
      '-c',
      'CREATE ROLE plain LOGIN',
    ]);
    for (const dsn of ['not a dsn', `host=${sock} port=${pgPort} user=plain password=x dbname=postgres`]) {
      const p = await patroni(['--generate-config', '--dsn', dsn], dir);
      const w = await pgwarden(['--generate-config', '--dsn', dsn], dir);
      expect([p.code, w.code]).toEqual([1, 1]);
      expect(w.stderr.trim()).toBe(p.stderr.trim());
    }
  });
});
