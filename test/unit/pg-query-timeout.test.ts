/**
 * A PostgreSQL that stops answering (SIGSTOPped, a dead network path) never enforces its statement_timeout: the
 * session bounds every query on the client side, closes the connection when one overruns, and lets the next caller
 * through instead of queueing it behind the hung query forever.
 */
import { describe, expect, it, vi } from 'vitest';

const state = vi.hoisted(() => ({ ended: 0, hung: [] as ((e: Error) => void)[] }));

vi.mock('pg', () => {
  class Client {
    private closed = false;
    on(): void {}
    connect(): Promise<void> {
      return Promise.resolve();
    }
    query(sql: string): Promise<{ rows: { sql: string }[] }> {
      if (this.closed) return Promise.reject(new Error('Client was closed and is not queryable'));
      // 'hang': the server never answers; only destroying the socket (end() with a query active) settles it.
      if (sql === 'hang') return new Promise((_, reject) => state.hung.push(reject));
      return new Promise((r) => setTimeout(() => r({ rows: [{ sql }] }), 5));
    }
    end(): Promise<void> {
      this.closed = true;
      state.ended++;
      for (const reject of state.hung.splice(0)) reject(new Error('Connection terminated'));
      return Promise.resolve();
    }
  }
  return { default: { Client }, Client };
});

describe('PgSession: client-side query timeout', () => {
  it('fails a query the server never answers, closes the connection, and frees the session', async () => {
    const { connect } = await import('../../src/postgres/queries.js');
    const s = await connect({ host: '127.0.0.1', port: 5432, user: 'postgres', queryTimeoutMs: 100 });
    const t0 = performance.now();
    await expect(s.query('hang')).rejects.toThrow('PostgreSQL did not answer a query within 100 ms');
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(state.ended).toBe(1);
    // The next query is not stuck behind the hung one: it fails at once on the closed connection.
    await expect(s.query('SELECT 1')).rejects.toThrow('not queryable');
    await s.close();
  });

  it('answers in time are unaffected; a per-query timeout of 0 (CHECKPOINT) waits as long as it takes', async () => {
    const { connect } = await import('../../src/postgres/queries.js');
    const s = await connect({ host: '127.0.0.1', port: 5432, user: 'postgres', queryTimeoutMs: 100 });
    expect(await s.query('SELECT 1')).toEqual([{ sql: 'SELECT 1' }]);
    const ended = state.ended;
    const long = s.query('hang', [], { timeoutMs: 0 });
    await new Promise((r) => setTimeout(r, 300));
    expect(state.ended).toBe(ended);
    // The CHECKPOINT finally finishes (here: the server gives up on it).
    for (const reject of state.hung.splice(0)) reject(new Error('canceling statement'));
    await expect(long).rejects.toThrow('canceling statement');
    await s.close();
  });

  it('defaults to statement_timeout + 3 s, and to no client bound when statement_timeout is 0', async () => {
    vi.useFakeTimers();
    try {
      const { connect } = await import('../../src/postgres/queries.js');
      const s = await connect({ host: '127.0.0.1', port: 5432, user: 'postgres' });
      const hung = s.query('hang');
      const outcome = hung.then(
        () => 'answered',
        (e: Error) => e.message,
      );
      await vi.advanceTimersByTimeAsync(4_999);
      expect(state.hung.length).toBe(1);
      await vi.advanceTimersByTimeAsync(2);
      expect(await outcome).toBe('PostgreSQL did not answer a query within 5000 ms; connection closed');

      const none = await connect({ host: '127.0.0.1', port: 5432, user: 'postgres', statementTimeoutMs: 0 });
      const waiting = none.query('hang');
      await vi.advanceTimersByTimeAsync(600_000);
      expect(state.hung.length).toBe(1);
      for (const reject of state.hung.splice(0)) reject(new Error('canceling statement'));
      await expect(waiting).rejects.toThrow('canceling statement');
      await none.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
