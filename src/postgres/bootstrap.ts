/**
 * A new cluster (Patroni's Bootstrap): initdb, or a custom `bootstrap.method` (see custom-bootstrap.ts), the first
 * start, then post_bootstrap: the superuser's password, the `bootstrap.post_bootstrap` script, the replication and
 * rewind roles and `bootstrap.users`; after a custom method, the real pg_hba.conf and postgresql.conf replace those
 * of the replay. A failed bootstrap moves the data directory aside.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { parseBool } from '../model/python.js';
import type { RoleCallbacks } from './callbacks.js';
import type { ConfigFiles } from './config-files.js';
import { moveDataDirAside, type ControlFile } from './data-dir.js';
import { formatConninfo } from './config-writer.js';
import { childEnv } from './child-env.js';
import { customBootstrapArgv, postRestore, trustHbaLines, writeRecoverySignals } from './custom-bootstrap.js';
import { initdb } from './initdb.js';
import type { InstanceState } from './instance-state.js';
import type { Lifecycle } from './lifecycle.js';
import type { LocalSession } from './local-session.js';
import { errorText } from '../model/text.js';
import { isRunning, reloadPostgres } from './pg-ctl.js';
import type { Cancellation, PgLog } from './ports.js';
import type { PgSession } from './queries.js';
import { runMethod } from './replica-methods.js';
import { shellSplit } from './shell.js';

/** SQL identifier quoting. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** SQL literal quoting (standard_conforming_strings on). */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * The connection string post_bootstrap gets as its last argument, as Patroni passes it: libpq `key=value` pairs
 * (a socket directory is a plain `host=/dir`, which a URL cannot carry), the superuser's SSL keywords, no password
 * (it comes in the environment).
 */
export function postBootstrapConninfo(
  o: { readonly host: string; readonly port: number; readonly user: string; readonly database?: string },
  userParams: Readonly<Record<string, string>>,
): string {
  const params: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(userParams)) if (k !== 'password' && k !== 'passfile') params[k] = v;
  return formatConninfo({
    ...params,
    dbname: o.database ?? 'postgres',
    user: o.user,
    host: o.host,
    port: o.port,
  });
}

/** The functions pg_rewind calls on the source, granted to a rewind user that is not the superuser. */
const REWIND_FUNCTIONS = [
  'pg_ls_dir(text, boolean, boolean)',
  'pg_stat_file(text, boolean)',
  'pg_read_binary_file(text)',
  'pg_read_binary_file(text, bigint, bigint, boolean)',
];

/** Creates or alters a login role without its password reaching the server log. */
async function createOrUpdateRole(
  s: PgSession,
  name: string,
  password: string | undefined,
  options: readonly string[],
): Promise<void> {
  const opts = options.map((o) => o.toUpperCase());
  if (!opts.includes('NOLOGIN') && !opts.includes('LOGIN')) opts.push('LOGIN');
  if (password) opts.push('PASSWORD', quoteLiteral(password));
  const sql = `DO $$
BEGIN
    SET local synchronous_commit = 'local';
    PERFORM * FROM pg_catalog.pg_authid WHERE rolname = ${quoteLiteral(name)};
    IF FOUND THEN
        ALTER ROLE ${quoteIdent(name)} WITH ${opts.join(' ')};
    ELSE
        CREATE ROLE ${quoteIdent(name)} WITH ${opts.join(' ')};
    END IF;
END;$$`;
  await s.query('SET log_statement TO none');
  await s.query('SET log_min_duration_statement TO -1');
  try {
    await s.query(sql);
  } finally {
    await s.query('RESET log_min_duration_statement');
    await s.query('RESET log_statement');
  }
}

export interface BootstrapDeps {
  readonly files: ConfigFiles;
  readonly state: InstanceState;
  readonly session: LocalSession;
  readonly callbacks: RoleCallbacks;
  readonly lifecycle: Lifecycle;
  readonly control: ControlFile;
  readonly log: PgLog;
}

export class Bootstrapper {
  constructor(private readonly d: BootstrapDeps) {}

  /** initdb or the custom method, and the first start; false (with the state saying why) when it failed. */
  async bootstrap(task: Cancellation = { cancelled: () => false }): Promise<boolean> {
    const boot = this.d.files.config.bootstrap;
    if (boot === undefined) return false;
    const section = boot.methodConfig;
    if (boot.method !== 'initdb' && section !== undefined && typeof section['command'] === 'string') {
      return this.customBootstrap(section, task);
    }
    return this.initdbBootstrap();
  }

