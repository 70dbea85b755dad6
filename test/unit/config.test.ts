import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  applyDcsUrl,
  dcsTarget,
  loadCtlConfig,
  restCredentials,
  type LocalConfig,
} from '../../src/config/local-config.js';
import { applyPatroniEnv } from '../../src/config/env.js';
import { deepMerge } from '../../src/config/tree.js';
import { userError } from '../helpers/user-error.js';

const dir = mkdtempSync(join(tmpdir(), 'pgwarden-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
const cfg = (tree: Record<string, unknown>, source = 'x.yml'): LocalConfig => ({
  source,
  tree,
  namespace: '/service',
  scope: undefined,
});
describe('loadCtlConfig', () => {
  it('reads a patroni.yml and derives scope, namespace and name', () => {
    const p = file(
      'node.yml',
      'scope: demo\nnamespace: /prod/\nname: pg1\netcd3:\n  hosts: 127.0.0.1:2379\n',
    );
    const c = loadCtlConfig({ configFile: p, env: {} });
    expect(c).toMatchObject({ source: p, scope: 'demo', namespace: '/prod/', name: 'pg1' });
    expect(dcsTarget(c)).toEqual({
      kind: 'etcd3',
      hosts: ['127.0.0.1:2379'],
      protocol: 'http',
      username: undefined,
      password: undefined,
      cacert: undefined,
      cert: undefined,
      key: undefined,
    });
  });

  it('takes PATRONICTL_CONFIG_FILE when -c is absent, and -c over it', () => {
    const a = file('a.yml', 'scope: a\n');
    const b = file('b.yml', 'scope: b\n');
    expect(loadCtlConfig({ env: { PATRONICTL_CONFIG_FILE: a } }).scope).toBe('a');
    expect(loadCtlConfig({ configFile: b, env: { PATRONICTL_CONFIG_FILE: a } }).scope).toBe('b');
  });

  it('says which file is missing, as patronictl does', () => {
    const msg = userError(() => loadCtlConfig({ configFile: join(dir, 'nope.yml'), env: {} }));
    expect(msg).toBe(
      `Provided config file ${join(dir, 'nope.yml')} not existing or no read rights. Check the -c/--config-file parameter`,
    );
  });

  it('names the file and the problem for malformed YAML', () => {
    const p = file('bad.yml', 'scope: demo\netcd3:\n  hosts: [127.0.0.1:2379\n');
    const msg = userError(() => loadCtlConfig({ configFile: p, env: {} }));
    expect(msg).toContain(p);
    expect(msg).toMatch(/not valid YAML/);
  });

  it('refuses a file that is not a mapping', () => {
    const p = file('list.yml', '- a\n- b\n');
    expect(userError(() => loadCtlConfig({ configFile: p, env: {} }))).toBe(
      `config file ${p} must be a YAML mapping (key: value), not a list`,
    );
  });

  it('merges a directory of yml files in name order, null deleting', () => {
    const d = join(dir, 'conf.d');
    mkdirSync(d);
    writeFileSync(join(d, '10-base.yml'), 'scope: demo\ntags: {a: 1, b: 2}\n');
    writeFileSync(join(d, '20-override.yaml'), 'scope: other\ntags: {b: null, c: 3}\n');
    writeFileSync(join(d, 'ignored.txt'), 'scope: nope\n');
    const c = loadCtlConfig({ configFile: d, env: {} });
    expect(c.scope).toBe('other');
    expect(c.tree['tags']).toEqual({ a: 1, c: 3 });
  });

  it('lets PATRONI_* override the file and --dcs-url replace every DCS section', () => {
    const p = file('env.yml', 'scope: demo\nzookeeper:\n  hosts: [127.0.0.1:2181]\n');
    const c = loadCtlConfig({
      configFile: p,
      dcsUrl: 'etcd3://10.0.0.5:2380',
      env: { PATRONI_SCOPE: 'fromenv' },
    });
    expect(c.scope).toBe('fromenv');
    expect(c.tree['zookeeper']).toBeUndefined();
    expect(dcsTarget(c)).toMatchObject({ kind: 'etcd3', hosts: ['10.0.0.5:2380'] });
  });

  it('uses DCS_URL when no --dcs-url is given, and -k sets ctl.insecure', () => {
    const c = loadCtlConfig({
      configFile: file('e.yml', 'scope: x\n'),
      insecure: true,
      env: { DCS_URL: 'zookeeper://zk1:2181,zk2' },
    });
    expect(dcsTarget(c)).toEqual({ kind: 'zookeeper', hosts: ['zk1:2181', 'zk2:2181'] });
    expect(c.tree['ctl']).toEqual({ insecure: true });
  });
});

describe('applyDcsUrl', () => {
  it.each([
    ['etcd3://127.0.0.1:2379', { etcd3: { hosts: ['127.0.0.1:2379'] } }],
    ['etcd://h:1234', { etcd3: { hosts: ['h:1234'] } }],
    ['127.0.0.1:2181', { zookeeper: { hosts: ['127.0.0.1:2181'] } }],
    ['127.0.0.1', { etcd3: { hosts: ['127.0.0.1:2379'] } }],
    ['zookeeper://', { zookeeper: { hosts: ['localhost:2181'] } }],
    ['etcd3://a:1,b:2,c/myns', { etcd3: { hosts: ['a:1', 'b:2', 'c:2379'] }, namespace: '/myns' }],
  ])('%s', (url, expected) => {
    expect(applyDcsUrl({ scope: 's', etcd: { host: 'x' } }, url)).toEqual({ scope: 's', ...expected });
  });

  it('rejects unknown and unsupported schemes', () => {
    expect(userError(() => applyDcsUrl({}, 'redis://h'))).toBe('Unknown dcs scheme: redis');
    expect(userError(() => applyDcsUrl({}, 'consul://h'))).toMatch(/consul is not supported by pgwarden/);
  });
});

describe('dcsTarget', () => {
  it.each([
    [{ etcd3: { host: 'e1:2379' } }, ['e1:2379']],
    [{ etcd3: { hosts: 'e1:2379,e2' } }, ['e1:2379', 'e2:2379']],
    [{ etcd3: { hosts: ['e1', 'e2:1'], port: 4001 } }, ['e1:4001', 'e2:1']],
    [{ etcd3: {} }, ['localhost:2379']],
  ])('etcd3 hosts from %j', (tree, hosts) => {
    expect(dcsTarget(cfg(tree))).toMatchObject({ kind: 'etcd3', hosts });
  });

  it('reads credentials and TLS from an etcd3 url', () => {
    expect(dcsTarget(cfg({ etcd3: { url: 'https://u:p%40ss@e1:2379', cacert: '/ca.pem' } }))).toMatchObject({
      protocol: 'https',
      hosts: ['e1:2379'],
      username: 'u',
      password: 'p@ss',
      cacert: '/ca.pem',
    });
  });

  it('explains what to do when there is no DCS', () => {
    expect(userError(() => dcsTarget(cfg({ scope: 'x' }, '/etc/p.yml')))).toBe(
      'no DCS configured in /etc/p.yml: add an etcd3 or zookeeper section, set PATRONI_ETCD3_HOSTS, or pass --dcs-url etcd3://HOST:PORT',
    );
  });

  it('refuses etcd v2 and other DCS types with a pointer to what works', () => {
    expect(userError(() => dcsTarget(cfg({ etcd: { host: 'h' } })))).toMatch(
      /etcd v3 only: rename the section to "etcd3"/,
    );
    expect(userError(() => dcsTarget(cfg({ consul: { host: 'h' } })))).toMatch(
      /consul DCS, which pgwarden does not support/,
    );
    expect(userError(() => dcsTarget(cfg({ zookeeper: {} })))).toMatch(/zookeeper.hosts is missing/);
  });
});

describe('PATRONI_* environment', () => {
  it('maps the documented variables onto the tree', () => {
    const tree = applyPatroniEnv(
      { scope: 'file', restapi: { listen: '0.0.0.0:8008' } },
      {
        PATRONI_SCOPE: 'demo',
        PATRONI_NAME: 'pg1',
        PATRONI_RESTAPI_USERNAME: 'admin',
        PATRONI_RESTAPI_PASSWORD: 'secret',
        PATRONI_RESTAPI_ALLOWLIST: '127.0.0.1,10.0.0.0/8',
        PATRONI_ETCD3_HOSTS: "'e1:2379','e2:2379'",
        PATRONI_ETCD3_USERNAME: 'root',
        PATRONI_ZOOKEEPER_USE_SSL: 'x',
        PATRONI_ETCD3_PORT: '2380',
        PATRONI_SUPERUSER_USERNAME: 'postgres',
        PATRONI_POSTGRESQL_DATA_DIR: '/data',
        PATRONI_POSTGRESQL_BIN_PG_CTL: 'pg_ctl15',
        PATRONI_LOG_LEVEL: 'DEBUG',
        PATRONI_CTL_INSECURE: 'true',
        UNRELATED: 'x',
      },
    );
    expect(tree).toMatchObject({
      scope: 'demo',
      name: 'pg1',
      restapi: {
        listen: '0.0.0.0:8008',
        authentication: { username: 'admin', password: 'secret' },
        allowlist: ['127.0.0.1', '10.0.0.0/8'],
      },
      etcd3: { hosts: ['e1:2379', 'e2:2379'], username: 'root', port: 2380 },
      zookeeper: { use_ssl: 'x' },
      postgresql: {
        data_dir: '/data',
        bin_name: { pg_ctl: 'pg_ctl15' },
        authentication: { superuser: { username: 'postgres' } },
      },
      log: { level: 'DEBUG' },
      ctl: { insecure: true },
    });
  });

  it('ignores DCS credentials alone (they do not create a section)', () => {
    expect(applyPatroniEnv({}, { PATRONI_ETCD3_USERNAME: 'u', PATRONI_ETCD3_PASSWORD: 'p' })).toEqual({});
  });

  it('reads a whole configuration from PATRONI_CONFIGURATION when there is no file', () => {
    expect(
      applyPatroniEnv(
        {},
        { PATRONI_CONFIGURATION: 'scope: x\nzookeeper: {hosts: [h:1]}', PATRONI_SCOPE: 'ignored' },
      ),
    ).toEqual({
      scope: 'x',
      zookeeper: { hosts: ['h:1'] },
    });
  });

  it('reports a malformed variable by name', () => {
    expect(userError(() => applyPatroniEnv({}, { PATRONI_ZOOKEEPER_HOSTS: '[a, b' }))).toMatch(
      /^environment variable PATRONI_ZOOKEEPER_HOSTS is not valid YAML/,
    );
  });
});

describe('restCredentials', () => {
  it('prefers ctl.authentication over restapi.authentication', () => {
    expect(restCredentials(cfg({ restapi: { authentication: { username: 'a', password: 'b' } } }))).toEqual({
      username: 'a',
      password: 'b',
    });
    expect(
      restCredentials(
        cfg({
          restapi: { authentication: { username: 'a', password: 'b' } },
          ctl: { authentication: { username: 'c', password: 'd' } },
        }),
      ),
    ).toEqual({ username: 'c', password: 'd' });
    expect(restCredentials(cfg({}))).toBeUndefined();
  });

  it("reads patronictl 3.0.2's 'user:pass' string form (ctl.auth, restapi.auth)", () => {
    expect(restCredentials(cfg({ ctl: { auth: 'admin:s:ecret' } }))).toEqual({
      username: 'admin',
      password: 's:ecret',
    });
    expect(restCredentials(cfg({ restapi: { auth: 'a:b' } }))).toEqual({ username: 'a', password: 'b' });
    // ctl before restapi; in one section the mapping wins over the string (Patroni derives auth from it)
    expect(
      restCredentials(
        cfg({ restapi: { authentication: { username: 'a', password: 'b' } }, ctl: { auth: 'c:d' } }),
      ),
    ).toEqual({ username: 'c', password: 'd' });
    expect(
      restCredentials(cfg({ restapi: { auth: 'x:y', authentication: { username: 'a', password: 'b' } } })),
    ).toEqual({ username: 'a', password: 'b' });
  });
});

describe('deepMerge', () => {
  it('merges nested mappings, replaces lists and deletes with null', () => {
    expect(deepMerge({ a: { b: 1, c: [1] }, d: 1 }, { a: { c: [2], e: 2 }, d: null })).toEqual({
      a: { b: 1, c: [2], e: 2 },
    });
  });
});
