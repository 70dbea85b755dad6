import { describe, expect, it } from 'vitest';
import { postBootstrapConninfo } from '../../src/postgres/bootstrap.js';

describe('post_bootstrap connection string (Patroni passes libpq key=value pairs)', () => {
  it('carries a socket directory as host=, which libpq would read as no host in a URL', () => {
    expect(postBootstrapConninfo({ host: '/tmp', port: 5361, user: 'postgres' }, {})).toBe(
      'dbname=postgres user=postgres host=/tmp port=5361',
    );
  });

  it("adds the superuser's SSL keywords, never a password, and escapes spaces", () => {
    expect(
      postBootstrapConninfo(
        { host: '127.0.0.1', port: 5432, user: 'admin user', database: 'db' },
        { sslmode: 'verify-full', sslrootcert: '/etc/ssl/ca.pem', password: 'secret' },
      ),
    ).toBe(
      'dbname=db user=admin\\ user host=127.0.0.1 port=5432 sslmode=verify-full sslrootcert=/etc/ssl/ca.pem',
    );
  });
});
