/**
 * `postgresql.callbacks` as Patroni 4.1.4's CallbackExecutor runs them: `<command...> <action> <role>
 * <scope>`, started without waiting (the HA loop and the lock refresh never wait for a callback), one at a time: a
 * new callback kills the one still running together with its children (its process group). `on_reload` has a slot
 * of its own. A missing or failing script is logged; it never throws into the agent.
 *
 * Also `postgresql.pre_promote` (`runPrePromote`): run synchronously before `pg_ctl promote`, its exit code decides
 * whether the promotion goes ahead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { childEnv } from './child-env.js';
import type { CallbackName } from '../config/agent-config.js';
import { errorText } from '../model/text.js';
import type { PgLog } from './ports.js';
import { shellSplit } from './shell.js';

export type CallbackAction = CallbackName;

/** Patroni 4's `call_nowait`: a role `promoted` (and the 3.x `master`) is reported as `primary`. */
export function callbackRole(role: string): string {
  return role === 'promoted' || role === 'master' ? 'primary' : role;
}

/** The argv of a callback: the command split shell-like, then action, role and scope. */
export function callbackArgv(command: string, action: CallbackAction, role: string, scope: string): string[] {
  return [...shellSplit(command), action, callbackRole(role), scope];
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

  constructor(private readonly log: PgLog) {}

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
  readonly log: PgLog;
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
  opts: { readonly timeoutMs: number; readonly cancelled: () => boolean; readonly log: PgLog },
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

/**
 * Which callback the instance's life fires, as Patroni 3.0.2 decides it: a start fires on_start (on_restart for a
 * restart), a former primary coming back as a replica fires on_role_change instead; PostgreSQL found running by the
 * inspection fires what a start left pending; nothing fires while a new cluster is being bootstrapped.
 */
/**
 * Patroni's `follow`: a start or re-point is a role change (on_role_change instead of on_start/on_restart) from a
 * primary or demoted instance, or between replica and standby leader.
 */
export function roleChanges(roleBefore: string, roleAfter: string): boolean {
  if (['master', 'primary', 'demoted'].includes(roleBefore)) return true;
  const pair = new Set([roleBefore, roleAfter]);
  return pair.size === 2 && pair.has('replica') && pair.has('standby_leader');
}

export class RoleCallbacks {
  /** Patroni's `cb_called`: a start/stop/restart/role change callback was due once in this process. */
  private called = false;
  /** Patroni's `__cb_pending`: the callback to fire when the start under way completes (undefined: on_start). */
  private pending: CallbackAction | 'noop' | undefined;
  /** A new cluster is being initialized: no callbacks until post_bootstrap is done (Patroni's `bootstrapping`). */
  private bootstrapping = false;

  constructor(
    private readonly executor: Pick<CallbackExecutor, 'call' | 'setCommands'>,
    private readonly role: () => string,
  ) {}

  /** A reloaded configuration (SIGHUP) brings new commands. */
  setCommands(commands: Readonly<Partial<Record<CallbackAction, string>>>): void {
    this.executor.setCommands(commands);
  }

  /** Patroni's `call_nowait`: fires the callback for `action` with the current role, never waiting for it. */
  /** Patroni's `cb_called`. */
  get wasCalled(): boolean {
    return this.called;
  }

  fire(action: CallbackAction): void {
    if (this.bootstrapping) return;
    if (action !== 'on_reload') this.called = true;
    this.executor.call(action, this.role());
  }

  /**
   * A start as `as` begins while the role is `roleBefore`. True when it is Patroni's follow() of a former (or
   * demoted) primary, which reports on_role_change instead of on_start / on_restart.
   */
  startBegins(as: 'replica' | 'primary', roleBefore: string, roleAfter: string = as): boolean {
    const changeRole = this.called && as === 'replica' && roleChanges(roleBefore, roleAfter);
    if (changeRole) this.pending = 'noop';
    else if (this.pending === 'noop' || this.pending === undefined) this.pending = 'on_start';
    return changeRole;
  }

  /** The start ended (`ok`: PostgreSQL is up); fires the callback it was due. */
  startEnded(changeRole: boolean, ok: boolean): void {
    if (changeRole) {
      this.pending = undefined;
      this.fire('on_role_change');
    } else if (ok) {
      const pending = this.pending;
      this.pending = undefined;
      this.fire(pending === undefined || pending === 'noop' ? 'on_start' : pending);
    }
  }

  /** A restart: the start that follows the stop reports on_restart. */
  restartBegins(): void {
    this.pending = 'on_restart';
  }

  /**
   * Patroni's run_cycle: PostgreSQL seen running with no action under way (a start that outlived its wait, or
   * found running at agent start) fires the pending callback, by default on_start.
   */
  seenRunning(): void {
    if (this.bootstrapping || (this.called && this.pending === undefined)) return;
    const pending = this.pending;
    this.pending = undefined;
    if (pending !== 'noop') this.fire(pending ?? 'on_start');
  }

  bootstrapBegins(): void {
    this.bootstrapping = true;
  }

  bootstrapFailed(): void {
    this.bootstrapping = false;
  }

  /** post_bootstrap done: callbacks fire again, starting with on_start. */
  bootstrapDone(): void {
    this.bootstrapping = false;
    this.pending = undefined;
    this.fire('on_start');
  }
}
