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
