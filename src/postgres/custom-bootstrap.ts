/**
 * A new cluster from a custom `bootstrap.method` (Patroni's `_custom_bootstrap`): the method's command restores a
 * data directory (a backup, a pg_basebackup of another cluster), then the first start either replays it to its end
 * with the method's `recovery_conf` (PostgreSQL 12+: the parameters in postgresql.conf and recovery.signal) or, with
 * `keep_existing_recovery_conf`, with whatever recovery settings the restore left. Until post_bootstrap has set the
 * superuser's password, pg_hba.conf trusts the superuser and the replication user from the local addresses only.
 *
 * The command gets `--scope=<scope> --datadir=<data_dir>` (unless `no_params`) and every other key of the section
 * as `--key=value`, except command, no_params, keep_existing_recovery_conf, recovery_conf, scope and datadir.
 */
import { lookup } from 'node:dns/promises';
import { copyFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute, join } from 'node:path';
import type { JsonObject } from '../model/cluster.js';
import { parseBool } from '../model/python.js';
import { gucText } from './config-writer.js';
import { pyStr } from '../model/python.js';
import { shellSplit } from './shell.js';

type Section = Readonly<Record<string, unknown>>;

const RESERVED_KEYS = new Set([
  'command',
  'no_params',
  'keep_existing_recovery_conf',
  'recovery_conf',
  'scope',
  'datadir',
]);

/** The argv of a custom bootstrap method, as Patroni builds it. */
export function customBootstrapArgv(
  section: Section,
  ctx: { readonly scope: string; readonly dataDir: string },
): string[] {
  const command = typeof section['command'] === 'string' ? section['command'] : '';
  const params =
    parseBool(section['no_params']) === true ? [] : [`--scope=${ctx.scope}`, `--datadir=${ctx.dataDir}`];
  for (const [k, v] of Object.entries(section)) if (!RESERVED_KEYS.has(k)) params.push(`--${k}=${pyStr(v)}`);
  return [...shellSplit(command), ...params];
}

/** What the first start after a custom bootstrap is written with (Patroni's `running_custom_bootstrap`). */
export interface CustomBootstrapStart {
  /** The method's `recovery_conf`, without standby_mode (undefined: none given). */
  readonly recoveryParams: JsonObject | undefined;
  readonly keepExistingRecovery: boolean;
  /** pg_hba.conf lines trusting the superuser and replication user locally. */
  readonly trustHba: readonly string[];
}

/**
 * The recovery parameters as written to postgresql.conf (PostgreSQL 12+), sorted by name:
 * `pause_at_recovery_target` becomes the `recovery_target_action` it means, null values are left out.
 */
export function customRecoveryLines(params: JsonObject): (readonly [string, string])[] {
  const p = new Map<string, unknown>(Object.entries(params).map(([k, v]) => [k.toLowerCase(), v]));
  const pause = parseBool(p.get('pause_at_recovery_target'));
  p.delete('pause_at_recovery_target');
  p.delete('standby_mode');
  if (pause !== undefined && !p.has('recovery_target_action')) {
    p.set('recovery_target_action', pause ? 'pause' : 'promote');
  }
  const lines: (readonly [string, string])[] = [];
  for (const [name, value] of p)
    if (value !== null && value !== undefined) lines.push([name, gucText(value)]);
  return lines.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Patroni turns hot_standby off for the replay (a backup taken with larger max_connections and the like would
 * refuse to run as a hot standby) when the recovery ends in a promotion, or when the restore's own settings are
 * kept (trusting the backup tool).
 */
export function hotStandbyOff(start: CustomBootstrapStart): boolean {
  if (start.keepExistingRecovery) return true;
  const r = start.recoveryParams;
  if (r === undefined || Object.keys(r).length === 0) return false;
  const lower = new Map(Object.entries(r).map(([k, v]) => [k.toLowerCase(), v]));
  const pause = parseBool(lower.get('pause_at_recovery_target'));
  const action = lower.get('recovery_target_action') ?? (pause === false ? 'promote' : 'pause');
  return action === 'promote';
}

/** Trust from the local socket and from the addresses `host` resolves to, for the two users only. */
export async function trustHbaLines(o: {
  readonly host: string;
  readonly superuser: string | undefined;
  readonly replication: string;
}): Promise<string[]> {
  const targets: [string, string][] = [['local', '']];
  if (!o.host.startsWith('/')) {
    const addresses = isIP(o.host)
      ? [{ address: o.host, family: isIP(o.host) }]
      : await lookup(o.host, { all: true }).catch(() => []);
    for (const a of addresses) targets.push(['host', `${a.address}/${a.family === 6 ? 128 : 32}`]);
  }
  const su = o.superuser ?? 'all';
  return targets.flatMap(([type, address]) => [
    `${type}\treplication\t${o.replication}\t${address}\ttrust`,
    `${type}\tall\t${su}\t${address}\ttrust`,
  ]);
}

/**
 * Patroni's `_post_restore`: configuration files missing from the configuration directory come back from their
 * `.backup` copies in the data directory, and a promote trigger file (which would end the recovery at once) goes.
 */
export function postRestore(o: {
  readonly dataDir: string;
  readonly configDir: string;
  readonly files: readonly string[];
  readonly triggerFile: string | undefined;
}): void {
  for (const f of o.files) {
    const target = join(o.configDir, f);
    const backup = join(o.dataDir, `${f}.backup`);
    if (existsSync(target)) continue;
    if (existsSync(backup)) copyFileSync(backup, target);
    else if (f === 'pg_ident.conf') writeFileSync(target, '', { mode: 0o600 });
  }
  const trigger = o.triggerFile ?? 'promote';
  rmSync(isAbsolute(trigger) ? trigger : join(o.dataDir, trigger), { force: true });
}

/**
 * The signal files for the replay: with a recovery_conf, recovery.signal (standby.signal when it says
 * standby_mode); without one, the restore's signal files and recovery.conf go unless they are to be kept.
 */
export function writeRecoverySignals(dataDir: string, section: Section): void {
  const recovery = section['recovery_conf'];
  const remove = (name: string): void => rmSync(join(dataDir, name), { force: true });
  if (typeof recovery === 'object' && recovery !== null && !Array.isArray(recovery)) {
    const standby = parseBool((recovery as Section)['standby_mode']) === true;
    remove(standby ? 'recovery.signal' : 'standby.signal');
    writeFileSync(join(dataDir, standby ? 'standby.signal' : 'recovery.signal'), '', { mode: 0o600 });
  } else if (parseBool(section['keep_existing_recovery_conf']) !== true) {
    for (const name of ['recovery.conf', 'standby.signal', 'recovery.signal']) remove(name);
  }
}
