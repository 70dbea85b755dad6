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
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Agent);
    const { runAgentProcess } = await import('../agent/main.js');
    await runAgentProcess(flags['config-file'] ?? args.config);
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    if (err instanceof UserError || err instanceof DcsError) {
      process.stderr.write(`Error: ${err.message}\n`);
      process.exit(err instanceof UserError ? err.exitCode : 1);
    }
    await super.catch(err);
  }
}
