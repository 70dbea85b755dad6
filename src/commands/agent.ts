import { Args, Command, Flags } from '@oclif/core';
import { UserError } from '../config/errors.js';
import { DcsError } from '../dcs/dcs.js';

export default class Agent extends Command {
  static override summary = 'Run the HA agent for one PostgreSQL member (stands in for a Patroni node).';
  static override description =
    'Reads a patroni.yml (PATRONI_* environment variables override it), joins or bootstraps the cluster in the DCS, manages the local PostgreSQL, holds or races for the leader lock and serves the Patroni-compatible REST API. SIGTERM/SIGINT stop PostgreSQL and release the lock; SIGHUP reloads the file. Refuses to run as root.';
  static override examples = [
    '<%= config.bin %> agent /etc/patroni/node1.yml',
    '<%= config.bin %> agent -c node1.yml',
    '<%= config.bin %> agent --validate-config node1.yml',
    '<%= config.bin %> agent --generate-sample-config /tmp/sample.yml',
    "<%= config.bin %> agent --generate-config --dsn 'host=/var/run/postgresql port=5432 user=postgres' node1.yml",
  ];
  static override args = {
    config: Args.string({
      description: 'Configuration file (patroni.yml format) or directory of YAML files.',
    }),
  };
  static override flags = {
    'config-file': Flags.string({
      char: 'c',
      summary: 'Configuration file (same as the positional argument).',
    }),
    'validate-config': Flags.boolean({
      summary:
        'Check the configuration file as `patroni --validate-config` does, then exit (0: valid, 1: not).',
      exclusive: ['generate-config', 'generate-sample-config'],
    }),
    'generate-sample-config': Flags.boolean({
      summary: 'Write a sample configuration to the file (stdout without one), then exit.',
      exclusive: ['validate-config', 'generate-config'],
    }),
    'generate-config': Flags.boolean({
      summary:
        'Write the configuration of a running PostgreSQL (reached with --dsn, else the PG* environment) to the file (stdout without one), then exit.',
      exclusive: ['validate-config', 'generate-sample-config'],
    }),
    dsn: Flags.string({
      summary: 'With --generate-config: the superuser connection to the running instance (libpq DSN or URI).',
    }),
    'ignore-listen-port': Flags.boolean({
      char: 'i',
      summary: 'With --validate-config: a listen port already in use is no error.',
    }),
    print: Flags.boolean({
      char: 'p',
      summary: 'With --validate-config: print the local configuration (environment included) as YAML.',
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Agent);
    const path = flags['config-file'] ?? args.config;
    if (flags['validate-config'] || flags['generate-config'] || flags['generate-sample-config']) {
      const { runConfigTool } = await import('../ctl/config-tool.js');
      const code = await runConfigTool({
        mode: flags['validate-config'] ? 'validate' : flags['generate-config'] ? 'generate' : 'sample',
        path,
        dsn: flags.dsn,
        ignoreListenPort: flags['ignore-listen-port'],
        print: flags.print,
      });
      process.exit(code);
    }
    const { runAgentProcess } = await import('../agent/main.js');
    await runAgentProcess(path);
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    if (err instanceof UserError || err instanceof DcsError) {
      process.stderr.write(`Error: ${err.message}\n`);
      process.exit(err instanceof UserError ? err.exitCode : 1);
    }
    await super.catch(err);
  }
}
