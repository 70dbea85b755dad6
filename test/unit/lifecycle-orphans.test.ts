import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  lingeringPostmaster,
  orphanedAttachments,
  waitForOrphanedBackends,
} from '../../src/postgres/lifecycle-orphans.js';

const dir = mkdtempSync(join(tmpdir(), 'pgwarden-orphans-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SHM_TABLE = join(dir, 'shm');
writeFileSync(
  SHM_TABLE,
  `       key      shmid perms                  size  cpid  lpid nattch   uid   gid
   5432001      32768   600                    56  3325  4944      3   101   104
   2196521      65540   600                    56  2736  2939      0   101   104
`,
);

/** A data directory whose postmaster.pid names `pid` and the shared memory line `shm`. */
function dataDir(name: string, pid: number, shm: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const lines = [String(pid), d, '1796330000', '5432', '/tmp', '127.0.0.1', shm, 'ready   '];
  writeFileSync(join(d, 'postmaster.pid'), `${lines.join('\n')}\n`);
  return d;
}

describe('a crashed postmaster left behind', () => {
  it('counts the processes still attached to the segment postmaster.pid names', () => {
    expect(orphanedAttachments(dataDir('a', 999999, '  5432001     32768'), SHM_TABLE)).toBe(3);
    expect(orphanedAttachments(dataDir('b', 999999, '  2196521     65540'), SHM_TABLE)).toBe(0);
    expect(orphanedAttachments(dataDir('c', 999999, '  1     1234'), SHM_TABLE)).toBe(0);
    expect(orphanedAttachments(join(dir, 'missing'), SHM_TABLE)).toBe(0);
  });

  it('sees the old postmaster pid while that process exists, not once it is gone', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    const pid = child.pid ?? 0;
    const d = dataDir('d', pid, '  0     0');
    try {
      expect(lingeringPostmaster(d)).toBe(pid);
    } finally {
      child.kill('SIGKILL');
    }
    await new Promise((r) => child.once('exit', r));
    expect(lingeringPostmaster(d)).toBeUndefined();
    expect(await waitForOrphanedBackends(d, 1000, { info: () => undefined })).toBe(true);
  });

  it('gives up after its bound while the old postmaster still exists, and says what it waited for', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    const d = dataDir('e', child.pid ?? 0, '  0     0');
    const lines: string[] = [];
    try {
      expect(await waitForOrphanedBackends(d, 300, { info: (t) => lines.push(t) })).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
    expect(lines).toEqual([
      `waiting for the crashed postmaster (pid ${child.pid}) to be reaped before starting PostgreSQL`,
    ]);
  });
});
