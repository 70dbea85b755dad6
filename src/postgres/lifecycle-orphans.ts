/**
 * After kill -9 of a postmaster its pid lingers until its parent (init) reaps it, and its backends live on for a
 * moment (each notices the postmaster's death on its own), still attached to the old shared memory segment; a
 * postmaster started meanwhile refuses to run ("lock file postmaster.pid already exists", "pre-existing shared
 * memory block is still in use"). Patroni meets the crash one loop_wait later, when they are usually gone; pgwarden
 * may meet it at once, so a start after a crash waits (bounded) for both.
 * Linux: the segment's id is line 7 of postmaster.pid, its attach count `nattch` in /proc/sysvipc/shm.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Processes still attached to the shared memory segment the last postmaster.pid names (0: none or unknown). */
export function orphanedAttachments(dataDir: string, shmTable = '/proc/sysvipc/shm'): number {
  let pidFile: string;
  let table: string;
  try {
    pidFile = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8');
    table = readFileSync(shmTable, 'utf8');
  } catch {
    return 0;
  }
  const ids = (pidFile.split('\n')[6] ?? '').trim().split(/\s+/);
  const shmid = ids[1];
  if (shmid === undefined || !/^\d+$/.test(shmid)) return 0;
  const lines = table.split('\n');
  const header = (lines[0] ?? '').trim().split(/\s+/);
  const idCol = header.indexOf('shmid');
  const nattchCol = header.indexOf('nattch');
  if (idCol < 0 || nattchCol < 0) return 0;
  for (const line of lines.slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[idCol] === shmid) return Number.parseInt(f[nattchCol] ?? '0', 10) || 0;
  }
  return 0;
}

/** The pid postmaster.pid names while that process still exists, a zombie included (PostgreSQL's own test). */
export function lingeringPostmaster(dataDir: string): number | undefined {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n', 1)[0] ?? '', 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/**
 * Before starting a PostgreSQL whose postmaster died: waits up to `timeoutMs` until the dead postmaster is reaped
 * (until then PostgreSQL reads its pid as alive: "lock file postmaster.pid already exists"; on this machine's init
 * that took 1.7 s) and its backends have let go of the old shared memory. True when both are gone.
 */
export async function waitForOrphanedBackends(
  dataDir: string,
  timeoutMs: number,
  log: { info(text: string): void },
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const busy = (): string | undefined => {
    const pid = lingeringPostmaster(dataDir);
    if (pid !== undefined) return `the crashed postmaster (pid ${pid}) to be reaped`;
    const n = orphanedAttachments(dataDir);
    return n > 0 ? `${n} process(es) of the crashed postmaster to exit` : undefined;
  };
  let what = busy();
  if (what === undefined) return true;
  log.info(`waiting for ${what} before starting PostgreSQL`);
  while (what !== undefined && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    what = busy();
  }
  return what === undefined;
}
