import { defineConfig } from 'vitest/config';

/**
 * Three tiers, one project each (README, "Run the tests"):
 * - unit: `npm test`. Unit tests and the DCS contract suite on the in-memory DCS; no servers, files in parallel
 *   (`--file-parallelism --max-workers=100%` in the script: vitest's default leaves one of two cores idle).
 * - integration: `npm run test:integration`. Real PostgreSQL, etcd, ZooKeeper, HAProxy and Patroni 3.0.2; files
 *   one at a time (they share ports and CPU on a 2-core machine).
 * - bench: `npm run bench`. Measurements next to Patroni, figures to .bench/; asserts its targets, but no gating
 *   CI step runs it.
 * Each npm script adds vitest's JSON reporter (.bench/vitest-<tier>.json), from which .ci/run prints a plain count
 * line.
 */
export default defineConfig({
  test: {
    // Files one at a time unless a script says otherwise (`npm test` runs the unit files in parallel): integration
    // suites share ports and CPU on a 2-core machine. Per project this cannot be set in vitest 3.
    fileParallelism: false,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/faults/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 240_000,
        },
      },
      {
        test: {
          name: 'bench',
          include: ['test/bench/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 240_000,
        },
      },
    ],
  },
});
