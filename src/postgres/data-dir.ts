/**
 * The data directory as a whole: whether it is there and populated, emptying it (with a symlinked pg_wal's
 * target), moving it aside, and its pg_control (system identifier and whether pg_rewind could work), cached per
 * pg_control inode.
 */
import {
  existsSync,
  lstatSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import type { PgBinariesConfig } from './binaries.js';
import { controldata, summarizeControldata } from './pg-ctl.js';
import { configurationAllowsRewind } from './rewind.js';

/**
 * One readdir: missing (as empty), empty, populated, or inaccessible (permissions, not a directory). As Patroni,
 * hidden entries and `lost+found` (a mount point) do not make it populated; a pg_control does.
 */
export function dataDirState(dir: string): 'empty' | 'populated' | 'inaccessible' {
  try {
    const entries = readdirSync(dir);
    if (entries.every((e) => e.startsWith('.') || e === 'lost+found')) {
      return existsSync(join(dir, 'global', 'pg_control')) ? 'populated' : 'empty';
    }
    return 'populated';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'empty' : 'inaccessible';
  }
}

export function dataDirEmpty(dir: string): boolean {
  return dataDirState(dir) === 'empty';
}

/** Empties the data directory; a symlinked pg_wal (pg_basebackup --waldir) has its target emptied too. */
export function wipeDataDir(dir: string): void {
  try {
    const wal = join(dir, 'pg_wal');
    if (lstatSync(wal).isSymbolicLink()) {
      const target = realpathSync(wal);
      for (const entry of readdirSync(target)) rmSync(join(target, entry), { recursive: true, force: true });
    }
  } catch {
    /* no pg_wal, or its target is gone */
  }
  try {
    for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
  } catch {
    /* nothing to remove */
  }
}

/**
 * Patroni's `remove_data_directory`: the data directory itself goes (a symlink to it is unlinked; a symlinked
 * pg_wal's target is emptied first), so that a replica method or pg_basebackup creates it as it wants. When the
 * directory cannot be removed (a mount point), it is emptied instead.
 */
export function removeDataDir(dir: string): void {
  let isLink = false;
  try {
    isLink = lstatSync(dir).isSymbolicLink();
  } catch {
    return;
  }
  if (isLink) {
    unlinkSync(dir);
    return;
  }
  wipeDataDir(dir);
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    /* emptied above; the directory itself stays (mount point, permissions of its parent) */
  }
}

/** Renames the data directory to `<dir>_<local time>` (after a failed bootstrap); returns the new name. */
export function moveDataDirAside(dir: string, now = new Date()): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const d = now;
  const suffix = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}-${pad(d.getHours())}-${pad(d.getMinutes())}-${pad(d.getSeconds())}`;
  const target = `${dir}_${suffix}`;
  renameSync(dir, target);
  return target;
}

/** pg_controldata of the data directory, read again only when pg_control was replaced (initdb, clone, rewind). */
export class ControlFile {
  private cache: { readonly inode: string; readonly sysid: string } | undefined;
  /** pg_controldata says wal_log_hints was on or data checksums are enabled. */
  allowsRewind = false;

  constructor(
    private readonly bins: PgBinariesConfig,
    private readonly dataDir: () => string,
  ) {}

  /** The system identifier last read (for the REST status). */
  get knownSysid(): string | undefined {
    return this.cache?.sysid;
  }

  /** The data directory changed under us: read pg_control again next time. */
  forget(): void {
    this.cache = undefined;
  }

  /** The system identifier; undefined without a readable pg_control. */
  async sysid(): Promise<string | undefined> {
    const dir = this.dataDir();
    let inode: string;
    try {
      inode = `${statSync(join(dir, 'global', 'pg_control')).ino}`;
    } catch {
      return undefined;
    }
    if (this.cache?.inode === inode) return this.cache.sysid;
    const data = await controldata(this.bins, dir);
    this.allowsRewind = configurationAllowsRewind(data);
    const summary = summarizeControldata(data);
    if (summary.systemIdentifier === undefined) return undefined;
    this.cache = { inode, sysid: summary.systemIdentifier };
    return summary.systemIdentifier;
  }
}
