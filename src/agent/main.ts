/**
 * The agent as a process: runs it and exits with its code; a configuration or DCS error is one `Error:` line.
 * Used by the oclif `agent` command and, without loading oclif at all, by bin/run.js's fast path: a daemon that
 * lives for months should not carry the CLI framework in its memory (see dist/agent.js in scripts/build.mjs).
 */
import { UserError } from '../config/errors.js';
import { DcsError } from '../dcs/dcs.js';
import { runAgent } from './agent.js';

export async function runAgentProcess(configPath: string | undefined): Promise<never> {
  let code: number;
  try {
    code = await runAgent({ configPath, env: process.env, uid: process.getuid?.() ?? -1 });
  } catch (e) {
    if (!(e instanceof UserError || e instanceof DcsError)) throw e;
    process.stderr.write(`Error: ${e.message}\n`);
    code = e instanceof UserError ? e.exitCode : 1;
  }
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
