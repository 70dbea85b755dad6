// Bundles the CLI with esbuild: dist/cli.js (oclif + commands) plus chunks for what commands load lazily.
// Start-up time is dominated by loading hundreds of small CommonJS files; one bundle avoids that.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
await build({
  // dist/agent.js: `pgwarden agent CONFIG` without oclif (bin/run.js), for a smaller resident daemon.
  entryPoints: { cli: 'src/cli.ts', agent: 'src/agent/main.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  // Less source for V8 to parse at every start; the source map keeps stack traces readable.
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
  // oclif's development-mode TypeScript support; an installed CLI runs compiled code only.
  external: ['typescript', 'ts-node', 'tsx'],
  logLevel: 'warning',
});
