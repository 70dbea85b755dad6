/**
 * `query`: run SQL on one member of the cluster over a direct PostgreSQL connection, as patronictl's `query` does
 * (patronictl's `query`). The member is chosen by role (the leader by default) or by name; roles other than
 * `leader`/`any` are double-checked with `pg_is_in_recovery()`. Failures are printed as a row (`<timestamp>\tERROR,
 * SQLSTATE: ...`), not raised. Values are shown as patronictl shows psycopg2's Python values: `True`/`False`, `None`,
 * `1.0`.
 *
 * The connection goes through a `QueryConnector`; the real one uses node-postgres, loaded when first used.
 */
import { readFile } from 'node:fs/promises';
import { UserError } from '../config/errors.js';
import type { LocalConfig } from '../config/local-config.js';
import type { Dcs } from '../dcs/dcs.js';
import type { Cluster } from '../model/cluster.js';
import type { Prompter } from '../prompts/index.js';
import { pyJson } from '../model/pyjson.js';
import { pyStr } from '../model/python.js';
import { errorText } from '../model/text.js';
import { pyYaml, renderTsvRows } from '../render/formats.js';
import { renderPrettyTable } from '../render/table.js';
import { clusterNameOrScope, openDcs } from './context.js';
import { parseWatchSeconds } from './list-command.js';
import { membersWithRole, type MemberRole } from './read-commands.js';
import { interrupted, localTimestamp, watchInterval, watching } from './watch.js';

export type QueryFormat = 'pretty' | 'tsv' | 'json' | 'yaml';

/** A value as psycopg2 would hand it to patronictl, reduced to what the printers need. */
export type QueryValue = string | number | bigint | boolean | null;

export interface QueryResult {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly QueryValue[])[];
}

/** What patronictl prints: a result with its column names, or an error row without a header. */
export interface QueryOutput {
  readonly columns?: readonly string[];
  readonly rows: readonly (readonly QueryValue[])[];
}

/** libpq parameters of one connection (patronictl's `member.conn_kwargs()` plus its overrides). */
export interface QueryConnectParams {
  readonly host: string;
  readonly port: number;
  /** Undefined: libpq's default ($PGUSER, else the OS user). */
  readonly user?: string;
  /** Undefined: $PGPASSWORD or ~/.pgpass. */
  readonly password?: string;
  /** Undefined: libpq's default ($PGDATABASE, else the user name); patronictl drops the conn_url's database. */
  readonly database?: string;
  readonly fallbackApplicationName: string;
  readonly connectTimeoutSeconds: number;
}

export interface QuerySession {
  /** The last result of the statements; rejects with the server's error (with `code` = SQLSTATE). */
  query(sql: string): Promise<QueryResult>;
  close(): Promise<void>;
}

export type QueryConnector = (params: QueryConnectParams) => Promise<QuerySession>;

/** What `-U`, `--password` and `-d` give. */
export interface QueryAuth {
  readonly username?: string;
  readonly password?: string;
  readonly dbname?: string;
}

