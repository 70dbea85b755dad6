/**
 * `postgresql.create_replica_methods` (Patroni 3.0.2's `Bootstrap.create_replica`): the listed methods are tried in
 * order until one succeeds. `basebackup` is the built-in pg_basebackup (with the `postgresql.basebackup` options,
 * two attempts); any other name is a custom method run from its `postgresql.<name>` section:
 *
 *   <command...> --<key>=<value>... --scope=<scope> --role=replica --datadir=<data_dir> --connstring=<dsn>
 *
 * where the keys are the section's own (except `command`) in their order, values printed as Python prints them
 * (`True`/`False`); `no_params: true` leaves out scope/role/datadir/connstring and the flag keys. A populated data
 * directory is removed before a custom method and after a failed one unless it says `keep_data: true`; the agent
 * never creates it (a method such as a copytree wants to create it itself). Without a member to clone from only
 * methods marked `no_leader` (or `no_master`) are tried, with an empty connstring.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { childEnv } from './child-env.js';
import { resolve } from 'node:path';
import type { PgUser, ToolOptionsValue } from '../config/agent-config.js';
import type { PgLog } from './ports.js';
import { pyBool, pyStr } from '../model/python.js';
import { errorText } from '../model/text.js';
import { basebackup } from './basebackup.js';
import { writePrivateFile, type PgBinariesConfig } from './binaries.js';
import { formatConninfo, renderPgpass } from './config-writer.js';
import { shellSplit } from './shell.js';

type Section = Readonly<Record<string, unknown>>;

const FLAG_KEYS = ['no_params', 'no_master', 'no_leader', 'keep_data'] as const;

/** A method that needs no replication connection (a restore from backup): `no_leader` or `no_master`. */
export function worksWithoutLeader(method: string, section: Section | undefined): boolean {
  return method !== 'basebackup' && (pyBool(section?.['no_master']) || pyBool(section?.['no_leader']));
}

/** The methods to try, in order: all of them with a source; else only those that need no leader. */
export function methodsToTry(
  methods: readonly string[],
  sections: Readonly<Record<string, Section>>,
  haveSource: boolean,
): readonly string[] {
  const list = methods.length > 0 ? methods : ['basebackup'];
  return haveSource ? list : list.filter((m) => worksWithoutLeader(m, sections[m]));
}

export interface CustomMethodContext {
  readonly scope: string;
  readonly dataDir: string;
  /** libpq keyword/value string of the source; `''` without one. */
  readonly connstring: string;
}

/** The argv of a custom method, as Patroni builds it. */
export function customMethodArgv(
  name: string,
  section: Section | undefined,
  ctx: CustomMethodContext,
): string[] {
  const params = new Map<string, unknown>(Object.entries(section ?? {}));
  const command = params.get('command');
  params.delete('command');
  const cmd = typeof command === 'string' && command.trim() !== '' ? command : name;
  if (!pyBool(params.get('no_params'))) {
    params.set('scope', ctx.scope);
    params.set('role', 'replica');
    params.set('datadir', ctx.dataDir);
    params.set('connstring', ctx.connstring);
  } else {
    for (const k of FLAG_KEYS) params.delete(k);
  }
  return [...shellSplit(cmd), ...[...params].map(([k, v]) => `--${k}=${pyStr(v)}`)];
}

/** Patroni's connstring for replica methods: dbname, user, host, port and the replication user's libpq params. */
export function replicaConnstring(
  source: { readonly host: string; readonly port: number; readonly dbname: string },
  replication: PgUser,
): string {
  return formatConninfo({
    dbname: source.dbname,
    user: replication.username,
    host: source.host,
    port: source.port,
    ...replication.connectionParams,
  });
}

export interface CreateReplicaOptions {
  readonly scope: string;
  readonly dataDir: string;
  readonly methods: readonly string[];
  readonly sections: Readonly<Record<string, Section>>;
  readonly basebackupOptions?: ToolOptionsValue | undefined;
  /** The member to clone from; undefined: only `no_leader` methods. */
  readonly source?: { readonly host: string; readonly port: number; readonly dbname: string } | undefined;
  readonly replication: PgUser;
  readonly pgpassPath: string;
  readonly database: string;
  readonly bins: PgBinariesConfig;
  readonly log: PgLog;
  readonly cancelled: () => boolean;
  readonly dataDirEmpty: () => boolean;
  /** Removes the data directory (and empties the target of a symlinked pg_wal). */
  readonly wipe: () => void;
  /** Pause between the two pg_basebackup attempts (Patroni: 5 s). */
  readonly basebackupRetryMs?: number;
}

