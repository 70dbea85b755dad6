/**
 * The agent's one connection to its local PostgreSQL (as Patroni's `Postgresql.connection`): opened on first use,
 * shared by the HA loop, the REST API and the sync bookkeeping, reopened once when it broke, and the last instance
 * status read through it.
 */
import { existsSync } from 'node:fs';
import type { PgUser, PostgresqlConfig } from '../config/agent-config.js';
import {
  connect,
  instanceStatus,
  type ConnectOptions,
  type InstanceStatus,
  type PgSession,
} from './queries.js';

/** Where libpq looks for the server's socket when no directory is given (Debian's build, then PostgreSQL's). */
const DEFAULT_SOCKET_DIRS = ['/var/run/postgresql', '/tmp'];

/**
 * The socket directory for `use_unix_socket`, as Patroni picks it: the first absolute entry of
 * unix_socket_directories (none: TCP); without the parameter, libpq's default directory, taken here as the first
 * of the usual ones holding the server's socket (none: TCP).
 */
export function localSocketDir(
  pg: PostgresqlConfig,
  exists: (path: string) => boolean = existsSync,
): string | undefined {
  const socketDirs = pg.parameters['unix_socket_directories'];
  if (typeof socketDirs === 'string') {
    return socketDirs
      .split(',')
      .map((d) => d.trim())
      .find((d) => d.startsWith('/'));
  }
  return DEFAULT_SOCKET_DIRS.find((d) => exists(`${d}/.s.PGSQL.${pg.listen.port}`));
}

/** How to reach the local server as `user`: over a unix socket with use_unix_socket, else loopback. */
export function localConnectOptions(pg: PostgresqlConfig, user: PgUser): ConnectOptions {
  let host = pg.listen.hosts[0] ?? '127.0.0.1';
  if (host === '*' || host === '' || host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  const socketDir = pg.useUnixSocket ? localSocketDir(pg) : undefined;
  if (socketDir !== undefined) host = socketDir;
  return {
    host,
    port: pg.listen.port,
    user: user.username,
    password: user.password,
    database: pg.database,
    applicationName: 'Patroni',
  };
}

export class LocalSession {
  private session: Promise<PgSession> | undefined;
  /** The status last read (undefined: PostgreSQL did not answer, or is stopped). */
  lastStatus: InstanceStatus | undefined;

  /** `options`: the superuser's connection, read at each (re)connect so that a reloaded configuration applies. */
  constructor(readonly options: () => ConnectOptions) {}

  /**
   * Runs `fn` on the shared local connection, reconnecting once when it broke. Concurrent callers share one
   * connection attempt (no connection leaks) and the session runs their queries one at a time.
   */
  async withSession<T>(fn: (s: PgSession) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let pending = this.session;
      if (!pending) {
        pending = connect(this.options());
        this.session = pending;
        pending.catch(() => {
          if (this.session === pending) this.session = undefined;
        });
      }
      const s = await pending;
      try {
        return await fn(s);
      } catch (e) {
        if (this.session === pending) this.session = undefined;
        await s.close().catch(() => undefined);
        if (attempt >= 1) throw e;
      }
    }
  }

  /** Closes the connection (before a stop, or when PostgreSQL is seen down). */
  async drop(): Promise<void> {
    const pending = this.session;
    this.session = undefined;
    if (pending) await pending.then((s) => s.close()).catch(() => undefined);
  }

  /** The running instance's status, or undefined when it does not answer. */
  async queryStatus(): Promise<InstanceStatus | undefined> {
    try {
      const st = await this.withSession((s) => instanceStatus(s));
      this.lastStatus = st;
      return st;
    } catch {
      return undefined;
    }
  }
}
