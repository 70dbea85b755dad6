// Bundles pgwarden with esbuild, in two parts:
// - dist/cli.cjs: the CLI (`pgwarden COMMAND`), one CommonJS file holding oclif, the commands and every package they
//   use; what a command needs is evaluated when it runs. bin/load-cli.js loads it with V8's code cache,
//   dist/cli.cjs.cache, which scripts/code-cache.mjs writes after a few training runs; oclif reads the command
//   table from oclif.manifest.json (scripts/oclif-manifest.mjs) instead of building it at every start.
// - dist/agent.js: `pgwarden agent CONFIG` without oclif (bin/run.js), for a smaller resident daemon; an ES module
//   with chunks (dist/chunks) for what it loads lazily.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { packing, vendorKoffi, writeLicences } from './bundle-extras.mjs';

// pg asks `typeof Response` to tell a Cloudflare Worker from Node. On Node 20 that global is a lazy getter that
// loads Node's whole bundled fetch (undici, http2, zlib, web streams): about 15 MiB of resident memory in an
// agent that never fetches. Node has no Cloudflare runtime, so the build answers that question with `false`.
const pgWithoutCloudflareProbe = {
  name: 'pg-without-cloudflare-probe',
  setup(b) {
    b.onLoad({ filter: /[\\/]pg[\\/]lib[\\/]stream\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const probe = "typeof Response === 'function'";
      if (!source.includes(probe))
        throw new Error(`${args.path}: pg's Cloudflare probe changed; revisit build.mjs`);
      return { contents: source.replace(probe, 'false'), loader: 'js' };
    });
  },
};

/**
 * Replaces `find` by `replace` in the package file matching `file`, failing the build when `find` is not there
 * once (a new version of the package): each patch below keeps what the code does and drops a start-up cost.
 */
const patch = (name, file, find, replace) => ({
  name,
  setup(b) {
    b.onLoad({ filter: file }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (source.split(find).length !== 2)
        throw new Error(`${args.path}: ${name}: the code to patch changed; revisit build.mjs`);
      return { contents: source.replace(find, replace), loader: 'js' };
    });
  },
});

// oclif sorts its commands by id with localeCompare, whose first call builds ICU's collator: 80 million
// instructions, a sixth of what starting Node costs. Compared by code unit instead; command ids here are
// lower-case ASCII words joined by `-`, which both orders sort alike (scripts/oclif-manifest.mjs checks it).
const oclifSortsWithoutIcu = patch(
  'oclif-sorts-without-icu',
  /[\\/]@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/,
  '.sort((a, b) => a.id.localeCompare(b.id))',
  '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))',
);

// The CLI bundle must be ASCII, so that bin/load-cli.js can read it as latin1, a copy, rather than decode UTF-8
// (4 ms of a start). esbuild escapes what is outside ASCII in strings, not in regular expressions: ansis has one
// such character, written here as the escape that means the same.
const ansisRegexInAscii = patch(
  'ansis-regex-in-ascii',
  /[\\/]ansis[\\/]index\.js$/,
  '[\u001b\u009b]',
  '[\\x1b\\x9b]',
);

// `pgwarden agent` given more than a configuration path goes through oclif, whose `agent` command then imports the
// agent: from dist/agent.js, which the daemon uses too, rather than a second copy of it inside the CLI bundle.
const agentFromItsBundle = {
  name: 'agent-from-its-bundle',
  setup(b) {
    b.onResolve({ filter: /[\\/]agent[\\/]main\.js$/ }, (args) =>
      args.importer.endsWith('src/commands/agent.ts') ? { path: './agent.js', external: true } : undefined,
    );
  },
};

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  // Less source for V8 to parse; the source map keeps stack traces readable in a checkout
  // (`node --enable-source-maps`). The package leaves the maps out (package.json `files`).
  minify: true,
  // oclif's development-mode TypeScript support; an installed CLI runs compiled code only. koffi (the Linux
  // watchdog's ioctl, src/agent/watchdog/linux.ts) is a native module: the bundle loads its binary from
  // dist/vendor/koffi, and only a development checkout imports the package.
  external: ['typescript', 'ts-node', 'tsx', 'koffi'],
  metafile: true,
  logLevel: 'warning',
};

