/**
 * The size rules of eslint.config.js bite (docs/architecture.md: functions of at most 120 lines of code, modules of
 * at most 700): generated code placed (virtually) in src/ one line over a limit is reported, at the limit it is
 * not, and comments and blank lines do not count. The tree as it is is checked with the layer rules, in one pass
 * (layers.test.ts). Uses the repository's own ESLint configuration, without type information, as layers.test.ts does.
 */
import { join, resolve } from 'node:path';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const SIZE_RULES = new Set(['max-lines-per-function', 'max-lines']);
const eslint = new ESLint({
  cwd: ROOT,
  overrideConfig: [tseslint.configs.disableTypeChecked],
  ruleFilter: ({ ruleId }) => SIZE_RULES.has(ruleId),
});

/** The size rules' findings for `code` linted as if it were the file `path` of the repository. */
async function sizeErrors(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, path) });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'fatal'}: ${m.message}`);
}

/** `count` numbered statements, one a line, each preceded by `padding` comment and blank lines. */
function statements(count: number, indent: string, padding = 0): string[] {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    for (let p = 0; p < padding; p++) lines.push(p % 2 === 0 ? `${indent}// why ${i}.${p}` : '');
    lines.push(`${indent}total += ${i};`);
  }
  return lines;
}

/** An exported function of exactly `lines` lines of code (signature, body, closing brace). */
function functionOf(lines: number, padding = 0): string {
  const body = statements(lines - 4, '  ', padding);
  return ['export function sized(): number {', '  let total = 0;', ...body, '  return total;', '}', ''].join(
    '\n',
  );
}

/** The same as a class method, whose class adds two lines around it. */
function methodOf(lines: number): string {
  const body = statements(lines - 4, '    ');
  return [
    'export class Sized {',
    '  sum(): number {',
    '    let total = 0;',
    ...body,
    '    return total;',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** A module of exactly `lines` lines of code, each a small exported constant (no function to count). */
function moduleOf(lines: number, padding = 0): string {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    for (let p = 0; p < padding; p++) out.push(p % 2 === 0 ? `// why ${i}.${p}` : '');
    out.push(`export const c${i} = ${i};`);
  }
  return `${out.join('\n')}\n`;
}

describe('max-lines-per-function', () => {
  it('reports a function of 121 lines of code, naming it and its length', async () => {
    expect(await sizeErrors('src/ha/fixture.ts', functionOf(121))).toEqual([
      "max-lines-per-function: Function 'sized' has too many lines (121). Maximum allowed is 120.",
    ]);
  });

  it('reports a method too', async () => {
    expect(await sizeErrors('src/dcs/etcd3/fixture.ts', methodOf(121))).toEqual([
      "max-lines-per-function: Method 'sum' has too many lines (121). Maximum allowed is 120.",
    ]);
  });

  it('accepts 120 lines of code, however many comment and blank lines come with them', async () => {
    expect(await sizeErrors('src/ha/fixture.ts', functionOf(120))).toEqual([]);
    expect(await sizeErrors('src/ha/fixture.ts', methodOf(120))).toEqual([]);
    // 120 lines of code plus 232 of comments and blank lines.
    expect(await sizeErrors('src/ha/fixture.ts', functionOf(120, 2))).toEqual([]);
  });
});

describe('max-lines', () => {
  it('reports a module of 701 lines of code', async () => {
    expect(await sizeErrors('src/model/fixture.ts', moduleOf(701))).toEqual([
      'max-lines: File has too many lines (701). Maximum allowed is 700.',
    ]);
  });

  it('accepts 700 lines of code with their comments and blank lines', async () => {
    expect(await sizeErrors('src/model/fixture.ts', moduleOf(700))).toEqual([]);
    expect(await sizeErrors('src/model/fixture.ts', moduleOf(700, 1))).toEqual([]);
  });

  it('applies to src only', async () => {
    expect(await sizeErrors('test/unit/fixture.ts', functionOf(200) + moduleOf(701))).toEqual([]);
  });
});
