/**
 * `pgwarden agent --validate-config FILE`, as `patroni --validate-config` (Patroni 4.1.4's `__main__.py`): reads
 * the file (or directory) with `PATRONI_*` merged over it, as the agent would, and exits 0 when it is fit to run an
 * agent, 1 with one line per problem on stderr otherwise. The file is checked by the agent's own readers (a value
 * of the wrong type, a missing key) and its key registry (a setting pgwarden refuses, with its dotted path and what
 * to do), then against the machine as Patroni's validator does (src/ctl/config-environment.ts). Warnings (keys
 * Patroni or pgwarden ignore) go to stderr and do not fail the check. `--print` writes the local configuration as
 * YAML to stdout when it is valid. As Patroni, a FILE that does not exist leaves the environment alone to check.
 */
import { existsSync } from 'node:fs';
import { UserError } from '../config/errors.js';
import { agentConfigFromTree } from '../config/agent-config.js';
import { checkLocalKeys } from '../config/config-check.js';
import { patroniValidatorProblems } from '../config/patroni-validator.js';
import { applyPatroniEnv, patroniEnvWarnings } from '../config/env.js';
import { readConfigPath } from '../config/local-config.js';
import type { ConfigTree } from '../config/tree.js';
import { pyYaml } from '../render/formats.js';
import { errorText } from '../model/text.js';
import { checkEnvironment } from './config-environment.js';

type Env = Readonly<Record<string, string | undefined>>;

export interface ValidateConfigInput {
  readonly path: string | undefined;
  readonly ignoreListenPort: boolean;
  readonly print: boolean;
  readonly env: Env;
}

export interface ValidateConfigResult {
  readonly exitCode: 0 | 1;
  /** Problems, one per line (empty when valid). */
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
  /** `--print`: the local configuration as YAML. */
  readonly printed?: string;
}

function readTree(input: ValidateConfigInput, warnings: string[]): ConfigTree {
  if (input.path !== undefined && existsSync(input.path)) {
    const fileEnv: Record<string, string | undefined> = { ...input.env };
    delete fileEnv['PATRONI_CONFIGURATION'];
    warnings.push(...patroniEnvWarnings(fileEnv));
    return applyPatroniEnv(readConfigPath(input.path), fileEnv);
  }
  if (input.path !== undefined) {
    warnings.push(`${input.path} does not exist: checking the configuration from the environment alone`);
  }
  warnings.push(...patroniEnvWarnings(input.env));
  return applyPatroniEnv({}, input.env);
}

/** Splits a UserError's text into lines (the registry reports one refusal a line). */
function lines(e: unknown): string[] {
  return errorText(e)
    .split('\n')
    .filter((l) => l !== '');
}

export async function validateConfig(input: ValidateConfigInput): Promise<ValidateConfigResult> {
  const warnings: string[] = [];
  let tree: ConfigTree;
  try {
    tree = readTree(input, warnings);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    return { exitCode: 1, errors: lines(e), warnings };
  }
  if (Object.keys(tree).length === 0) return { exitCode: 1, errors: ['Config is empty.'], warnings };
  const errors: string[] = [];
  try {
    warnings.push(...agentConfigFromTree(tree, input.path ?? 'environment').warnings);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    errors.push(...lines(e));
    // The readers stop at the first bad value: the registry's refusals are reported all the same.
    const keys = checkLocalKeys(tree);
    for (const k of keys.errors) if (!errors.includes(k)) errors.push(k);
    warnings.push(...keys.warnings);
  }
  for (const p of patroniValidatorProblems(tree)) if (!errors.includes(p)) errors.push(p);
  errors.push(...(await checkEnvironment(tree, { ignoreListenPort: input.ignoreListenPort })));
  if (errors.length > 0) return { exitCode: 1, errors, warnings };
  return { exitCode: 0, errors, warnings, ...(input.print ? { printed: pyYaml(tree) } : {}) };
}
