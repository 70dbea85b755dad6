/**
 * The synchronous standby's clean stop, measured the same way on pgwarden and on Patroni agents
 * (test/integration/agent-shutdown.test.ts asserts pgwarden's; test/bench/sync-standby-stop.test.ts compares).
 */
import pg from 'pg';
import { expect } from 'vitest';
import type { AgentCluster } from './agents.js';
import { waitFor } from './process.js';

const HOST = '127.0.0.1';

/** PATCH /config or POST `path` on member `name`'s REST API. */
async function call(
  cl: AgentCluster,
  name: string,
  path: string,
  body: unknown,
): Promise<{ status: number; text: string }> {
  const node = cl.nodes.find((n) => n.name === name);
  const r = await fetch(`http://${HOST}:${node?.restPort ?? 0}${path}`, {
    method: path === '/config' ? 'PATCH' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  return { status: r.status, text: await r.text() };
}

/**
 * synchronous_mode and synchronous_mode_strict on, a writer committing on the primary every 20 ms, SIGTERM to the
 * synchronous standby's agent: the longest commit (ms) once commits flow again; the standby is started again after.
 */
export async function stopSyncStandby(
  cl: AgentCluster,
  label: string,
  client: (name: string) => Promise<pg.Client>,
): Promise<{ longest: number }> {
  const idx = (name: string): number => cl.nodes.findIndex((n) => n.name === name);
  const leader = await cl.waitReady({ timeoutMs: 60_000 });
  const cfg = await call(cl, leader, '/config', { synchronous_mode: true, synchronous_mode_strict: true });
  expect(cfg.status, cfg.text).toBe(200);
  const syncStandby = await waitFor(
    'a synchronous standby',
    async () => {
      const r = await cl.psql(
        idx(leader),
        "SELECT application_name FROM pg_stat_replication WHERE sync_state = 'sync'",
      );
      return r.stdout.trim().split('\n').filter(Boolean).length === 1 ? r.stdout.trim() : false;
    },
    30_000,
    300,
  );
  const w = await client(leader);
  await w.query('CREATE TABLE IF NOT EXISTS w (id int, at timestamptz default now())');
  let stop = false;
  let longest = 0;
  let commits = 0;
  const writer = (async () => {
    while (!stop) {
      const t0 = performance.now();
      await w.query('INSERT INTO w (id) VALUES ($1)', [commits]);
      longest = Math.max(longest, performance.now() - t0);
      commits += 1;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await new Promise((r) => setTimeout(r, 1000));
  const before = longest;
  const t0 = Date.now();
  await cl.terminate(idx(syncStandby), 60_000);
  const stopMs = Date.now() - t0;
  // Commits keep flowing on the new synchronous standby.
  const mark = commits;
  await waitFor('20 more commits', () => commits >= mark + 20, 60_000, 100);
  stop = true;
  await writer;
  console.log(
    `${label}: sync standby ${syncStandby} stopped in ${stopMs} ms; longest commit ${Math.round(longest)} ms (before the stop ${Math.round(before)} ms), ${commits} commits`,
  );
  cl.start(idx(syncStandby));
  await cl.waitReady({ timeoutMs: 90_000 });
  return { longest };
}
