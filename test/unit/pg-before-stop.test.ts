/** postgresql.before_stop (src/postgres/before-stop.ts): run to completion, exit code logged, never throws. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBeforeStop } from '../../src/postgres/before-stop.js';
import { memoryLog, scriptDir } from '../helpers/scripts.js';

const scripts = scriptDir('pgwarden-before-stop-');
const dir = scripts.dir;
const script = scripts.script;

afterAll(() => {
  scripts.remove();
});

describe('runBeforeStop', () => {
  it('runs the command split shell-like, waits for it to finish and logs its exit code', async () => {
    const out = join(dir, 'argv.log');
    const s = script('args.sh', `sleep 0.3; echo "$#:$1:$2" > ${out}; exit 3`);
    const log = memoryLog();
    await runBeforeStop(`${s} 'two words' x`, log);
    // Resolved only after the script wrote its file (it sleeps first).
    expect(readFileSync(out, 'utf8')).toBe('2:two words:x\n');
    expect(log.lines).toEqual([`INFO before_stop script \`${s} 'two words' x\` exited with 3`]);
  });

  it('reports a script ended by a signal with minus the signal number, as Python does', async () => {
    const s = script('killed.sh', 'kill -TERM $$');
    const log = memoryLog();
    await runBeforeStop(s, log);
    expect(log.lines).toEqual([`INFO before_stop script \`${s}\` exited with -15`]);
  });

  it('logs a command that cannot be started and resolves (the stop goes on)', async () => {
    const log = memoryLog();
    const missing = join(dir, 'missing.sh');
    await runBeforeStop(missing, log);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatch(
      new RegExp(`^ERROR Failed to execute before_stop script \`${missing}\`: .*ENOENT`),
    );
  });

  it('does nothing without a command', async () => {
    const log = memoryLog();
    await runBeforeStop(undefined, log);
    await runBeforeStop('', log);
    await runBeforeStop('   ', log);
    expect(log.lines).toEqual([]);
  });
});
