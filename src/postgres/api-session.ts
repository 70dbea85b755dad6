/**
 * The REST API's own connection to the local PostgreSQL (Patroni's `restapi` connection next to the HA loop's
 * `heartbeat` one), so that a burst of `GET /patroni` never queues behind the HA loop's queries nor delays them.
 *
 * Bounded: one connection, short connect and statement timeouts, a deadline on every use (a connection that
 * misses it is dropped and reopened on the next use), and concurrent callers of `shared` get one query's answer.
 */
import type { AgentConfig } from '../config/agent-config.js';
import { localConnectOptions } from './local-session.js';
import { connect, type ConnectOptions, type PgSession } from './queries.js';

export const API_QUERY_DEADLINE_MS = 3_000;
/** api.py `query(retry=True)`: one more attempt, a second after a failed one (`Retry(delay=1)`, one retry). */
export const API_RETRY_DELAY_MS = 1_000;

/** The local instance as the superuser, as the HA loop connects, under the name Patroni's API uses. */
export function apiConnectOptions(config: AgentConfig): ConnectOptions {
  const pg = config.postgresql;
  return {
    ...localConnectOptions(pg, pg.authentication.superuser),
    applicationName: 'Patroni restapi',
    connectTimeoutMs: 2_000,
    statementTimeoutMs: 2_000,
  };
}

class DeadlineMissed extends Error {}

export class ApiSession {
  private session: Promise<PgSession> | undefined;
  private readonly inflight = new Map<string, Promise<unknown>>();

  constructor(
    private readonly options: () => ConnectOptions,
    private readonly deadlineMs = API_QUERY_DEADLINE_MS,
    private readonly open: (o: ConnectOptions) => Promise<PgSession> = connect,
  ) {}

  /**
   * Runs `fn` on the API connection within the deadline; a failure or a miss drops the connection. A connection
   * kept from an earlier call that fails before the deadline (PostgreSQL was restarted meanwhile) is replaced and
   * `fn` tried once more on a new one, so that the first GET after a restart does not report the state unknown.
   */
  async run<T>(fn: (s: PgSession) => Promise<T>): Promise<T> {
    const reused = this.session !== undefined;
    try {
      return await this.attempt(fn);
    } catch (e) {
      if (!reused || e instanceof DeadlineMissed) throw e;
      return this.attempt(fn);
    }
  }

  private async attempt<T>(fn: (s: PgSession) => Promise<T>): Promise<T> {
    let pending = this.session;
    if (!pending) {
      pending = this.open(this.options());
      this.session = pending;
      pending.catch(() => this.drop(pending));
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DeadlineMissed(`no answer from PostgreSQL within ${this.deadlineMs} ms`)),
        this.deadlineMs,
      );
    });
    try {
      return await Promise.race([pending.then(fn), deadline]);
    } catch (e) {
      this.drop(pending);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Like `run`, but callers arriving while a `key` query runs share its answer (one query, however many GETs). */
  shared<T>(key: string, fn: (s: PgSession) => Promise<T>): Promise<T> {
    const running = this.inflight.get(key) as Promise<T> | undefined;
    if (running) return running;
    const started = this.run(fn).finally(() => this.inflight.delete(key));
    this.inflight.set(key, started);
    return started;
  }

  /**
   * `shared` with Patroni's retry (GET /patroni asks `get_postgresql_status(retry=True)`): a connection broken by a
   * restart or a reinitialize since the last use fails the first query; the second, on a new connection, answers.
   */
  async sharedRetrying<T>(
    key: string,
    fn: (s: PgSession) => Promise<T>,
    delayMs = API_RETRY_DELAY_MS,
  ): Promise<T> {
    try {
      return await this.shared(key, fn);
    } catch {
      await new Promise((r) => setTimeout(r, delayMs));
      return this.shared(key, fn);
    }
  }

  private drop(pending: Promise<PgSession> | undefined): void {
    if (!pending || this.session !== pending) return;
    this.session = undefined;
    pending.then((s) => s.close()).catch(() => undefined);
  }

  async close(): Promise<void> {
    const pending = this.session;
    this.session = undefined;
    if (pending) await pending.then((s) => s.close()).catch(() => undefined);
  }
}
