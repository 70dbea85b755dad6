import { Flags } from '@oclif/core';
import { ActionCommand, clusterArg, forceFlag } from './action-base.js';

export default class DemoteCluster extends ActionCommand {
  static override summary = 'Demote the cluster to a standby cluster that follows a remote primary.';
  static override description =
    "Prints the member table, asks for confirmation unless --force, then PATCHes /config on the leader's REST API with a standby_cluster section (--host, --port, --primary-slot-name, --restore-command: at least one of --host, --port or --restore-command). Then prints the cluster's state every second until the leader runs as standby leader and the former primary runs again (no time limit: Ctrl-C stops waiting, not the demotion), and the member table. Fails when the cluster has no leader or already is a standby cluster.";
  static override examples = [
    '<%= config.bin %> demote-cluster demo --host 10.0.0.5 --port 5432 --force',
    "<%= config.bin %> demote-cluster --restore-command 'cp /archive/%f %p' --force",
  ];
  static override args = { cluster: clusterArg };
  static override flags = {
    force: forceFlag,
    host: Flags.string({ summary: 'Address of the remote node.' }),
    port: Flags.integer({ summary: 'Port of the remote node.' }),
    'restore-command': Flags.string({
      summary: 'Command to restore WAL records from the remote primary.',
    }),
    'primary-slot-name': Flags.string({
      summary: 'Name of the slot on the remote node to use for replication.',
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(DemoteCluster);
    const { changeClusterRole, standbyClusterSection } = await import('../ctl/cluster-role.js');
    const standby = (): Record<string, string | number> =>
      standbyClusterSection({
        host: flags.host,
        port: flags.port,
        restoreCommand: flags['restore-command'],
        primarySlotName: flags['primary-slot-name'],
      });
    // As patronictl: the configuration is read first, then the options are checked, then the DCS is opened.
    await this.act(
      flags,
      args.cluster,
      flags.force,
      (dcs, io, name) =>
        changeClusterRole(dcs, io, { clusterName: name, force: flags.force, standby: standby() }),
      () => void standby(),
    );
  }
}
