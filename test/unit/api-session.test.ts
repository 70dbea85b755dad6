/**
 * The REST API's own PostgreSQL connection (src/postgres/api-session.ts) with a stand-in connection: one connection
 * for many calls, concurrent `shared` callers get one query, a query over the deadline fails and the connection is
 * replaced, a failed connect is retried on the next call.
 */
import { describe, expect, it } from 'vitest';
import { ApiSession } from '../../src/postgres/api-session.js';
import type { ConnectOptions, PgSession } from '../../src/postgres/queries.js';

const OPTIONS: ConnectOptions = { host: '/tmp', port: 5432, user: 'postgres' };

function fakePg(
  behaviour: {
    hang?: boolean;
    refuse?: boolean;
    failFirstQuery?: boolean;
    brokenFirst?: boolean;
  } = {},
) {
  const stats = { opened: 0, closed: 0, queries: 0 };
  const open = async (): Promise<PgSession> => {
    stats.opened++;
    if (behaviour.refuse) throw new Error('connection refused');
    return {
      async query<R>() {
        stats.queries++;
        if (behaviour.failFirstQuery && stats.queries === 2) throw new Error('terminating connection');
        // A connection opened before a restart: its first query finds the socket closed by the server.
        if (behaviour.brokenFirst && stats.opened === 1)
          throw new Error('Connection terminated unexpectedly');
        if (behaviour.hang) await new Promise(() => undefined);
        await new Promise((r) => setTimeout(r, 20));
        return [{ v: stats.queries }] as unknown as readonly R[];
      },
      async close() {
        stats.closed++;
      },
    };
  };
  return { stats, open };
}

describe('ApiSession', () => {
  it('keeps one connection; concurrent shared callers get one query', async () => {
    const pg = fakePg();
    const session = new ApiSession(() => OPTIONS, 1000, pg.open);
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => session.shared('status', async (s) => (await s.query('SELECT 1'))[0])),
    );
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(pg.stats).toMatchObject({ opened: 1, queries: 1 });
    await session.run((s) => s.query('SELECT 2'));
    expect(pg.stats).toMatchObject({ opened: 1, queries: 2 });
    await session.close();
    expect(pg.stats.closed).toBe(1);
  });

  it('a query over the deadline fails and the connection is dropped', async () => {
    const pg = fakePg({ hang: true });
    const session = new ApiSession(() => OPTIONS, 100, pg.open);
    const started = Date.now();
    await expect(session.run((s) => s.query('SELECT pg_sleep(60)'))).rejects.toThrow(/within 100 ms/);
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(session.run((s) => s.query('SELECT 1'))).rejects.toThrow(/within 100 ms/);
    expect(pg.stats.opened).toBe(2);
  });

  it('a kept connection that fails (PostgreSQL restarted) is replaced and the query tried once more', async () => {
    const pg = fakePg({ failFirstQuery: true });
    const session = new ApiSession(() => OPTIONS, 1000, pg.open);
    expect(await session.run((s) => s.query('SELECT 1'))).toEqual([{ v: 1 }]);
    // The second query fails on the kept connection: answered on a new one.
    expect(await session.run((s) => s.query('SELECT 1'))).toEqual([{ v: 3 }]);
    expect(pg.stats).toMatchObject({ opened: 2, queries: 3 });
  });

  it('a refused connection is tried again on the next call', async () => {
    const pg = fakePg({ refuse: true });
    const session = new ApiSession(() => OPTIONS, 1000, pg.open);
    await expect(session.run((s) => s.query('SELECT 1'))).rejects.toThrow(/refused/);
    await expect(session.run((s) => s.query('SELECT 1'))).rejects.toThrow(/refused/);
    expect(pg.stats.opened).toBe(2);
  });

  it('sharedRetrying: a connection broken since its last use is replaced and the query asked again', async () => {
    const pg = fakePg({ brokenFirst: true });
    const session = new ApiSession(() => OPTIONS, 1000, pg.open);
    await expect(session.shared('status', (s) => s.query('SELECT 1'))).rejects.toThrow(/terminated/);
    const again = fakePg({ brokenFirst: true });
    const retrying = new ApiSession(() => OPTIONS, 1000, again.open);
    const started = Date.now();
    await expect(retrying.sharedRetrying('status', (s) => s.query('SELECT 1'), 50)).resolves.toEqual([
      { v: 2 },
    ]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(again.stats).toMatchObject({ opened: 2, queries: 2, closed: 1 });
  });

  it('sharedRetrying tries once more only: a server that stays down fails the call', async () => {
    const pg = fakePg({ refuse: true });
    const session = new ApiSession(() => OPTIONS, 1000, pg.open);
    await expect(session.sharedRetrying('status', (s) => s.query('SELECT 1'), 10)).rejects.toThrow(/refused/);
    expect(pg.stats.opened).toBe(2);
  });
});
