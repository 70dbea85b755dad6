import { formatFlag, outputFormat } from './base.js';
import { ActionCommand, requiredClusterArg } from './action-base.js';

export default class Remove extends ActionCommand {
  static override summary = 'Remove everything a cluster has in the DCS.';
  static override description =
    'Prints the member table, then asks to type the cluster name, "Yes I am aware" and (if the cluster has a leader) the leader name, and deletes the whole cluster prefix in the DCS. There is no --force: it must be run from a terminal.';
  static override examples = ['<%= config.bin %> remove demo'];
  static override args = { cluster: requiredClusterArg };
  static override flags = { format: formatFlag };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Remove);
    const { removeCluster } = await import('../ctl/remove.js');
    await this.act(flags, args.cluster, false, (dcs, io, name) =>
      removeCluster(dcs, io, { clusterName: name, format: outputFormat(flags.format) }),
    );
  }
}
