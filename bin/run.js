#!/usr/bin/env node
// oclif entry. Commands are listed explicitly (dist/commands/index.js) so start-up loads no command
// bodies and no heavy module until a command runs.
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
