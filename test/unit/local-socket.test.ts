/**
 * postgresql.use_unix_socket for the agent's own superuser session (src/postgres/local-session.ts), as Patroni 4.1.4
 * resolves its local address: the first absolute unix_socket_directories entry, libpq's default directory when the
 * parameter is not set, TCP when neither gives a socket.
 */
import { describe, expect, it } from 'vitest';
import type { PostgresqlConfig } from '../../src/config/agent-config.js';
import { localConnectOptions, localSocketDir } from '../../src/postgres/local-session.js';

function pgConfig(useUnixSocket: boolean, parameters: Record<string, unknown> = {}): PostgresqlConfig {
  return {
    listen: { hosts: ['0.0.0.0'], port: 5433, listenAddresses: '0.0.0.0' },
    parameters,
    useUnixSocket,
    database: 'postgres',
  } as unknown as PostgresqlConfig;
}
const superuser = { username: 'postgres', password: 'pw', connectionParams: {} };

describe('use_unix_socket', () => {
  it('connects over the first absolute socket directory', () => {
    const pg = pgConfig(true, { unix_socket_directories: '@abstract, relative, /run/pg ,/tmp' });
    expect(localConnectOptions(pg, superuser)).toMatchObject({
      host: '/run/pg',
      port: 5433,
      user: 'postgres',
    });
  });

  it('falls back to TCP when no entry is an absolute path', () => {
    expect(
      localConnectOptions(pgConfig(true, { unix_socket_directories: '@abstract' }), superuser).host,
    ).toBe('127.0.0.1');
  });

  it("without unix_socket_directories, uses the default directory that holds the server's socket", () => {
    const seen: string[] = [];
    const dir = localSocketDir(pgConfig(true), (p) => {
      seen.push(p);
      return p === '/tmp/.s.PGSQL.5433';
    });
    expect(dir).toBe('/tmp');
    expect(seen).toEqual(['/var/run/postgresql/.s.PGSQL.5433', '/tmp/.s.PGSQL.5433']);
    expect(localSocketDir(pgConfig(true), () => false)).toBeUndefined();
  });

  it('is TCP when off', () => {
    expect(localConnectOptions(pgConfig(false, { unix_socket_directories: '/run/pg' }), superuser).host).toBe(
      '127.0.0.1',
    );
  });
});
