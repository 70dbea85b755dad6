import { Flags } from '@oclif/core';
import { ActionCommand, clusterArg, forceFlag } from './action-base.js';

export default class EditConfig extends ActionCommand {
  static override summary = "Edit the cluster's dynamic configuration.";
  static override description =
    'Changes the config key in the DCS with a compare-and-set on the version read: from --replace/--apply files (- for stdin), from -s KEY=VALUE / -p GUC=VALUE settings (VALUE is YAML; empty or null deletes), or in $EDITOR when none is given (terminal only). Shows a unified diff, asks for confirmation unless --force, and refuses to overwrite a concurrent change.';
  static override examples = [
    '<%= config.bin %> edit-config demo -s loop_wait=5 -p max_connections=150 --force',
    '<%= config.bin %> edit-config --apply changes.yml --force',
    'cat full.yml | <%= config.bin %> edit-config demo --replace - --force',
  ];
  static override args = { cluster: clusterArg };
  static override flags = {
    quiet: Flags.boolean({ char: 'q', summary: 'Do not show changes.' }),
    set: Flags.string({
      char: 's',
      multiple: true,
      // patronictl takes one value per -s/-p; a greedy flag would swallow the CLUSTER argument after it.
      multipleNonGreedy: true,
      summary: 'Set specific configuration value. Can be specified multiple times.',
    }),
    pg: Flags.string({
      char: 'p',
      multiple: true,
      multipleNonGreedy: true,
      summary:
        'Set specific PostgreSQL parameter value. Shorthand for -s postgresql.parameters. Can be specified multiple times.',
    }),
    apply: Flags.string({ summary: 'Apply configuration from file. Use - for stdin.' }),
    replace: Flags.string({
      summary: 'Apply configuration from file, replacing existing configuration. Use - for stdin.',
    }),
    force: forceFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(EditConfig);
    const { editConfig } = await import('../ctl/edit-config.js');
    await this.act(flags, args.cluster, flags.force, (dcs, io, name) =>
      editConfig(dcs, io, {
        clusterName: name,
        set: flags.set ?? [],
        pg: flags.pg ?? [],
        apply: flags.apply,
        replace: flags.replace,
        quiet: flags.quiet,
        force: flags.force,
        interactive: process.stdin.isTTY === true,
      }),
    );
  }
}