  private async initdbBootstrap(): Promise<boolean> {
    const { files, state, log } = this.d;
    const boot = files.config.bootstrap;
    if (boot === undefined) return false;
    state.busy = true;
    this.d.callbacks.bootstrapBegins();
    state.set('initializing new cluster');
    state.role = 'uninitialized';
    try {
      mkdirSync(files.dataDir, { recursive: true, mode: 0o700 });
      const su = files.config.postgresql.authentication.superuser;
      await initdb({
        bins: files.bins,
        dataDir: files.dataDir,
        options: boot.initdb ?? null,
        superuser: { username: su.username, password: su.password },
      });
      files.writeForStart(undefined);
      state.set('starting');
      await this.d.lifecycle.startServer(undefined);
      state.set('running');
      state.role = 'master';
      return true;
    } catch (e) {
      log.error(`bootstrap (initdb) failed: ${errorText(e)}`);
      this.d.callbacks.bootstrapFailed();
      state.set('initdb failed');
      return false;
    } finally {
      state.busy = false;
    }
  }

  /**
   * The custom method, then the first start with its recovery settings and the trust pg_hba.conf. The start waits
   * (up to pg_ctl_timeout, as Patroni) until PostgreSQL accepts connections: with hot_standby off that is when
   * the replay has ended in a promotion; the HA loop then waits for the end of recovery before post_bootstrap.
   */
  private async customBootstrap(
    section: Readonly<Record<string, unknown>>,
    task: Cancellation,
  ): Promise<boolean> {
    const { files, state, log } = this.d;
    state.busy = true;
    this.d.callbacks.bootstrapBegins();
    state.set('running custom bootstrap script');
    state.role = 'uninitialized';
    try {
      const argv = customBootstrapArgv(section, { scope: files.config.scope, dataDir: files.dataDir });
      log.info(`Running custom bootstrap script: ${String(section['command'])}`);
      let code: number;
      try {
        code = await runMethod(argv, process.env, task.cancelled);
      } catch (e) {
        log.error(`Exception during custom bootstrap: ${errorText(e)}`);
        code = 1;
      }
      if (code !== 0) {
        log.error(`custom bootstrap script ${String(section['command'])} exited with code=${code}`);
        state.set('custom bootstrap failed');
        this.d.callbacks.bootstrapFailed();
        return false;
      }
      this.d.control.forget();
      const pg = files.config.postgresql;
      const recoveryConf = section['recovery_conf'];
      const recoveryParams =
        typeof recoveryConf === 'object' && recoveryConf !== null && !Array.isArray(recoveryConf)
          ? (recoveryConf as Readonly<Record<string, unknown>>)
          : undefined;
      postRestore({
        dataDir: files.dataDir,
        configDir: files.configDir,
        files: [
          'postgresql.conf',
          ...(pg.customConf === undefined ? ['postgresql.base.conf'] : []),
          'pg_hba.conf',
          'pg_ident.conf',
        ],
        triggerFile:
          typeof recoveryParams?.['promote_trigger_file'] === 'string'
            ? recoveryParams['promote_trigger_file']
            : undefined,
      });
      writeRecoverySignals(files.dataDir, section);
      const o = this.d.session.options();
      files.beginCustomBootstrap({
        recoveryParams,
        keepExistingRecovery: parseBool(section['keep_existing_recovery_conf']) === true,
        trustHba: await trustHbaLines({
          host: o.host,
          superuser: pg.authentication.superuser.username,
          replication: pg.authentication.replication.username,
        }),
      });
      files.writeForStart(undefined);
      state.set('starting');
      state.role = 'replica';
      await this.d.lifecycle.startServer(undefined);
      return await this.waitForConnections(pg.pgCtlTimeout * 1000, task);
    } catch (e) {
      log.error(`bootstrap (${files.config.bootstrap?.method ?? 'custom'}) failed: ${errorText(e)}`);
      this.d.callbacks.bootstrapFailed();
      state.set('start failed');
      return false;
    } finally {
      state.busy = false;
    }
  }

