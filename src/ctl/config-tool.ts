/**
 * The configuration tools of `pgwarden agent` (Patroni 4.1.4's `patroni --validate-config`,
 * `--generate-sample-config`, `--generate-config`): run one, print what it says, return the exit code. As Patroni,
 * a problem is one line per finding on stderr and exit code 1.
 */
import { UserError } from '../config/errors.js';
import { terminalPrompter } from '../prompts/index.js';
import { writeConfig, sampleConfig } from './generate-config.js';
import { runningConfig } from './generate-config-running.js';
import { validateConfig } from './validate-config.js';

export interface ConfigToolRequest {
  readonly mode: 'validate' | 'sample' | 'generate';
  readonly path: string | undefined;
  readonly dsn: string | undefined;
  readonly ignoreListenPort: boolean;
  readonly print: boolean;
}

async function validate(req: ConfigToolRequest): Promise<number> {
  const r = await validateConfig({
    path: req.path,
    ignoreListenPort: req.ignoreListenPort,
    print: req.print,
    env: process.env,
  });
  for (const w of r.warnings) process.stderr.write(`WARNING: ${w}\n`);
  for (const e of r.errors) process.stderr.write(`${e}\n`);
  if (r.printed !== undefined) process.stdout.write(r.printed);
  return r.exitCode;
}

export async function runConfigTool(req: ConfigToolRequest): Promise<number> {
  switch (req.mode) {
    case 'validate':
      return validate(req);
    case 'sample':
    case 'generate':
      try {
        const config =
          req.mode === 'sample'
            ? await sampleConfig(process.env)
            : await runningConfig(req.dsn, process.env, terminalPrompter());
        writeConfig(config, req.path);
        return 0;
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        process.stderr.write(`${e.message}\n`);
        return 1;
      }
  }
}
