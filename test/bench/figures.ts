/**
 * Where a benchmark leaves its figures: `.bench/<name>.json` under the repository root, one document per run of the
 * bench file (started at `startedAt`), rewritten as each test adds its part, so a run cut short keeps what it
 * measured. `npm run bench` is not part of the gating CI run: the figures are for reading and comparing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const BENCH_DIR = resolve(import.meta.dirname, '..', '..', '.bench');

export interface BenchFigures {
  /** The file the figures go to. */
  readonly path: string;
  /** Adds (or replaces) one named part of the figures and rewrites the file. */
  record(part: string, figures: unknown): void;
}

export function benchFigures(name: string): BenchFigures {
  const path = join(BENCH_DIR, `${name}.json`);
  const doc = { bench: name, startedAt: new Date().toISOString(), figures: {} as Record<string, unknown> };
  return {
    path,
    record(part, figures) {
      doc.figures[part] = figures;
      mkdirSync(BENCH_DIR, { recursive: true });
      writeFileSync(path, `${JSON.stringify(doc, null, 2)}\n`);
    },
  };
}