  /** Patroni's wait_for_startup: until PostgreSQL answers (running), its postmaster is gone, or the time is up. */
  private async waitForConnections(timeoutMs: number, task: Cancellation): Promise<boolean> {
    const { state, files } = this.d;
    const end = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.d.session.queryStatus();
      if (status) {
        state.set('running');
        state.role = status.inRecovery ? 'replica' : 'master';
        return true;
      }
      if (isRunning(files.dataDir) === undefined) {
        this.d.log.error('postmaster is not running');
        state.set('start failed');
        this.d.callbacks.bootstrapFailed();
        return false;
      }
      if (task.cancelled() || Date.now() >= end) {
        this.d.log.warning('Timed out waiting for PostgreSQL to start');
        this.d.callbacks.bootstrapFailed();
        return false;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /** The roles and the post_bootstrap script; on success callbacks fire again, starting with on_start. */
  async postBootstrap(): Promise<boolean> {
    const auth = this.d.files.config.postgresql.authentication;
    const boot = this.d.files.config.bootstrap;
    const session = this.d.session;
    try {
      await session.withSession(async (s) => {
        if (auth.superuser.password) {
          await createOrUpdateRole(s, auth.superuser.username, auth.superuser.password, ['SUPERUSER']);
        }
      });
      if (boot?.postBootstrap) await this.runPostBootstrap(boot.postBootstrap);
      await session.withSession(async (s) => {
        await createOrUpdateRole(s, auth.replication.username, auth.replication.password, ['REPLICATION']);
        const rewind = auth.rewind;
        if (rewind && rewind.username !== auth.superuser.username) {
          await createOrUpdateRole(s, rewind.username, rewind.password, []);
          for (const f of REWIND_FUNCTIONS) {
            await s.query(`DO $$
BEGIN
    SET local synchronous_commit = 'local';
    GRANT EXECUTE ON function pg_catalog.${f} TO ${quoteIdent(rewind.username)};
END;$$`);
          }
        }
        for (const [name, user] of Object.entries(boot?.users ?? {})) {
          if ([auth.superuser.username, auth.replication.username, rewind?.username].includes(name)) continue;
          await createOrUpdateRole(s, name, user.password, user.options);
        }
      });
      if (this.d.files.inCustomBootstrap) await this.endCustomBootstrap();
      this.d.callbacks.bootstrapDone();
      return true;
    } catch (e) {
      this.d.log.error(`post_bootstrap failed: ${errorText(e)}`);
      this.d.callbacks.bootstrapFailed();
      return false;
    }
  }

  /**
   * After a custom bootstrap: the configured pg_hba.conf and postgresql.conf (no recovery settings, hot_standby
   * as configured) in place of the replay's, then a reload (a restart when `hba_file` is set, as Patroni), and a
   * new connection with the password just set.
   */
  private async endCustomBootstrap(): Promise<void> {
    const files = this.d.files;
    files.endCustomBootstrap();
    files.writeForStart(undefined);
    await this.d.session.drop();
    if (files.serverParameters().parameters.has('hba_file')) {
      await this.d.lifecycle.stop('fast', undefined, true);
      files.writeForStart(undefined);
      await this.d.lifecycle.startServer(undefined);
    } else {
      await reloadPostgres({ bins: files.bins, dataDir: files.dataDir });
    }
  }

  /** `bootstrap.post_bootstrap`: the script gets the superuser connection string as its last argument. */
  private async runPostBootstrap(command: string): Promise<void> {
    const [cmd, ...args] = shellSplit(command);
    if (!cmd) return;
    const o = this.d.session.options();
    const superuser = this.d.files.config.postgresql.authentication.superuser;
    const env: Record<string, string | undefined> = {
      ...childEnv(),
      // As Patroni: the script's own writes do not wait for a synchronous standby that cannot exist yet.
      PGOPTIONS: '-c synchronous_commit=local -c statement_timeout=0',
    };
    if (o.password !== undefined) env['PGPASSWORD'] = o.password;
    this.d.log.info(`running post_bootstrap: ${command}`);
    const code = await new Promise<number>((resolveCode, reject) => {
      const child = spawn(cmd, [...args, postBootstrapConninfo(o, superuser.connectionParams)], {
        stdio: 'inherit',
        env,
      });
      child.once('error', reject);
      child.once('exit', (c) => resolveCode(c ?? 1));
    });
    if (code !== 0) throw new Error(`post_bootstrap script ${command} exited with code ${code}`);
  }

  /** Stop PostgreSQL and move the data directory aside after a failed bootstrap. */
  async abandon(): Promise<void> {
    await this.d.lifecycle.stop('immediate').catch(() => undefined);
    const dir = this.d.files.dataDir;
    try {
      const aside = moveDataDirAside(dir);
      this.d.log.info(`moved data directory aside to ${aside}`);
    } catch (e) {
      this.d.log.error(`could not move the data directory aside: ${errorText(e)}`);
    }
    this.d.control.forget();
  }
}
