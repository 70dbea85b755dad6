import { Flags } from '@oclif/core';
import { ActionCommand, forceFlag, memberNames, requiredClusterArg } from './action-base.js';

export default class Reinit extends ActionCommand {
  static override summary =
    'Reinitialize replicas: wipe their data and clone them again (POST /reinitialize).';
  static override description =
    'Prints the member table, selects the named replicas (asks which one when none is named), asks for confirmation unless --force, and asks each to reinitialize. With --wait, polls until each is done. The leader cannot be reinitialized.';
  static override examples = [
    '<%= config.bin %> reinit demo pg3 --force',
    '<%= config.bin %> reinit demo pg2 pg3 --force --wait',
  ];
  static override strict = false;
  static override args = { cluster: requiredClusterArg };
  static override flags = {
    force: forceFlag,
    wait: Flags.boolean({ summary: 'Wait until reinitialization completes.' }),
    'from-leader': Flags.boolean({ summary: 'Clone from the leader (Patroni 4.1+ members).' }),
  };

  async run(): Promise<void> {
    const { args, argv, flags } = await this.parse(Reinit);
    const { reinit } = await import('../ctl/reinit.js');
    await this.act(flags, args.cluster, flags.force, (dcs, io, name) =>
      reinit(dcs, io, {
        clusterName: name,
        members: memberNames(argv),
        force: flags.force,
        wait: flags.wait,
        fromLeader: flags['from-leader'],
      }),
    );
  }
}
