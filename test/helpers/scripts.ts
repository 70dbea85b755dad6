/**
 * Tiny shell scripts in a temp dir and an in-memory log, for the unit tests of the code that runs user scripts
 * (postgresql.callbacks, pre_promote, before_stop).
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ScriptDir {
  readonly dir: string;
  /** Writes `#!/bin/sh\n<body>` to `<dir>/<name>`, makes it executable and returns its path. */
  readonly script: (name: string, body: string) => string;
  /** Removes the dir and everything in it. */
  readonly remove: () => void;
}

export function scriptDir(prefix: string): ScriptDir {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    script: (name, body) => {
      const path = join(dir, name);
      writeFileSync(path, `#!/bin/sh\n${body}\n`);
      chmodSync(path, 0o755);
      return path;
    },
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface MemoryLog {
  /** Every line logged, as `LEVEL text`. */
  readonly lines: string[];
  info(t: string): void;
  warning(t: string): void;
  error(t: string): void;
}

export function memoryLog(): MemoryLog {
  const lines: string[] = [];
  return {
    lines,
    info: (t) => lines.push(`INFO ${t}`),
    warning: (t) => lines.push(`WARNING ${t}`),
    error: (t) => lines.push(`ERROR ${t}`),
  };
}
