import { Args, Command } from '@oclif/core';
import type { CompletionFlag, CompletionSpec } from '../render/completion.js';

const SHELLS = ['bash', 'zsh'] as const;
/** Flags whose value is a file name (completed as one). */
const FILE_FLAGS: ReadonlySet<string> = new Set(['config-file', 'apply', 'replace', 'file']);

/** The shell completion script of the command table (render/completion.ts writes it). */
export default class Autocomplete extends Command {
  static override summary = 'Print the shell completion script for bash or zsh.';
  static override description =
    'Completes command names, flags and flag values (such as -f\'s formats and -r\'s roles; file names for other flags that take a value). bash: add `eval "$(<%= config.bin %> autocomplete bash)"` to ~/.bashrc. zsh: `<%= config.bin %> autocomplete zsh > "${fpath[1]}/_<%= config.bin %>"` and start a new shell, or `source <(<%= config.bin %> autocomplete zsh)` after compinit. Without SHELL, the login shell ($SHELL) is used.';
  static override examples = [
    '<%= config.bin %> autocomplete bash >> ~/.bash_completion',
    'eval "$(<%= config.bin %> autocomplete bash)"',
    'source <(<%= config.bin %> autocomplete zsh)',
  ];
  static override args = {
    shell: Args.string({ description: 'bash or zsh (default: from $SHELL).', options: [...SHELLS] }),
  };

  async run(): Promise<void> {
    const { args } = await this.parse(Autocomplete);
    const shell = args.shell ?? (process.env['SHELL'] ?? '').split('/').pop() ?? '';
    if (!(SHELLS as readonly string[]).includes(shell))
      this.error(`no completion for shell '${shell}': name one of ${SHELLS.join(', ')}`, { exit: 2 });
    const { bashCompletion, zshCompletion } = await import('../render/completion.js');
    const spec = this.spec();
    process.stdout.write(shell === 'zsh' ? zshCompletion(spec) : bashCompletion(spec));
  }

  /** Every visible command with its flags, as oclif has them; the flags in group GLOBAL also before a command. */
  private spec(): CompletionSpec {
    const commands = this.config.commands
      .filter((c) => !c.hidden)
      .map((c) => ({
        name: c.id,
        summary: c.summary ?? c.description?.split('\n')[0],
        flags: Object.values(c.flags)
          .filter((f) => !f.hidden)
          .map((f): CompletionFlag => ({
            name: f.name,
            aliases: f.aliases,
            char: f.char,
            summary: f.summary ?? f.description,
            takesValue: f.type === 'option',
            options: f.type === 'option' ? f.options : undefined,
            file: FILE_FLAGS.has(f.name),
          })),
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
    const globals = new Map<string, CompletionFlag>();
    for (const c of this.config.commands)
      for (const f of Object.values(c.flags))
        if (f.helpGroup === 'GLOBAL') {
          const flag = commands.find((x) => x.name === c.id)?.flags.find((x) => x.name === f.name);
          if (flag) globals.set(f.name, flag);
        }
    return { bin: this.config.bin, commands, globals: [...globals.values()] };
  }
}
