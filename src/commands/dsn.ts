import { Args, Flags } from '@oclif/core';
import type { MemberRole } from '../ctl/read-commands.js';
import { CtlCommand } from './base.js';

export const ROLE_CHOICES = ['leader', 'primary', 'standby-leader', 'replica', 'standby', 'any', 'master'];

export default class Dsn extends CtlCommand {
  static override summary = 'Print a libpq connection string for a member (the leader by default).';
  static override description =
    'Prints "host=H port=P" for the leader, for the first member with --role, or for the member named with --member.';
  static override examples = [
    '<%= config.bin %> dsn demo',
    '<%= config.bin %> dsn demo -r replica',
    'psql "$(<%= config.bin %> dsn demo) user=postgres"',
  ];
  static override args = {
    cluster: Args.string({ description: 'Cluster name (default: scope from the configuration).' }),
  };
  static override flags = {
    role: Flags.string({
      char: 'r',
      summary: 'Give a dsn of any member with this role.',
      options: ROLE_CHOICES,
    }),
    member: Flags.string({ char: 'm', summary: 'Give a dsn of this member.' }),
  };

  async run(): Promise<void> {
    const { dsnFor } = await import('../ctl/read-commands.js');
    const { withCluster } = await import('../ctl/read-command-runner.js');
    const { args, flags } = await this.parse(Dsn);
    const text = await withCluster(await this.loadConfig(flags), args.cluster, (cluster) =>
      dsnFor(cluster, flags.role as MemberRole | undefined, flags.member),
    );
    this.print(text);
  }
}
