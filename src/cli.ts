// The CLI's one entry module: oclif's runner and the command table, bundled together (scripts/build.mjs) so
// start-up reads a few files instead of hundreds. Services are split into chunks loaded when a command runs.
export { execute } from '@oclif/core';
export { COMMANDS } from './commands/index.js';
