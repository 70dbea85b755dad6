import { describe, expect, it } from 'vitest';
import { ConfigApplier } from '../../src/postgres/apply-config.js';
import type { PgSession, Row } from '../../src/postgres/queries.js';
import type { EffectivePgConfig, PgSettingRow } from '../../src/postgres/reload-plan.js';

/** A running PostgreSQL as far as the applier can tell: pg_settings rows and a pending_restart count. */
function fakeServer(rows: readonly PgSettingRow[]): {
  session: PgSession;
  pendingCount: { n: number };
  queries: string[];
} {
  const pendingCount = { n: 0 };
  const queries: string[] = [];
  const session: PgSession = {
    query<R extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<readonly R[]> {
      queries.push(sql);
      if (sql.includes('pending_restart')) return Promise.resolve([{ n: pendingCount.n }] as unknown as R[]);
      const names = (params[0] ?? []) as readonly string[];
      return Promise.resolve(rows.filter((r) => names.includes(r.name)) as unknown as R[]);
    },
    close: () => Promise.resolve(),
  };
  return { session, pendingCount, queries };
}

const ROWS: readonly PgSettingRow[] = [
  { name: 'shared_buffers', setting: '4096', unit: '8kB', vartype: 'integer', context: 'postmaster' },
  { name: 'work_mem', setting: '4096', unit: 'kB', vartype: 'integer', context: 'user' },
];

const conf = (p: Readonly<Record<string, string>>, hba?: readonly string[]): EffectivePgConfig => ({
  parameters: new Map(Object.entries(p)),
  ...(hba ? { pgHba: hba } : {}),
});

function setup(initial: EffectivePgConfig): {
  applier: ConfigApplier;
  set: (c: EffectivePgConfig) => void;
  events: string[];
  server: ReturnType<typeof fakeServer>;
  running: { v: boolean };
} {
  let current = initial;
  const events: string[] = [];
  const server = fakeServer(ROWS);
  const running = { v: true };
  const applier = new ConfigApplier({
    effective: () => current,
    idleAndRunning: () => running.v,
    majorVersion: () => 150000,
    withSession: (fn) => fn(server.session),
    rewrite: () => events.push(`write ${[...applier.effective().parameters.keys()].join(',')}`),
    reload: () => {
      events.push('reload');
      return Promise.resolve();
    },
    log: { info: () => undefined, warning: (t) => events.push(`warning ${t}`), error: () => undefined },
    sleep: (ms) => {
      events.push(`sleep ${ms}`);
      return Promise.resolve();
    },
  });
  return { applier, set: (c) => (current = c), events, server, running };
}

describe('ConfigApplier (reload_config and pending_restart in the agent)', () => {
  it('does nothing while the configuration is what the server was started with', async () => {
    const base = conf({ shared_buffers: '32MB', work_mem: '4MB' });
    const t = setup(base);
    t.applier.starting(base);
    await t.applier.apply();
    expect(t.events).toEqual([]);
    expect(t.server.queries).toEqual([]);
  });

  it('a reload-only change: written, reloaded, no pending restart', async () => {
    const t = setup(conf({ shared_buffers: '32MB', work_mem: '4MB' }));
    t.applier.starting(conf({ shared_buffers: '32MB', work_mem: '4MB' }));
    t.set(conf({ shared_buffers: '32MB', work_mem: '8MB' }));
    await t.applier.apply();
    expect(t.events).toEqual(['write shared_buffers,work_mem', 'reload', 'sleep 1000']);
    expect(t.applier.pendingRestart).toBe(false);
    await t.applier.apply();
    expect(t.events).toHaveLength(3);
  });

  it('a postmaster change: pending until the next start; pg_settings has the last word', async () => {
    const t = setup(conf({ shared_buffers: '32MB' }));
    t.applier.starting(conf({ shared_buffers: '32MB' }));
    t.set(conf({ shared_buffers: '48MB' }));
    t.server.pendingCount.n = 1;
    await t.applier.apply();
    expect(t.applier.pendingRestart).toBe(true);
    t.applier.starting(conf({ shared_buffers: '48MB' }));
    expect(t.applier.pendingRestart).toBe(false);
    // The comparison says "restart", but after the reload pg_settings reports nothing pending: it wins.
    t.set(conf({ shared_buffers: '64MB' }));
    t.server.pendingCount.n = 0;
    await t.applier.apply();
    expect(t.applier.pendingRestart).toBe(false);
  });

  it('SIGHUP reloads even without a change; nothing happens while PostgreSQL is not running', async () => {
    const base = conf({ work_mem: '4MB' });
    const t = setup(base);
    t.applier.starting(base);
    t.running.v = false;
    t.applier.localConfigReloaded();
    await t.applier.apply();
    expect(t.events).toEqual([]);
    t.running.v = true;
    t.applier.localConfigReloaded();
    await t.applier.apply();
    expect(t.events).toEqual(['reload', 'sleep 1000']);
  });

  it('an unknown parameter is dropped for good: written without it, no warning on later cycles', async () => {
    const base = conf({ work_mem: '4MB' });
    const t = setup(base);
    t.applier.starting(base);
    t.set(conf({ work_mem: '8MB', bogus_guc: '1' }));
    await t.applier.apply();
    expect(t.events).toEqual([
      'warning Removing invalid parameter `bogus_guc` from postgresql.parameters',
      'write work_mem',
      'reload',
      'sleep 1000',
    ]);
    await t.applier.apply();
    expect(t.events).toHaveLength(4);
    expect(t.applier.effective().parameters.has('bogus_guc')).toBe(false);
  });
});
