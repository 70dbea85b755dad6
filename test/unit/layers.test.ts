/**
 * The layer rules of eslint.config.js bite: small files placed (virtually) in a folder of src/ with a wrong import
 * are reported, the allowed ones are not, and an import that closes a cycle is named with the whole cycle.
 * Uses the repository's own ESLint configuration, without type information (not needed by these rules).
 */
import { readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const eslint = new ESLint({ cwd: ROOT, overrideConfig: [tseslint.configs.disableTypeChecked] });

/** The messages of the layer rules for `code` linted as if it were the file `path` of the repository. */
async function layerErrors(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, path) });
  return (result?.messages ?? []).filter((m) => m.ruleId?.startsWith('layers/')).map((m) => m.message);
}

describe('layers/allowed-imports', () => {
  const wrong: readonly (readonly [string, string, string])[] = [
    [
      'src/render/fixture.ts',
      "import type { MembersTable } from '../ctl/list.js';",
      "may not import 'ctl/list'",
    ],
    [
      'src/model/fixture.ts',
      "import { clusterFromNodes } from '../dcs/codec.js';",
      "may not import 'dcs/codec'",
    ],
    ['src/model/fixture.ts', "import { isPaused } from '../ha/decide.js';", "may not import 'ha/decide'"],
    ['src/model/fixture.ts', "import { readFileSync } from 'node:fs';", "the I/O module 'node:fs'"],
    ['src/model/fixture.ts', "import { spawn } from 'child_process';", "the I/O module 'child_process'"],
    ['src/ha/fixture.ts', "export const load = () => import('pg');", "the I/O module 'pg'"],
    ['src/ha/fixture.ts', "import { createServer } from 'node:net';", "the I/O module 'node:net'"],
    ['src/ha/loop.ts', "import { request } from 'node:http';", "the I/O module 'node:http'"],
    ['src/ha/fixture.ts', "import type { Dcs } from '../dcs/dcs.js';", "may not import 'dcs/dcs'"],
    [
      'src/ha/fixture.ts',
      "import type { PostgresNode } from '../agent/node.js';",
      "may not import 'agent/node'",
    ],
    [
      'src/ha/fixture.ts',
      "import { isRunning } from '../postgres/pg-ctl.js';",
      "may not import 'postgres/pg-ctl'",
    ],
    [
      'src/ctl/fixture.ts',
      "import { startApiServer } from '../api/server.js';",
      "may not import 'api/server'",
    ],
    ['src/ctl/fixture.ts', "import { runAgent } from '../agent/agent.js';", "may not import 'agent/agent'"],
    ['src/ctl/fixture.ts', "import { decide } from '../ha/decide.js';", "may not import 'ha/decide'"],
    [
      'src/render/fixture.ts',
      "import { UserError } from '../config/errors.js';",
      "may not import 'config/errors'",
    ],
    [
      'src/dcs/etcd3/fixture.ts',
      "import type { LocalConfig } from '../../config/local-config.js';",
      "'config/",
    ],
    [
      'src/api/fixture.ts',
      "import { parseGucInt } from '../postgres/queries.js';",
      "may not import 'postgres/queries'",
    ],
    [
      'src/postgres/fixture.ts',
      "import type { AgentStatus } from '../api/status.js';",
      "may not import 'api/status'",
    ],
    [
      'src/agent/fixture.ts',
      "import { switchover } from '../ctl/switchover.js';",
      "may not import 'ctl/switchover'",
    ],
    ['src/config/fixture.ts', "import { openDcs } from '../ctl/context.js';", "may not import 'ctl/context'"],
    [
      'src/config/fixture.ts',
      "import { createDcs } from '../dcs/registry.js';",
      "may not import 'dcs/registry'",
    ],
    [
      'src/commands/fixture.ts',
      "export const n = () => import('../agent/node.js');",
      "may not import 'agent/node'",
    ],
    [
      'src/commands/fixture.ts',
      "import { requestMember } from '../api/client.js';",
      "may not import 'api/client'",
    ],
    ['src/cli.ts', "import { list } from './ctl/list.js';", "may not import 'ctl/list'"],
    ['src/newlayer/fixture.ts', 'export const x = 1;', 'is in no layer'],
  ];
  it.each(wrong)('%s: %s is refused', async (path, code, expected) => {
    const errors = await layerErrors(path, `${code}\n`);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(expected);
  });

  const right: readonly (readonly [string, string])[] = [
    ['src/ctl/fixture.ts', "import { requestMember } from '../api/client.js';"],
    ['src/commands/fixture.ts', "export const main = () => import('../agent/main.js');"],
    ['src/ha/loop.ts', "import { DcsError, type Dcs } from '../dcs/dcs.js';"],
    ['src/ha/fixture.ts', "import { parseBool } from '../model/python.js';"],
    [
      'src/agent/fixture.ts',
      "import { createDcs } from '../dcs/registry.js';\nimport { decide } from '../ha/decide.js';",
    ],
    ['src/config/fixture.ts', "import type { DcsTarget } from '../dcs/target.js';"],
    ['src/prompts/fixture.ts', "import { UserError } from '../config/errors.js';"],
    [
      'src/dcs/zookeeper/fixture.ts',
      "import { DcsError } from '../dcs.js';\nimport { KEYS } from '../dcs.js';",
    ],
  ];
  it.each(right)('%s: %s is allowed', async (path, code) => {
    expect(await layerErrors(path, `${code}\n`)).toEqual([]);
  });
});

describe('layers/no-cycles', () => {
  it('names the cycle an import closes', async () => {
    // model/cluster.ts imports model/lsn.ts: lsn importing cluster back closes a cycle.
    const errors = await layerErrors(
      'src/model/lsn.ts',
      "import { EMPTY_SYNC } from './cluster.js';\nexport { EMPTY_SYNC };\n",
    );
    expect(errors).toEqual(['import cycle: model/lsn -> model/cluster -> model/lsn']);
  });

  it('counts type-only and dynamic imports', async () => {
    // ha/decide.ts imports ha/actions.ts: actions importing decide back, even for a type or lazily, is a cycle.
    const errors = await layerErrors(
      'src/ha/actions.ts',
      "import type { Decision } from './decide.js';\nexport const later = () => import('./decide.js');\n",
    );
    expect(errors).toEqual([
      'import cycle: ha/actions -> ha/decide -> ha/actions',
      'import cycle: ha/actions -> ha/decide -> ha/actions',
    ]);
  });
});

describe('the tree as it is', () => {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) files.push(path);
    }
  };
  walk(join(ROOT, 'src'));

  // The size rules (size-limits.test.ts) share this pass: parsing the whole tree once is the expensive part.
  it('keeps every layer rule and the size limits', async () => {
    expect(files.length).toBeGreaterThan(50);
    const layerOnly = new ESLint({
      cwd: ROOT,
      overrideConfig: [tseslint.configs.disableTypeChecked],
      ruleFilter: ({ ruleId }) =>
        ruleId.startsWith('layers/') || ruleId === 'max-lines-per-function' || ruleId === 'max-lines',
    });
    const results = await layerOnly.lintFiles(files);
    const errors = results.flatMap((r) =>
      r.messages.map((m) => `${relative(ROOT, r.filePath)}: ${m.message}`),
    );
    expect(errors).toEqual([]);
    // Parsing all of src/ takes ~25 s on an idle 2-core machine; under a load of 15+ it needs more than the default.
  }, 120_000);
});
