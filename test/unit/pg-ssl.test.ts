import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pgClientSsl } from '../../src/postgres/pg-ssl.js';

const dir = mkdtempSync(join(tmpdir(), 'pgwarden-pg-ssl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ca = join(dir, 'ca.crt');
const cert = join(dir, 'client.crt');
const key = join(dir, 'client.key');
writeFileSync(ca, 'CA');
writeFileSync(cert, 'CERT');
writeFileSync(key, 'KEY');

describe('pgClientSsl: libpq SSL keywords as node-postgres ssl options', () => {
  it('no keywords, disable, allow, prefer: no SSL', () => {
    const cases: (Record<string, string> | undefined)[] = [
      undefined,
      {},
      { sslmode: 'disable' },
      { sslmode: 'allow' },
      { sslmode: 'prefer' },
    ];
    for (const params of cases) {
      expect(pgClientSsl(params)).toBeUndefined();
    }
  });

  it('a unix socket (a host that is a directory): no SSL, whatever sslmode says, as libpq', () => {
    const params = { sslmode: 'verify-ca', sslrootcert: ca, sslcert: cert, sslkey: key };
    expect(pgClientSsl(params, '/run/postgresql')).toBeUndefined();
    expect(pgClientSsl(params, '127.0.0.1')).toMatchObject({ rejectUnauthorized: true });
  });

  it('require without a root certificate: encrypted, not verified', () => {
    expect(pgClientSsl({ sslmode: 'require' })).toEqual({ rejectUnauthorized: false });
  });

  it('require with sslrootcert: the chain is verified (as libpq), not the host name', () => {
    const o = pgClientSsl({ sslmode: 'require', sslrootcert: ca });
    expect(o?.rejectUnauthorized).toBe(true);
    expect(o?.ca).toEqual(Buffer.from('CA'));
    expect(o?.checkServerIdentity?.('h', {} as never)).toBeUndefined();
  });

  it('verify-ca with a client certificate and key: chain verified, client certificate presented', () => {
    const o = pgClientSsl({
      sslmode: 'verify-ca',
      sslrootcert: ca,
      sslcert: cert,
      sslkey: key,
      sslpassword: 'pw',
    });
    expect(o?.rejectUnauthorized).toBe(true);
    expect([o?.ca, o?.cert, o?.key]).toEqual([Buffer.from('CA'), Buffer.from('CERT'), Buffer.from('KEY')]);
    expect(o?.passphrase).toBe('pw');
    expect(typeof o?.checkServerIdentity).toBe('function');
  });

  it('verify-full: the host name is checked too (node default)', () => {
    const o = pgClientSsl({ sslmode: 'VERIFY-FULL', sslrootcert: ca });
    expect(o?.rejectUnauthorized).toBe(true);
    expect(o?.checkServerIdentity).toBeUndefined();
  });

  it('an unreadable file is an error (the connection attempt fails and is logged), never a silent downgrade', () => {
    expect(() => pgClientSsl({ sslmode: 'verify-ca', sslrootcert: join(dir, 'missing.crt') })).toThrow();
  });
});
