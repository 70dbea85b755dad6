/**
 * Applies a changed effective configuration to the running PostgreSQL (the I/O around src/postgres/reload-plan.ts,
 * Patroni 3.0.2's `reload_config`): read `pg_settings` for the parameters concerned, plan, write the files the plan
 * names, `pg_ctl reload`, and then let `pg_settings WHERE pending_restart` decide whether a restart is pending.
 */
import type { LoopLogger } from '../ha/loop.js';
import { RECOVERY_PARAMETERS } from '../postgres/config-writer.js';
import { pgSettings, type PgSession } from '../postgres/queries.js';
import {
  planReload,
  settingsToQuery,
  type EffectivePgConfig,
  type ReloadPlan,
} from '../postgres/reload-plan.js';

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
  readonly log: LoopLogger;
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
        d.log.warning(`Exception when running query: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
  return { plan, pendingRestart };
}
