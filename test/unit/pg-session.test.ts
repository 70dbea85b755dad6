/**
 * One PgSession is shared by the HA loop, long actions and REST requests. node-postgres warns ("Calling
 * client.query() when the client is already executing a query", pg 9 will refuse) when a query is handed to a
 * client that is still busy: the session must run them one at a time.
 */
import { describe, expect, it, vi } from 'vitest';

const state = vi.hoisted(() => ({ inFlight: 0, maxInFlight: 0, order: [] as string[], ended: false }));

vi.mock('pg', () => {
  class Client {
    on(): void {}
    connect(): Promise<void> {
      return Promise.resolve();
    }
    async query(sql: string): Promise<{ rows: { sql: string }[] }> {
      state.inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
      await new Promise((r) => setTimeout(r, sql === 'slow' ? 30 : 5));
      state.inFlight--;
      state.order.push(sql);
      if (sql === 'bad') throw new Error('boom');
      return { rows: [{ sql }] };
    }
    end(): Promise<void> {
      state.ended = true;
      state.order.push('end');
      return Promise.resolve();
    }
  }
  return { default: { Client }, Client };
});

describe('PgSession: one query at a time', () => {
  it('runs concurrent queries one after the other, in call order; a failure does not stop the next', async () => {
    const { connect } = await import('../../src/postgres/queries.js');
    const s = await connect({ host: '127.0.0.1', port: 5432, user: 'postgres' });
    const results = await Promise.allSettled([s.query('slow'), s.query('bad'), s.query('fast'), s.close()]);
    expect(state.maxInFlight).toBe(1);
    expect(state.order).toEqual(['slow', 'bad', 'fast', 'end']);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
  });
});
