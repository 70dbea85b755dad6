/**
 * The `zookeeper` section's security settings as Patroni 4.1.4 passes them to kazoo: `set_acls` (principal ->
 * permission names, an x509 entry each), `auth_data` (scheme -> credential, in order), TLS (`use_ssl` and its
 * files, `verify` on by default), from a file, from `PATRONI_ZOOKEEPER_*` and for the CLI; and the library ACL
 * objects built from them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zookeeper from 'node-zookeeper-client';
import { afterAll, describe, expect, it } from 'vitest';
import { applyPatroniEnv } from '../../src/config/env.js';
import { dcsTarget, loadCtlConfig } from '../../src/config/local-config.js';
import {
  aclPermissions,
  parseAuthData,
  parseSetAcls,
  zookeeperSecurity,
  zookeeperWarnings,
} from '../../src/config/zookeeper-section.js';
import { znodeAcl } from '../../src/dcs/zookeeper/zk-security.js';
import { userError } from '../helpers/user-error.js';

const dir = mkdtempSync(join(tmpdir(), 'pgwarden-zksec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('set_acls permissions (kazoo make_acl)', () => {
  it.each([
    [['READ'], 1],
    [['WRITE'], 2],
    [['CREATE'], 4],
    [['DELETE'], 8],
    [['ADMIN'], 16],
    [['ALL'], 31],
    [['read', 'Write'], 3],
    [['CREATE', 'READ', 'WRITE', 'DELETE'], 15],
    [['READ', 'ALL'], 31],
    [[], 0],
  ])('%j -> %i', (names, perms) => {
    expect(aclPermissions(names, 'p')).toBe(perms);
  });

  it('refuses a name that is no permission, listing the valid ones', () => {
    expect(userError(() => aclPermissions(['READ', 'EXECUTE'], 'zookeeper.set_acls.CN=a in x.yml'))).toBe(
      'zookeeper.set_acls.CN=a in x.yml: unknown permission "EXECUTE"; use READ, WRITE, CREATE, DELETE, ADMIN, ALL',
    );
  });

  it('makes one x509 entry per principal, in order', () => {
    expect(parseSetAcls({ 'CN=principal1': ['ALL'], 'CN=principal2': ['READ'] }, 'x.yml')).toEqual([
      { scheme: 'x509', id: 'CN=principal1', perms: 31 },
      { scheme: 'x509', id: 'CN=principal2', perms: 1 },
    ]);
    expect(parseSetAcls({}, 'x.yml')).toEqual([]);
    expect(parseSetAcls(undefined, 'x.yml')).toEqual([]);
  });

  it.each([
    [['CN=a'], 'zookeeper.set_acls in x.yml must be a mapping of principal to a list of permissions'],
    [{ 'CN=a': 'ALL' }, 'zookeeper.set_acls.CN=a in x.yml must be a list of permissions'],
    [{ 'CN=a': [31] }, 'zookeeper.set_acls.CN=a in x.yml must be a list of permissions'],
  ])('refuses %j', (value, message) => {
    expect(userError(() => parseSetAcls(value, 'x.yml'))).toContain(message);
  });
});

describe('auth_data', () => {
  it('keeps every scheme and credential, in order', () => {
    expect(parseAuthData({ digest: 'user:pass', ip: '10.0.0.1' }, 'x.yml')).toEqual([
      { scheme: 'digest', credential: 'user:pass' },
      { scheme: 'ip', credential: '10.0.0.1' },
    ]);
  });

  it.each([
    [
      'a list',
      ['digest:user:pass'],
      'zookeeper.auth_data in x.yml must be a mapping of scheme to credential',
    ],
    ['a nested value', { digest: { user: 'pass' } }, 'zookeeper.auth_data.digest in x.yml must be a string'],
    ['an empty value', { digest: null }, 'zookeeper.auth_data.digest in x.yml must be a string'],
  ])('refuses %s', (_what, value, message) => {
    expect(userError(() => parseAuthData(value, 'x.yml'))).toContain(message);
  });
});

describe('TLS settings', () => {
  it('are used only with use_ssl: true; verify defaults to true', () => {
    expect(zookeeperSecurity({ hosts: 'z:2181', cacert: '/ca.pem' }, 'x.yml')).toEqual({});
    expect(zookeeperSecurity({ use_ssl: true }, 'x.yml')).toEqual({ tls: { verify: true } });
    expect(
      zookeeperSecurity(
        {
          use_ssl: 'on',
          verify: 'false',
          cacert: '/ca.pem',
          cert: '/c.pem',
          key: '/k.pem',
          key_password: 's3cret',
        },
        'x.yml',
      ),
    ).toEqual({
      tls: { verify: false, cacert: '/ca.pem', cert: '/c.pem', key: '/k.pem', keyPassword: 's3cret' },
    });
  });

  it.each([
    [{ use_ssl: 'maybe' }, 'zookeeper.use_ssl in x.yml must be true or false'],
    // Text that reads false would be TLS on to Patroni (any non-empty text is): refused rather than read either way.
    [
      { use_ssl: 'false' },
      'zookeeper.use_ssl: "false" is not a boolean but text, which Patroni would take as TLS on',
    ],
    [{ use_ssl: 'off' }, 'zookeeper.use_ssl: "off" is not a boolean but text'],
    [{ use_ssl: true, verify: 'sometimes' }, 'zookeeper.verify in x.yml must be true or false'],
    [{ use_ssl: true, key: '/k.pem' }, 'zookeeper.key in x.yml needs zookeeper.cert too'],
    [{ use_ssl: true, cert: '/c.pem' }, 'zookeeper.cert in x.yml needs zookeeper.key too'],
    [
      { use_ssl: true, key_password: 'x' },
      'zookeeper.key_password in x.yml needs zookeeper.cert and zookeeper.key',
    ],
    [{ use_ssl: true, cacert: ['/a.pem'] }, 'zookeeper.cacert in x.yml must be a string'],
  ])('refuses %j', (section, message) => {
    expect(userError(() => zookeeperSecurity(section, 'x.yml'))).toContain(message);
  });

  it('warns about TLS keys without use_ssl, as Patroni ignores them', () => {
    expect(zookeeperWarnings({ zookeeper: { hosts: 'z', cert: '/c', key: '/k', use_ssl: false } })).toEqual([
      'zookeeper.cert: ignored without zookeeper.use_ssl: true (as in Patroni)',
      'zookeeper.key: ignored without zookeeper.use_ssl: true (as in Patroni)',
    ]);
    expect(zookeeperWarnings({ zookeeper: { hosts: 'z', cert: '/c', key: '/k', use_ssl: true } })).toEqual(
      [],
    );
    expect(zookeeperWarnings({ etcd3: { hosts: 'e' } })).toEqual([]);
  });
});

describe('the CLI reads the same settings (dcsTarget)', () => {
  it('from the configuration file', () => {
    const p = join(dir, 'ctl.yml');
    writeFileSync(
      p,
      [
        'scope: demo',
        'zookeeper:',
        '  hosts: [zk1:2281, zk2]',
        '  use_ssl: true',
        '  cacert: /etc/zk/ca.pem',
        '  cert: /etc/zk/client.pem',
        '  key: /etc/zk/client.key',
        "  set_acls: {'CN=patroni': [ALL]}",
        "  auth_data: {digest: 'patroni:secret'}",
        '',
      ].join('\n'),
    );
    expect(dcsTarget(loadCtlConfig({ configFile: p, env: {} }))).toEqual({
      kind: 'zookeeper',
      hosts: ['zk1:2281', 'zk2:2181'],
      tls: { verify: true, cacert: '/etc/zk/ca.pem', cert: '/etc/zk/client.pem', key: '/etc/zk/client.key' },
      acls: [{ scheme: 'x509', id: 'CN=patroni', perms: 31 }],
      auth: [{ scheme: 'digest', credential: 'patroni:secret' }],
    });
  });

  it('from PATRONI_ZOOKEEPER_* variables', () => {
    const tree = applyPatroniEnv(
      {},
      {
        PATRONI_ZOOKEEPER_HOSTS: "['zk1:2281']",
        PATRONI_ZOOKEEPER_USE_SSL: 'true',
        PATRONI_ZOOKEEPER_VERIFY: 'false',
        PATRONI_ZOOKEEPER_SET_ACLS: '{CN=patroni: [READ, WRITE, CREATE, DELETE]}',
        PATRONI_ZOOKEEPER_AUTH_DATA: '{digest: patroni:secret}',
      },
    );
    const target = dcsTarget({ source: 'environment', tree, namespace: '/service' });
    expect(target).toEqual({
      kind: 'zookeeper',
      hosts: ['zk1:2281'],
      tls: { verify: false },
      acls: [{ scheme: 'x509', id: 'CN=patroni', perms: 15 }],
      auth: [{ scheme: 'digest', credential: 'patroni:secret' }],
    });
  });
});

describe('znodeAcl (the library ACL objects)', () => {
  it('is the open ACL (undefined) without set_acls, else one entry per principal', () => {
    expect(znodeAcl(zookeeper, undefined)).toBeUndefined();
    expect(znodeAcl(zookeeper, [])).toBeUndefined();
    const acl = znodeAcl(zookeeper, [
      { scheme: 'x509', id: 'CN=a', perms: 31 },
      { scheme: 'x509', id: 'CN=b', perms: 0 },
    ]);
    expect(acl?.map((a) => [a.id.scheme, a.id.id, a.permission])).toEqual([
      ['x509', 'CN=a', 31],
      ['x509', 'CN=b', 0],
    ]);
    expect(acl?.every((a) => a instanceof zookeeper.ACL)).toBe(true);
  });
});
