/**
 * Cloning a member with pg_basebackup (Patroni's built-in `basebackup` replica method): WAL streamed alongside
 * (`-X stream`), a fast checkpoint on the source, the replication user's password in a pgpass file, plus the
 * `postgresql.basebackup` options.
 */
import { resolve } from 'node:path';
import { runPgTool, writePrivateFile, type PgBinariesConfig, type RunResult } from './binaries.js';
import { formatConninfo, formatToolOptions, renderPgpass, type ToolOptions } from './config-writer.js';

/** Options pgwarden sets itself, refused from postgresql.basebackup. */
export const BASEBACKUP_NOT_ALLOWED = [
  'pgdata',
  'format',
  'wal-method',
  'xlog-method',
  'gzip',
  'version',
  'compress',
  'dbname',
  'host',
  'port',
  'username',
  'password',
] as const;

export interface BasebackupOptions {
  readonly bins: PgBinariesConfig;
  /** Target; must be absent or empty (and writable by the user running pg_basebackup). */
  readonly dataDir: string;
  readonly source: { readonly host: string; readonly port: number };
  readonly replication: {
    readonly username: string;
    readonly password?: string | undefined;
    /** The replication user's libpq keywords (sslmode, sslcert, sslkey, sslrootcert, ...), as Patroni passes them. */
    readonly connectionParams?: Readonly<Record<string, string>>;
  };
  /** `postgresql.pgpass`: written with the replication credentials when there is a password. */
  readonly pgpassPath: string;
  /** `postgresql.basebackup`. */
  readonly options?: ToolOptions | null | undefined;
  /** `postgresql.database`, default postgres. */
  readonly database?: string;
  /** Default 1 h. */
  readonly timeoutMs?: number;
  /** Rejected user options are reported here (the backup goes ahead without them). */
  readonly onWarning?: (message: string) => void;
}

/** The pg_basebackup argument list. */
export function basebackupArgs(opts: Omit<BasebackupOptions, 'bins' | 'pgpassPath' | 'timeoutMs'>): {
  readonly args: readonly string[];
  readonly errors: readonly string[];
} {
  const formatted = formatToolOptions('basebackup', opts.options ?? [], BASEBACKUP_NOT_ALLOWED);
  const dsn = formatConninfo({
    ...opts.replication.connectionParams,
    dbname: opts.database ?? 'postgres',
    user: opts.replication.username,
    host: opts.source.host,
    port: opts.source.port,
  });
  const userSetsCheckpoint = formatted.args.some(
    (a) => a === '--checkpoint' || a.startsWith('--checkpoint='),
  );
  const args = [
    `--pgdata=${resolve(opts.dataDir)}`,
    '-X',
    'stream',
    ...(userSetsCheckpoint ? [] : ['-c', 'fast']),
    `--dbname=${dsn}`,
    ...formatted.args,
  ];
  return { args, errors: formatted.errors };
}

/** Runs pg_basebackup once; rejects (PgCommandError) on failure. Retrying is the caller's decision. */
export async function basebackup(opts: BasebackupOptions): Promise<RunResult> {
  const { args, errors } = basebackupArgs(opts);
  for (const e of errors) opts.onWarning?.(e);
  const env: Record<string, string> = {};
  if (opts.replication.password !== undefined) {
    writePrivateFile(
      opts.pgpassPath,
      renderPgpass({
        host: opts.source.host,
        port: opts.source.port,
        user: opts.replication.username,
        password: opts.replication.password,
      }) + '\n',
      opts.bins.runAs,
    );
    env['PGPASSFILE'] = resolve(opts.pgpassPath);
  }
  return runPgTool(opts.bins, 'pg_basebackup', args, { timeoutMs: opts.timeoutMs ?? 3_600_000, env });
}
