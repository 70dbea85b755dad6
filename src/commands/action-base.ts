/**
 * What the write-side commands share: the I/O handed to a src/ctl service (stdout, stderr warnings, prompts that
 * refuse to ask without a terminal, REST client options) and exit status 1 when the service reports a failure.
 */
import { Args, Flags } from '@oclif/core';
import type { LocalConfig } from '../config/local-config.js';
import type { ActionIo } from '../ctl/actions.js';
import type { Dcs } from '../dcs/dcs.js';
import type { TerminalProgress } from '../render/progress.js';
import { CtlCommand } from './base.js';

export const ROLE_CHOICES = ['leader', 'primary', 'standby-leader', 'replica', 'standby', 'any', 'master'];

export const forceFlag = Flags.boolean({ summary: 'Do not ask for confirmation at any point.' });

export const clusterArg = Args.string({
  description: 'Cluster name (default: scope from the configuration).',
});
export const requiredClusterArg = Args.string({ description: 'Cluster name.', required: true });

type GlobalFlags = { 'config-file'?: string; 'dcs-url'?: string; insecure?: boolean };

export abstract class ActionCommand extends CtlCommand {
  /** Loads the configuration, opens the cluster's DCS, runs the service, and sets exit status 1 on failure. */
  protected async act(
    flags: GlobalFlags,
    clusterName: string | undefined,
    force: boolean,
    service: (dcs: Dcs, io: ActionIo, name: string, config: LocalConfig) => Promise<boolean>,
    /** Checks of the flags alone, made after the configuration is read and before the DCS is opened. */
    check?: () => void,
  ): Promise<void> {
    const config = await this.loadConfig(flags);
    check?.();
    const { withDcs } = await import('../ctl/actions.js');
    const { restOptions } = await import('../ctl/context.js');
    const { terminalPrompter } = await import('../prompts/index.js');
    const progress = await terminalProgress();
    const around = (write: () => void): void => (progress ? progress.around(write) : write());
    const io: ActionIo = {
      out: (t) => around(() => this.print(t)),
      warn: (t) => around(() => process.stderr.write(`${t}\n`)),
      prompts: terminalPrompter({ force }),
      rest: restOptions(config),
      progress,
    };
    try {
      const ok = await withDcs(config, clusterName, (dcs, name) => service(dcs, io, name, config));
      if (!ok) process.exitCode = 1;
    } finally {
      progress?.clear();
    }
  }
}

/** The progress line of long waits: only when stderr is a terminal, so that piped output stays patronictl's. */
async function terminalProgress(): Promise<TerminalProgress | undefined> {
  if (!process.stderr.isTTY) return undefined;
  const { TerminalProgress } = await import('../render/progress.js');
  const progress = new TerminalProgress(process.stderr);
  // Ctrl-C during a wait: leave the terminal on a clean line.
  process.once('exit', () => progress.clear());
  return progress;
}

/** argv after the cluster name: member names (strict = false commands). */
export function memberNames(argv: readonly unknown[]): string[] {
  return argv.slice(1).map(String);
}
