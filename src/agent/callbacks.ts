/**
 * `postgresql.callbacks` (spec 6.14) as Patroni 3.0.2's CallbackExecutor runs them: `<command...> <action> <role>
 * <scope>`, started without waiting (the HA loop and the lock refresh never wait for a callback), one at a time: a
 * new callback kills the one still running together with its children (its process group). `on_reload` has a slot
 * of its own. A missing or failing script is logged; it never throws into the agent.
 *
 * Also `postgresql.pre_promote` (`runPrePromote`): run synchronously before `pg_ctl promote`, its exit code decides
 * whether the promotion goes ahead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { childEnv } from '../postgres/child-env.js';
import type { CallbackName } from '../config/agent-config.js';
import type { LoopLogger } from '../ha/loop.js';
import { shellSplit } from './shell.js';

export type CallbackAction = CallbackName;

/** Patroni's `call_nowait`: a role `promoted` is reported as `master` (3.x spelling). */
export function callbackRole(role: string): string {
  return role === 'promoted' ? 'master' : role;
}

/** The argv of a callback: the command split shell-like, then action, role and scope. */
export function callbackArgv(command: string, action: CallbackAction, role: string, scope: string): string[] {
  return [...shellSplit(command), action, callbackRole(role), scope];
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Kills a detached child's whole process group (the child and what it started), then the child itself. */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    /* the group is gone */
  }
  try {
    child.kill('SIGKILL');
  } catch {
    /* gone */
  }
}

/** One callback at a time: starting a command kills the previous one if it still runs. */
class Slot {
  private current: { readonly child: ChildProcess; readonly argv: readonly string[] } | undefined;
  private readonly exits = new Set<Promise<void>>();

  constructor(private readonly log: LoopLogger) {}

  run(argv: readonly string[]): void {
    const cur = this.current;
    if (cur && running(cur.child)) {
      killGroup(cur.child);
      this.log.warning(`Killed ${JSON.stringify(cur.argv)} because it was still running`);
    }
    this.current = undefined;
    const [cmd, ...args] = argv;
    if (cmd === undefined) return;
    let child: ChildProcess;
    try {
      // A process group of its own, so that a kill reaches what the script started; never waited for.
      child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'inherit', 'inherit'], env: childEnv() });
    } catch (e) {
      this.log.error(`callback ${JSON.stringify(argv)} failed: ${errorText(e)}`);
      return;
    }
    child.unref();
    const entry = { child, argv };
    this.current = entry;
    const exited = new Promise<void>((resolve) => {
      child.once('error', (e) => {
        this.log.error(`Failed to execute ${JSON.stringify(argv)}: ${errorText(e)}`);
        resolve();
      });
      child.once('exit', (code, signal) => {
        if (code !== null && code !== 0) {
          this.log.warning(`callback ${JSON.stringify(argv)} exited with code ${code}`);
        } else if (signal !== null && signal !== 'SIGKILL') {
          this.log.warning(`callback ${JSON.stringify(argv)} was killed by ${signal}`);
        }
        resolve();
      });
    });
    this.exits.add(exited);
    void exited.then(() => {
      this.exits.delete(exited);
      if (this.current === entry) this.current = undefined;
    });
  }

  async settled(): Promise<void> {
    while (this.exits.size > 0) await Promise.all([...this.exits]);
  }

  kill(): void {
    const cur = this.current;
    if (cur && running(cur.child)) killGroup(cur.child);
  }
}

export interface CallbackExecutorOptions {
  readonly scope: string;
  readonly commands: Readonly<Partial<Record<CallbackAction, string>>>;
  readonly log: LoopLogger;
}

export class CallbackExecutor {
  private commands: Readonly<Partial<Record<CallbackAction, string>>>;
  private readonly main: Slot;
  private readonly reload: Slot;

  constructor(private readonly options: CallbackExecutorOptions) {
    this.commands = options.commands;
    this.main = new Slot(options.log);
    this.reload = new Slot(options.log);
  }

  /** A reloaded configuration (SIGHUP) brings new commands. */
  setCommands(commands: Readonly<Partial<Record<CallbackAction, string>>>): void {
    this.commands = commands;
  }

  /** Starts the callback configured for `action` (if any) and returns at once. Never throws. */
  call(action: CallbackAction, role: string): void {
    const command = this.commands[action];
    if (command === undefined || command.trim() === '') return;
    try {
      const argv = callbackArgv(command, action, role, this.options.scope);
      (action === 'on_reload' ? this.reload : this.main).run(argv);
    } catch (e) {
      this.options.log.error(
        `callback ${command} ${action} ${role} ${this.options.scope} failed: ${errorText(e)}`,
      );
    }
  }

  /** Resolves when every callback started so far has exited (tests). */
  async settled(): Promise<void> {
    await Promise.all([this.main.settled(), this.reload.settled()]);
  }

  /** Kills the callbacks still running (tests; the agent leaves them running at exit, as Patroni does). */
  killAll(): void {
    this.main.kill();
    this.reload.kill();
  }
}

export interface PrePromoteResult {
  /** True: promote. False: the script failed, timed out or could not run (or the promotion was cancelled). */
  readonly ok: boolean;
  readonly cancelled: boolean;
}

/**
 * `postgresql.pre_promote`: runs the command (split shell-like, no extra arguments, as Patroni runs it) and waits
 * for it, at most `timeoutMs` (then it and its children are killed and it counts as failed). `cancelled` is polled:
 * a cancelled promotion kills the script.
 */
export async function runPrePromote(
  command: string,
  opts: { readonly timeoutMs: number; readonly cancelled: () => boolean; readonly log: LoopLogger },
): Promise<PrePromoteResult> {
  const [cmd, ...args] = shellSplit(command);
  if (cmd === undefined) return { ok: true, cancelled: false };
  return new Promise<PrePromoteResult>((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'inherit', 'inherit'], env: childEnv() });
    } catch (e) {
      opts.log.error(`Failed to execute pre_promote script \`${command}\`: ${errorText(e)}`);
      resolve({ ok: false, cancelled: false });
      return;
    }
    let why: 'timeout' | 'cancelled' | undefined;
    const timer = setTimeout(() => {
      why = 'timeout';
      killGroup(child);
    }, opts.timeoutMs);
    const poll = setInterval(() => {
      if (opts.cancelled()) {
        why = 'cancelled';
        killGroup(child);
      }
    }, 200);
    const finish = (r: PrePromoteResult): void => {
      clearTimeout(timer);
      clearInterval(poll);
      resolve(r);
    };
    child.once('error', (e) => {
      opts.log.error(`Failed to execute pre_promote script \`${command}\`: ${errorText(e)}`);
      finish({ ok: false, cancelled: false });
    });
    child.once('exit', (code, signal) => {
      if (why === 'cancelled') {
        opts.log.info('PostgreSQL promote cancelled.');
        finish({ ok: false, cancelled: true });
        return;
      }
      if (why === 'timeout') {
        opts.log.error(`pre_promote script \`${command}\` killed after ${opts.timeoutMs} ms`);
        finish({ ok: false, cancelled: false });
        return;
      }
      opts.log.info(`pre_promote script \`${command}\` exited with ${code ?? signal ?? 'unknown'}`);
      finish({ ok: code === 0, cancelled: false });
    });
  });
}
