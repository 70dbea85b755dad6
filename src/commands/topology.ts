import { Args, Flags } from '@oclif/core';
import { CtlCommand } from './base.js';

export default class Topology extends CtlCommand {
  static override summary = 'Show the replication tree of one or more clusters.';
  static override description =
    'Like list, but ordered as a tree: the leader first, then each replica under the member it replicates from (tag replicatefrom), indented with "+ ".';
  static override examples = [
    '<%= config.bin %> -c /etc/patroni/patroni.yml topology',
    '<%= config.bin %> topology demo -w 5',
  ];
  static override strict = false;
  static override args = {
    clusters: Args.string({ description: 'Cluster names (default: scope from the configuration).' }),
  };
  static override flags = {
    extended: Flags.boolean({ char: 'e', summary: 'Show the optional columns even when empty.' }),
    timestamp: Flags.boolean({ char: 't', summary: 'Print a timestamp before each table.' }),
    'watch-continuous': Flags.boolean({ char: 'W', summary: 'Refresh every 2 seconds.' }),
    watch: Flags.string({ char: 'w', summary: 'Refresh every SECONDS seconds.' }),
  };

  async run(): Promise<void> {
    const { listClusters } = await import('../ctl/list-command.js');
    const { argv, flags } = await this.parse(Topology);
    await listClusters({
      config: await this.loadConfig(flags),
      clusters: argv as string[],
      format: 'topology',
      extended: flags.extended,
      timestamp: flags.timestamp,
      watchContinuous: flags['watch-continuous'],
      watchSeconds: flags.watch,
      write: (t) => this.print(t),
      warn: (t) => process.stderr.write(`${t}\n`),
    });
  }
}
