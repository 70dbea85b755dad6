// Bundles the CLI with esbuild: dist/cli.js (oclif + commands) plus chunks for what commands load lazily.
// Start-up time is dominated by loading hundreds of small CommonJS files; one bundle avoids that.
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
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

rmSync('dist', { recursive: true, force: true });
const { metafile } = await build({
  // dist/agent.js: `pgwarden agent CONFIG` without oclif (bin/run.js), for a smaller resident daemon.
  entryPoints: { cli: 'src/cli.ts', agent: 'src/agent/main.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  // Less source for V8 to parse at every start; the source map keeps stack traces readable in a checkout
  // (`node --enable-source-maps`). The package leaves the maps out (package.json `files`).
  minify: true,
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
  // oclif's development-mode TypeScript support; an installed CLI runs compiled code only. koffi (the Linux
  // watchdog's ioctl, src/agent/watchdog/linux.ts) is a native module: the bundle loads its binary from
  // dist/vendor/koffi, and only a development checkout imports the package.
  external: ['typescript', 'ts-node', 'tsx', 'koffi'],
  plugins: [pgWithoutCloudflareProbe],
  metafile: true,
  logLevel: 'warning',
});

// The package has no runtime dependencies: what the bundle holds and koffi's binaries, with their licences.
const root = process.cwd();
const koffi = vendorKoffi(root, 'dist', { strict: packing() });
writeLicences(root, 'dist', metafile, koffi);
