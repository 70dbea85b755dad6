import { Args } from '@oclif/core';
import { CtlCommand, formatFlag, outputFormat } from './base.js';

export default class History extends CtlCommand {
  static override summary = 'Show the history of failovers and switchovers.';
  static override description =
    "One row per timeline switch, from the cluster's history key: the timeline that ended, the LSN where it ended, PostgreSQL's reason, when, and which member was promoted.";
  static override examples = [
    '<%= config.bin %> -c /etc/patroni/patroni.yml history',
    '<%= config.bin %> history demo -f json',
  ];
  static override args = {
    cluster: Args.string({ description: 'Cluster name (default: scope from the configuration).' }),
  };
  static override flags = { format: formatFlag };

  async run(): Promise<void> {
    const { renderHistory } = await import('../ctl/read-commands.js');
    const { withCluster } = await import('../ctl/read-command-runner.js');
    const { args, flags } = await this.parse(History);
    const format = outputFormat(flags.format);
    const text = await withCluster(await this.loadConfig(flags), args.cluster, (cluster) =>
      renderHistory(cluster, format),
    );
    this.print(text);
  }
}
