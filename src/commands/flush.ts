import { Args, Flags } from '@oclif/core';
import { UserError } from '../config/errors.js';
import type { MemberRole } from '../ctl/read-commands.js';
import { ActionCommand, forceFlag, requiredClusterArg, ROLE_CHOICES } from './action-base.js';

export default class Flush extends ActionCommand {
  static override summary = 'Discard scheduled events (restarts or a switchover).';
  static override description =
    'flush CLUSTER [MEMBERS...] restart deletes the scheduled restart of each selected member (DELETE /restart); flush CLUSTER switchover deletes the scheduled switchover (DELETE /switchover, leader first; when no member answers, the failover key is cleared in the DCS).';
  static override examples = [
    '<%= config.bin %> flush demo restart --force',
    '<%= config.bin %> flush demo pg2 restart --force',
    '<%= config.bin %> flush demo switchover',
  ];
  static override strict = false;
  static override args = {
    cluster: requiredClusterArg,
    target: Args.string({ description: 'MEMBERS... then restart or switchover.', required: true }),
  };
  static override flags = {
    role: Flags.string({
      char: 'r',
      summary: 'Flush only members with this role.',
      options: ROLE_CHOICES,
      default: 'any',
    }),
    force: forceFlag,
  };

  async run(): Promise<void> {
    const { args, argv, flags } = await this.parse(Flush);
    const rest = argv.slice(1).map(String);
    const target = rest[rest.length - 1];
    if (target !== 'restart' && target !== 'switchover') {
      throw new UserError(
        `Invalid value for '{restart|switchover}': '${target ?? ''}' is not one of 'restart', 'switchover'.`,
        2,
      );
    }
    const { flush } = await import('../ctl/flush.js');
    await this.act(flags, args.cluster, flags.force, (dcs, io, name) =>
      flush(dcs, io, {
        clusterName: name,
        members: rest.slice(0, -1),
        target,
        role: flags.role as MemberRole,
        force: flags.force,
      }),
    );
  }
}
