/**
 * `pgwarden autocomplete` (issue 14): the bash script, sourced in bash and driven as bash's completion does it
 * (COMP_WORDS / COMP_CWORD, then the function `complete -p` names), completes commands, flags and flag values; the
 * zsh script passes `zsh -n` and, sourced after compinit, registers its function for pgwarden.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { COMMANDS } from '../../src/commands/index.js';
import { removeDir, tempDir } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

function pgwarden(...args: string[]): string {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'run.js'), ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

describeNeeding('bundle', 'zsh')('pgwarden autocomplete', () => {
  let dir = '';
  let bashScript = '';
  let zshScript = '';

  beforeAll(() => {
    dir = tempDir('autocomplete');
    bashScript = join(dir, 'pgwarden.bash');
    zshScript = join(dir, '_pgwarden');
    writeFileSync(bashScript, pgwarden('autocomplete', 'bash'));
    writeFileSync(zshScript, pgwarden('autocomplete', 'zsh'));
  }, 120_000);

  afterAll(() => {
    if (dir) removeDir(dir);
  });

  /** What bash's completion offers for the words typed so far (the last one being completed). */
  function complete(...words: string[]): string[] {
    const driver = [
      'set -u',
      `source ${JSON.stringify(bashScript)}`,
      'fn=$(complete -p pgwarden | sed -n "s/.*-F \\([^ ]*\\) pgwarden$/\\1/p")',
      '[[ -n $fn ]] || { echo "no completion function for pgwarden" >&2; exit 3; }',
      'COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=()',
      '"$fn"',
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join('\n');
    const r = spawnSync('bash', ['--norc', '-c', driver, 'bash', ...words], { encoding: 'utf8', cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.split('\n').filter((l) => l !== '');
  }

  it('bash: complete -p names the function for pgwarden', () => {
    const r = spawnSync('bash', ['--norc', '-c', `source ${bashScript}; complete -p pgwarden`], {
      encoding: 'utf8',
    });
    expect(r.stdout.trim()).toMatch(/^complete -o default -F _pgwarden_complete pgwarden$/);
  });

  it('bash: command names, alone and after global flags', () => {
    expect(complete('pgwarden', '').sort()).toEqual(Object.keys(COMMANDS).sort());
    expect(complete('pgwarden', 'sw')).toEqual(['switchover']);
    expect(complete('pgwarden', 'li')).toEqual(['list']);
    expect(complete('pgwarden', '-c', 'x.yml', 'to')).toEqual(['topology']);
    expect(complete('pgwarden', '-')).toEqual(expect.arrayContaining(['-c', '--config-file', '-d', '-k']));
  });

  it("bash: a command's flags", () => {
    expect(complete('pgwarden', 'list', '--')).toEqual(
      expect.arrayContaining(['--all', '--format', '--extended', '--watch', '--config-file', '--help']),
    );
    expect(complete('pgwarden', 'list', '--f')).toEqual(['--format']);
    expect(complete('pgwarden', 'switchover', '--ca')).toEqual(['--candidate']);
    // A flag of another command is not offered.
    expect(complete('pgwarden', 'list', '--')).not.toContain('--candidate');
  });

  it('bash: -f formats and -r roles, in every spelling', () => {
    const formats = ['pretty', 'tsv', 'json', 'yaml', 'yml'];
    expect(complete('pgwarden', 'list', '-f', '')).toEqual(formats);
    expect(complete('pgwarden', 'list', '--format', 'y')).toEqual(['yaml', 'yml']);
    // --format=j: bash splits the word at "=".
    expect(complete('pgwarden', '-c', 'x.yml', 'list', '--format', '=', 'j')).toEqual(['json']);
    expect(complete('pgwarden', 'topology', '--all', '--format', '=')).toEqual([]);
    expect(complete('pgwarden', 'history', '-f', 't')).toEqual(['tsv']);
    expect(complete('pgwarden', 'query', '-r', 're')).toEqual(['replica']);
    expect(complete('pgwarden', 'restart', 'demo', '--role', '')).toEqual(
      expect.arrayContaining(['leader', 'primary', 'replica', 'standby-leader', 'any']),
    );
    // query's own -c is its SQL, not the global configuration file: no file names offered.
    writeFileSync(join(dir, 'ctl.yml'), '');
    expect(complete('pgwarden', 'query', '-c', 'ct')).toEqual([]);
    expect(complete('pgwarden', '-c', 'ct')).toEqual(['ctl.yml']);
  });

  it('zsh: the script parses, and sourced after compinit it completes pgwarden', () => {
    const syntax = spawnSync('zsh', ['-n', zshScript], { encoding: 'utf8' });
    expect(syntax.status, syntax.stderr).toBe(0);
    const loaded = spawnSync(
      'zsh',
      [
        '-f',
        '-c',
        `autoload -Uz compinit && compinit -u -D && source ${zshScript} && print -r -- $_comps[pgwarden]`,
      ],
      { encoding: 'utf8', cwd: dir },
    );
    expect(loaded.status, loaded.stderr).toBe(0);
    expect(loaded.stdout.trim()).toBe('_pgwarden');
  });

  it('autocomplete refuses a shell it has no script for', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'run.js'), 'autocomplete', 'fish'], {
      encoding: 'utf8',
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/fish/);
  });
});
