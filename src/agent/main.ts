/**
 * The agent as a process: runs it and exits with its code; a configuration or DCS error is one `Error:` line.
 * Used by the oclif `agent` command and, without loading oclif at all, by bin/run.js's fast path: a daemon that
 * lives for months should not carry the CLI framework in its memory (see dist/agent.js in scripts/build.mjs).
 */
import { errorText } from '../model/text.js';
import { UserError } from '../config/errors.js';
import { DcsError } from '../dcs/dcs.js';
import { runAgent } from './agent.js';
import { createLogger, survivePipeErrors } from './log.js';

/**
 * What keeps the agent process from dying on its own: a broken stderr or stdout pipe, an error nothing caught, a
 * SIGHUP after the agent's reload handler is gone (during shutdown). An uncaught error means the agent's state is
 * unknown: like Patroni (whose main thread shuts down in a `finally`), it is logged and the agent shuts down as on
 * SIGTERM, stopping PostgreSQL and releasing the lock, rather than dying with PostgreSQL left primary and unwatched.
 * `onFatal` is called once, with what went wrong.
 */
export function guardAgentProcess(onFatal: (reason: string) => void): void {
  survivePipeErrors();
  const log = createLogger();
  let fatal = false;
  const uncaught = (kind: string, e: unknown): void => {
    const text = e instanceof Error ? (e.stack ?? e.message) : String(e);
    log.error(`${kind}: ${text}`);
    if (fatal) return;
    fatal = true;
    onFatal(`${kind}: ${errorText(e)}`);
  };
  process.on('uncaughtException', (e) => uncaught('uncaught exception', e));
  process.on('unhandledRejection', (e) => uncaught('unhandled promise rejection', e));
  // The agent installs its own SIGHUP handler (reload) and removes it before shutting down: without a listener
  // left, a late SIGHUP would kill the process in the middle of stopping PostgreSQL and releasing the lock.
  process.on('SIGHUP', () => undefined);
}

export async function runAgentProcess(configPath: string | undefined): Promise<never> {
  const stop = new AbortController();
  guardAgentProcess((reason) => stop.abort(reason));
  let code: number;
  try {
    code = await runAgent({ configPath, env: process.env, uid: process.getuid?.() ?? -1, stop: stop.signal });
  } catch (e) {
    if (!(e instanceof UserError || e instanceof DcsError)) throw e;
    process.stderr.write(`Error: ${e.message}\n`);
    code = e instanceof UserError ? e.exitCode : 1;
  }
  if (stop.signal.aborted && code === 0) code = 1;
  // Open sockets (REST clients, the DCS gateway) must not keep a stopped agent alive.
  process.exit(code);
}

/**
 * The configuration path when `args` (after `agent`) is exactly `CONFIG`, `-c CONFIG`, `--config-file CONFIG` or
 * `--config-file=CONFIG`; undefined for anything else (help, unknown flags), which oclif then parses and reports.
 */
export function plainAgentConfigArg(args: readonly string[]): string | undefined {
  const [a, b, ...rest] = args;
  if (a === undefined || rest.length > 0) return undefined;
  if ((a === '-c' || a === '--config-file') && b !== undefined && !b.startsWith('-')) return b;
  if (b !== undefined) return undefined;
  if (a.startsWith('--config-file=') && a.length > '--config-file='.length)
    return a.slice('--config-file='.length);
  return a.startsWith('-') ? undefined : a;
}
