/**
 * Shell completion scripts for bash and zsh, written from the command table (commands/autocomplete.ts describes
 * it): command names, each command's flags, and flag values (a flag's fixed choices, file names for the other
 * flags that take a value). What @oclif/plugin-autocomplete gives, without a plugin in the bundle and without a
 * cache: the script holds everything and runs no pgwarden process while completing.
 */

export interface CompletionFlag {
  /** Long name without dashes; `aliases` are further long names. */
  readonly name: string;
  readonly aliases?: readonly string[];
  readonly char?: string;
  readonly summary?: string;
  /** The flag takes a value (`--format json`): one of `options` when given, a file name when `file`. */
  readonly takesValue: boolean;
  readonly options?: readonly string[];
  readonly file?: boolean;
}

export interface CompletionCommand {
  readonly name: string;
  readonly summary?: string;
  readonly flags: readonly CompletionFlag[];
}

export interface CompletionSpec {
  readonly bin: string;
  readonly commands: readonly CompletionCommand[];
  /** Flags accepted before the command name too (`pgwarden -c f.yml list`). */
  readonly globals: readonly CompletionFlag[];
}

const spellings = (f: CompletionFlag): string[] => [
  `--${f.name}`,
  ...(f.aliases ?? []).map((a) => `--${a}`),
  ...(f.char ? [`-${f.char}`] : []),
];

/** A shell word as a bash/zsh single-quoted string. */
const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

const identifier = (bin: string): string => bin.replace(/[^A-Za-z0-9_]/g, '_');

/** The `case` arms completing the value of `flags` (pattern prefix `cmd:` or `*:`). */
function bashValueArms(prefix: string, flags: readonly CompletionFlag[]): string[] {
  return flags
    .filter((f) => f.takesValue)
    .map((f) => {
      const pattern = spellings(f)
        .map((s) => `${prefix}${s}`)
        .join('|');
      // A value of no known kind (a member name, seconds): nothing, not even bash's default file names.
      if (!f.options && !f.file) return `    ${pattern}) compopt +o default 2>/dev/null; return 0 ;;`;
      const reply = f.options ? `compgen -W ${quote(f.options.join(' '))} -- "$cur"` : `compgen -f -- "$cur"`;
      return `    ${pattern}) COMPREPLY=($(${reply})); return 0 ;;`;
    });
}

export function bashCompletion(spec: CompletionSpec): string {
  const fn = `_${identifier(spec.bin)}_complete`;
  const globalWithValue = spec.globals.filter((f) => f.takesValue).flatMap(spellings);
  const globalWords = [...spec.globals.flatMap(spellings), '--help', '--version'];
  return [
    `# ${spec.bin} completion for bash. Enable with: eval "$(${spec.bin} autocomplete bash)" (e.g. in ~/.bashrc)`,
    `${fn}() {`,
    '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="" cmd="" i=1',
    '  (( COMP_CWORD > 0 )) && prev="${COMP_WORDS[COMP_CWORD-1]}"',
    '  # --flag=value: bash splits the word at "=".',
    '  if [[ $cur == "=" ]]; then cur=""',
    '  elif [[ $prev == "=" ]] && (( COMP_CWORD > 1 )); then prev="${COMP_WORDS[COMP_CWORD-2]}"; fi',
    '  COMPREPLY=()',
    '  # The command: the first word that is neither a flag nor the value of a global flag.',
    '  while (( i < COMP_CWORD )); do',
    '    case "${COMP_WORDS[i]}" in',
    `      ${globalWithValue.join('|')})`,
    '        if [[ ${COMP_WORDS[i+1]} == "=" ]]; then (( i += 3 )); else (( i += 2 )); fi; continue ;;',
    '      -*|=) ;;',
    '      *) cmd="${COMP_WORDS[i]}"; break ;;',
    '    esac',
    '    (( i++ ))',
    '  done',
    // A command's own flags first: `query -c` is its SQL, not the global -c.
    '  case "$cmd:$prev" in',
    ...spec.commands.flatMap((c) =>
      bashValueArms(
        `${c.name}:`,
        c.flags.filter((f) => !spec.globals.some((g) => g.name === f.name)),
      ),
    ),
    ...bashValueArms('*:', spec.globals),
    '  esac',
    '  local words',
    '  case "$cmd" in',
    `    "") if [[ $cur == -* ]]; then words=${quote(globalWords.join(' '))}; else words=${quote(
      spec.commands.map((c) => c.name).join(' '),
    )}; fi ;;`,
    ...spec.commands.map(
      (c) => `    ${c.name}) words=${quote([...c.flags.flatMap(spellings), '--help'].join(' '))} ;;`,
    ),
    '    *) return 0 ;;',
    '  esac',
    '  if [[ -z $cmd || $cur == -* ]]; then COMPREPLY=($(compgen -W "$words" -- "$cur")); fi',
    '  return 0',
    '}',
    `complete -o default -F ${fn} ${spec.bin}`,
    '',
  ].join('\n');
}

/** Text inside `[...]` of a zsh `_arguments` spec or after `:` of a `_describe` entry. */
const zshText = (s: string | undefined): string =>
  (s ?? '').replace(/\s+/g, ' ').replace(/[[\]:\\]/g, (c) => `\\${c}`);

function zshFlagSpecs(flags: readonly CompletionFlag[]): string[] {
  return flags.map((f) => {
    const names = spellings(f);
    const exclusive = names.length > 1 ? `(${names.join(' ')})` : '';
    const value = !f.takesValue
      ? ''
      : f.options
        ? `:${f.name}:(${f.options.join(' ')})`
        : `:${f.name}:${f.file ? '_files' : ' '}`;
    const each = names.map((n) => quote(`${exclusive}${n}[${zshText(f.summary)}]${value}`));
    return `      ${each.join(' ')}`;
  });
}

export function zshCompletion(spec: CompletionSpec): string {
  const fn = `_${identifier(spec.bin)}`;
  return [
    `#compdef ${spec.bin}`,
    `# ${spec.bin} completion for zsh. Enable with: ${spec.bin} autocomplete zsh > "\${fpath[1]}/_${spec.bin}"`,
    `# (then start a new shell), or: source <(${spec.bin} autocomplete zsh) after compinit.`,
    `${fn}() {`,
    '  local curcontext="$curcontext" state line',
    '  typeset -A opt_args',
    '  local -a commands',
    '  commands=(',
    ...spec.commands.map((c) => `    ${quote(`${c.name}:${zshText(c.summary)}`)}`),
    '  )',
    '  _arguments -C \\',
    ...zshFlagSpecs(spec.globals).map((s) => `${s} \\`),
    `      '1: :->command' \\`,
    `      '*:: :->args'`,
    '  case $state in',
    `    command) _describe -t commands ${quote(`${spec.bin} command`)} commands ;;`,
    '    args)',
    '      case $words[1] in',
    ...spec.commands.flatMap((c) => [
      `        ${c.name}) _arguments \\`,
      ...zshFlagSpecs(c.flags).map((s) => `    ${s} \\`),
      `          '*: :_default' ;;`,
    ]),
    '      esac ;;',
    '  esac',
    '}',
    // Loaded from fpath (autoload): complete now; sourced: register the function.
    `if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then ${fn} "$@"; else compdef ${fn} ${spec.bin}; fi`,
    '',
  ].join('\n');
}
