import { Flags } from '@oclif/core';
import type { MemberRole } from '../ctl/read-commands.js';
import { ActionCommand, forceFlag, memberNames, requiredClusterArg, ROLE_CHOICES } from './action-base.js';

export default class Reload extends ActionCommand {
  static override summary = "Reload the members' configuration (POST /reload).";
  static override description =
    'Prints the member table, selects the named members (all by default, or those with --role), asks for confirmation unless --force, and asks each to reload its configuration. Without a terminal, --force is required.';
  static override examples = [
    '<%= config.bin %> reload demo --force',
    '<%= config.bin %> reload demo pg2 pg3',
    '<%= config.bin %> reload demo -r replica --force',
  ];
  static override strict = false;
  static override args = { cluster: requiredClusterArg };
  static override flags = {
    role: Flags.string({
      char: 'r',
      summary: 'Reload only members with this role.',
      options: ROLE_CHOICES,
      default: 'any',
    }),
    force: forceFlag,
  };

  async run(): Promise<void> {
    const { args, argv, flags } = await this.parse(Reload);
    const { reloadMembers } = await import('../ctl/reload.js');
    await this.act(flags, args.cluster, flags.force, (dcs, io, name) =>
      reloadMembers(dcs, io, {
        clusterName: name,
        members: memberNames(argv),
        role: flags.role as MemberRole,
        force: flags.force,
      }),
    );
  }
}
