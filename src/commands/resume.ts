import { Flags } from '@oclif/core';
import { ActionCommand, clusterArg } from './action-base.js';

export default class Resume extends ActionCommand {
  static override summary = 'Resume automatic failover (leave maintenance mode).';
  static override description =
    'Asks a member (the leader first) to remove pause from the dynamic configuration through PATCH /config {"pause": null}. Fails with \'Cluster is not paused\' when it is not.';
  static override examples = ['<%= config.bin %> resume', '<%= config.bin %> resume demo --wait'];
  static override args = { cluster: clusterArg };
  static override flags = {
    wait: Flags.boolean({ summary: 'Wait until pause is cleared on all nodes.' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Resume);
    const { togglePause } = await import('../ctl/pause.js');
    await this.act(flags, args.cluster, false, (dcs, io) =>
      togglePause(dcs, io, { paused: false, wait: flags.wait }),
    );
  }
}
