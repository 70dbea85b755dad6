/**
 * The configuration tools of `pgwarden agent` without servers: validateConfig (src/ctl/validate-config.ts) on temp
 * files, Patroni's DSN parsing and the document layout of the generators (src/ctl/generate-config*.ts). Compared
 * with the real Patroni 4.1.4 in test/integration/agent-config-tools.test.ts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { formatConfig } from '../../src/ctl/generate-config.js';
import { parseDsn } from '../../src/ctl/generate-config-running.js';
import { validateConfig } from '../../src/ctl/validate-config.js';

const dir = mkdtempSync(join(tmpdir(), 'pgwarden-cfgtools-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Tree = Record<string, unknown>;

// No DCS section: the reachability check has nothing to reach, and the agent's reader reports the missing DCS.
const base = (): Tree => ({
  scope: 'demo',
  name: 'n1',
  restapi: { listen: '127.0.0.1:1', connect_address: '203.0.113.1:8008' },
  zookeeper: { hosts: [] },
  postgresql: {
    listen: '127.0.0.1:1',
    connect_address: '203.0.113.1:5432',
    data_dir: join(dir, 'absent'),
    bin_dir: '',
    authentication: { superuser: { username: 'a' }, replication: { username: 'r', password: 'y' } },
  },
});

let n = 0;
function file(tree: Tree): string {
  const p = join(dir, `c${n++}.yml`);
  writeFileSync(p, stringify(tree));
  return p;
}

const validate = (path: string | undefined, env: Record<string, string> = {}) =>
  validateConfig({ path, ignoreListenPort: true, print: false, env });

describe('validateConfig', () => {
  it('reports every refused key with its dotted path, and the machine checks, one line each', async () => {
    const t = base();
    const empty = join(dir, 'bin');
    mkdirSync(empty);
    Object.assign(t['postgresql'] as Tree, {
      krbsrvname: 'x',
      connect_address: '127.0.0.1:5432',
      bin_dir: empty,
    });
    t['ctl'] = { keyfile_password: 'secret' };
    const r = await validate(file(t));
    expect(r.exitCode).toBe(1);
    expect(r.errors).toContain(
      'postgresql.krbsrvname: not supported by pgwarden yet (it is not passed to replication connections); remove postgresql.krbsrvname',
    );
    expect(r.errors.some((e) => e.startsWith('ctl.keyfile_password: '))).toBe(true);
    expect(r.errors.some((e) => e.startsWith('postgresql.connect_address: must not be 127.0.0.1'))).toBe(
      true,
    );
    expect(r.errors).toContain(`postgresql.bin_dir: ${empty} has no program 'pg_ctl'`);
  });

  it('reads y as a string, as PyYAML (a password "y" is no type error)', async () => {
    const r = await validate(file(base()));
    expect(r.errors.filter((e) => e.includes('password'))).toEqual([]);
  });

  it('refuses a non-empty directory without PG_VERSION as data_dir', async () => {
    const data = join(dir, 'junk');
    mkdirSync(data);
    writeFileSync(join(data, 'file'), '');
    const t = base();
    (t['postgresql'] as Tree)['data_dir'] = data;
    const r = await validate(file(t));
    expect(r.errors).toContain(
      `postgresql.data_dir: ${data} is not empty and does not look like a data directory (no PG_VERSION)`,
    );
  });

  it('a missing file leaves the environment to check, with a warning (Patroni falls back to it)', async () => {
    const r = await validate(join(dir, 'nope.yml'));
    expect(r.exitCode).toBe(1);
    expect(r.warnings[0]).toMatch(/nope\.yml does not exist/);
    expect(r.errors).toEqual(['Config is empty.']);
  });

  it('a file that is no YAML is one error', async () => {
    const p = join(dir, 'bad.yml');
    writeFileSync(p, 'a: [\n');
    const r = await validate(p);
    expect(r.exitCode).toBe(1);
    expect(r.errors[0]).toMatch(/is not valid YAML/);
  });
});

describe("validateConfig: what Patroni 4.1.4's validator refuses although its agent runs with it", () => {
  const problemsOf = async (patch: (t: Tree) => void, env: Record<string, string> = {}) => {
    const t = base();
    patch(t);
    return (await validate(file(t), env)).errors;
  };
  const starting = (errors: readonly string[], prefix: string) => errors.filter((e) => e.startsWith(prefix));

  it.each([
    ['nosync', 'sync_priority', { nosync: true, sync_priority: 1 }],
    ['nosync', 'sync_priority', { nosync: false, sync_priority: 0 }],
    ['nofailover', 'failover_priority', { nofailover: true, failover_priority: 1 }],
  ] as const)('tags %s and %s together (%j)', async (a, b, tags) => {
    const errors = await problemsOf((t) => (t['tags'] = tags));
    expect(starting(errors, 'tags: ')).toEqual([
      `tags: both ${a} and ${b} are set, and Patroni's validator accepts at most one of them (the agent would use ${a} and warn); keep one`,
    ]);
  });

  it('one tag of a pair alone is no problem', async () => {
    expect(
      starting(await problemsOf((t) => (t['tags'] = { nosync: true, failover_priority: 1 })), 'tags'),
    ).toEqual([]);
  });

  it.each([
    ['ttl', 19, 20],
    ['ttl', '19', 20],
    ['retry_timeout', 2, 3],
    ['maximum_lag_on_syncnode', -2, -1],
  ] as const)('bootstrap.dcs.%s %j is below its least value %d', async (key, value, min) => {
    const errors = await problemsOf((t) => (t['bootstrap'] = { dcs: { [key]: value } }));
    expect(starting(errors, `bootstrap.dcs.${key}: `)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^bootstrap\\.dcs\\.${key}: -?\\d+ is less than ${min}, the least Patroni's validator accepts .*; set ${min} or more$`,
        ),
      ),
    ]);
    const ok = await problemsOf((t) => (t['bootstrap'] = { dcs: { [key]: min } }));
    expect(starting(ok, 'bootstrap.dcs.')).toEqual([]);
  });

  it("etcd3.discovery_srv or srv_domain alone: Patroni's validator wants srv (or hosts...)", async () => {
    const alone = await problemsOf((t) => {
      delete t['zookeeper'];
      t['etcd3'] = { discovery_srv: 'example.invalid' };
    });
    expect(starting(alone, 'etcd3.')).toEqual([
      "etcd3.discovery_srv: Patroni's validator wants one of host, hosts, srv, srv_suffix, url, proxy and does not count discovery_srv (its agent reads it as srv); rename etcd3.discovery_srv to etcd3.srv",
    ]);
    const withHosts = await problemsOf((t) => {
      delete t['zookeeper'];
      t['etcd3'] = { srv_domain: 'example.invalid', hosts: ['127.0.0.1:1'] };
    });
    expect(starting(withHosts, 'etcd3.srv_domain')).toEqual([]);
  });

  it("PATRONI_ZOOKEEPER_USE_SSL=false is text, which Patroni would take as TLS on: refused, the file's false is not", async () => {
    const fromEnv = await problemsOf(() => undefined, { PATRONI_ZOOKEEPER_USE_SSL: 'false' });
    expect(starting(fromEnv, 'zookeeper.use_ssl: ')).toEqual([
      expect.stringMatching(
        /^zookeeper\.use_ssl: "false" is not a boolean .*set use_ssl: true or false in the configuration file, and unset PATRONI_ZOOKEEPER_USE_SSL$/,
      ),
    ]);
    const fromFile = await problemsOf((t) => ((t['zookeeper'] as Tree)['use_ssl'] = false));
    expect(starting(fromFile, 'zookeeper.use_ssl')).toEqual([]);
    // Text that reads true is TLS on to both agents, but Patroni's validator still calls it no boolean.
    const on = await problemsOf(() => undefined, { PATRONI_ZOOKEEPER_USE_SSL: 'true' });
    expect(starting(on, 'zookeeper.use_ssl: ')).toEqual([
      expect.stringMatching(
        /^zookeeper\.use_ssl: "true" is text, not a boolean, which Patroni's validator refuses .*; set use_ssl: true in the configuration file$/,
      ),
    ]);
  });
});

describe('parseDsn (Patroni parse_dsn)', () => {
  it('reads key=value with quotes and escapes, and adds the TLS/GSS defaults', () => {
    expect(parseDsn(" host = 'my host' dbname = db\\ name port=5433 ")).toEqual({
      host: 'my host',
      dbname: 'db name',
      port: '5433',
      sslmode: 'prefer',
      gssencmode: 'prefer',
      channel_binding: 'prefer',
      sslnegotiation: 'postgres',
    });
  });

  it('reads a URI', () => {
    expect(parseDsn('postgresql://u:p%40ss@h:5434/db?sslmode=require')).toMatchObject({
      host: 'h',
      port: '5434',
      user: 'u',
      password: 'p@ss',
      dbname: 'db',
      sslmode: 'require',
    });
  });

  it('refuses what libpq cannot parse', () => {
    expect(parseDsn('not a dsn')).toBeUndefined();
    expect(parseDsn('')).toBeUndefined();
  });
});

describe('formatConfig (Patroni _format_config)', () => {
  it('orders the sections as Patroni, sorts keys, comments bootstrap and ends without a newline', () => {
    const text = formatConfig({
      tags: { nosync: false },
      postgresql: { listen: 'a:1' },
      bootstrap: { dcs: { postgresql: { use_slots: true }, ttl: 30, loop_wait: 10 } },
      name: 'n',
      scope: 's',
    });
    expect(text).toBe(
      [
        'scope: s',
        'name: n',
        '',
        '# The bootstrap configuration. Works only when the cluster is not yet initialized.',
        '# If the cluster is already initialized, all changes in the `bootstrap` section are ignored!',
        'bootstrap:',
        '  # This section will be written into <dcs>:/<namespace>/<scope>/config after initializing',
        '  # new cluster and all other cluster members will use it as a `global configuration`.',
        '  # WARNING! If you want to change any of the parameters that were set up',
        '  # via `bootstrap.dcs` section, please use `patronictl edit-config`!',
        '  dcs:',
        '    loop_wait: 10',
        '    ttl: 30',
        '    postgresql:',
        '      use_slots: true',
        '',
        'postgresql:',
        '  listen: a:1',
        '',
        'tags:',
        '  nosync: false',
      ].join('\n'),
    );
  });
});