rmSync('dist', { recursive: true, force: true });
rmSync('oclif.manifest.json', { force: true });
const agent = await build({
  ...common,
  entryPoints: { agent: 'src/agent/main.ts' },
  outdir: 'dist',
  splitting: true,
  format: 'esm',
  chunkNames: 'chunks/[name]-[hash]',
  // CommonJS dependencies inside an ES module bundle still call require() and read __dirname.
  banner: {
    js: [
      "import { createRequire as __pgwardenCreateRequire } from 'node:module';",
      "import { fileURLToPath as __pgwardenFileURLToPath } from 'node:url';",
      'const require = __pgwardenCreateRequire(import.meta.url);',
      'const __filename = __pgwardenFileURLToPath(import.meta.url);',
      "const __dirname = __pgwardenFileURLToPath(new URL('.', import.meta.url));",
    ].join('\n'),
  },
  plugins: [pgWithoutCloudflareProbe],
});
const cli = await build({
  ...common,
  entryPoints: ['src/cli.ts'],
  outfile: 'dist/cli.cjs',
  format: 'cjs',
  plugins: [pgWithoutCloudflareProbe, agentFromItsBundle, oclifSortsWithoutIcu, ansisRegexInAscii],
});

// V8 loses a script's dynamic-import host options when it runs from a code cache (import() then throws
// ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING, nodejs/node#43663): the bundle's own import() calls are rewritten, the
// builtins to require(), the agent's ES module bundle to the importer bin/load-cli.js registers. Any other
// import() the sources add fails the build here, to be handled the same way.
const DYNAMIC_IMPORTS = [
  [/\bimport\("(node:https?)"\)/g, 'Promise.resolve().then(() => require("$1"))', 2],
  [
    /\bimport\("\.\/agent\.js"\)/g,
    'globalThis[Symbol.for("pgwarden.import")](require("node:url").pathToFileURL(__dirname + "/agent.js").href)',
    1,
  ],
];
let cliSource = readFileSync('dist/cli.cjs', 'utf8');
for (const [pattern, replacement, count] of DYNAMIC_IMPORTS) {
  const found = cliSource.match(pattern)?.length ?? 0;
  if (found !== count)
    throw new Error(`dist/cli.cjs: ${found} matches of ${pattern}, expected ${count}: update build.mjs`);
  cliSource = cliSource.replace(pattern, replacement);
}
writeFileSync('dist/cli.cjs', cliSource);

const bundle = readFileSync('dist/cli.cjs');
const beyondAscii = bundle.findIndex((byte) => byte > 0x7f);
if (beyondAscii >= 0) {
  const around = bundle.subarray(Math.max(0, beyondAscii - 80), beyondAscii + 20).toString('utf8');
  throw new Error(`dist/cli.cjs is not ASCII at byte ${beyondAscii}, in ${JSON.stringify(around)}: patch it`);
}

// The package has no runtime dependencies: what the bundles hold and koffi's binaries, with their licences.
const root = process.cwd();
const koffi = vendorKoffi(root, 'dist', { strict: packing() });
const inputs = { ...agent.metafile.inputs, ...cli.metafile.inputs };
writeLicences(root, 'dist', { inputs }, koffi);

// Each in a process of its own: the code cache must be made by a plain `node` that loaded the bundle as
// bin/run.js does, after the manifest exists.
execFileSync(process.execPath, ['scripts/oclif-manifest.mjs'], { stdio: 'inherit' });
execFileSync(process.execPath, ['scripts/code-cache.mjs'], { stdio: 'inherit' });
