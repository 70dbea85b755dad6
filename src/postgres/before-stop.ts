/**
 * `postgresql.before_stop` as Patroni 4.1.4 runs it (`Postgresql._before_stop`): every time the agent stops a
 * running PostgreSQL (shutdown, demotion, restart, reinitialize), after the state turns `stopping` and before
 * `pg_ctl stop`, the command (split shell-like, no extra arguments) runs with the agent's output streams and the
 * stop waits for it to exit. Like Patroni, there is no timeout of its own (a hanging script holds the stop; the
 * leader key is refreshed meanwhile by the loop, as for any long action) and its exit code changes nothing: it is
 * logged, and a command that cannot be started is logged as an error, then PostgreSQL is stopped anyway.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { childEnv } from './child-env.js';
import { errorText } from '../model/text.js';
import type { PgLog } from './ports.js';
import { shellSplit } from './shell.js';

/** Runs `command` and resolves once it has exited (or failed to start); never throws. */
export async function runBeforeStop(command: string | undefined, log: PgLog): Promise<void> {
  if (command === undefined || command === '') return;
  const [cmd, ...args] = shellSplit(command);
  if (cmd === undefined) return;
  await new Promise<void>((resolve) => {
    let done = false;
    const finish = (): void => {
      if (!done) resolve();
      done = true;
    };
    try {
      const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env: childEnv() });
      child.once('error', (e) => {
        log.error(`Failed to execute before_stop script \`${command}\`: ${errorText(e)}`);
        finish();
      });
      child.once('exit', (code, signal) => {
        // Python's `Popen.wait()`: the exit code, or minus the number of the signal that ended it.
        const status = code ?? (signal === null ? undefined : -constants.signals[signal]);
        log.info(`before_stop script \`${command}\` exited with ${status ?? 'unknown status'}`);
        finish();
      });
    } catch (e) {
      log.error(`Failed to execute before_stop script \`${command}\`: ${errorText(e)}`);
      finish();
    }
  });
}
