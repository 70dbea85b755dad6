/**
 * Interactive questions for the control commands. A question is asked only on a terminal: when stdin is not a TTY
 * (scripts, pipes, CI) it is refused with a message naming the flag that answers it, so a script never hangs.
 * Services receive a `Prompter`; tests pass a scripted one. @inquirer/prompts is loaded on the first question.
 */
import { AbortedError, UserError } from '../config/errors.js';

export interface PromptChoice {
  readonly name: string;
  readonly value: string;
}

export interface Prompter {
  /** Yes/no, default no (click's `[y/N]`). `flag` answers it non-interactively (usually `--force`). */
  confirm(message: string, flag: string | undefined): Promise<boolean>;
  /** Free text with a default answer (click's `text [default]: `). */
  input(
    message: string,
    options: { readonly default?: string; readonly flag: string | undefined },
  ): Promise<string>;
  /** One of a list; `default` is the preselected value. */
  select(
    message: string,
    choices: readonly PromptChoice[],
    options: { readonly default?: string; readonly flag: string | undefined },
  ): Promise<string>;
  /** Hidden input (click's `prompt(..., hide_input=True)`). `refusal` says what to do instead without a terminal. */
  password(message: string, refusal: string): Promise<string>;
}

/** The error for a question that cannot be asked because stdin is not a terminal. */
export function notATerminal(message: string, flag: string | undefined): UserError {
  const question = message.trim();
  return flag
    ? new UserError(`${flag} is required when stdin is not a terminal (would ask: ${question})`)
    : new UserError(`stdin is not a terminal, and this command must ask: ${question} Run it from a terminal`);
}

interface InquirerModule {
  confirm(config: { message: string; default?: boolean }): Promise<boolean>;
  input(config: { message: string; default?: string }): Promise<string>;
  password(config: { message: string; mask?: string | boolean }): Promise<string>;
  select(config: {
    message: string;
    choices: { name: string; value: string }[];
    default?: string;
  }): Promise<string>;
}

async function inquirer(): Promise<InquirerModule> {
  const imported = await import('@inquirer/prompts');
  const mod = imported as unknown as InquirerModule & { default?: InquirerModule };
  return mod.default ?? mod;
}

/** Ctrl-C / Ctrl-D in a prompt: click prints `Aborted!` and exits 1. */
function aborted(e: unknown): never {
  if (e instanceof Error && (e.name === 'ExitPromptError' || e.name === 'AbortPromptError')) {
    throw new AbortedError();
  }
  throw e;
}

export interface TerminalPrompterOptions {
  /** With --force nothing may be asked: reaching a question is a bug in the caller. */
  readonly force?: boolean;
  /** Defaults to `process.stdin.isTTY`. */
  readonly isTty?: boolean;
}

/** The real prompter: @inquirer/prompts on a terminal, errors naming the flag otherwise. */
export function terminalPrompter(options: TerminalPrompterOptions = {}): Prompter {
  const usable = (message: string, flag: string | undefined): void => {
    if (options.force)
      throw new UserError(`internal error: asked "${message.trim()}" although --force was given`);
    if (!(options.isTty ?? process.stdin.isTTY === true)) throw notATerminal(message, flag);
  };
  return {
    async confirm(message, flag) {
      usable(message, flag);
      const q = await inquirer();
      return q.confirm({ message: message.trim(), default: false }).catch(aborted);
    },
    async input(message, o) {
      usable(message, o.flag);
      const q = await inquirer();
      return q.input({ message: message.trim(), default: o.default }).catch(aborted);
    },
    async select(message, choices, o) {
      usable(message, o.flag);
      const q = await inquirer();
      return q
        .select({ message: message.trim(), choices: choices.map((c) => ({ ...c })), default: o.default })
        .catch(aborted);
    },
    async password(message, refusal) {
      if (options.force)
        throw new UserError(`internal error: asked "${message.trim()}" although --force was given`);
      if (!(options.isTty ?? process.stdin.isTTY === true)) throw new UserError(refusal);
      const q = await inquirer();
      return q.password({ message: message.trim() }).catch(aborted);
    },
  };
}

/** Answers questions from a list, in order; records what was asked. For tests and for scripted use. */
export function scriptedPrompter(
  answers: readonly (string | boolean)[],
): Prompter & { readonly asked: string[] } {
  const queue = [...answers];
  const asked: string[] = [];
  const next = (message: string): string | boolean => {
    asked.push(message);
    if (queue.length === 0) throw new UserError(`no scripted answer for: ${message}`);
    return queue.shift()!;
  };
  return {
    asked,
    async confirm(message) {
      const a = next(message);
      return a === true || a === 'y' || a === 'yes';
    },
    async input(message, o) {
      const a = next(message);
      return typeof a === 'string' ? a || (o.default ?? '') : String(a);
    },
    async select(message) {
      return String(next(message));
    },
    async password(message) {
      return String(next(message));
    },
  };
}
