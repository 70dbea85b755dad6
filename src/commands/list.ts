import { setFlagsFromString } from 'node:v8';
import { Args, Flags } from '@oclif/core';
import { CtlCommand, formatFlag, outputFormat } from './base.js';
import type { ListFormat } from '../render/members.js';

/** What `list` and `topology` share: cluster names, optional columns, timestamps, refresh. */
export const memberTableArgs = {
  clusters: Args.string({ description: 'Cluster names (default: scope from the configuration).' }),
};
export const memberTableFlags = {
  all: Flags.boolean({
    summary: 'Every cluster of the namespace, in name order (one DCS read).',
    description:
      "Instead of cluster names: every cluster stored under the namespace. Tables print one per cluster; json, yaml and tsv print one document whose Cluster field names each row's cluster.",
  }),
  extended: Flags.boolean({ char: 'e', summary: 'Show the optional columns even when empty.' }),
  timestamp: Flags.boolean({ char: 't', summary: 'Print a timestamp before each table.' }),
  'watch-continuous': Flags.boolean({ char: 'W', summary: 'Refresh every 2 seconds.' }),
  watch: Flags.string({ char: 'w', summary: 'Refresh every SECONDS seconds.' }),
};

export abstract class MemberTableCommand extends CtlCommand {
  protected async printMembers(
    argv: readonly unknown[],
    flags: {
      all: boolean;
      extended: boolean;
      timestamp: boolean;
      'watch-continuous': boolean;
      watch?: string;
      'config-file'?: string;
      'dcs-url'?: string;
      insecure?: boolean;
    },
    format: ListFormat,
  ): Promise<void> {
    const { listClusters } = await import('../ctl/list-command.js');
    // `--all` runs its code once over thousands of clusters: V8's optimizing compiler (TurboFan) would compile the
    // hottest functions on a second thread for more CPU than they then save (30% of the instructions of a run over
    // 1,000 clusters, callgrind). Turned off here rather than at start-up: a V8 flag changed before the bundle and
    // Node's own modules load makes V8 reject their code caches (Node's, and dist/cli.cjs.cache).
    if (flags.all) setFlagsFromString('--no-opt');
    await listClusters({
      config: await this.loadConfig(flags),
      clusters: argv.map(String),
      all: flags.all,
      format,
      extended: flags.extended,
      timestamp: flags.timestamp,
      watchContinuous: flags['watch-continuous'],
      watchSeconds: flags.watch,
      write: (t) => this.print(t),
      warn: (t) => process.stderr.write(`${t}\n`),
    });
  }
}

export default class List extends MemberTableCommand {
  static override summary = 'List the members of one or more clusters.';
  static override description =
    "Reads each cluster from the DCS and prints its members as patronictl does: role, state, timeline and lag behind the leader. Optional columns (pending restart, scheduled restart, tags) appear when a member has a value or with --extended. The table's layout follows the Patroni version the members run.";
  static override examples = [
    '<%= config.bin %> -c /etc/patroni/patroni.yml list',
    '<%= config.bin %> list demo -f json',
    '<%= config.bin %> -d etcd3://127.0.0.1:2379 list demo -e -W',
    '<%= config.bin %> -c /etc/patroni/patroni.yml list --all -f json',
  ];
  static override strict = false;
  static override args = memberTableArgs;
  static override flags = { ...memberTableFlags, format: formatFlag };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(List);
    await this.printMembers(argv, flags, outputFormat(flags.format));
  }
}
