import { MemberTableCommand, memberTableArgs, memberTableFlags } from './list.js';

export default class Topology extends MemberTableCommand {
  static override summary = 'Show the replication tree of one or more clusters.';
  static override description =
    'Like list, but ordered as a tree: the leader first, then each replica under the member it replicates from (tag replicatefrom), indented with "+ ".';
  static override examples = [
    '<%= config.bin %> -c /etc/patroni/patroni.yml topology',
    '<%= config.bin %> topology demo -w 5',
    '<%= config.bin %> topology --all',
  ];
  static override strict = false;
  static override args = memberTableArgs;
  static override flags = memberTableFlags;

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Topology);
    await this.printMembers(argv, flags, 'topology');
  }
}
