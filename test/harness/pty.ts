/**
 * A command on a pseudo-terminal (util-linux `script -qec CMD /dev/null`), so that its stdin IS a TTY: the test
 * waits for each question to appear on the screen and types the answer, as a user would. Escape sequences are
 * stripped from what the test sees. The process group is killed if it outlives its deadline.
 */
import { spawn } from 'node:child_process';

export interface PtyRun {
  /** Resolves once `text` (or a match of the pattern) appears in the output after the previous `expect`. */
  expect(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Types `keys` (use '\r' for Enter). */
  type(keys: string): void;
  /** Resolves to the exit code (script -e passes the command's own) and the whole cleaned output. */
  done(timeoutMs?: number): Promise<{ readonly code: number | null; readonly output: string }>;
  /** Everything seen so far, cleaned. */
  output(): string;
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Removes ANSI escape sequences and carriage returns. */
export function cleanTerminalOutput(raw: string): string {
  return (
    raw
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '')
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b[()][A-Za-z0-9]|\x1b[=>78]/g, '')
      .replace(/\r/g, '')
  );
}

export function runOnPty(
  argv: readonly string[],
  options: { readonly env?: NodeJS.ProcessEnv; readonly cwd?: string; readonly timeoutMs?: number } = {},
): PtyRun {
  // script gives the pty no size when its own stdin is not a terminal: set one, so prompts do not wrap.
  const command = `stty cols 200 rows 50; exec ${argv.map(shellQuote).join(' ')}`;
  const child = spawn('script', ['-qec', command, '/dev/null'], {
    env: { TERM: 'xterm', ...(options.env ?? process.env) },
    cwd: options.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  let raw = '';
  let seen = 0;
  child.stdout.on('data', (d: Buffer) => (raw += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (raw += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const kill = (): void => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  };
  const guard = setTimeout(kill, options.timeoutMs ?? 60_000);
  guard.unref();
  process.once('exit', kill);
  let finished = false;
  void exited.then(() => {
    finished = true;
    clearTimeout(guard);
    process.removeListener('exit', kill);
  });

  const output = (): string => cleanTerminalOutput(raw);
  return {
    output,
    async expect(text, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const rest = output().slice(seen);
        const at = typeof text === 'string' ? rest.indexOf(text) : rest.search(text);
        if (at >= 0) {
          const len = typeof text === 'string' ? text.length : (rest.slice(at).match(text)?.[0].length ?? 0);
          seen += at + len;
          return;
        }
        if (finished || Date.now() > deadline) {
          throw new Error(
            `${finished ? 'the command exited' : `${timeoutMs} ms passed`} before ${String(text)} appeared; output:\n${output()}`,
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    type(keys) {
      child.stdin.write(keys);
    },
    async done(timeoutMs = 30_000) {
      const timer = setTimeout(kill, timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      child.stdin.end();
      return { code, output: output() };
    },
  };
}
