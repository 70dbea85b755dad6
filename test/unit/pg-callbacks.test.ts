/**
 * postgresql.callbacks and pre_promote with real tiny shell scripts in a temp dir: argv as Patroni 3.0.2 passes it,
 * a callback never waited for, a running one killed (with its children) when the next starts, on_reload in a slot
 * of its own, a missing or failing script only logged; pre_promote's exit code, timeout and cancellation.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CallbackExecutor, callbackArgv, runPrePromote } from '../../src/postgres/callbacks.js';
import { memoryLog, scriptDir } from '../helpers/scripts.js';

const scripts = scriptDir('pgwarden-cb-');
const dir = scripts.dir;
const script = scripts.script;
const executors: CallbackExecutor[] = [];

afterAll(() => {
  for (const e of executors) e.killAll();
  scripts.remove();
});

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function executor(commands: ConstructorParameters<typeof CallbackExecutor>[0]['commands']) {
  const log = memoryLog();
  const e = new CallbackExecutor({ scope: 'demo', commands, log });
  executors.push(e);
  return { e, log };
}

describe('callbacks (postgresql.callbacks)', () => {
  it('builds <command...> <action> <role> <scope>, promoted and master reported as primary (4.x)', () => {
    expect(callbackArgv("/bin/cb.sh --opt 'a b'", 'on_start', 'replica', 'demo')).toEqual([
      '/bin/cb.sh',
      '--opt',
      'a b',
      'on_start',
      'replica',
      'demo',
    ]);
    expect(callbackArgv('cb', 'on_role_change', 'promoted', 's')).toEqual([
      'cb',
      'on_role_change',
      'primary',
      's',
    ]);
    expect(callbackArgv('cb', 'on_start', 'master', 's')).toEqual(['cb', 'on_start', 'primary', 's']);
  });

  it('runs the script with its arguments without waiting for it', async () => {
    const out = join(dir, 'args.log');
    // The script writes only after 1 s: an empty file right after call() shows it did not wait; the time bound is
    // loose because the unit tier runs on loaded CI machines (225 ms seen for a 200 ms bound at load 15).
    const cb = script('args.sh', `sleep 1; echo "$@" >> ${out}`);
    const { e } = executor({ on_start: `${cb} extra`, on_role_change: cb });
    const t0 = Date.now();
    e.call('on_start', 'replica');
    expect(Date.now() - t0).toBeLessThan(900);
    expect(read(out)).toBe('');
    await e.settled();
    expect(read(out)).toBe('extra on_start replica demo\n');
  });

  it('does nothing for an action that has no command', async () => {
    const { e, log } = executor({});
    e.call('on_stop', 'master');
    await e.settled();
    expect(log.lines).toEqual([]);
  });

  it('kills a callback still running (and its children) when the next one starts', async () => {
    const pids = join(dir, 'pids.log');
    const out = join(dir, 'kill.log');
    const cb = script(
      'slow.sh',
      `sleep 30 & echo "$$ $!" >> ${pids}; echo "start $1" >> ${out}; wait; echo "end $1" >> ${out}`,
    );
    const { e, log } = executor({ on_start: cb, on_role_change: cb });
    e.call('on_start', 'replica');
    await until('the first callback to start its child', () => read(pids).trim() !== '');
    const [shellPid, sleepPid] = read(pids).trim().split(' ').map(Number);
    expect(alive(shellPid ?? 0) && alive(sleepPid ?? 0)).toBe(true);

    e.call('on_role_change', 'master');
    await until(
      'the first callback and its child to die',
      () => !alive(shellPid ?? 0) && !alive(sleepPid ?? 0),
    );
    expect(log.lines.some((l) => l.startsWith('WARNING Killed') && l.includes('on_start'))).toBe(true);
    await until('the second callback to start', () => read(out).includes('start on_role_change'));
    expect(read(out)).not.toContain('end on_start');
    e.killAll();
    await e.settled();
  });

  it('runs on_reload in a slot of its own: it does not kill a running on_start', async () => {
    const out = join(dir, 'reload.log');
    const cb = script(
      'both.sh',
      `echo "start $1" >> ${out}; [ "$1" = on_start ] && sleep 0.5; echo "end $1" >> ${out}`,
    );
    const { e, log } = executor({ on_start: cb, on_reload: cb });
    e.call('on_start', 'master');
    await until('on_start to run', () => read(out).includes('start on_start'));
    e.call('on_reload', 'master');
    await e.settled();
    expect(read(out)).toContain('end on_start');
    expect(read(out)).toContain('end on_reload');
    expect(log.lines.filter((l) => l.includes('Killed'))).toEqual([]);
  });

  it('logs a missing script and a failing one, and never throws', async () => {
    const failing = script('fail.sh', 'exit 3');
    const { e, log } = executor({ on_start: join(dir, 'does-not-exist.sh'), on_stop: failing });
    expect(() => e.call('on_start', 'replica')).not.toThrow();
    await e.settled();
    e.call('on_stop', 'replica');
    await e.settled();
    expect(
      log.lines.some((l) => l.startsWith('ERROR Failed to execute') && l.includes('does-not-exist')),
    ).toBe(true);
    expect(log.lines.some((l) => l.includes('exited with code 3'))).toBe(true);
  });
});

describe('pre_promote', () => {
  const never = (): boolean => false;

  it('succeeds on exit code 0 and fails on any other', async () => {
    const ok = script('pre-ok.sh', 'exit 0');
    const bad = script('pre-bad.sh', 'exit 1');
    const log = memoryLog();
    expect(await runPrePromote(ok, { timeoutMs: 5000, cancelled: never, log })).toEqual({
      ok: true,
      cancelled: false,
    });
    expect(await runPrePromote(bad, { timeoutMs: 5000, cancelled: never, log })).toEqual({
      ok: false,
      cancelled: false,
    });
    expect(log.lines).toContain(`INFO pre_promote script \`${bad}\` exited with 1`);
  });

  it('fails when the script is missing', async () => {
    const log = memoryLog();
    const r = await runPrePromote(join(dir, 'nope.sh'), { timeoutMs: 5000, cancelled: never, log });
    expect(r.ok).toBe(false);
  });

  it('kills a script that runs past the timeout, children included, and fails', async () => {
    const pids = join(dir, 'pre-pids.log');
    const hang = script('pre-hang.sh', `sleep 30 & echo $! > ${pids}; wait`);
    const log = memoryLog();
    const t0 = Date.now();
    const r = await runPrePromote(hang, { timeoutMs: 500, cancelled: never, log });
    expect(r).toEqual({ ok: false, cancelled: false });
    expect(Date.now() - t0).toBeLessThan(5000);
    const child = Number(read(pids).trim());
    await until('the script child to die', () => !alive(child));
  });

  it('kills the script when the promotion is cancelled', async () => {
    const hang = script('pre-hang2.sh', 'sleep 30');
    const log = memoryLog();
    let cancel = false;
    setTimeout(() => (cancel = true), 300);
    const r = await runPrePromote(hang, { timeoutMs: 20_000, cancelled: () => cancel, log });
    expect(r).toEqual({ ok: false, cancelled: true });
    expect(existsSync(hang)).toBe(true);
  });
});
