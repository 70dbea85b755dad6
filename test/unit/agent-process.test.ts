/**
 * The agent process survives what would otherwise kill it with PostgreSQL left primary and no lock holder
 * (src/agent/main.ts): its stderr reader going away (EPIPE), a SIGHUP with no reload handler left, and an uncaught
 * exception, which it reports once for a clean shutdown instead. A child process runs the guard for real.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const CHILD = resolve(import.meta.dirname, 'fixtures', 'guarded-process.ts');

interface Outcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
}

/** Runs the stand-in; once it is ready, `disturb` acts on it, then it logs 20 lines. */
function run(
  mode: 'guarded' | 'bare',
  disturb: (child: ReturnType<typeof spawn>) => void,
  extra?: string,
): Promise<Outcome> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode, ...(extra ? [extra] : [])], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let started = false;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    stdout += chunk;
    if (!started && stdout.includes('ready\n')) {
      started = true;
      disturb(child);
      child.stdin.end('go\n');
    }
  });
  child.stderr.on('error', () => undefined);
  child.stdin.on('error', () => undefined);
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((done) => {
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      done({ code, signal, stdout });
    });
  });
}

describe('the agent process guard', () => {
  it('keeps running after the reader of its stderr went away (EPIPE)', async () => {
    const r = await run('guarded', (child) => child.stderr?.destroy());
    expect(r).toMatchObject({ code: 0, signal: null });
    expect(r.stdout).toContain('alive 20\n');
  });

  it('without the guard, the same closed pipe kills the process (what the guard prevents)', async () => {
    const r = await run('bare', (child) => child.stderr?.destroy());
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain('alive 20\n');
  });

  it('survives a SIGHUP when no reload handler is installed (a late SIGHUP during shutdown)', async () => {
    const r = await run('guarded', (child) => child.kill('SIGHUP'));
    expect(r).toMatchObject({ code: 0, signal: null });
    expect(r.stdout).toContain('alive 20\n');
    const bare = await run('bare', (child) => child.kill('SIGHUP'));
    expect(bare.signal).toBe('SIGHUP');
  });

  it('reports an uncaught exception once, for a clean shutdown, instead of dying', async () => {
    const r = await run('guarded', () => undefined, 'throw');
    expect(r).toMatchObject({ code: 0, signal: null });
    expect(r.stdout).toContain('fatal: uncaught exception: boom\n');
    expect(r.stdout).toContain('alive 20\n');
  });
});
