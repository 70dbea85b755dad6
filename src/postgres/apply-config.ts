/**
 * Applies a changed effective configuration to the running PostgreSQL (the I/O around src/postgres/reload-plan.ts,
 * Patroni 3.0.2's `reload_config`): read `pg_settings` for the parameters concerned, plan, write the files the plan
 * names, `pg_ctl reload`, and then let `pg_settings WHERE pending_restart` decide whether a restart is pending.
 */
import { errorText } from '../model/text.js';
import type { PgLog } from './ports.js';
import { RECOVERY_PARAMETERS } from './config-writer.js';
import { pgSettings, type PgSession } from './queries.js';
import { planReload, settingsToQuery, type EffectivePgConfig, type ReloadPlan } from './reload-plan.js';

export interface ApplyConfigDeps {
  readonly previous: EffectivePgConfig | undefined;
  readonly next: EffectivePgConfig;
  readonly sighup: boolean;
  /** server_version_num; pending_restart exists in pg_settings from 9.5 on. */
  readonly majorVersion: number;
  readonly withSession: <T>(fn: (s: PgSession) => Promise<T>) => Promise<T>;
  /** Write postgresql.conf (with `plan.parameters`), pg_hba.conf, pg_ident.conf as the plan says. */
  readonly writeFiles: (plan: ReloadPlan) => void;
  readonly reload: () => Promise<void>;
  readonly log: PgLog;
  /** Patroni waits a second after `pg_ctl reload` before asking pg_settings (the reload is asynchronous). */
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface ApplyConfigResult {
  readonly plan: ReloadPlan;
  /** The pending-restart flag to publish. */
  readonly pendingRestart: boolean;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function applyEffectiveConfig(d: ApplyConfigDeps): Promise<ApplyConfigResult> {
  const settings = await d.withSession((s) => pgSettings(s, settingsToQuery(d.previous, d.next)));
  const plan = planReload({
    previous: d.previous,
    next: d.next,
    running: true,
    settings,
    sighup: d.sighup,
  });
  let pendingRestart = plan.restartNeeded.length > 0;
  for (const l of plan.logs) {
    if (l.level === 'info') d.log.info(l.text);
    else d.log.warning(l.text);
  }
  if (plan.writeConf || plan.writeHba || plan.writeIdent) d.writeFiles(plan);
  if (plan.reload) {
    await d.reload();
    if (d.majorVersion >= 90500) {
      await (d.sleep ?? defaultSleep)(1000);
      try {
        const rows = await d.withSession((s) =>
          s.query(
            'SELECT COUNT(*)::int AS n FROM pg_catalog.pg_settings' +
              ' WHERE pg_catalog.lower(name) != ALL($1) AND pending_restart',
            [[...RECOVERY_PARAMETERS]],
          ),
        );
        pendingRestart = Number(rows[0]?.['n'] ?? 0) > 0;
      } catch (e) {
        d.log.warning(`Exception when running query: ${errorText(e)}`);
      }
    }
  }
  return { plan, pendingRestart };
}

/** Same parameters and the same pg_hba / pg_ident lines. */
export function sameEffectivePgConfig(a: EffectivePgConfig, b: EffectivePgConfig): boolean {
  const lines = (x: readonly string[] | undefined): string => JSON.stringify(x ?? null);
  if (a.parameters.size !== b.parameters.size) return false;
  for (const [k, v] of a.parameters) if (b.parameters.get(k) !== v) return false;
  return lines(a.pgHba) === lines(b.pgHba) && lines(a.pgIdent) === lines(b.pgIdent);
}

/** What the applier needs from the local node. */
export interface ConfigApplierPorts {
  /** The effective configuration as merged from the local file and the dynamic configuration. */
  readonly effective: () => EffectivePgConfig;
  /** PostgreSQL runs and no long action (start, stop, clone...) is going on. */
  readonly idleAndRunning: () => boolean;
  readonly majorVersion: () => number;
  readonly withSession: <T>(fn: (s: PgSession) => Promise<T>) => Promise<T>;
  /** Rewrite postgresql.conf / pg_hba.conf / pg_ident.conf from `effective()` (keeping the standby section). */
  readonly rewrite: () => void;
  readonly reload: () => Promise<void>;
  readonly log: PgLog;
  /** For tests: the wait between the reload and the pg_settings check (default: a real second). */
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * The agent's side of Patroni's `reload_config` and `pending_restart`: remembers what the running server was
 * started with (or last reloaded with), applies a changed effective configuration after each HA cycle, and keeps
 * the pending-restart flag (cleared when PostgreSQL is started again).
 */
export class ConfigApplier {
  private applied: EffectivePgConfig | undefined;
  private pending = false;
  /** Patroni 4's `pending_restart_reason`: parameter -> old and new value, kept until the next start. */
  private reason: Record<string, { old_value: string; new_value: string }> = {};
  private sighup = false;
  /** Parameters PostgreSQL does not know: dropped for good (as Patroni drops them; one would fail the reload). */
  private invalid: ReadonlySet<string> = new Set();

  constructor(private readonly ports: ConfigApplierPorts) {}

  get pendingRestart(): boolean {
    return this.pending;
  }

  get pendingRestartReason(): Readonly<Record<string, { old_value: string; new_value: string }>> {
    return this.pending ? this.reason : {};
  }

  /** The effective configuration without the parameters PostgreSQL rejected. */
  effective(): EffectivePgConfig {
    const e = this.ports.effective();
    if (this.invalid.size === 0) return e;
    const parameters = new Map(e.parameters);
    for (const name of this.invalid) parameters.delete(name);
    return { ...e, parameters };
  }

  /** SIGHUP / POST /reload: reload PostgreSQL on the next cycle even if nothing changed. */
  localConfigReloaded(): void {
    this.sighup = true;
  }

  /**
   * PostgreSQL is being started with `config`: that is what later changes are compared with. A rewrite of a running
   * server (follow, promote) does not count, so that pg_settings still tells what waits for a restart.
   */
  starting(config: EffectivePgConfig): void {
    this.applied = config;
    this.pending = false;
    this.reason = {};
  }

  /** After each HA cycle: when the effective configuration changed (or on SIGHUP), plan, write, reload. */
  async apply(): Promise<void> {
    const sighup = this.sighup;
    this.sighup = false;
    if (!this.ports.idleAndRunning()) return;
    const next = this.effective();
    const prev = this.applied;
    if (!sighup && prev && sameEffectivePgConfig(prev, next)) return;
    const dropInvalid = (kept: ReadonlyMap<string, string>): void => {
      const dropped = [...next.parameters.keys()].filter((n) => !kept.has(n));
      if (dropped.length > 0) this.invalid = new Set([...this.invalid, ...dropped]);
    };
    const result = await applyEffectiveConfig({
      previous: prev,
      next,
      sighup,
      majorVersion: this.ports.majorVersion(),
      withSession: this.ports.withSession,
      writeFiles: (plan) => {
        dropInvalid(plan.parameters);
        this.ports.rewrite();
      },
      reload: this.ports.reload,
      log: this.ports.log,
      ...(this.ports.sleep ? { sleep: this.ports.sleep } : {}),
    });
    dropInvalid(result.plan.parameters);
    this.applied = { ...next, parameters: result.plan.parameters };
    this.pending = result.pendingRestart;
    if (!this.pending) this.reason = {};
    for (const c of result.plan.restartNeeded)
      this.reason = {
        ...this.reason,
        [c.name]: { old_value: c.reasonOld ?? c.oldValue, new_value: c.reasonNew ?? c.newValue ?? '' },
      };
  }
}
