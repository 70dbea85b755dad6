/**
 * Creating a new cluster with initdb, configured by `bootstrap.initdb` in Patroni's option format and the
 * superuser from `postgresql.authentication.superuser` (its password handed over in a temporary --pwfile).
 */
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runPgTool, writePrivateFile, type PgBinariesConfig, type RunResult } from './binaries.js';
import { formatToolOptions, PgConfigError, type ToolOptions } from './config-writer.js';

/** Options pgwarden sets itself (or that would break the cluster) and refuses from bootstrap.initdb. */
export const INITDB_NOT_ALLOWED = ['pgdata', 'nosync', 'pwfile', 'sync-only', 'version'] as const;

export interface InitdbOptions {
  readonly bins: PgBinariesConfig;
  readonly dataDir: string;
  /** `bootstrap.initdb`. */
  readonly options?: ToolOptions | null | undefined;
  /** `postgresql.authentication.superuser`. */
  readonly superuser?: { readonly username?: string | undefined; readonly password?: string | undefined };
  /** Default 120 s (initdb fsyncs the whole cluster). */
  readonly timeoutMs?: number;
}

/** The initdb argument list (without the pwfile, which `initdb` adds). Throws PgConfigError on bad options. */
export function initdbArgs(dataDir: string, options: InitdbOptions['options'], username?: string): string[] {
  const formatted = formatToolOptions('initdb', options ?? [], INITDB_NOT_ALLOWED);
  if (formatted.errors.length > 0) {
    throw new PgConfigError(`bootstrap.initdb: ${formatted.errors.join('; ')}`);
  }
  const args = ['-D', resolve(dataDir), ...formatted.args];
  if (username !== undefined && username !== '') args.push(`--username=${username}`);
  return args;
}

/** Runs initdb. The data directory must be absent or empty. */
export async function initdb(opts: InitdbOptions): Promise<RunResult> {
  const args = initdbArgs(opts.dataDir, opts.options, opts.superuser?.username);
  const password = opts.superuser?.password;
  let pwDir: string | undefined;
  try {
    if (password !== undefined) {
      pwDir = mkdtempSync(join(tmpdir(), 'pgwarden-initdb-'));
      const owner = opts.bins.runAs;
      if (owner) chownSync(pwDir, owner.uid, owner.gid);
      const pwfile = join(pwDir, 'pwfile');
      writePrivateFile(pwfile, password, owner);
      args.push(`--pwfile=${pwfile}`);
    }
    return await runPgTool(opts.bins, 'initdb', args, { timeoutMs: opts.timeoutMs ?? 120_000 });
  } finally {
    if (pwDir !== undefined) rmSync(pwDir, { recursive: true, force: true });
  }
}
