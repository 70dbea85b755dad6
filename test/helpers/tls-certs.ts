/**
 * A throw-away CA with a server certificate for 127.0.0.1 and a client certificate, made with openssl in a temp
 * dir (removed by `cleanup`).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCerts {
  readonly dir: string;
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A second CA that signed nothing here, to show verification failing. */
  readonly otherCaCert: string;
  cleanup(): void;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'pgwarden-tls-'));
  const p = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: 30_000 });
  };
  try {
    for (const ca of ['ca', 'other-ca']) {
      openssl(
        'req',
        '-x509',
        ...EC,
        '-keyout',
        p(`${ca}.key`),
        '-out',
        p(`${ca}.crt`),
        '-days',
        '2',
        '-subj',
        `/CN=${ca}`,
      );
    }
    writeFileSync(p('server.ext'), 'subjectAltName=IP:127.0.0.1\n');
    writeFileSync(p('client.ext'), 'extendedKeyUsage=clientAuth\n');
    for (const who of ['server', 'client']) {
      openssl(
        'req',
        ...EC,
        '-keyout',
        p(`${who}.key`),
        '-out',
        p(`${who}.csr`),
        '-subj',
        `/CN=${who === 'server' ? '127.0.0.1' : 'pg-member'}`,
      );
      openssl(
        'x509',
        '-req',
        '-in',
        p(`${who}.csr`),
        '-CA',
        p('ca.crt'),
        '-CAkey',
        p('ca.key'),
        '-CAcreateserial',
        '-out',
        p(`${who}.crt`),
        '-days',
        '2',
        '-extfile',
        p(`${who}.ext`),
      );
    }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    caCert: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    otherCaCert: p('other-ca.crt'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
