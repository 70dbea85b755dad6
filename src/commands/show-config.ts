import { Args } from '@oclif/core';
import { CtlCommand } from './base.js';

export default class ShowConfig extends CtlCommand {
  static override summary = "Show the cluster's dynamic configuration.";
  static override description =
    'Prints the config key of the DCS (the dynamic configuration every member applies) as YAML with sorted keys. Prints nothing when the cluster has no configuration yet.';
  static override examples = [
    '<%= config.bin %> -c /etc/patroni/patroni.yml show-config',
    '<%= config.bin %> -d zookeeper://127.0.0.1:2181 show-config demo',
  ];
  static override args = {
    cluster: Args.string({ description: 'Cluster name (default: scope from the configuration).' }),
  };

  async run(): Promise<void> {
    const { renderShowConfig } = await import('../ctl/read-commands.js');
    const { withCluster } = await import('../ctl/read-command-runner.js');
    const { args, flags } = await this.parse(ShowConfig);
    const text = await withCluster(await this.loadConfig(flags), args.cluster, (cluster) =>
      renderShowConfig(cluster),
    );
    if (text !== undefined) this.print(text);
  }
}
