import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { applyPatroniEnv } from '../../src/config/env.js';
import { loadCtlConfig } from '../../src/config/local-config.js';
import { restOptions } from '../../src/ctl/context.js';

const dir = mkdtempSync(join(tmpdir(), 'pgwarden-ctl-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function load(yaml: string, env: Record<string, string> = {}, insecureFlag = false) {
  const p = join(dir, `c${n++}.yml`);
  writeFileSync(p, `scope: batman\netcd3: {hosts: '127.0.0.1:2379'}\n${yaml}`);
  return restOptions(loadCtlConfig({ configFile: p, env, insecure: insecureFlag }));
}

describe('PATRONI_CTL_INSECURE, read with Patroni parse_bool', () => {
  const rows: [string, boolean][] = [
    ['true', true],
    ['on', true],
    ['ON', true],
    ['yes', true],
    ['1', true],
    ['True', true],
    ['false', false],
    ['off', false],
    ['no', false],
    ['0', false],
  ];
  for (const [value, insecure] of rows) {
    it(`${JSON.stringify(value)} -> insecure ${insecure}`, () => {
      expect(load('', { PATRONI_CTL_INSECURE: value }).insecure).toBe(insecure);
      expect(applyPatroniEnv({}, { PATRONI_CTL_INSECURE: value })).toEqual({ ctl: { insecure } });
    });
  }

  it('an unreadable or empty value is dropped: the file setting stays', () => {
    expect(applyPatroniEnv({}, { PATRONI_CTL_INSECURE: 'maybe' })).toEqual({});
    expect(applyPatroniEnv({}, { PATRONI_CTL_INSECURE: '' })).toEqual({});
    expect(load('ctl: {insecure: true}\n', { PATRONI_CTL_INSECURE: 'maybe' }).insecure).toBe(true);
    expect(load('', { PATRONI_CTL_INSECURE: 'maybe' }).insecure).toBe(false);
  });

  it('the environment wins over the file, both ways', () => {
    expect(load('ctl: {insecure: true}\n', { PATRONI_CTL_INSECURE: 'off' }).insecure).toBe(false);
    expect(load('ctl: {insecure: false}\n', { PATRONI_CTL_INSECURE: 'yes' }).insecure).toBe(true);
  });

  it('the same parse for restapi.allowlist_include_members and log.deduplicate_heartbeat_logs', () => {
    expect(
      applyPatroniEnv(
        {},
        { PATRONI_RESTAPI_ALLOWLIST_INCLUDE_MEMBERS: 'on', PATRONI_LOG_DEDUPLICATE_HEARTBEAT_LOGS: 'no' },
      ),
    ).toEqual({ restapi: { allowlist_include_members: true }, log: { deduplicate_heartbeat_logs: false } });
  });

  it('ctl.insecure in the file counts when truthy (Python `if insecure:`), -k always', () => {
    expect(load('ctl: {insecure: true}\n').insecure).toBe(true);
    expect(load('ctl: {insecure: 1}\n').insecure).toBe(true);
    expect(load('ctl: {insecure: false}\n').insecure).toBe(false);
    expect(load('').insecure).toBe(false);
    expect(load('ctl: {insecure: false}\n', {}, true).insecure).toBe(true);
  });
});

describe('the CLI client certificate', () => {
  it('ctl.certfile and ctl.keyfile when set', () => {
    const o = load(
      'ctl: {certfile: /c/ctl.crt, keyfile: /c/ctl.key}\nrestapi: {certfile: /r/api.crt, keyfile: /r/api.key}\n',
    );
    expect(o).toMatchObject({ certfile: '/c/ctl.crt', keyfile: '/c/ctl.key' });
  });

  it('does not fall back to restapi.certfile/keyfile (patronictl 4.1.4), but the CA does fall back to restapi.cafile', () => {
    const o = load('restapi: {certfile: /r/api.crt, keyfile: /r/api.key, cafile: /r/ca.crt}\n');
    expect(o.certfile).toBeUndefined();
    expect(o.keyfile).toBeUndefined();
    expect(o.cacert).toBe('/r/ca.crt');
  });

  it('never mixes a ctl certificate with the REST API key', () => {
    const o = load('ctl: {certfile: /c/ctl.pem}\nrestapi: {certfile: /r/api.crt, keyfile: /r/api.key}\n');
    expect(o.certfile).toBe('/c/ctl.pem');
    expect(o.keyfile).toBeUndefined();
  });

  it('from the environment: PATRONI_CTL_CERTFILE/KEYFILE, not PATRONI_RESTAPI_CERTFILE/KEYFILE', () => {
    const env = { PATRONI_RESTAPI_CERTFILE: '/e/api.crt', PATRONI_RESTAPI_KEYFILE: '/e/api.key' };
    expect(load('', env).certfile).toBeUndefined();
    expect(
      load('', { ...env, PATRONI_CTL_CERTFILE: '/e/ctl.crt', PATRONI_CTL_KEYFILE: '/e/ctl.key' }),
    ).toMatchObject({ certfile: '/e/ctl.crt', keyfile: '/e/ctl.key' });
  });

  it('no certificate anywhere: none is sent', () => {
    const o = load('');
    expect(o.certfile).toBeUndefined();
    expect(o.keyfile).toBeUndefined();
  });
});
