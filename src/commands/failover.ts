import { Flags } from '@oclif/core';
import { ActionCommand, clusterArg, forceFlag } from './action-base.js';
import { leaderFlag } from './switchover.js';

export default class Failover extends ActionCommand {
  static override summary = 'Fail over to a specific replica.';
  static override description =
    'Like switchover, but a candidate is required and no time can be scheduled; works without a healthy leader (the request then goes to the candidate). With --leader it is a switchover, as in patronictl 3.0.';
  static override examples = ['<%= config.bin %> failover demo --candidate pg2 --force'];
  static override args = { cluster: clusterArg };
  static override flags = {
    leader: leaderFlag,
    candidate: Flags.string({ summary: 'The name of the candidate.' }),
    force: forceFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Failover);
    const { switchover } = await import('../ctl/switchover.js');
    await this.act(flags, args.cluster, flags.force, (dcs, io, name) =>
      switchover(dcs, io, {
        action: flags.leader ? 'switchover' : 'failover',
        clusterName: name,
        leader: flags.leader,
        candidate: flags.candidate,
        force: flags.force,
      }),
    );
  }
}
