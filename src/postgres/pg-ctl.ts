/**
 * Starting, stopping and promoting the local postmaster with pg_ctl; telling whether it runs (postmaster.pid and
 * signal 0); reading pg_controldata and PG_VERSION.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseLsnText, type Lsn } from '../model/lsn.js';
import { PgCommandError, runPgTool, tail, type PgBinariesConfig } from './binaries.js';

export type StopMode = 'smart' | 'fast' | 'immediate';

/** Quotes one argument for the /bin/sh command line pg_ctl builds from `-o`. */
export function shellQuote(arg: string): string {
  return /^[\w./=:,@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function seconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

function readLogTail(logFile: string | undefined): string {
  if (logFile === undefined || logFile === '/dev/null') return '';
  try {
    return tail(readFileSync(logFile, 'utf8'), 20);
  } catch {
    return '';
  }
}

export interface StartOptions {
  readonly bins: PgBinariesConfig;
  readonly dataDir: string;
  /** Arguments for `postgres` (e.g. `cmdlineArgs(...)`); each is shell-quoted into pg_ctl's -o. */
  readonly postgresArgs?: readonly string[];
  /** `--config-file` (Patroni passes <config_dir>/postgresql.conf). */
  readonly configFile?: string;
  /** Postmaster stdout/stderr (pg_ctl -l). Default /dev/null. */
  readonly logFile?: string;
  /** How long to wait for the server to accept connections (pg_ctl_timeout, default 60 s). */
  readonly timeoutMs?: number;
  /** Wait for startup to complete (default true). */
  readonly wait?: boolean;
}

/** `pg_ctl start`. Resolves with the postmaster pid; rejects with the log tail if the server did not come up. */
export async function startPostgres(opts: StartOptions): Promise<number> {
  const dataDir = resolve(opts.dataDir);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const logFile = opts.logFile ?? '/dev/null';
  const pgArgs = [...(opts.configFile !== undefined ? [`--config-file=${resolve(opts.configFile)}`] : [])];
  pgArgs.push(...(opts.postgresArgs ?? []));
  const args = [
    'start',
    '-D',
    dataDir,
    '-l',
    logFile,
    opts.wait === false ? '-W' : '-w',
    '-t',
    seconds(timeoutMs),
  ];
  if (pgArgs.length > 0) args.push('-o', pgArgs.map(shellQuote).join(' '));
  try {
    await runPgTool(opts.bins, 'pg_ctl', args, { timeoutMs: timeoutMs + 10_000 });
  } catch (e) {
    const log = readLogTail(opts.logFile);
    if (e instanceof PgCommandError && log !== '') {
      throw new PgCommandError(
        `${e.message}\n--- server log (${logFile}) ---\n${log}`,
        e.command,
        e.args,
        e.exitCode,
        e.signal,
        e.stdout,
        e.stderr,
        e.timedOut,
      );
    }
    throw e;
  }
  const pid = readPostmasterPid(dataDir)?.pid;
  if (pid === undefined) throw new Error(`pg_ctl start succeeded but ${dataDir}/postmaster.pid is missing`);
  return pid;
}

export interface StopOptions {
  readonly bins: PgBinariesConfig;
  readonly dataDir: string;
  readonly mode?: StopMode;
  /** Default 60 s. */
  readonly timeoutMs?: number;
}

/** `pg_ctl stop -m <mode> -w`. Resolves 'stopped', or 'not-running' when there was nothing to stop. */
export async function stopPostgres(opts: StopOptions): Promise<'stopped' | 'not-running'> {
  const dataDir = resolve(opts.dataDir);
  if (isRunning(dataDir) === undefined) return 'not-running';
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const result = await runPgTool(
    opts.bins,
    'pg_ctl',
    ['stop', '-D', dataDir, '-m', opts.mode ?? 'fast', '-w', '-t', seconds(timeoutMs)],
    { timeoutMs: timeoutMs + 10_000, okExitCodes: [0, 1] },
  );
  if (result.exitCode === 0) return 'stopped';
  if (/PID file .* does not exist/.test(result.stderr)) return 'not-running';
  throw new PgCommandError(
    `pg_ctl stop -D ${dataDir} -m ${opts.mode ?? 'fast'} failed (exit code 1):\n${tail(result.stderr || result.stdout)}`,
    'pg_ctl',
    [],
    result.exitCode,
    null,
    result.stdout,
    result.stderr,
    false,
  );
}

/** `pg_ctl promote -w`: resolves once the server has left recovery. */
export async function promotePostgres(opts: {
  readonly bins: PgBinariesConfig;
  readonly dataDir: string;
  readonly timeoutMs?: number;
  readonly wait?: boolean;
}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  await runPgTool(
    opts.bins,
    'pg_ctl',
    ['promote', '-D', resolve(opts.dataDir), opts.wait === false ? '-W' : '-w', '-t', seconds(timeoutMs)],
    { timeoutMs: timeoutMs + 10_000 },
  );
}

/** `pg_ctl reload` (SIGHUP). */
export async function reloadPostgres(opts: {
  readonly bins: PgBinariesConfig;
  readonly dataDir: string;
}): Promise<void> {
  await runPgTool(opts.bins, 'pg_ctl', ['reload', '-D', resolve(opts.dataDir)], { timeoutMs: 30_000 });
}

export interface PostmasterPidFile {
  readonly pid: number;
  readonly dataDir: string;
  /** Unix seconds. */
  readonly startTime: number | undefined;
  readonly port: number | undefined;
  readonly socketDir: string | undefined;
  readonly listenAddresses: string | undefined;
  /** "starting", "ready", "standby", "stopping" (PG 10+). */
  readonly status: string | undefined;
}

/** Parses `<dataDir>/postmaster.pid`; undefined if absent or unreadable. */
export function readPostmasterPid(dataDir: string): PostmasterPidFile | undefined {
  let text: string;
  try {
    text = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  const pid = Number.parseInt(lines[0] ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const num = (s: string | undefined): number | undefined => {
    const n = Number.parseInt((s ?? '').trim(), 10);
    return Number.isInteger(n) ? n : undefined;
  };
  const str = (s: string | undefined): string | undefined => (s === undefined ? undefined : s.trim());
  return {
    pid,
    dataDir: (lines[1] ?? '').trim(),
    startTime: num(lines[2]),
    port: num(lines[3]),
    socketDir: str(lines[4]),
    listenAddresses: str(lines[5]),
    status: str(lines[7]),
  };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function looksLikePostgres(pid: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return /postgres|postmaster/.test(cmdline);
  } catch {
    // No /proc (or no access): trust signal 0.
    return !existsSync('/proc/self');
  }
}

/** The postmaster's pid if one runs for this data directory (postmaster.pid + signal 0), else undefined. */
export function isRunning(dataDir: string): number | undefined {
  const info = readPostmasterPid(resolve(dataDir));
  if (!info) return undefined;
  return processAlive(info.pid) && looksLikePostgres(info.pid) ? info.pid : undefined;
}

/** Major version from PG_VERSION in server_version_num style ("15" -> 150000, "9.6" -> 90600); 0 if unknown. */
export function readMajorVersion(dataDir: string): number {
  let text: string;
  try {
    text = readFileSync(join(dataDir, 'PG_VERSION'), 'utf8').trim();
  } catch {
    return 0;
  }
  const m = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) return 0;
  const major = Number.parseInt(m[1] ?? '0', 10);
  const minor = Number.parseInt(m[2] ?? '0', 10);
  return major >= 10 ? major * 10000 : major * 10000 + minor * 100;
}

/** Parses pg_controldata output into `label -> value`. */
export function parseControldata(output: string): ReadonlyMap<string, string> {
  const map = new Map<string, string>();
  for (const line of output.split('\n')) {
    const idx = line.indexOf(':');
    if (idx <= 0) continue;
    map.set(line.slice(0, idx).trim(), line.slice(idx + 1).trim());
  }
  return map;
}

/** Runs pg_controldata (C locale, so labels are English). */
export async function controldata(
  bins: PgBinariesConfig,
  dataDir: string,
): Promise<ReadonlyMap<string, string>> {
  const result = await runPgTool(bins, 'pg_controldata', ['-D', resolve(dataDir)], {
    timeoutMs: 30_000,
    env: { LANG: 'C', LC_ALL: 'C' },
  });
  return parseControldata(result.stdout);
}

export interface ControlSummary {
  /** 64-bit, kept as decimal text (it is published as a string in `initialize`). */
  readonly systemIdentifier: string | undefined;
  /** e.g. "in production", "in archive recovery", "shut down", "shut down in recovery". */
  readonly clusterState: string | undefined;
  readonly latestCheckpointLocation: Lsn | undefined;
  readonly latestCheckpointRedoLocation: Lsn | undefined;
  readonly timeline: number | undefined;
}

/** The fields of pg_controldata the agent uses. */
export function summarizeControldata(data: ReadonlyMap<string, string>): ControlSummary {
  const lsn = (key: string): Lsn | undefined => {
    const v = data.get(key);
    return v === undefined ? undefined : parseLsnText(v);
  };
  const tli = Number.parseInt(data.get("Latest checkpoint's TimeLineID") ?? '', 10);
  return {
    systemIdentifier: data.get('Database system identifier'),
    clusterState: data.get('Database cluster state'),
    latestCheckpointLocation: lsn('Latest checkpoint location'),
    latestCheckpointRedoLocation: lsn("Latest checkpoint's REDO location"),
    timeline: Number.isInteger(tli) ? tli : undefined,
  };
}
