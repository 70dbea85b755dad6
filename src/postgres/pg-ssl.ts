/**
 * libpq's SSL keywords (a user's `sslmode`, `sslrootcert`, `sslcert`, `sslkey`, `sslpassword` in
 * `postgresql.authentication`) as node-postgres `ssl` options, for the agent's own connections to another member
 * (the leader checks before pg_rewind). Programs Patroni runs (pg_basebackup, pg_rewind) get the keywords in their
 * connection string instead.
 *
 * `disable`, `allow` and `prefer` (libpq's default) connect without SSL: node-postgres cannot fall back from one to
 * the other within a connection attempt. `require` encrypts without verifying, unless `sslrootcert` is given (then
 * libpq verifies the chain, as `verify-ca` does); `verify-ca` checks the chain, `verify-full` the host name too.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';

export function pgClientSsl(
  params: Readonly<Record<string, string>> | undefined,
  host?: string,
): ConnectionOptions | undefined {
  // libpq uses no SSL on a unix socket whatever sslmode says (a socket directory is a host starting with '/').
  if (host?.startsWith('/')) return undefined;
  const mode = (params?.['sslmode'] ?? 'prefer').toLowerCase();
  if (params === undefined || !['require', 'verify-ca', 'verify-full'].includes(mode)) return undefined;
  const file = (key: string): Buffer | undefined => {
    const path = params[key];
    return path ? readFileSync(path) : undefined;
  };
  const ca = file('sslrootcert');
  const cert = file('sslcert');
  const key = file('sslkey');
  const verify = mode !== 'require' || ca !== undefined;
  return {
    rejectUnauthorized: verify,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(params['sslpassword'] ? { passphrase: params['sslpassword'] } : {}),
    // Chain only: libpq's verify-ca (and require with a root certificate) does not compare the host name.
    ...(verify && mode !== 'verify-full' ? { checkServerIdentity: () => undefined } : {}),
  };
}
