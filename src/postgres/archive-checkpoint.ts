/**
 * `demote-cluster` with archiving on (Patroni's rewind.py `archive_shutdown_checkpoint_wal`): after the fast stop,
 * the WAL segment holding the shutdown checkpoint is handed to `archive_command` (a partial segment the archiver
 * never sends), so that the cluster this one will follow can replay up to that checkpoint and be followed without
 * pg_rewind.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { childEnv } from './child-env.js';
import { errorText } from '../model/text.js';
import type { PgLog } from './ports.js';

/** Patroni's `_build_archiver_command`: %p is the segment's path, %f its name, %r a fixed name, %% a percent. */
export function buildArchiverCommand(command: string, walDir: string, walFile: string): string {
  let out = '';
  for (let i = 0; i < command.length; i++) {
    const ch = command[i];
    if (ch === '%' && i + 1 < command.length) {
      const next = command[i + 1];
      i++;
      if (next === 'p') out += join(walDir, walFile);
      else if (next === 'f') out += walFile;
      else if (next === 'r') out += '000000010000000000000001';
      else if (next === '%') out += '%';
      else {
        out += '%';
        i--;
      }
    } else {
      out += ch;
    }
  }
  return out;
}

/** `archive_command` when `archive_mode` is on or always (Patroni's `get_archive_command`). */
export function archiveCommandOf(parameters: ReadonlyMap<string, string>): string | undefined {
  const mode = parameters.get('archive_mode')?.toLowerCase();
  const command = parameters.get('archive_command');
  return (mode === 'on' || mode === 'always') && command ? command : undefined;
}

/** Runs `command` through the shell in `cwd`; resolves whether it exited 0. Never throws. */
export function runShell(command: string, cwd: string, log: PgLog): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      const child = spawn('/bin/sh', ['-c', command], { cwd, stdio: 'ignore', env: childEnv() });
      child.once('error', (e) => {
        log.error(`cannot run \`${command}\`: ${errorText(e)}`);
        resolve(false);
      });
      child.once('exit', (code) => resolve(code === 0));
    } catch (e) {
      log.error(`cannot run \`${command}\`: ${errorText(e)}`);
      resolve(false);
    }
  });
}
