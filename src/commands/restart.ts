import { Flags } from '@oclif/core';
import type { MemberRole } from '../ctl/read-commands.js';
import { ActionCommand, forceFlag, memberNames, requiredClusterArg, ROLE_CHOICES } from './action-base.js';

export default class Restart extends ActionCommand {
  static override summary = 'Restart PostgreSQL on members, now or at a scheduled time (POST /restart).';
  static override description =
    'Prints the member table, selects the named members (all by default, or those with --role), asks when (unless --scheduled or --force), asks for confirmation and for a version condition (unless --pg-version or --force), then asks each member to restart. Without a terminal, --force (or --scheduled and --pg-version plus --force for the confirmation) is required.';
  static override examples = [
    '<%= config.bin %> restart demo --force',
    '<%= config.bin %> restart demo pg2 --scheduled 2026-11-22T03:00 --force',
    '<%= config.bin %> restart demo -r replica --pending --force',
  ];
  static override strict = false;
  static override args = { cluster: requiredClusterArg };
  static override flags = {
    role: Flags.string({
      char: 'r',
      summary: 'Restart only members with this role.',
      options: ROLE_CHOICES,
      default: 'any',
    }),
    any: Flags.boolean({ summary: 'Restart a single member only.' }),
    scheduled: Flags.string({
      summary: 'Timestamp of a scheduled restart in unambiguous format (e.g. ISO 8601).',
    }),
    'pg-version': Flags.string({
      summary: 'Restart if the PostgreSQL version is less than provided (e.g. 9.5.2).',
    }),
    pending: Flags.boolean({ summary: 'Restart if pending.' }),
    timeout: Flags.string({
      summary: 'Return error and fail over if necessary when restarting takes longer than this.',
    }),
    force: forceFlag,
  };

  async run(): Promise<void> {
    const { args, argv, flags } = await this.parse(Restart);
    const { restartMembers } = await import('../ctl/restart.js');
    await this.act(flags, args.cluster, flags.force, (dcs, io, name) =>
      restartMembers(dcs, io, {
        clusterName: name,
        members: memberNames(argv),
        role: flags.role as MemberRole,
        any: flags.any,
        scheduled: flags.scheduled,
        pgVersion: flags['pg-version'],
        pending: flags.pending,
        timeout: flags.timeout,
        force: flags.force,
      }),
    );
  }
}
