/**
 * `query` (patronictl's): member selection by role / name with the pg_is_in_recovery() double-check, the error
 * rows, and the printers (tsv with header, pretty, json, yaml), against an in-memory DCS and a fake connector.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/config/errors.js';
import type { LocalConfig } from '../../src/config/local-config.js';
import { MemoryDcs, MemoryStore } from '../../src/dcs/memory/memory-dcs.js';
import type { Cluster } from '../../src/model/cluster.js';
import {
  PASSWORD_REFUSAL,
  checkSqlSource,
  queryErrorText,
  pythonValue,
  queryMember,
  queryTarget,
  readSqlFile,
  renderQueryOutput,
  runQuery,
  type QueryConnectParams,
  type QueryConnector,
  type QueryResult,
  type QuerySession,
} from '../../src/ctl/query.js';
import { scriptedPrompter, terminalPrompter } from '../../src/prompts/index.js';

const PREFIX = '/service/demo/';
const PORTS: Readonly<Record<string, number>> = { pg1: 5441, pg2: 5442, pg3: 5443 };
const NOW = new Date(2026, 10, 22, 3, 4, 5);
const now = (): Date => NOW;

let store: MemoryStore;

function seed(leader: string | null = 'pg1', leaderRole = 'master'): void {
  store.put(`${PREFIX}initialize`, '7300000000000000001');
  if (leader) store.put(`${PREFIX}leader`, leader);
  for (const [name, port] of Object.entries(PORTS)) {
    store.put(
      `${PREFIX}members/${name}`,
      JSON.stringify({
        conn_url: `postgres://127.0.0.1:${port}/postgres`,
        api_url: `http://127.0.0.1:1/patroni`,
        state: 'running',
        role: name === leader ? leaderRole : 'replica',
        version: '3.0.2',
      }),
    );
  }
}

async function cluster(): Promise<Cluster> {
  return new MemoryDcs(store, {
    namespace: '/service',
    scope: 'demo',
    ttl: 30,
    retryTimeout: 10,
    ctl: true,
  }).getCluster();
}

interface FakeServer {
  readonly inRecovery: boolean;
  readonly result?: QueryResult;
  readonly error?: Error;
}

/** Members by port: what pg_is_in_recovery() answers and what the user's SQL returns. */
function fakeConnector(
  servers: Readonly<Record<number, FakeServer>>,
  log: { connects: QueryConnectParams[]; sql: string[]; closed: number },
): QueryConnector {
  return async (params) => {
    log.connects.push(params);
    const server = servers[params.port];
    if (!server)
      throw Object.assign(new Error(`connect ECONNREFUSED 127.0.0.1:${params.port}`), {
        code: 'ECONNREFUSED',
      });
    const session: QuerySession = {
      async query(sql) {
        log.sql.push(sql);
        if (sql === 'SELECT pg_catalog.pg_is_in_recovery()')
          return { columns: ['pg_is_in_recovery'], rows: [[server.inRecovery]] };
        if (server.error) throw server.error;
        return server.result ?? { columns: ['x'], rows: [[1]] };
      },
      async close() {
        log.closed++;
      },
    };
    return session;
  };
}

const SERVERS: Readonly<Record<number, FakeServer>> = {
  5441: { inRecovery: false },
  5442: { inRecovery: true },
  5443: { inRecovery: true },
};

function newLog(): { connects: QueryConnectParams[]; sql: string[]; closed: number } {
  return { connects: [], sql: [], closed: 0 };
}

beforeEach(() => {
  store = new MemoryStore();
});

