import { Args } from '@oclif/core';
import { CtlCommand } from './base.js';

export default class Version extends CtlCommand {
  static override summary =
    "Show pgwarden's version, and with a cluster name each member's Patroni and PostgreSQL versions.";
  static override description =
    "Without arguments prints pgwarden's own version. With a cluster name asks every member with a REST API (GET /patroni) for its agent and PostgreSQL versions; a member that does not answer is reported with the reason.";
  static override examples = [
    '<%= config.bin %> version',
    '<%= config.bin %> version demo',
    '<%= config.bin %> version demo pg1 pg2',
  ];
  static override strict = false;
  static override args = {
    cluster: Args.string({ description: 'Cluster name.' }),
    members: Args.string({ description: 'Only these members.' }),
  };

  async run(): Promise<void> {
    const { restOptions } = await import('../ctl/context.js');
    const { memberVersions } = await import('../ctl/read-commands.js');
    const { withCluster } = await import('../ctl/read-command-runner.js');
    const { argv, flags } = await this.parse(Version);
    this.print(`pgwarden version ${this.config.version}`);
    const [cluster, ...members] = argv as string[];
    if (!cluster) return;
    this.print('');
    const config = await this.loadConfig(flags);
    const lines = await withCluster(config, cluster, (c) => memberVersions(c, members, restOptions(config)));
    for (const line of lines) this.print(line);
  }
}
