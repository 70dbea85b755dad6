// The CLI's bundle, dist/cli.cjs (scripts/build.mjs): oclif's runner, the command table and, evaluated only when a
// command runs, what the commands use. `Config` is for the build, which writes oclif.manifest.json with it.
export { Config, execute } from '@oclif/core';
export { COMMANDS } from './commands/index.js';
