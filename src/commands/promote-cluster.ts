import { ActionCommand, clusterArg, forceFlag } from './action-base.js';

export default class PromoteCluster extends ActionCommand {
  static override summary = 'Promote a standby cluster: make it run standalone.';
  static override description =
    "Prints the member table, asks for confirmation unless --force, then PATCHes /config on the leader's REST API to remove the standby_cluster section. Then prints the cluster's state every second until the leader runs as primary (no time limit: Ctrl-C stops waiting, not the promotion), and the member table. Fails when the cluster has no leader or already runs standalone.";
  static override examples = [
    '<%= config.bin %> promote-cluster demo --force',
    '<%= config.bin %> -c /etc/patroni/patroni.yml promote-cluster',
  ];
  static override args = { cluster: clusterArg };
  static override flags = { force: forceFlag };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(PromoteCluster);
    const { changeClusterRole } = await import('../ctl/cluster-role.js');
    await this.act(flags, args.cluster, flags.force, (dcs, io, name) =>
      changeClusterRole(dcs, io, { clusterName: name, force: flags.force }),
    );
  }
}
