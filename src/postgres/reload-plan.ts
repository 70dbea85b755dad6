/**
 * What to do when the effective PostgreSQL configuration changes (Patroni 3.0.2's `ConfigHandler.reload_config`):
 * the new server parameters are compared with what the running server reports in `pg_settings` (not with the old
 * configuration), because a value can be spelled in many ways (`32MB` = `4096` 8kB pages). A changed parameter
 * means postgresql.conf is rewritten and PostgreSQL reloaded; a changed `postmaster`-context parameter also means
 * a restart is pending. pg_hba.conf / pg_ident.conf are rewritten when their lines changed. Pure: the caller runs
 * the `pg_settings` query for `settingsToQuery()`, writes the files and reloads.
 */
import { RECOVERY_PARAMETERS } from './config-writer.js';
import { gucFromBaseUnit, parseGucInt, parseGucReal } from '../model/guc-values.js';
import { parseBool } from '../model/python.js';

/** One row of `SELECT name, setting, unit, vartype, context FROM pg_settings`. */
export interface PgSettingRow {
  readonly name: string;
  readonly setting: string;
  readonly unit: string | null;
  readonly vartype: string;
  readonly context: string;
}

/** The parts of the effective configuration that end up in PostgreSQL's files. */
export interface EffectivePgConfig {
  /** Server parameters, lower-case names, as written to postgresql.conf (buildServerParameters). */
  readonly parameters: ReadonlyMap<string, string>;
  /** `postgresql.pg_hba` lines (undefined: Patroni does not manage pg_hba.conf). */
  readonly pgHba?: readonly string[] | undefined;
  readonly pgIdent?: readonly string[] | undefined;
}

export interface ReloadPlanInput {
  /** What was applied last (undefined: nothing known, e.g. the agent started next to a running PostgreSQL). */
  readonly previous: EffectivePgConfig | undefined;
  readonly next: EffectivePgConfig;
  /** PostgreSQL runs: only then is anything compared, written or reloaded. */
  readonly running: boolean;
  /** `pg_settings` rows for `settingsToQuery(previous, next)`. */
  readonly settings: readonly PgSettingRow[];
  /** The local configuration was reloaded (SIGHUP, POST /reload): PostgreSQL is reloaded in any case. */
  readonly sighup: boolean;
}

export interface ParameterChange {
  readonly name: string;
  /** `pg_settings.setting` (with its unit, as Patroni logs it). */
  readonly oldValue: string;
  /** The configured value; undefined when the parameter was removed from the configuration. */
  readonly newValue: string | undefined;
  /** The old value as Patroni 4's `pending_restart_reason` shows it (converted from the base unit). */
  readonly reasonOld?: string;
  readonly reasonNew?: string;
}

export interface LogEntry {
  readonly level: 'info' | 'warning';
  readonly text: string;
}

export interface ReloadPlan {
  /** The parameters to keep (unknown parameters dropped, as Patroni drops them). */
  readonly parameters: ReadonlyMap<string, string>;
  readonly writeConf: boolean;
  readonly writeHba: boolean;
  readonly writeIdent: boolean;
  /** `pg_ctl reload` (then read `pg_settings WHERE pending_restart`). */
  readonly reload: boolean;
  /** Changed parameters of context `postmaster`: they take effect only after a restart. */
  readonly restartNeeded: readonly ParameterChange[];
  /** Changed parameters that a reload applies. */
  readonly reloadApplies: readonly ParameterChange[];
  /** listen_addresses, port (or the socket directory with use_unix_socket) changed: keep the old address. */
  readonly localConnectionChanged: boolean;
  readonly logs: readonly LogEntry[];
}

const isRecovery = (name: string): boolean => RECOVERY_PARAMETERS.has(name.toLowerCase());

/** The parameter names whose `pg_settings` rows the plan needs (lower case). */
export function settingsToQuery(previous: EffectivePgConfig | undefined, next: EffectivePgConfig): string[] {
  const names = new Set<string>();
  for (const n of next.parameters.keys()) if (!isRecovery(n)) names.add(n.toLowerCase());
  for (const n of previous?.parameters.keys() ?? []) if (!isRecovery(n)) names.add(n.toLowerCase());
  if (names.has('wal_buffers'))
    for (const n of ['shared_buffers', 'wal_segment_size', 'wal_block_size']) names.add(n);
  return [...names].sort();
}

/** utils.py `compare_values(vartype, unit, old_value, new_value)`: the running value equals the configured one. */
export function gucValuesEqual(
  vartype: string,
  unit: string | null,
  oldValue: string,
  newValue: string,
): boolean {
  let a: unknown;
  let b: unknown;
  switch (vartype) {
    case 'bool':
      a = parseBool(oldValue);
      b = parseBool(newValue);
      break;
    case 'integer':
      a = parseGucInt(oldValue);
      b = parseGucInt(newValue, unit);
      break;
    case 'real':
      a = parseGucReal(oldValue);
      b = parseGucReal(newValue, unit);
      break;
    case 'enum':
      a = oldValue.toLowerCase();
      b = newValue.toLowerCase();
      break;
    default:
      a = oldValue;
      b = newValue;
  }
  return a !== undefined && b !== undefined && a === b;
}

/**
 * config.py `_handle_wal_buffers`: wal_buffers -1 means "shared_buffers/32, between 8 pages and a segment"; the
 * change is dropped when old and new amount to the same number of pages.
 */
