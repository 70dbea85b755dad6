import { Flags } from '@oclif/core';
import { ActionCommand, clusterArg, forceFlag } from './action-base.js';

export const leaderFlag = Flags.string({
  aliases: ['primary', 'master'],
  summary: 'The name of the current leader.',
});

export default class Switchover extends ActionCommand {
  static override summary = 'Switch the leader role over to a replica, now or at a scheduled time.';
  static override description =
    "Prints the member table, checks the leader and candidate against the DCS, asks what is missing (leader, candidate, when, confirmation; nothing with --force), then POSTs /switchover to the leader's REST API and prints its answer and the table again. If the REST call cannot be made, the failover key is written to the DCS directly.";
  static override examples = [
    '<%= config.bin %> switchover demo --candidate pg2 --force',
    '<%= config.bin %> switchover --leader pg1 --candidate pg3 --scheduled 2026-11-22T03:00 --force',
  ];
  static override args = { cluster: clusterArg };
  static override flags = {
    leader: leaderFlag,
    candidate: Flags.string({ summary: 'The name of the candidate.' }),
    scheduled: Flags.string({
      summary: 'Timestamp of a scheduled switchover in unambiguous format (e.g. ISO 8601).',
    }),
    force: forceFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Switchover);
    const { switchover } = await import('../ctl/switchover.js');
    await this.act(flags, args.cluster, flags.force, (dcs, io, name) =>
      switchover(dcs, io, {
        action: 'switchover',
        clusterName: name,
        leader: flags.leader,
        candidate: flags.candidate,
        scheduled: flags.scheduled,
        force: flags.force,
      }),
    );
  }
}
