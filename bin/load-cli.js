// Loads dist/cli.cjs, the CLI's one CommonJS bundle (scripts/build.mjs), as Node's require() would, except that it
// is compiled through vm.Script with V8's code cache, dist/cli.cjs.cache, written by the build
// (scripts/code-cache.mjs): V8 then deserializes the compiled functions of a typical run instead of parsing and
// compiling the source again at every start, which Node 20 cannot do for modules (no module.enableCompileCache).
// V8 checks that the cache was made by the same V8 version and flags for a source of the same length; when it
// rejects it (another Node, a rebuilt bundle) or the file is missing, the source is compiled as usual.
import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath, URL } from 'node:url';
import { Script, constants } from 'node:vm';

export const BUNDLE = fileURLToPath(new URL('../dist/cli.cjs', import.meta.url));
export const CODE_CACHE = `${BUNDLE}.cache`;
const PACKAGE_JSON = new URL('../package.json', import.meta.url);

/**
 * oclif warns, as it loads, when Node does not satisfy package.json's `engines.node`; to tell, it loads semver and
 * parses the range, 3% of a start. For a range `>=X.Y.Z` (pgwarden's) this makes the same check and the same
 * warning and says true; oclif is then told to skip its own (OCLIF_DISABLE_ENGINE_WARNING, which also silences
 * this one when a user sets it). Any other range or version is left to oclif.
 */
function checkedNodeVersion(env) {
  if (['true', '1'].includes(env.OCLIF_DISABLE_ENGINE_WARNING?.toLowerCase())) return false;
  const range = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')).engines?.node ?? '';
  const min = /^>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/
    .exec(range)
    ?.slice(1)
    .map((n) => Number(n ?? 0));
  const node = /^(\d+)\.(\d+)\.(\d+)$/.exec(process.versions.node)?.slice(1).map(Number);
  if (!min || !node) return false;
  const at = node.findIndex((n, i) => n !== min[i]);
  if (at >= 0 && node[at] < min[at]) {
    process.emitWarning(
      `Node version must be ${range} to use this CLI. Current node version: ${process.versions.node}`,
    );
  }
  return true;
}

/**
 * Runs the bundle once and registers it in require's cache under its path, so that oclif, which require()s the
 * commands' module (package.json `oclif.commands.target`), gets these exports instead of a second copy. `script`
 * is for the build's `createCachedData()`; `cache: false` compiles without the code cache.
 */
export function loadCli({ cache = true } = {}) {
  // The bundle is ASCII (the build checks it): latin1 copies the bytes, where utf8 would decode them.
  const source = readFileSync(BUNDLE, 'latin1');
  let cachedData;
  if (cache) {
    try {
      cachedData = readFileSync(CODE_CACHE);
    } catch {
      cachedData = undefined;
    }
  }
  const script = new Script(Module.wrap(source), {
    filename: BUNDLE,
    cachedData,
    // Without the code cache, an import() the build did not rewrite still reaches Node's ES module loader.
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  // The bundle's import() of dist/agent.js, rewritten by the build (a script run from V8's code cache loses the
  // host options import() needs): this module's own import() does it.
  globalThis[Symbol.for('pgwarden.import')] ??= (specifier) => import(specifier);
  // oclif's own import() of a command module (its module loader, when it treats the package as ES modules) goes
  // through the bundle's USE_MAIN_CONTEXT_DEFAULT_LOADER: Node 20 works but prints an ExperimentalWarning for it,
  // which would break output that must be byte-identical to patronictl's. Only that one notice is dropped.
  const emitWarning = process.emitWarning;
  process.emitWarning = function (warning, ...rest) {
    if (
      typeof warning === 'string' &&
      warning.startsWith('vm.USE_MAIN_CONTEXT_DEFAULT_LOADER is an experimental')
    )
      return;
    return emitWarning.call(process, warning, ...rest);
  };
  const module = new Module(BUNDLE);
  module.filename = BUNDLE;
  const require = createRequire(BUNDLE);
  require.cache[BUNDLE] = module;
  const env = process.env;
  const oclifCheck = env.OCLIF_DISABLE_ENGINE_WARNING;
  if (checkedNodeVersion(env)) env.OCLIF_DISABLE_ENGINE_WARNING = 'true';
  try {
    script.runInThisContext()(module.exports, require, module, BUNDLE, dirname(BUNDLE));
  } finally {
    if (oclifCheck === undefined) delete env.OCLIF_DISABLE_ENGINE_WARNING;
    else env.OCLIF_DISABLE_ENGINE_WARNING = oclifCheck;
  }
  module.loaded = true;
  return {
    exports: module.exports,
    script,
    cacheRejected: cachedData === undefined || script.cachedDataRejected,
  };
}
