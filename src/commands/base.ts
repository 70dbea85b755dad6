/**
 * What every control command shares: patronictl's global options (`-c`, `-d`, `-k`, which pgwarden also accepts
 * before the command name) and one-line errors with exit status 1 instead of stack traces.
 */
import { Command, Flags } from '@oclif/core';
import { AbortedError, UserError } from '../config/errors.js';
import type { LocalConfig } from '../config/local-config.js';
import { DcsError } from '../dcs/dcs.js';

export abstract class CtlCommand extends Command {
  static override baseFlags = {
    'config-file': Flags.string({
      char: 'c',
      summary:
        'Configuration file in patroni.yml format (default: $PATRONICTL_CONFIG_FILE, then ~/.config/patroni/patronictl.yaml).',
      helpGroup: 'GLOBAL',
    }),
    'dcs-url': Flags.string({
      char: 'd',
      aliases: ['dcs'],
      summary:
        "DCS to use instead of the file's, e.g. etcd3://127.0.0.1:2379 or zookeeper://h1:2181,h2:2181 (also $DCS_URL).",
      helpGroup: 'GLOBAL',
    }),
    insecure: Flags.boolean({
      char: 'k',
      summary: "Allow connections to members' REST APIs without verifying their TLS certificates.",
      helpGroup: 'GLOBAL',
    }),
  };

  protected async loadConfig(flags: {
    'config-file'?: string;
    'dcs-url'?: string;
    insecure?: boolean;
  }): Promise<LocalConfig> {
    const { loadCtlConfig } = await import('../config/local-config.js');
    return loadCtlConfig({
      configFile: flags['config-file'],
      dcsUrl: flags['dcs-url'],
      insecure: flags.insecure,
      env: process.env,
    });
  }

  protected print(text: string): void {
    process.stdout.write(`${text}\n`);
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    if (err instanceof UserError || err instanceof DcsError) {
      process.stderr.write(err instanceof AbortedError ? `${err.message}\n` : `Error: ${err.message}\n`);
      process.exitCode = err instanceof UserError ? err.exitCode : 1;
      return;
    }
    await super.catch(err);
  }
}

export const formatFlag = Flags.string({
  char: 'f',
  summary: 'Output format.',
  options: ['pretty', 'tsv', 'json', 'yaml', 'yml'],
  default: 'pretty',
});

export type OutputFormat = 'pretty' | 'tsv' | 'json' | 'yaml';

export function outputFormat(value: string): OutputFormat {
  return value === 'yml' ? 'yaml' : (value as OutputFormat);
}