describe('query: options', () => {
  it('defaults to the leader; a member means role any; both are refused', () => {
    expect(queryTarget(undefined, undefined)).toEqual({ role: 'leader' });
    expect(queryTarget('replica', undefined)).toEqual({ role: 'replica' });
    expect(queryTarget(undefined, 'pg2')).toEqual({ role: 'any', member: 'pg2' });
    expect(() => queryTarget('replica', 'pg2')).toThrow('--role and --member are mutually exclusive options');
  });

  it('needs exactly one of --command and --file', () => {
    expect(() => checkSqlSource('select 1', 'f.sql')).toThrow(
      '--file and --command are mutually exclusive options',
    );
    expect(() => checkSqlSource(undefined, undefined)).toThrow(
      'You need to specify either --command or --file',
    );
    expect(() => checkSqlSource('select 1', undefined)).not.toThrow();
  });

  it('reports a missing file as a usage error (exit 2)', async () => {
    const missing = Object.assign(new Error('nope'), { code: 'ENOENT' });
    const err = await readSqlFile('/no/such.sql', () => Promise.reject(missing)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe(
      "Invalid value for '--file' / '-f': '/no/such.sql': No such file or directory",
    );
    expect((err as UserError).exitCode).toBe(2);
  });

  it('refuses --password without a terminal, saying what to do instead', async () => {
    await expect(terminalPrompter({ isTty: false }).password('Password: ', PASSWORD_REFUSAL)).rejects.toThrow(
      /--password .* stdin is not a terminal: leave out --password and set PGPASSWORD/,
    );
  });
});

describe('query: member selection', () => {
  it('connects to the leader by default, with patronictl parameters and no database from conn_url', async () => {
    seed();
    const log = newLog();
    const out = await queryMember(
      await cluster(),
      queryTarget(undefined, undefined),
      'select 1 as x',
      { username: 'postgres', password: 'pw' },
      fakeConnector(SERVERS, log),
      now,
    );
    expect(out).toEqual({ columns: ['x'], rows: [[1]] });
    expect(log.connects).toEqual([
      {
        host: '127.0.0.1',
        port: 5441,
        user: 'postgres',
        password: 'pw',
        fallbackApplicationName: 'Patroni ctl',
        connectTimeoutSeconds: 5,
      },
    ]);
    // leader and any are not double-checked.
    expect(log.sql).toEqual(['select 1 as x']);
    expect(log.closed).toBe(1);
  });

  it('uses -d as the database', async () => {
    seed();
    const log = newLog();
    await queryMember(
      await cluster(),
      { role: 'leader' },
      'select 1',
      { dbname: 'app' },
      fakeConnector(SERVERS, log),
      now,
    );
    expect(log.connects[0]?.database).toBe('app');
    expect(log.connects[0]?.user).toBeUndefined();
  });

  it('picks the first replica and double-checks pg_is_in_recovery()', async () => {
    seed();
    const log = newLog();
    await queryMember(await cluster(), { role: 'replica' }, 'select 1', {}, fakeConnector(SERVERS, log), now);
    expect(log.connects.map((c) => c.port)).toEqual([5442]);
    expect(log.sql).toEqual(['SELECT pg_catalog.pg_is_in_recovery()', 'select 1']);
  });

  it('a replica that is not in recovery is no connection for role replica', async () => {
    seed();
    const log = newLog();
    const out = await queryMember(
      await cluster(),
      { role: 'replica' },
      'select 1',
      {},
      fakeConnector({ ...SERVERS, 5442: { inRecovery: false } }, log),
      now,
    );
    expect(renderQueryOutput(out, 'tsv')).toBe(
      '2026-11-22 03:04:05\tNo connection to role replica is available',
    );
    expect(log.sql).toEqual(['SELECT pg_catalog.pg_is_in_recovery()']);
    expect(log.closed).toBe(1);
  });

  it('primary checks the leader is not in recovery; standby-leader needs a standby leader', async () => {
    seed();
    const log = newLog();
    const primary = await queryMember(
      await cluster(),
      { role: 'primary' },
      'select 1',
      {},
      fakeConnector(SERVERS, log),
      now,
    );
    expect(primary.columns).toEqual(['x']);
    const standby = await queryMember(
      await cluster(),
      { role: 'standby-leader' },
      'select 1',
      {},
      fakeConnector(SERVERS, log),
      now,
    );
    expect(standby.rows).toEqual([
      ['2026-11-22 03:04:05', 'No connection to role standby-leader is available'],
    ]);
    expect(log.connects.map((c) => c.port)).toEqual([5441]);
  });

  it('selects a member by name, or says it is not available', async () => {
    seed();
    const log = newLog();
    await queryMember(
      await cluster(),
      queryTarget(undefined, 'pg3'),
      'select 1',
      {},
      fakeConnector(SERVERS, log),
      now,
    );
    expect(log.connects.map((c) => c.port)).toEqual([5443]);
    expect(log.sql).toEqual(['select 1']);
    const out = await queryMember(
      await cluster(),
      queryTarget(undefined, 'pg9'),
      'select 1',
      {},
      fakeConnector(SERVERS, log),
      now,
    );
    expect(out).toEqual({ rows: [['2026-11-22 03:04:05', 'No connection to member pg9 is available']] });
  });

  it('without a leader there is no connection to role leader', async () => {
    seed(null);
    const out = await queryMember(
      await cluster(),
      { role: 'leader' },
      'select 1',
      {},
      fakeConnector(SERVERS, newLog()),
      now,
    );
    expect(renderQueryOutput(out, 'tsv')).toBe(
      '2026-11-22 03:04:05\tNo connection to role leader is available',
    );
  });
});

describe('query: error rows', () => {
  it('a failing statement prints its SQLSTATE', async () => {
    seed();
    const err = Object.assign(new Error('relation "nope" does not exist'), {
      code: '42P01',
      severity: 'ERROR',
    });
    const log = newLog();
    const out = await queryMember(
      await cluster(),
      { role: 'leader' },
      'select * from nope',
      {},
      fakeConnector({ 5441: { inRecovery: false, error: err } }, log),
      now,
    );
    expect(renderQueryOutput(out, 'tsv')).toBe('2026-11-22 03:04:05\tERROR, SQLSTATE: 42P01');
    expect(log.closed).toBe(1);
  });

  it('a failed connection prints the message on one line', async () => {
    seed();
    const out = await queryMember(
      await cluster(),
      { role: 'leader' },
      'select 1',
      {},
      fakeConnector({}, newLog()),
      now,
    );
    expect(renderQueryOutput(out, 'tsv')).toBe(
      '2026-11-22 03:04:05\tERROR, SQLSTATE: connect ECONNREFUSED 127.0.0.1:5441',
    );
    expect(queryErrorText(new Error('a\nb'), true)).toBe('a b');
    expect(queryErrorText(Object.assign(new Error('x'), { code: 'ECONNRESET' }), true)).toBe('x');
  });

  it('error rows have no header in every format', () => {
    const out = { rows: [['2026-11-22 03:04:05', 'ERROR, SQLSTATE: 42601']] };
    expect(renderQueryOutput(out, 'json')).toBe(
      '[{"Field 1": "2026-11-22 03:04:05", "Field 2": "ERROR, SQLSTATE: 42601"}]',
    );
    expect(renderQueryOutput(out, 'pretty').split('\n')[1]).toBe(
      '| Field 1             | Field 2                |',
    );
  });
});

describe('query: printing rows', () => {
  const result = {
    columns: ['id', 'name', 'ok', 'note'],
    rows: [
      [1, 'a', true, null],
      [2n, 'b b', false, 'x'],
    ],
  };

  it('tsv: header then rows, Python str() of the values, custom delimiter', () => {
    expect(renderQueryOutput(result, 'tsv')).toBe('id\tname\tok\tnote\n1\ta\tTrue\tNone\n2\tb b\tFalse\tx');
    expect(renderQueryOutput(result, 'tsv', ';')).toBe('id;name;ok;note\n1;a;True;None\n2;b b;False;x');
    expect(renderQueryOutput({ columns: ['x'], rows: [] }, 'tsv')).toBe('x');
  });

  it('json: one object per row, keys in column order, empty values kept', () => {
    expect(renderQueryOutput(result, 'json')).toBe(
      '[{"id": 1, "name": "a", "ok": true, "note": null}, {"id": 2, "name": "b b", "ok": false, "note": "x"}]',
    );
    // A repeated column name: first place, last value (a Python dict).
    expect(renderQueryOutput({ columns: ['a', 'b', 'a'], rows: [[1, 2, 3]] }, 'json')).toBe(
      '[{"a": 3, "b": 2}]',
    );
    expect(renderQueryOutput({ columns: ['x'], rows: [] }, 'json')).toBe('[]');
  });

  it('yaml: sorted keys, block style', () => {
    expect(renderQueryOutput(result, 'yaml')).toBe(
      '- id: 1\n  name: a\n  note: null\n  ok: true\n- id: 2\n  name: b b\n  note: x\n  ok: false\n',
    );
  });

  it('pretty: a PrettyTable', () => {
    expect(renderQueryOutput({ columns: ['x', 'name'], rows: [[1, 'abc']] }, 'pretty')).toBe(
      ['+---+------+', '| x | name |', '+---+------+', '| 1 | abc  |', '+---+------+'].join('\n'),
    );
  });

  it("converts PostgreSQL's text output as psycopg2 does", () => {
    expect(pythonValue('t', 16)).toBe(true);
    expect(pythonValue('f', 16)).toBe(false);
    expect(pythonValue(null, 25)).toBeNull();
    expect(pythonValue('42', 23)).toBe(42);
    expect(pythonValue('9007199254740993', 20)).toBe(9007199254740993n);
    expect(pythonValue('1.5', 701)).toBe(1.5);
    expect(pythonValue('1.50', 1700)).toBe('1.50');
    expect(pythonValue('0/3000060', 3220)).toBe('0/3000060');
  });
});

describe('query: the command flow', () => {
  const config = { scope: 'demo' } as unknown as LocalConfig;

  it('prompts for the password, reads the cluster, prints, closes the DCS', async () => {
    seed();
    const log = newLog();
    const written: string[] = [];
    let closed = false;
    const prompts = scriptedPrompter(['secret']);
    await runQuery(
      {
        command: 'select 1 as x',
        askPassword: true,
        username: 'postgres',
        format: 'tsv',
        delimiter: '\t',
        watchContinuous: false,
      },
      {
        config,
        prompts,
        write: (t) => written.push(t),
        connector: fakeConnector(SERVERS, log),
        openDcs: async (_c, scope) => {
          const dcs = new MemoryDcs(store, {
            namespace: '/service',
            scope,
            ttl: 30,
            retryTimeout: 10,
            ctl: true,
          });
          dcs.close = async () => {
            closed = true;
          };
          return dcs;
        },
        now,
      },
    );
    expect(prompts.asked).toEqual(['Password: ']);
    expect(log.connects[0]).toMatchObject({ user: 'postgres', password: 'secret', port: 5441 });
    expect(written).toEqual(['x\n1']);
    expect(closed).toBe(true);
  });

  it('checks the options before asking anything or opening the DCS', async () => {
    const prompts = scriptedPrompter([]);
    await expect(
      runQuery(
        { askPassword: true, format: 'tsv', delimiter: '\t', watchContinuous: false },
        {
          config,
          prompts,
          write: () => undefined,
          openDcs: () => Promise.reject(new Error('must not open')),
        },
      ),
    ).rejects.toThrow('You need to specify either --command or --file');
    expect(prompts.asked).toEqual([]);
  });

  it('reads -f FILE', async () => {
    seed();
    const log = newLog();
    await runQuery(
      { file: 'q.sql', format: 'json', delimiter: '\t', watchContinuous: false, askPassword: false },
      {
        config,
        prompts: scriptedPrompter([]),
        write: () => undefined,
        connector: fakeConnector(SERVERS, log),
        readFile: async (p) => `-- from ${p}\nselect 2`,
        openDcs: async (_c, scope) =>
          new MemoryDcs(store, { namespace: '/service', scope, ttl: 30, retryTimeout: 10, ctl: true }),
      },
    );
    expect(log.sql).toEqual(['-- from q.sql\nselect 2']);
  });
});
