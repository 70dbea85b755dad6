/**
 * Locating and running the PostgreSQL client/server programs (pg_ctl, initdb, pg_basebackup, ...).
 *
 * `postgresql.bin_dir` ("" = search PATH) and `postgresql.bin_name.<tool>` (custom program names) from patroni.yml
 * decide which executable runs. Every run has a deadline, captures its output, and fails with a `PgCommandError`
 * that names the command and carries the tail of its stderr.
 */
import { spawn } from 'node:child_process';
import { childEnv } from './child-env.js';
import { chownSync, closeSync, fchmodSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const PG_TOOLS = [
  'pg_ctl',
  'initdb',
  'pg_controldata',
  'pg_basebackup',
  'postgres',
  'pg_isready',
  'pg_rewind',
  'pg_waldump',
] as const;
export type PgTool = (typeof PG_TOOLS)[number];

/** An OS identity to run the programs as (tests run as root; PostgreSQL refuses that). */
export interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

export interface PgBinariesConfig {
  /** `postgresql.bin_dir`; empty or absent means "look the program up on PATH". */
  readonly binDir?: string | undefined;
  /** `postgresql.bin_name`: custom file names per tool. */
  readonly binName?: Readonly<Partial<Record<PgTool, string>>> | undefined;
  /** Run as another user (only possible when we are root). Absent: the current user, as the agent does. */
  readonly runAs?: RunAs | undefined;
  /** Extra environment for every run (merged over process.env). */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
}

/** Path (or bare name for a PATH lookup) of a tool after applying bin_dir / bin_name. */
export function resolveBinary(config: PgBinariesConfig, tool: PgTool): string {
  const custom = config.binName?.[tool];
  const name = custom !== undefined && custom.trim() !== '' ? custom.trim() : tool;
  const dir = config.binDir?.trim() ?? '';
  return dir === '' ? name : join(dir, name);
}

export interface RunOptions {
  /** Kill the program (SIGTERM, then SIGKILL 5 s later) when it runs longer. Default 60 s. */
  readonly timeoutMs?: number;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
  /** Exit codes that count as success (default: only 0). */
  readonly okExitCodes?: readonly number[];
}

export interface RunResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

const MAX_CAPTURE = 1024 * 1024;
const STDERR_TAIL_LINES = 15;

/** A pg program that could not be started, was killed, timed out or exited with an unexpected code. */
export class PgCommandError extends Error {
  override readonly name = 'PgCommandError';
  constructor(
    message: string,
    readonly command: string,
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly stdout: string,
    readonly stderr: string,
    readonly timedOut: boolean,
  ) {
    super(message);
  }
}

/** The last lines of a program's output, for error messages. */
export function tail(text: string, lines = STDERR_TAIL_LINES): string {
  const all = text.trimEnd().split('\n');
  return all.slice(Math.max(0, all.length - lines)).join('\n');
}

function describe(command: string, args: readonly string[]): string {
  const shown = [command, ...args].map((a) => (/^[\w./=:,@%+-]+$/.test(a) ? a : JSON.stringify(a)));
  return shown.join(' ');
}

/** Runs one pg program to completion. Rejects with `PgCommandError` unless the exit code is acceptable. */
export async function runPgTool(
  config: PgBinariesConfig,
  tool: PgTool,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  return runCommand(resolveBinary(config, tool), args, config, options);
}

/** As `runPgTool`, for an explicit executable path. */
export async function runCommand(
  command: string,
  args: readonly string[],
  config: PgBinariesConfig,
  options: RunOptions = {},
): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const okCodes = options.okExitCodes ?? [0];
  const env = childEnv({ ...config.env, ...options.env });
  const shown = describe(command, args);
  return new Promise<RunResult>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    const child = spawn(command, [...args], {
      env,
      // A program running as another user may not be allowed into our working directory.
      cwd: options.cwd ?? (config.runAs ? '/' : undefined),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(config.runAs ? { uid: config.runAs.uid, gid: config.runAs.gid } : {}),
    });
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (stdout.length < MAX_CAPTURE) stdout += chunk;
    });
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-MAX_CAPTURE);
    });
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    }, timeoutMs);

    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      if (code !== null && okCodes.includes(code) && !timedOut) {
        resolve({ exitCode: code, stdout, stderr });
        return;
      }
      const why = timedOut
        ? `timed out after ${timeoutMs} ms`
        : code !== null
          ? `exit code ${code}`
          : `killed by ${signal ?? 'a signal'}`;
      const errTail = tail(stderr || stdout);
      reject(
        new PgCommandError(
          `${shown} failed (${why})${errTail ? `:\n${errTail}` : ''}`,
          command,
          args,
          code,
          signal,
          stdout,
          stderr,
          timedOut,
        ),
      );
    };

    child.once('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const hint = err.code === 'ENOENT' ? ' (check postgresql.bin_dir / bin_name)' : '';
      reject(
        new PgCommandError(
          `could not run ${shown}: ${err.message}${hint}`,
          command,
          args,
          null,
          null,
          stdout,
          stderr,
          false,
        ),
      );
    });
    // A daemon started by the program (pg_ctl start) may keep inherited pipes open: the exit is what counts,
    // after giving the pipes a moment to drain.
    child.once('exit', (code, signal) => {
      let drained = 0;
      const done = (): void => {
        drained += 1;
        if (drained === 2) finish(code, signal);
      };
      if (child.stdout.readableEnded) done();
      else child.stdout.once('end', done);
      if (child.stderr.readableEnded) done();
      else child.stderr.once('end', done);
      setTimeout(() => finish(code, signal), 250).unref();
    });
  });
}

/**
 * Writes a file only its owner may read (0600), e.g. a pgpass or initdb --pwfile. With `owner`, the file is
 * handed to that user (only possible as root) so that a program run as that user can read it.
 */
export function writePrivateFile(path: string, content: string, owner?: RunAs): void {
  const fd = openSync(path, 'w', 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  if (owner) chownSync(path, owner.uid, owner.gid);
}
