import { Args, Flags } from '@oclif/core';
import { CtlCommand, formatFlag, outputFormat } from './base.js';

export default class List extends CtlCommand {
  static override summary = 'List the members of one or more clusters.';
  static override description =
    "Reads each cluster from the DCS and prints its members as patronictl does: role, state, timeline and lag behind the leader. Optional columns (pending restart, scheduled restart, tags) appear when a member has a value or with --extended. The table's layout follows the Patroni version the members run.";
  static override examples = [
    '<%= config.bin %> -c /etc/patroni/patroni.yml list',
    '<%= config.bin %> list demo -f json',
    '<%= config.bin %> -d etcd3://127.0.0.1:2379 list demo -e -W',
  ];
  static override strict = false;
  static override args = {
    clusters: Args.string({ description: 'Cluster names (default: scope from the configuration).' }),
  };
  static override flags = {
    extended: Flags.boolean({ char: 'e', summary: 'Show the optional columns even when empty.' }),
    timestamp: Flags.boolean({ char: 't', summary: 'Print a timestamp before each table.' }),
    format: formatFlag,
    'watch-continuous': Flags.boolean({ char: 'W', summary: 'Refresh every 2 seconds.' }),
    watch: Flags.string({ char: 'w', summary: 'Refresh every SECONDS seconds.' }),
  };

  async run(): Promise<void> {
    const { listClusters } = await import('../ctl/list-command.js');
    const { argv, flags } = await this.parse(List);
    await listClusters({
      config: await this.loadConfig(flags),
      clusters: argv as string[],
      format: outputFormat(flags.format),
      extended: flags.extended,
      timestamp: flags.timestamp,
      watchContinuous: flags['watch-continuous'],
      watchSeconds: flags.watch,
      write: (t) => this.print(t),
      warn: (t) => process.stderr.write(`${t}\n`),
    });
  }
}