function sleep(ms: number, cancelled: () => boolean): Promise<void> {
  return new Promise((resolveSleep) => {
    const end = Date.now() + ms;
    const tick = (): void => {
      if (cancelled() || Date.now() >= end) resolveSleep();
      else setTimeout(tick, Math.min(200, end - Date.now()));
    };
    tick();
  });
}

/** Runs a custom method to its end (no timeout, as in Patroni); a cancellation kills it with its children. */
export function runMethod(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  cancelled: () => boolean,
): Promise<number> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return Promise.resolve(1);
  return new Promise<number>((resolveCode, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'inherit', 'inherit'], env });
    } catch (e) {
      reject(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    const poll = setInterval(() => {
      if (!cancelled() || child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 200);
    child.once('error', (e) => {
      clearInterval(poll);
      reject(e);
    });
    child.once('exit', (code) => {
      clearInterval(poll);
      resolveCode(code ?? 1);
    });
  });
}

/** Tries the methods in order; resolves to the name of the one that created the replica, or undefined. */
export async function createReplica(o: CreateReplicaOptions): Promise<string | undefined> {
  const methods = methodsToTry(o.methods, o.sections, o.source !== undefined);
  if (methods.length === 0) {
    o.log.error('no replica method can create a replica without a member to clone from');
    return undefined;
  }
  const connstring = o.source ? replicaConnstring(o.source, o.replication) : '';
  const env: Record<string, string | undefined> = childEnv();
  const password = o.replication.password;
  if (o.source && password !== undefined) {
    writePrivateFile(
      o.pgpassPath,
      renderPgpass({ host: o.source.host, port: o.source.port, user: o.replication.username, password }) +
        '\n',
    );
    env['PGPASSFILE'] = resolve(o.pgpassPath);
  }
  for (const method of methods) {
    if (o.cancelled()) break;
    if (method === 'basebackup') {
      if (o.source && (await runBasebackup(o, o.source))) {
        o.log.info('replica has been created using basebackup');
        return method;
      }
      continue;
    }
    const section = o.sections[method];
    if (!o.dataDirEmpty()) {
      if (pyBool(section?.['keep_data'])) o.log.info('Leaving data directory uncleaned');
      else o.wipe();
    }
    const argv = customMethodArgv(method, section, { scope: o.scope, dataDir: o.dataDir, connstring });
    try {
      const code = await runMethod(argv, env, o.cancelled);
      if (code === 0) {
        o.log.info(`replica has been created using ${method}`);
        return method;
      }
      o.log.error(
        `Error creating replica using method ${method}: ${argv[0] ?? method} exited with code=${code}`,
      );
    } catch (e) {
      o.log.error(`Error creating replica using method ${method}: ${errorText(e)}`);
    }
    if (!pyBool(section?.['keep_data']) && !o.dataDirEmpty()) o.wipe();
  }
  return undefined;
}

/** The built-in method: pg_basebackup twice at most, the data directory emptied before each attempt. */
async function runBasebackup(
  o: CreateReplicaOptions,
  source: { readonly host: string; readonly port: number; readonly dbname: string },
): Promise<boolean> {
  const attempts = 2;
  for (let i = 0; i < attempts; i++) {
    if (o.cancelled()) return false;
    if (!o.dataDirEmpty()) o.wipe();
    try {
      await basebackup({
        bins: o.bins,
        dataDir: o.dataDir,
        source,
        replication: o.replication,
        pgpassPath: o.pgpassPath,
        options: o.basebackupOptions ?? null,
        database: source.dbname,
        onWarning: (m) => o.log.error(m),
      });
      return true;
    } catch (e) {
      o.log.error(`Error when fetching backup with pg_basebackup: ${errorText(e)}`);
    }
    if (i < attempts - 1) {
      o.log.warning(`Trying again in ${Math.round((o.basebackupRetryMs ?? 5000) / 1000)} seconds`);
      await sleep(o.basebackupRetryMs ?? 5000, o.cancelled);
    } else if (!o.dataDirEmpty()) {
      o.wipe();
    }
  }
  return false;
}