/** Who to connect to: a role (`leader` by default) or a member by name (role `any`). */
export interface QueryTarget {
  readonly role: MemberRole;
  readonly member?: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Options

/** patronictl's checks, in its order. */
export function queryTarget(role: MemberRole | undefined, member: string | undefined): QueryTarget {
  if (member !== undefined) {
    if (role !== undefined) throw new UserError('--role and --member are mutually exclusive options');
    return { role: 'any', member };
  }
  return { role: role ?? 'leader' };
}

export function checkSqlSource(command: string | undefined, file: string | undefined): void {
  if (file !== undefined && command !== undefined)
    throw new UserError('--file and --command are mutually exclusive options');
  if (file === undefined && command === undefined)
    throw new UserError('You need to specify either --command or --file');
}

/** `-f FILE` (`-` = stdin), read before anything else as click does; a missing file is a usage error. */
export async function readSqlFile(path: string, read: (p: string) => Promise<string>): Promise<string> {
  try {
    return await read(path);
  } catch (e) {
    const reason =
      (e as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'No such file or directory'
        : (e as NodeJS.ErrnoException).code === 'EACCES'
          ? 'Permission denied'
          : e instanceof Error
            ? e.message
            : String(e);
    throw new UserError(`Invalid value for '--file' / '-f': '${path}': ${reason}`, 2);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// One query

const FALLBACK_APPLICATION_NAME = 'Patroni ctl';
const CONNECT_TIMEOUT_SECONDS = 5;

function hostPort(connUrl: string | undefined): { host: string; port: number } | undefined {
  if (!connUrl) return undefined;
  try {
    const u = new URL(connUrl);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    if (!host) return undefined;
    return { host, port: u.port ? Number(u.port) : 5432 };
  } catch {
    return undefined;
  }
}

/** The connection parameters for the member patronictl would pick, or undefined when there is none. */
export function connectParamsFor(
  cluster: Cluster,
  target: QueryTarget,
  auth: QueryAuth,
): QueryConnectParams | undefined {
  const m = membersWithRole(cluster, target.role).find(
    (x) => target.member === undefined || x.name === target.member,
  );
  const addr = hostPort(m?.data.connUrl);
  if (!addr) return undefined;
  return {
    ...addr,
    ...(auth.username !== undefined ? { user: auth.username } : {}),
    ...(auth.password !== undefined ? { password: auth.password } : {}),
    ...(auth.dbname !== undefined ? { database: auth.dbname } : {}),
    fallbackApplicationName: FALLBACK_APPLICATION_NAME,
    connectTimeoutSeconds: CONNECT_TIMEOUT_SECONDS,
  };
}

/** Whether a connected member really has `role`; `leader` and `any` are taken on trust, as patronictl does. */
async function roleConfirmed(session: QuerySession, role: MemberRole): Promise<boolean> {
  if (role === 'leader' || role === 'any') return true;
  const res = await session.query('SELECT pg_catalog.pg_is_in_recovery()');
  const inRecovery = res.rows[0]?.[0] === true;
  return inRecovery
    ? role === 'replica' || role === 'standby' || role === 'standby-leader'
    : role === 'primary' || role === 'master';
}

/** The SQLSTATE of a server error, else the message (one line), as patronictl prints `de.diag.sqlstate or str(de)`. */
export function queryErrorText(e: unknown, sqlstate: boolean): string {
  const code = (e as { code?: unknown } | undefined)?.code;
  if (sqlstate && typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  return errorText(e).replace(/\n/g, ' ');
}

function errorRow(now: Date, message: string): QueryOutput {
  return { rows: [[localTimestamp(now), message]] };
}

/**
 * patronictl's `query_member`: pick the member, connect, check its role, run the SQL. Errors while connecting
 * show the message (psycopg2 has no SQLSTATE then); errors of the statements show the SQLSTATE.
 */
export async function queryMember(
  cluster: Cluster,
  target: QueryTarget,
  sql: string,
  auth: QueryAuth,
  connector: QueryConnector,
  now: () => Date = () => new Date(),
): Promise<QueryOutput> {
  const unavailable = (): QueryOutput =>
    errorRow(
      now(),
      target.member !== undefined
        ? `No connection to member ${target.member} is available`
        : `No connection to role ${target.role} is available`,
    );
  const params = connectParamsFor(cluster, target, auth);
  if (!params) return unavailable();
  let session: QuerySession;
  try {
    session = await connector(params);
  } catch (e) {
    return errorRow(now(), `ERROR, SQLSTATE: ${queryErrorText(e, false)}`);
  }
  try {
    if (!(await roleConfirmed(session, target.role))) return unavailable();
    const res = await session.query(sql);
    return { columns: res.columns, rows: res.rows };
  } catch (e) {
    return errorRow(now(), `ERROR, SQLSTATE: ${queryErrorText(e, true)}`);
  } finally {
    await session.close().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Printing

/** PrettyTable's names for the columns of a table without a header. */
function fieldNames(rows: readonly (readonly QueryValue[])[]): string[] {
  const width = Math.max(0, ...rows.map((r) => r.length));
  return Array.from({ length: width }, (_v, i) => `Field ${i + 1}`);
}

/** patronictl's `print_output(header, rows, fmt=..., delimiter=...)` for a query result. */
export function renderQueryOutput(out: QueryOutput, format: QueryFormat, delimiter = '\t'): string {
  const text = out.rows.map((r) => r.map(pyStr));
  if (format === 'tsv') return renderTsvRows(out.columns, text, delimiter);
  const columns = out.columns ?? fieldNames(out.rows);
  if (format === 'pretty') return renderPrettyTable(columns, text);
  // A dict per row (None stays null): a repeated column name keeps its first place and its last value, as in Python.
  const objects = out.rows.map((r) => {
    const o: Record<string, QueryValue> = {};
    columns.forEach((c, i) => (o[c] = r[i] ?? null));
    return o;
  });
  if (format === 'json') return pyJson(objects);
  return pyYaml(
    objects.map((o) =>
      Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The command

export interface QueryRequest {
  readonly clusterName?: string;
  readonly role?: MemberRole;
  readonly member?: string;
  readonly command?: string;
  readonly file?: string;
  readonly username?: string;
  /** `--password`: ask for it (hidden) before connecting. */
  readonly askPassword: boolean;
  readonly dbname?: string;
  readonly format: QueryFormat;
  readonly delimiter: string;
  readonly watchContinuous: boolean;
  readonly watchSeconds?: string;
}

export interface QueryDeps {
  readonly config: LocalConfig;
  readonly prompts: Prompter;
  readonly write: (text: string) => void;
  readonly connector?: QueryConnector;
  readonly openDcs?: (config: LocalConfig, scope: string) => Promise<Dcs>;
  readonly readFile?: (path: string) => Promise<string>;
  readonly now?: () => Date;
}

export const PASSWORD_REFUSAL =
  '--password asks for the password on a terminal, but stdin is not a terminal: leave out --password and set PGPASSWORD (or use ~/.pgpass)';

async function readSqlSource(path: string): Promise<string> {
  if (path !== '-') return readFile(path, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function runQuery(req: QueryRequest, deps: QueryDeps): Promise<void> {
  const fileSql =
    req.file !== undefined ? await readSqlFile(req.file, deps.readFile ?? readSqlSource) : undefined;
  const target = queryTarget(req.role, req.member);
  checkSqlSource(req.command, req.file);
  const sql = req.command ?? fileSql ?? '';
  const every = watchInterval(req.watchContinuous, parseWatchSeconds(req.watchSeconds));
  const password = req.askPassword ? await deps.prompts.password('Password: ', PASSWORD_REFUSAL) : undefined;
  const auth: QueryAuth = {
    ...(req.username ? { username: req.username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(req.dbname ? { dbname: req.dbname } : {}),
  };
  const connector = deps.connector ?? pgConnector;
  const dcs = await (deps.openDcs ?? openDcs)(deps.config, clusterNameOrScope(deps.config, req.clusterName));
  try {
    await watching(
      {
        every,
        clear: false,
        write: (t) => process.stdout.write(t),
        stopped: every ? interrupted() : undefined,
      },
      async () => {
        const cluster = await dcs.getCluster();
        const out = await queryMember(cluster, target, sql, auth, connector, deps.now);
        deps.write(renderQueryOutput(out, req.format, req.delimiter));
      },
    );
  } finally {
    await dcs.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// node-postgres

type PgModule = typeof import('pg');

async function loadPg(): Promise<PgModule> {
  // CommonJS inside the esbuild bundle: only a default export; as ESM the named exports are there too.
  const mod = (await import('pg')) as PgModule & { readonly default?: PgModule };
  return mod.default ?? mod;
}

const OID = {
  bool: 16,
  int8: 20,
  int2: 21,
  int4: 23,
  oid: 26,
  float4: 700,
  float8: 701,
} as const;

/** PostgreSQL's text output -> the Python value psycopg2 would make of it (others stay text). */
export function pythonValue(text: string | null, typeOid: number): QueryValue {
  if (text === null) return null;
  switch (typeOid) {
    case OID.bool:
      return text === 't';
    case OID.int2:
    case OID.int4:
    case OID.oid:
      return Number(text);
    case OID.int8:
      return BigInt(text);
    case OID.float4:
    case OID.float8:
      return Number(text);
    default:
      return text;
  }
}

/** The real connector: one node-postgres client, every value received as text and converted by `pythonValue`. */
export const pgConnector: QueryConnector = async (p) => {
  const pg = await loadPg();
  const client = new pg.Client({
    host: p.host,
    port: p.port,
    ...(p.user !== undefined ? { user: p.user } : {}),
    ...(p.password !== undefined ? { password: p.password } : {}),
    ...(p.database !== undefined ? { database: p.database } : {}),
    fallback_application_name: p.fallbackApplicationName,
    connectionTimeoutMillis: p.connectTimeoutSeconds * 1000,
    types: { getTypeParser: () => (value: string) => value },
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => undefined);
    throw e;
  }
  return {
    async query(sql) {
      const res: unknown = await client.query({ text: sql, rowMode: 'array' });
      const all = (Array.isArray(res) ? res : [res]) as {
        fields?: readonly { name: string; dataTypeID: number }[];
        rows?: readonly (readonly (string | null)[])[];
      }[];
      const last = all[all.length - 1];
      const fields = last?.fields ?? [];
      // psycopg2's fetchall() after a statement without a result set.
      if (fields.length === 0) throw new Error('no results to fetch');
      return {
        columns: fields.map((f) => f.name),
        rows: (last?.rows ?? []).map((r) => fields.map((f, i) => pythonValue(r[i] ?? null, f.dataTypeID))),
      };
    },
    async close() {
      await client.end();
    },
  };
};