function walBuffersUnchanged(
  byName: ReadonlyMap<string, PgSettingRow>,
  newValue: string | undefined,
): boolean {
  const wb = byName.get('wal_buffers');
  const sb = byName.get('shared_buffers');
  const seg = byName.get('wal_segment_size');
  const block = byName.get('wal_block_size');
  if (!wb || !sb || !seg || !block) return false;
  const blockSize = parseGucInt(block.setting);
  const segUnit = seg.unit && /^\d/.test(seg.unit) ? parseGucInt(seg.unit, 'B') : 1;
  const segSetting = parseGucInt(seg.setting);
  const shared = parseGucInt(sb.setting);
  if (!blockSize || segUnit === undefined || segSetting === undefined || shared === undefined) return false;
  const segPages = (segSetting * segUnit) / blockSize;
  const defaultPages = Math.min(Math.max(shared / 32, 8), segPages);
  const wanted = newValue === undefined || newValue === '' ? '-1' : newValue;
  const n = wanted === '-1' ? defaultPages : parseGucInt(wanted, wb.unit);
  const o = wb.setting === '-1' ? defaultPages : parseGucInt(wb.setting, wb.unit);
  return n !== undefined && n === o;
}

function sameLines(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((l, i) => l === y[i]);
}

const withUnit = (r: PgSettingRow): string =>
  r.unit && !/^\d/.test(r.unit) ? `${r.setting}${r.unit}` : r.setting;

/** Patroni 3.0.2's reload_config decision. */
export function planReload(input: ReloadPlanInput): ReloadPlan {
  const { previous, next } = input;
  const logs: LogEntry[] = [];
  const parameters = new Map(next.parameters);
  const restartNeeded: ParameterChange[] = [];
  const reloadApplies: ParameterChange[] = [];
  let confChanged = false;
  let hbaChanged = false;
  let identChanged = false;
  let localConnectionChanged = false;

  if (input.running) {
    // Every configured parameter, and `undefined` for the ones no longer configured.
    const changes = new Map<string, string | undefined>();
    for (const [n, v] of next.parameters) if (!isRecovery(n)) changes.set(n.toLowerCase(), v);
    for (const n of previous?.parameters.keys() ?? []) {
      if (!isRecovery(n) && !changes.has(n.toLowerCase())) changes.set(n.toLowerCase(), undefined);
    }
    const byName = new Map(input.settings.map((r) => [r.name.toLowerCase(), r]));
    if (changes.has('wal_buffers') && walBuffersUnchanged(byName, changes.get('wal_buffers'))) {
      changes.delete('wal_buffers');
    }
    for (const [name, row] of byName) {
      if (row.context === 'internal' || !changes.has(name)) continue;
      const value = changes.get(name);
      changes.delete(name);
      if (value !== undefined && gucValuesEqual(row.vartype, row.unit, row.setting, value)) continue;
      confChanged = true;
      const change: ParameterChange = {
        name: row.name,
        oldValue: withUnit(row),
        newValue: value,
        reasonOld: gucFromBaseUnit(row.setting, row.vartype, row.unit),
        ...(value === undefined ? {} : { reasonNew: gucFromBaseUnit(value, row.vartype, row.unit) }),
      };
      if (row.context === 'postmaster') {
        restartNeeded.push(change);
        logs.push({
          level: 'info',
          text: `Changed ${row.name} from ${row.setting} to ${value ?? 'None'} (restart might be required)`,
        });
        if (name === 'listen_addresses' || name === 'port') localConnectionChanged = true;
        if (name === 'unix_socket_directories') localConnectionChanged = true;
      } else {
        reloadApplies.push(change);
        logs.push({ level: 'info', text: `Changed ${row.name} from ${row.setting} to ${value ?? 'None'}` });
      }
    }
    for (const [name, value] of changes) {
      if (name.includes('.')) {
        // Custom (extension) parameters are not in pg_settings until loaded: compare with what was written.
        const old = previous?.parameters.get(name);
        if (value === undefined || old === undefined || value !== old) {
          logs.push({ level: 'info', text: `Changed ${name} from ${old ?? 'None'} to ${value ?? 'None'}` });
          confChanged = true;
        }
      } else if (value !== undefined) {
        logs.push({
          level: 'warning',
          text: `Removing invalid parameter \`${name}\` from postgresql.parameters`,
        });
        parameters.delete(name);
      }
    }
    const hbaFile = parameters.get('hba_file');
    if (!hbaFile && next.pgHba && next.pgHba.length > 0) hbaChanged = !sameLines(previous?.pgHba, next.pgHba);
    const identFile = parameters.get('ident_file');
    if (!identFile && next.pgIdent && next.pgIdent.length > 0) {
      identChanged = !sameLines(previous?.pgIdent, next.pgIdent);
    }
  }
  const reload = input.running && (input.sighup || confChanged || hbaChanged || identChanged);
  if (input.running) {
    logs.push(
      reload
        ? { level: 'info', text: 'Reloading PostgreSQL configuration.' }
        : { level: 'info', text: 'No PostgreSQL configuration items changed, nothing to reload.' },
    );
  }
  return {
    parameters,
    writeConf: confChanged,
    writeHba: hbaChanged,
    writeIdent: identChanged,
    reload,
    restartNeeded,
    reloadApplies,
    localConnectionChanged,
    logs,
  };
}
