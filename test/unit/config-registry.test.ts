/**
 * The key registry (issue 12, item 1): every setting takes effect or is refused. Table tests of the rules and their
 * messages, the agent refusing to start, edit-config refusing before it writes, the run-time reading of refused
 * dynamic settings, and the walk over Patroni 4.1.4's own schema and environment variables (from the fixture that
 * scripts/patroni-config-keys.py extracts; test/integration/patroni-config-keys.test.ts keeps it current).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { agentConfigFromTree, loadAgentConfig } from '../../src/config/agent-config.js';
import {
  DynamicConfigGuard,
  assertDynamicConfigAtStart,
  assertDynamicConfigChange,
  checkLocalKeys,
  runtimeDynamicConfig,
  validateDynamicConfig,
} from '../../src/config/config-check.js';
import { applyPatroniEnv, patroniEnvWarnings } from '../../src/config/env.js';
import { UserError } from '../../src/config/errors.js';
import { DYNAMIC_RULES, LOCAL_RULES, classify } from '../../src/config/key-registry.js';
import { deepMerge, type ConfigTree } from '../../src/config/tree.js';
import type { ActionIo } from '../../src/ctl/actions.js';
import { editConfig } from '../../src/ctl/edit-config.js';
import { MemoryDcs, MemoryStore } from '../../src/dcs/memory/memory-dcs.js';
import { haConfigFromDynamic } from '../../src/ha/snapshot.js';
import { terminalPrompter } from '../../src/prompts/index.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { userError as refusal } from '../helpers/user-error.js';

const dir = mkdtempSync(join(tmpdir(), 'pgwarden-registry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NODE_YML = `
scope: lab
name: pg1
restapi:
  listen: 127.0.0.1:8008
  connect_address: 127.0.0.1:8008
etcd3:
  hosts: 127.0.0.1:2379
bootstrap:
  dcs:
    ttl: 30
    postgresql:
      use_pg_rewind: true
      parameters:
        max_connections: 50
postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: /tmp/pg1
  authentication:
    superuser: {username: postgres, password: pw}
    replication: {username: rep, password: pw}
`;

const base = (): ConfigTree => parseYaml(NODE_YML, { version: '1.1' }) as ConfigTree;

describe('the registry: refused values, with the dotted path and what to do', () => {
  it.each([
    // The zookeeper security keys are supported; only values that could not take effect are refused.
    [
      { zookeeper: { hosts: ['z:2181'], set_acls: { 'CN=admin': ['ALL', 'RAED'] } }, etcd3: null },
      'zookeeper.set_acls.CN=admin in node.yml: unknown permission "RAED"; use READ, WRITE, CREATE, DELETE, ADMIN, ALL',
    ],
    [
      { zookeeper: { hosts: ['z:2181'], use_ssl: true, cert: '/etc/zk/client.pem' }, etcd3: null },
      'zookeeper.cert in node.yml needs zookeeper.key too (the client certificate and its key go together)',
    ],
    [
      { postgresql: { krbsrvname: 'postgres' } },
      'postgresql.krbsrvname: not supported by pgwarden yet (it is not passed to replication connections); remove postgresql.krbsrvname',
    ],
    [
      { kubernetes: { labels: {} }, etcd3: null },
      'kubernetes: the Kubernetes DCS is not supported by pgwarden; use an etcd3 or zookeeper section instead',
    ],
    [
      { citus: { group: 0, database: 'c' } },
      'citus: Citus clusters are not supported by pgwarden; remove the citus section',
    ],
    [
      { bootstrap: { dcs: { primary_stop_timeout: 5 } } },
      'bootstrap.dcs.primary_stop_timeout: not supported by pgwarden yet (a primary stop is never cut short); remove primary_stop_timeout or set it to 0',
    ],
    [
      { bootstrap: { dcs: { postgresql: { pg_ctl_timeout: 30 } } } },
      "bootstrap.dcs.postgresql.pg_ctl_timeout: read by pgwarden from the local configuration only; set it in the postgresql section of each node's patroni.yml",
    ],
  ] as const)('%j', (override, message) => {
    expect(refusal(() => agentConfigFromTree(deepMerge(base(), override as ConfigTree), 'node.yml'))).toBe(
      message,
    );
  });
});

describe('the registry: safe values accepted, ignored keys warned', () => {
  it.each([
    [{ watchdog: { mode: 'off', device: '/dev/watchdog', safety_margin: 5 } }, []],
    [{ watchdog: { mode: false } }, []],
    // Supported since the agent arms a watchdog (src/agent/watchdog): every mode, the testing driver too.
    [{ watchdog: { mode: 'required', device: '/dev/watchdog', safety_margin: 5 } }, []],
    [{ watchdog: { mode: 'automatic', safety_margin: -1 } }, []],
    [{ watchdog: { mode: 'required', driver: 'testing', device: '/tmp/wd.fifo' } }, []],
    [{ log: { level: 'INFO', type: 'plain', format: '%(asctime)s %(levelname)s: %(message)s' } }, []],
    [{ zookeeper: { hosts: ['z:2181'], use_ssl: false, set_acls: {} }, etcd3: null }, []],
    [{ restapi: { allowlist: [], allowlist_include_members: false, server_tokens: 'original' } }, []],
    [{ tags: { nostream: false, sync_priority: 1 } }, []],
    // Supported since the agent honours them (model/tags.ts, ha/sync.ts, the follow target and the member slots).
    [{ tags: { nostream: true, sync_priority: 5 } }, []],
    [{ tags: { nostream: 'true', sync_priority: '2' } }, []],
    [
      {
        bootstrap: {
          dcs: {
            failsafe_mode: false,
            synchronous_mode: true,
            standby_cluster: null,
            slots: {},
            ignore_slots: [],
            member_slots_ttl: 0,
            primary_stop_timeout: 0,
          },
        },
      },
      [],
    ],
    // Replication slots are managed (src/model/slot-config.ts): every spelling and value is taken.
    [
      {
        bootstrap: {
          dcs: {
            slots: { logical1: { type: 'logical', database: 'app', plugin: 'pgoutput' }, phys: null },
            permanent_slots: { p: { type: 'physical' } },
            permanent_replication_slots: {},
            ignore_slots: [{ name: 'x' }, { type: 'logical', plugin: 'wal2json' }],
            member_slots_ttl: '30min',
          },
        },
      },
      [],
    ],
    [
      {
        log: {
          level: 'DEBUG',
          type: 'json',
          format: ['asctime', { levelname: 'level' }, 'message'],
          dateformat: '%Y-%m-%dT%H:%M:%S%z',
          static_fields: { app: 'pgwarden' },
          dir: '/var/log/patroni',
          file_num: 4,
          file_size: 1000000,
          mode: 0o640,
          traceback_level: 'DEBUG',
          deduplicate_heartbeat_logs: true,
          loggers: { pgwarden: 'WARNING', patroni: 'INFO' },
        },
      },
      [],
    ],
    [
      // The acceptance suite's log section: a Patroni module logger has nothing to steer in pgwarden.
      {
        log: {
          format: '%(asctime)s %(levelname)s [%(pathname)s:%(lineno)d - %(funcName)s]: %(message)s',
          loggers: { 'patroni.postgresql.callback_executor': 'DEBUG' },
        },
      },
      [
        "log.loggers.patroni.postgresql.callback_executor: ignored: pgwarden has no such logger; its messages all come from the logger 'pgwarden' (also set as 'patroni')",
      ],
    ],
    [
      { log: { max_queue_size: 1000 } },
      ['log.max_queue_size: ignored: pgwarden writes each log line at once (no queue to bound)'],
    ],
    [
      { postgresql: { use_unix_socket_repl: true } },
      [
        'postgresql.use_unix_socket_repl: ignored: pgwarden opens no replication connection to its own PostgreSQL, so there is nothing for it to steer',
      ],
    ],
    [
      { thread_pool_size: 5 },
      ['thread_pool_size: ignored: pgwarden has no thread pool (one event loop serves the REST API)'],
    ],
    [
      { zookeeper: { hosts: ['z:2181'], verify: false, cacert: '/ca.pem' }, etcd3: null },
      [
        'zookeeper.cacert: ignored without zookeeper.use_ssl: true (as in Patroni)',
        'zookeeper.verify: ignored without zookeeper.use_ssl: true (as in Patroni)',
      ],
    ],
    [
      { failsafe_mode: true },
      [
        'failsafe_mode: dynamic setting, ignored in the local configuration; set it in bootstrap.dcs or with edit-config',
      ],
    ],
    [
      { bootstrap: { dcs: { postgresql: { data_dir: '/x' } } } },
      [
        'bootstrap.dcs.postgresql.data_dir: ignored: a local setting, Patroni drops it from the dynamic configuration',
      ],
    ],
    [{ colour: 'blue' }, ['colour: unknown key, ignored']],
    // true: the listed hosts only; false: they bootstrap member discovery (src/dcs/etcd3/members.ts). Both work.
    [{ etcd3: { hosts: ['e:2379'], use_proxies: true } }, []],
    [{ etcd3: { hosts: ['e:2379'], use_proxies: false } }, []],
    // Older names of etcd3.srv, read by Patroni's etcd client.
    [{ etcd3: { srv_domain: 'example.com' } }, []],
    [{ etcd3: { discovery_srv: 'example.com' } }, []],
  ] as const)('%j', (override, warnings) => {
    expect(agentConfigFromTree(deepMerge(base(), override as ConfigTree), 'node.yml').warnings).toEqual(
      warnings,
    );
  });

  it('bootstrap.post_init runs as post_bootstrap when that is not set, as in Patroni', () => {
    const { config } = agentConfigFromTree(
      deepMerge(base(), { bootstrap: { post_init: '/bin/init' } }),
      'n.yml',
    );
    expect(config.bootstrap?.postBootstrap).toBe('/bin/init');
  });

  it('reports every refusal at once, one line each', () => {
    const found = checkLocalKeys(
      deepMerge(base(), {
        postgresql: { krbsrvname: 'postgres' },
        ctl: { keyfile_password: 'secret' },
      }),
    );
    expect(found.errors.map((e) => e.split(':')[0])).toEqual([
      'postgresql.krbsrvname',
      'ctl.keyfile_password',
    ]);
  });

  it('lets the most specific pattern win', () => {
    expect(classify(DYNAMIC_RULES, ['postgresql', 'parameters', 'max_connections'])).toEqual({
      status: 'supported',
      subtree: true,
    });
    expect(classify(DYNAMIC_RULES, ['postgresql', 'pg_ctl_timeout'])?.status).toBe('refused');
    expect(classify(LOCAL_RULES, ['tags', 'nostream'])?.status).toBe('supported');
    expect(classify(LOCAL_RULES, ['tags', 'rack'])?.status).toBe('supported');
    expect(classify(LOCAL_RULES, ['postgresql', 'wal_g'])).toBeUndefined();
    expect(classify(LOCAL_RULES, ['postgresql', 'wal_g'], { replicaMethods: ['wal_g'] })?.status).toBe(
      'supported',
    );
  });
});

describe('the agent refuses to start (loadAgentConfig)', () => {
  const write = (name: string, extra: string): string => {
    const p = join(dir, name);
    writeFileSync(p, NODE_YML + extra);
    return p;
  };

  it.each([
    ['primary_stop_timeout', '', 'bootstrap.dcs.primary_stop_timeout:', { dcs: 'primary_stop_timeout: 5' }],
  ] as const)('%s', (name, extra, path, dcs?: { dcs: string }) => {
    const text = dcs ? NODE_YML.replace('    ttl: 30', `    ttl: 30\n    ${dcs.dcs}`) : NODE_YML + extra;
    const p = join(dir, `${name.replace(/\W/g, '_')}.yml`);
    writeFileSync(p, text);
    expect(refusal(() => loadAgentConfig(p, {}))).toMatch(new RegExp(`^${path.replace(/\./g, '\\.')} `));
  });

  it('zookeeper set_acls: accepted and applied, a permission that is no permission refused', () => {
    const p = write('zk.yml', '');
    const zk = (acls: string): string =>
      NODE_YML.replace(
        'etcd3:\n  hosts: 127.0.0.1:2379',
        `zookeeper:\n  hosts: [z:2181]\n  set_acls: ${acls}`,
      );
    writeFileSync(p, zk("{'CN=admin': [ALL], 'CN=monitor': [read]}"));
    const { config, warnings } = loadAgentConfig(p, {});
    expect(warnings).toEqual([]);
    expect(config.dcs).toEqual({
      kind: 'zookeeper',
      hosts: ['z:2181'],
      acls: [
        { scheme: 'x509', id: 'CN=admin', perms: 31 },
        { scheme: 'x509', id: 'CN=monitor', perms: 1 },
      ],
    });
    writeFileSync(p, zk("{'CN=admin': ALL}"));
    expect(refusal(() => loadAgentConfig(p, {}))).toMatch(
      /^zookeeper\.set_acls\.CN=admin in .*zk\.yml must be a list of permissions/,
    );
  });

  it('through the environment too', () => {
    const p = write('env.yml', '');
    expect(refusal(() => loadAgentConfig(p, { PATRONI_CTL_KEYFILE_PASSWORD: 'x' }))).toMatch(
      /^ctl\.keyfile_password: /,
    );
    expect(refusal(() => loadAgentConfig(p, { PATRONI_ZOOKEEPER_USE_SSL: 'true' }))).toMatch(
      /etcd3 and zookeeper are both configured|zookeeper\.use_ssl/,
    );
    expect(refusal(() => loadAgentConfig(p, { PATRONI_CITUS_GROUP: '1' }))).toMatch(/^citus: /);
  });

  it('warns about PATRONI_<user>_PASSWORD, which Patroni 4 ignores', () => {
    const p = write('users.yml', '');
    const { warnings } = loadAgentConfig(p, {
      PATRONI_ADMIN_PASSWORD: 'x',
      PATRONI_SUPERUSER_PASSWORD: 'pw',
    });
    expect(warnings).toEqual([
      'environment variable PATRONI_ADMIN_PASSWORD: ignored (Patroni 3.x created bootstrap user admin from it, Patroni 4 and pgwarden do not); set bootstrap.users.admin in the configuration file',
    ]);
    expect(patroniEnvWarnings({ PATRONI_ETCD3_PASSWORD: 'x', PATRONI_REWIND_PASSWORD: 'y' })).toEqual([]);
  });
});

describe('edit-config refuses before writing (memory DCS)', () => {
  const PREFIX = '/service/demo/';
  let store: MemoryStore;
  let dcs: MemoryDcs;
  const out: string[] = [];
  const io: ActionIo = {
    out: (t) => out.push(t),
    warn: (t) => out.push(t),
    prompts: terminalPrompter({ isTty: false }),
    rest: { timeoutMs: 1000 },
    sleep: async () => undefined,
  };
  const req = { clusterName: 'demo', set: [] as string[], pg: [] as string[], quiet: true, force: true };

  beforeEach(() => {
    out.length = 0;
    store = new MemoryStore();
    dcs = new MemoryDcs(store, {
      namespace: '/service',
      scope: 'demo',
      ttl: 30,
      retryTimeout: 10,
      ctl: true,
    });
    store.put(`${PREFIX}config`, JSON.stringify({ ttl: 30, loop_wait: 10 }));
  });

  it('-s primary_stop_timeout=5: refused with the path, nothing written', async () => {
    const before = store.get(`${PREFIX}config`)?.value;
    await expect(editConfig(dcs, io, { ...req, set: ['primary_stop_timeout=5'] })).rejects.toThrow(
      new UserError(
        'primary_stop_timeout: not supported by pgwarden yet (a primary stop is never cut short); remove primary_stop_timeout or set it to 0',
      ),
    );
    expect(store.get(`${PREFIX}config`)?.value).toBe(before);
  });

  it('-s primary_stop_timeout=5: refused; -s synchronous_mode=quorum, -s slots.x.type=physical: written', async () => {
    await expect(editConfig(dcs, io, { ...req, set: ['primary_stop_timeout=5'] })).rejects.toThrow(
      /^primary_stop_timeout: /,
    );
    await editConfig(dcs, io, { ...req, set: ['synchronous_mode=quorum', 'slots.x.type=physical'] });
    expect(JSON.parse(store.get(`${PREFIX}config`)!.value)).toMatchObject({
      synchronous_mode: 'quorum',
      slots: { x: { type: 'physical' } },
    });
  });

  it('the safe values are written', async () => {
    await editConfig(dcs, io, { ...req, set: ['failsafe_mode=true', 'synchronous_mode=true'] });
    expect(JSON.parse(store.get(`${PREFIX}config`)!.value)).toMatchObject({
      failsafe_mode: true,
      synchronous_mode: true,
    });
  });

  it('a refused value already in the DCS (a Patroni node wrote it) does not block an unrelated change', async () => {
    store.put(`${PREFIX}config`, JSON.stringify({ ttl: 30, primary_stop_timeout: 5 }));
    await editConfig(dcs, io, { ...req, set: ['loop_wait=5'] });
    expect(JSON.parse(store.get(`${PREFIX}config`)!.value)).toEqual({
      ttl: 30,
      primary_stop_timeout: 5,
      loop_wait: 5,
    });
  });

  it('assertDynamicConfigChange, the call PATCH /config makes, names only what the change brings in', () => {
    expect(() => assertDynamicConfigChange({}, { primary_stop_timeout: 5 })).toThrow(
      /^primary_stop_timeout: /,
    );
    // A standby cluster is supported: adding or removing it is accepted.
    expect(assertDynamicConfigChange({}, { standby_cluster: { host: 'x', port: 5432 } })).toEqual([]);
    expect(assertDynamicConfigChange({ standby_cluster: { host: 'x' } }, { standby_cluster: null })).toEqual(
      [],
    );
    expect(
      assertDynamicConfigChange({ slots: { a: {} } }, { slots: { a: {} }, ttl: 20, whatever: 1 }),
    ).toEqual(['whatever: unknown key, ignored']);
  });
});

describe('agent start: the DCS config key', () => {
  it('stops the agent on a refused setting, naming every one and what to do', () => {
    expect(
      refusal(() =>
        assertDynamicConfigAtStart({
          ttl: 30,
          primary_stop_timeout: 5,
          standby_cluster: { host: 'h', primary_slot_name: 'pm_1', create_replica_methods: ['basebackup'] },
          slots: { s: {} },
        }),
      ),
    ).toBe(
      [
        "the cluster's dynamic configuration (DCS config key) asks for what pgwarden does not do:",
        'primary_stop_timeout: not supported by pgwarden yet (a primary stop is never cut short); remove primary_stop_timeout or set it to 0',
        'change it with pgwarden edit-config',
      ].join('\n'),
    );
  });

  it('starts with warnings for keys Patroni ignores', () => {
    expect(assertDynamicConfigAtStart({ ttl: 30, retry_timout: 10 })).toEqual([
      'dynamic configuration (DCS config key): retry_timout: unknown key, ignored',
    ]);
  });
});

describe('run time: refused settings in the DCS config key', () => {
  it('synchronous_mode quorum is supported: no refusal, quorum commit', () => {
    const data = { synchronous_mode: 'quorum', ttl: 30 };
    const { effective, errors } = runtimeDynamicConfig(data);
    expect(errors).toEqual([]);
    expect(haConfigFromDynamic(effective as Record<string, never>).synchronousMode).toBe('quorum');
  });

  it('standby_cluster is supported: taken as it is, the HA core reads it (no pause, synchronous mode off)', () => {
    const data = { standby_cluster: { host: '10.0.0.9', port: 5432 }, synchronous_mode: true };
    const { effective, errors } = runtimeDynamicConfig(data);
    expect(errors).toEqual([]);
    const ha = haConfigFromDynamic(effective);
    expect(ha.paused).toBe(false);
    expect(ha.synchronousMode).toBe('off');
    expect(ha.standby).toEqual({ host: '10.0.0.9', port: 5432 });
  });

  it('failsafe_mode true is supported: no refusal, taken as it is', () => {
    const data = { failsafe_mode: true };
    const { effective, errors } = runtimeDynamicConfig(data);
    expect(errors).toEqual([]);
    expect(effective).toBe(data);
    expect(haConfigFromDynamic(effective as Record<string, never>).failsafeMode).toBe(true);
  });

  it('a supported configuration passes through untouched', () => {
    const data = { ttl: 30, synchronous_mode: true, postgresql: { parameters: { max_connections: 50 } } };
    const r = runtimeDynamicConfig(data);
    expect(r.errors).toEqual([]);
    expect(r.effective).toBe(data);
  });

  it('the guard logs each set of refusals once, and again when it changes', () => {
    const logged: string[] = [];
    const log = { error: (t: string): number => logged.push(t) };
    const guard = new DynamicConfigGuard();
    guard.absorb({ primary_stop_timeout: 5 }, log);
    guard.absorb({ primary_stop_timeout: 5 }, log);
    expect(logged).toEqual([
      'dynamic configuration (DCS config key): primary_stop_timeout: not supported by pgwarden yet (a primary stop is never cut short); remove primary_stop_timeout or set it to 0; this node goes on with the safe reading',
    ]);
    guard.absorb({ primary_stop_timeout: 0 }, log);
    guard.absorb({ primary_stop_timeout: 5 }, log);
    expect(logged).toHaveLength(2);
  });
});

interface KeysFixture {
  readonly source: string;
  readonly schema: readonly string[];
  readonly env: Readonly<Record<string, readonly string[]>>;
  readonly envDcsSuffixes: readonly string[];
  readonly envDcs: Readonly<Record<string, readonly string[]>>;
}

const FIXTURE = JSON.parse(
  readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'patroni-4.1.4-config-keys.json'), 'utf8'),
) as KeysFixture;

function leafPaths(tree: unknown, prefix: string[] = []): string[] {
  if (typeof tree === 'object' && tree !== null && !Array.isArray(tree) && Object.keys(tree).length > 0) {
    return Object.entries(tree).flatMap(([k, v]) => leafPaths(v, [...prefix, k]));
  }
  return prefix.length === 0 ? [] : [prefix.join('.')];
}

describe("Patroni 4.1.4's own schema: no key falls through", () => {
  it('the fixture is the 4.1.4 schema', () => {
    expect(FIXTURE.source).toBe('patroni 4.1.4');
    expect(FIXTURE.schema.length).toBeGreaterThan(150);
    expect(FIXTURE.schema).toContain('watchdog.mode');
    expect(FIXTURE.schema).toContain('bootstrap.dcs.standby_cluster.host');
  });

  it.each(FIXTURE.schema.map((p) => [p]))('%s is classified', (dotted) => {
    const path = dotted.split('.');
    const dynamic = path[0] === 'bootstrap' && path[1] === 'dcs' && path.length > 2;
    const rule = dynamic ? classify(DYNAMIC_RULES, path.slice(2)) : classify(LOCAL_RULES, path);
    expect(rule, `${dotted} has no rule in src/config/key-registry.ts`).toBeDefined();
  });
});

describe("Patroni 4.1.4's PATRONI_* variables: mapped as Patroni maps them", () => {
  it.each(Object.entries(FIXTURE.env))('%s', (name, patroniPaths) => {
    const tree = applyPatroniEnv({}, { [name]: '1' });
    expect(leafPaths(tree).sort()).toEqual([...patroniPaths].sort());
    // Every one lands on a key the registry knows: supported, refused or warned, never "unknown".
    const found = checkLocalKeys(tree);
    expect(found.warnings.filter((w) => w.includes('unknown key'))).toEqual([]);
    for (const p of patroniPaths) expect(classify(LOCAL_RULES, p.split('.')), p).toBeDefined();
  });

  it.each(Object.entries(FIXTURE.envDcs))('%s', (name, patroniPaths) => {
    expect(leafPaths(applyPatroniEnv({}, { [name]: '1' })).sort()).toEqual([...patroniPaths].sort());
  });

  it('every DCS suffix Patroni accepts is mapped', () => {
    expect(FIXTURE.envDcsSuffixes.length).toBeGreaterThan(30);
    for (const suffix of FIXTURE.envDcsSuffixes) {
      expect(Object.keys(FIXTURE.envDcs)).toContain(`PATRONI_ETCD3_${suffix}`);
    }
  });
});

describe('validateDynamicConfig', () => {
  it('prefixes its messages with where the configuration sits', () => {
    expect(validateDynamicConfig({ primary_stop_timeout: 5, x: 1 }, 'bootstrap.dcs')).toEqual({
      errors: [
        'bootstrap.dcs.primary_stop_timeout: not supported by pgwarden yet (a primary stop is never cut short); remove primary_stop_timeout or set it to 0',
      ],
      warnings: ['bootstrap.dcs.x: unknown key, ignored'],
    });
  });
});
