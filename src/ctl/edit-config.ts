/**
 * `edit-config`: change the dynamic configuration (the DCS `config` key) with a compare-and-set on the version read.
 * Changes come from --replace, --apply, -s/-p (in that order) or, with none of them, from $EDITOR. The YAML texts
 * before and after are shown as a unified diff; declining the confirmation changes nothing and exits 0.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { accessSync, constants } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { parse } from 'yaml';
import { assertDynamicConfigChange } from '../config/config-check.js';
import { UserError } from '../config/errors.js';
import type { Dcs } from '../dcs/dcs.js';
import { pyJson } from '../model/pyjson.js';
import { patchConfig } from '../model/python.js';
import { pyYaml } from '../render/formats.js';
import { diffLines, unifiedDiff } from '../render/unified-diff.js';
import type { ActionIo } from './actions.js';
import { errorText } from '../model/text.js';

type Tree = Record<string, unknown>;

export interface EditConfigRequest {
  readonly clusterName: string;
  readonly set: readonly string[];
  readonly pg: readonly string[];
  readonly apply?: string;
  readonly replace?: string;
  readonly quiet: boolean;
  readonly force: boolean;
  /** Reads standard input for `--apply -` / `--replace -`. */
  readonly readStdin?: () => string;
  /** Whether an editor may be opened (stdin is a terminal). */
  readonly interactive?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

/** YAML as PyYAML's safe_load reads it (YAML 1.1: `on` is true). */
function safeLoad(text: string): unknown {
  return parse(text, { version: '1.1' }) as unknown;
}

const clone = (t: Tree): Tree => structuredClone(t);

/** `-s a.b.c=VALUE` pairs; below `postgresql.parameters` the rest of the path is one GUC name. */
export function applyConfigChanges(data: Tree, pairs: readonly string[]): Tree {
  const changed = clone(data);
  const setPath = (config: Tree, path: string[], value: unknown, prefix: string[]): void => {
    if (prefix.length === 2 && prefix[0] === 'postgresql' && prefix[1] === 'parameters')
      path = [path.join('.')];
    const key = path[0]!;
    if (path.length === 1) {
      if (value === null || value === undefined) delete config[key];
      else config[key] = value;
      return;
    }
    if (!isTree(config[key])) config[key] = {};
    const child = config[key] as Tree;
    setPath(child, path.slice(1), value, [...prefix, key]);
    if (Object.keys(child).length === 0) delete config[key];
  };
  for (const pair of pairs) {
    if (!pair || !pair.includes('=')) throw new UserError(`Invalid parameter setting ${pair}`);
    const at = pair.indexOf('=');
    setPath(changed, pair.slice(0, at).trim().split('.'), safeLoad(pair.slice(at + 1)), []);
  }
  return changed;
}

function applyYamlFile(data: Tree, file: string, readStdin: () => string): Tree {
  let text: string;
  try {
    text = file === '-' ? readStdin() : readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read ${file}: ${errorText(e)}`);
  }
  const loaded = safeLoad(text);
  const changed = clone(data);
  if (loaded === null || loaded === undefined) return changed;
  if (!isTree(loaded)) throw new UserError(`${file} does not hold a YAML mapping`);
  patchConfig(changed, loaded);
  return changed;
}

function which(cmd: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

function invokeEditor(
  before: string,
  clusterName: string,
  env: NodeJS.ProcessEnv,
): { text: string; data: unknown } {
  let editor = env['EDITOR'];
  if (!editor) editor = which('editor', env) ?? which('vi', env);
  if (!editor) throw new UserError('EDITOR environment variable is not set. editor or vi are not available');
  const dir = mkdtempSync(join(tmpdir(), 'pgwarden-'));
  const file = join(dir, `${clusterName}-config-${Math.random().toString(36).slice(2, 10)}.yaml`);
  try {
    writeFileSync(file, before);
    const r = spawnSync(editor, [file], { stdio: 'inherit', env });
    if (r.error) throw new UserError(`cannot run editor ${editor}: ${r.error.message}`);
    if (r.status) throw new UserError(`Editor exited with return code ${r.status}`);
    const text = readFileSync(file, 'utf8');
    return { text, data: safeLoad(text) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Normalises values for Python's `==` (JSON-shaped data: numbers and strings compare by value). */
const jsonShape = (v: unknown): unknown => JSON.parse(JSON.stringify(v ?? null)) as unknown;

/** Returns true when done (changed, unchanged or declined); throws on errors and lost races. */
export async function editConfig(dcs: Dcs, io: ActionIo, req: EditConfigRequest): Promise<boolean> {
  const cluster = await dcs.getCluster();
  const config = cluster.config;
  if (!config) throw new UserError(`The config key does not exist in the cluster ${req.clusterName}`);
  const original = config.data as Tree;
  const before = pyYaml(original);
  const readStdin = req.readStdin ?? ((): string => readFileSync(0, 'utf8'));

  let after: string | undefined;
  let changed: unknown = original;
  if (req.replace !== undefined) {
    changed = applyYamlFile({}, req.replace, readStdin);
    after = pyYaml(changed);
  }
  if (req.apply !== undefined) {
    changed = applyYamlFile(changed as Tree, req.apply, readStdin);
    after = pyYaml(changed);
  }
  if (req.set.length > 0 || req.pg.length > 0) {
    const pairs = [...req.set, ...req.pg.map((p) => `postgresql.parameters.${p.trimStart()}`)];
    changed = applyConfigChanges(changed as Tree, pairs);
    after = pyYaml(changed);
  }
  if (after === undefined) {
    if (!req.interactive) {
      throw new UserError(
        'one of --set, --pg, --apply or --replace is required when stdin is not a terminal (would open $EDITOR on the configuration)',
      );
    }
    const edited = invokeEditor(before, req.clusterName, req.env ?? process.env);
    after = edited.text;
    changed = edited.data;
  }

  if (isDeepStrictEqual(jsonShape(original), jsonShape(changed))) {
    if (!req.quiet) io.out('Not changed');
    return true;
  }
  // Before the diff and the question: a setting pgwarden agents would not honour is never written.
  if (isTree(changed)) assertDynamicConfigChange(original, changed);
  if (!req.quiet) for (const line of unifiedDiff(diffLines(before), diffLines(after))) io.out(line);

  if ((req.apply === '-' || req.replace === '-') && !req.force) {
    io.out('Use --force option to apply changes');
    return true;
  }
  if (!req.force && !(await io.prompts.confirm('Apply these changes?', '--force'))) return true;
  if (!(await dcs.setConfigValue(pyJson(changed), config.version))) {
    throw new UserError('Config modification aborted due to concurrent changes');
  }
  io.out('Configuration changed');
  return true;
}
