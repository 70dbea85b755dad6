/**
 * Local ESLint rules that keep the layers of docs/architecture.md: which folder of src/ may import which
 * (`layers/allowed-imports`), and no import cycles (`layers/no-cycles`). Imports are read with TypeScript's
 * pre-processor, so static, type-only, re-exported and dynamic (`import()`) imports all count.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/** Specifiers of a file's imports with their offsets in the text. */
function importsOf(text) {
  return ts
    .preProcessFile(text, true, true)
    .importedFiles.map((f) => ({ spec: f.fileName, pos: f.pos, end: f.end }));
}

/** The TypeScript file a relative specifier names (`./x.js` is `./x.ts`), or undefined for packages and misses. */
function resolveRelative(fromFile, spec) {
  if (!spec.startsWith('.')) return undefined;
  const base = resolve(dirname(fromFile), spec);
  const candidates = [
    base.replace(/\.js$/, '.ts'),
    base.replace(/\.js$/, '.d.ts'),
    base,
    join(base, 'index.ts'),
  ];
  return candidates.find((p) => p.endsWith('.ts') && existsSync(p));
}

/** `src/ha/loop.ts` -> `ha/loop`; undefined outside `src`. */
function modulePath(srcDir, file) {
  const rel = relative(srcDir, file);
  if (rel.startsWith('..') || isAbsolute(rel)) return undefined;
  return rel
    .split(sep)
    .join('/')
    .replace(/(\.d)?\.ts$/, '');
}

/** `ha` covers `ha/loop`; `agent/main` covers only itself. */
const covers = (prefix, path) => path === prefix || path.startsWith(`${prefix}/`);

function srcDirOf(context, option) {
  return resolve(context.cwd ?? process.cwd(), option ?? 'src');
}

const allowedImports = {
  meta: {
    type: 'problem',
    docs: { description: 'Each folder of src/ imports only the layers below it, and ha/model no I/O module' },
    schema: [
      {
        type: 'object',
        properties: {
          srcDir: { type: 'string' },
          layers: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } },
          forbiddenModules: {
            type: 'object',
            additionalProperties: { type: 'array', items: { type: 'string' } },
          },
        },
        required: ['layers'],
        additionalProperties: false,
      },
    ],
    messages: {
      notAllowed: "'{{from}}' may not import '{{to}}': {{layer}} imports only {{allowed}}",
      unknownLayer: "'{{from}}' is in no layer: add its folder to the layer map in eslint.config.js",
      ioModule: "'{{from}}' may not import the I/O module '{{spec}}': {{layer}} does no I/O",
    },
  },
  create(context) {
    const { srcDir: srcOption, layers, forbiddenModules = {} } = context.options[0];
    const srcDir = srcDirOf(context, srcOption);
    const from = modulePath(srcDir, context.filename);
    if (from === undefined) return {};
    const keys = Object.keys(layers).filter((k) => covers(k, from));
    const top = from.split('/')[0];
    return {
      Program(node) {
        const at = (i) => ({
          start: context.sourceCode.getLocFromIndex(i.pos),
          end: context.sourceCode.getLocFromIndex(i.end),
        });
        if (keys.length === 0) {
          context.report({ node, messageId: 'unknownLayer', data: { from } });
          return;
        }
        const allowed = [top, ...keys.flatMap((k) => layers[k])];
        const forbidden = keys.flatMap((k) => forbiddenModules[k] ?? []);
        for (const i of importsOf(context.sourceCode.text)) {
          if (forbidden.some((m) => i.spec === m || i.spec.startsWith(`${m}/`))) {
            context.report({ loc: at(i), messageId: 'ioModule', data: { from, spec: i.spec, layer: top } });
            continue;
          }
          const target = resolveRelative(context.filename, i.spec);
          const to = target && modulePath(srcDir, target);
          if (to === undefined || allowed.some((a) => covers(a, to))) continue;
          const layer = keys.length > 1 || keys[0] !== top ? keys.join(' + ') : top;
          context.report({
            loc: at(i),
            messageId: 'notAllowed',
            data: { from, to, layer, allowed: allowed.join(', ') },
          });
        }
      },
    };
  },
};

/** Imports of files on disk, cached by modification time for the length of one lint run. */
const diskImports = new Map();
function importsOnDisk(file) {
  const mtime = statSync(file).mtimeMs;
  const hit = diskImports.get(file);
  if (hit && hit.mtime === mtime) return hit.targets;
  const targets = importsOf(readFileSync(file, 'utf8'))
    .map((i) => resolveRelative(file, i.spec))
    .filter((t) => t !== undefined);
  diskImports.set(file, { mtime, targets });
  return targets;
}

/** A path of imports from `start` back to `goal`, breadth-first so the shortest cycle is named. */
function pathBack(start, goal, srcDir) {
  const previous = new Map([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const file = queue.shift();
    if (file === goal) {
      const chain = [];
      for (let f = file; f !== undefined; f = previous.get(f)) chain.unshift(f);
      return chain;
    }
    for (const next of importsOnDisk(file)) {
      if (previous.has(next) || modulePath(srcDir, next) === undefined) continue;
      previous.set(next, file);
      queue.push(next);
    }
  }
  return undefined;
}

const noCycles = {
  meta: {
    type: 'problem',
    docs: { description: 'No import cycles between the modules of src/' },
    schema: [{ type: 'object', properties: { srcDir: { type: 'string' } }, additionalProperties: false }],
    messages: { cycle: 'import cycle: {{chain}}' },
  },
  create(context) {
    const srcDir = srcDirOf(context, context.options[0]?.srcDir);
    const self = resolve(context.filename);
    if (modulePath(srcDir, self) === undefined) return {};
    return {
      Program() {
        for (const i of importsOf(context.sourceCode.text)) {
          const target = resolveRelative(self, i.spec);
          if (target === undefined || modulePath(srcDir, target) === undefined) continue;
          const back = target === self ? [self] : pathBack(target, self, srcDir);
          if (!back) continue;
          const chain = [self, ...back].map((f) => modulePath(srcDir, f)).join(' -> ');
          context.report({
            loc: {
              start: context.sourceCode.getLocFromIndex(i.pos),
              end: context.sourceCode.getLocFromIndex(i.end),
            },
            messageId: 'cycle',
            data: { chain },
          });
        }
      },
    };
  },
};

export default { rules: { 'allowed-imports': allowedImports, 'no-cycles': noCycles } };
