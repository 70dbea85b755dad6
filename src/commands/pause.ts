import { Flags } from '@oclif/core';
import { ActionCommand, clusterArg } from './action-base.js';

export default class Pause extends ActionCommand {
  static override summary = 'Disable automatic failover (maintenance mode).';
  static override description =
    "Asks a member (the leader first) to set pause: true in the dynamic configuration through PATCH /config. While paused, the agents do not start, stop, promote or demote PostgreSQL on their own. Fails with 'Cluster is already paused' when it is.";
  static override examples = [
    '<%= config.bin %> -c /etc/patroni/patroni.yml pause',
    '<%= config.bin %> pause demo --wait',
  ];
  static override args = { cluster: clusterArg };
  static override flags = {
    wait: Flags.boolean({ summary: 'Wait until pause is applied on all nodes.' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Pause);
    const { togglePause } = await import('../ctl/pause.js');
    await this.act(flags, args.cluster, false, (dcs, io) =>
      togglePause(dcs, io, { paused: true, wait: flags.wait }),
    );
  }
}
