/**
 * `list --all` / `topology --all` (issue 14) on the in-memory DCS: every cluster of the namespace in name order,
 * read with one getClusters per refresh; tables print as `list` prints each cluster, json/yaml/tsv as one document
 * holding what `list CLUSTER` says of each (union of columns, a cluster's rows keep only its own columns).
 */
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { LocalConfig } from '../../src/config/local-config.js';
import { UserError } from '../../src/config/errors.js';
import type { Dcs } from '../../src/dcs/dcs.js';
import { MemoryDcs, MemoryStore } from '../../src/dcs/memory/memory-dcs.js';
import { listClusters, type ListRequest } from '../../src/ctl/list-command.js';
import { MEMBER_COLUMNS, buildMembersTable, mergeMembersTables } from '../../src/ctl/list.js';
import type { ListFormat } from '../../src/render/members.js';
import { clusterFromNodes } from '../../src/dcs/codec.js';

const CONFIG: LocalConfig = { source: 'test.yml', tree: {}, namespace: '/service', scope: 'alpha' };

function memberJson(
  port: number,
  version: string,
  role: string,
  extra: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    conn_url: `postgres://127.0.0.1:${port}/postgres`,
    api_url: `http://127.0.0.1:${port + 3000}/patroni`,
    state: role === 'primary' || role === 'master' ? 'running' : 'streaming',
    role,
    version,
    xlog_location: 67108960,
    receive_lsn: 67108960,
    replay_lsn: 67108960,
    timeline: 2,
    ...extra,
  });
}

/** A namespace of clusters running different Patroni versions (different columns), written out of name order. */
function namespaceStore(): MemoryStore {
  const store = new MemoryStore();
  const put = (key: string, value: unknown): void => {
    store.put(key, typeof value === 'string' ? value : JSON.stringify(value));
  };
  const cluster = (
    scope: string,
    version: string,
    members: [string, number, Record<string, unknown>?][],
  ): void => {
    const ns = `/service/${scope}/`;
    put(`${ns}initialize`, `77108218836319760${members.length}${scope.length}`);
    put(`${ns}config`, { ttl: 30, loop_wait: 10 });
    put(`${ns}leader`, members[0]![0]);
    put(`${ns}status`, { optime: 67108960 });
    members.forEach(([name, port, extra], i) => {
      const role = i === 0 ? (version === '3.0.2' ? 'master' : 'primary') : 'replica';
      put(`${ns}members/${name}`, memberJson(port, version, role, extra));
    });
  };
  cluster('gamma', '4.1.4', [
    ['g1', 5441],
    ['g2', 5442],
    ['g3', 5443, { tags: { replicatefrom: 'g2' } }],
  ]);
  cluster('alpha', '4.1.4', [
    ['a1', 5431],
    ['a2', 5432, { tags: { nofailover: true } }],
    ['a3', 5433],
  ]);
  cluster('beta', '3.0.2', [
    ['b1', 5421],
    ['b2', 5422],
    ['b3', 5423],
  ]);
  // Neither belongs to a cluster of /service: a key with no scope, and another namespace.
  put('/service/stray', 'x');
  put('/other/zeta/leader', 'z1');
  return store;
}

/** A memory client that counts its reads. */
function counted(store: MemoryStore, scope: string, reads: string[]): Dcs {
  const dcs = new MemoryDcs(store, { namespace: '/service', scope, ttl: 30, retryTimeout: 10, ctl: true });
  const getCluster = dcs.getCluster.bind(dcs);
  const getClusters = dcs.getClusters.bind(dcs);
  return Object.assign(dcs, {
    getCluster: (o?: { readonly fresh?: boolean }) => (reads.push(`getCluster ${scope}`), getCluster(o)),
    getClusters: () => (reads.push('getClusters'), getClusters()),
  });
}

async function run(
  store: MemoryStore,
  request: Partial<ListRequest> & { format: ListFormat },
): Promise<{ out: string; warnings: string[]; reads: string[] }> {
  let out = '';
  const warnings: string[] = [];
  const reads: string[] = [];
  await listClusters({
    config: CONFIG,
    clusters: [],
    extended: false,
    timestamp: false,
    watchContinuous: false,
    write: (t) => (out += `${t}\n`),
    warn: (t) => warnings.push(t),
    open: async (_config, scope) => counted(store, scope, reads),
    ...request,
  });
  return { out, warnings, reads };
}

const NAMES = ['alpha', 'beta', 'gamma'];

/** `list NAME` once per cluster, in name order. */
async function eachAlone(store: MemoryStore, format: ListFormat): Promise<string[]> {
  const outs: string[] = [];
  for (const name of NAMES) outs.push((await run(store, { format, clusters: [name] })).out);
  return outs;
}

function tsvRecords(text: string): { header: string[]; rows: Record<string, string>[] } {
  const [head, ...lines] = text.trimEnd().split('\n');
  const header = (head ?? '').split('\t');
  const rows = lines.map((l) =>
    Object.fromEntries(
      l
        .split('\t')
        .map((v, i) => [header[i] ?? '?', v] as const)
        .filter(([, v]) => v !== ''),
    ),
  );
  return { header, rows };
}

describe('list --all and topology --all', () => {
  it.each(['pretty', 'topology'] as const)(
    '%s: one table per cluster in name order, as `list NAME` prints each, from one read',
    async (format) => {
      const store = namespaceStore();
      const all = await run(store, { format, all: true });
      expect(all.reads).toEqual(['getClusters']);
      expect(all.out).toBe((await eachAlone(store, format)).join(''));
      expect([...all.out.matchAll(/^\+ Cluster: (\w+) /gm)].map((m) => m[1])).toEqual(NAMES);
      expect(all.warnings).toEqual([]);
    },
  );

  it('json: one array holding what `list NAME -f json` says of each cluster', async () => {
    const store = namespaceStore();
    const all = await run(store, { format: 'json', all: true });
    expect(all.reads).toEqual(['getClusters']);
    expect(all.out.trimEnd().split('\n')).toHaveLength(1);
    const expected = (await eachAlone(store, 'json')).flatMap((o) => JSON.parse(o) as unknown[]);
    expect(JSON.parse(all.out)).toEqual(expected);
    // Key order too: the same text once the arrays' brackets are joined.
    const joined = (await eachAlone(store, 'json')).map((o) => o.trim().slice(1, -1)).join(', ');
    expect(all.out.trim()).toBe(`[${joined}]`);
  });

  it('yaml: one list holding what `list NAME -f yaml` says of each cluster', async () => {
    const store = namespaceStore();
    const all = await run(store, { format: 'yaml', all: true });
    const expected = (await eachAlone(store, 'yaml')).flatMap((o) => parseYaml(o) as unknown[]);
    expect(parseYaml(all.out)).toEqual(expected);
    // The same text as the lists one after another (each `list` ends with PyYAML's newline and print's).
    expect(all.out).toBe((await eachAlone(store, 'yaml')).map((o) => o.trimEnd()).join('\n') + '\n\n');
  });

  it('tsv: one header (the union of the columns), then every cluster’s rows as its own list has them', async () => {
    const store = namespaceStore();
    const all = tsvRecords((await run(store, { format: 'tsv', all: true })).out);
    const alone = (await eachAlone(store, 'tsv')).map(tsvRecords);
    expect(all.header).toEqual(MEMBER_COLUMNS.filter((c) => alone.some((a) => a.header.includes(c))));
    // beta (3.0.2) has `Lag in MB`, alpha and gamma (4.1.4) the LSN columns, alpha's tags the Tags column.
    expect(all.header).toEqual(expect.arrayContaining(['Lag in MB', 'Receive LSN', 'Replay Lag', 'Tags']));
    expect(all.rows).toEqual(alone.flatMap((a) => a.rows));
    expect(all.rows.map((r) => r['Cluster'])).toEqual(NAMES.flatMap((n) => [n, n, n]));
  });

  it('refreshes with -w: each iteration reads the namespace once and sees clusters created since', async () => {
    const store = namespaceStore();
    let stop: () => void = () => undefined;
    const stopped = new Promise<void>((r) => (stop = r));
    let iterations = 0;
    let out = '';
    const screens: string[] = [];
    const reads: string[] = [];
    await listClusters({
      config: CONFIG,
      clusters: [],
      all: true,
      format: 'pretty',
      extended: false,
      timestamp: true,
      watchContinuous: false,
      watchSeconds: '0.01',
      write: (t) => {
        out += `${t}\n`;
        if (/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(t) && ++iterations === 2) {
          store.put('/service/delta/leader', 'd1');
          store.put('/service/delta/members/d1', memberJson(5451, '4.1.4', 'primary'));
        }
        if (iterations === 3 && t.includes('Cluster: delta')) stop();
      },
      warn: () => undefined,
      open: async (_config, scope) => counted(store, scope, reads),
      stopped,
      screen: (t) => screens.push(t),
    });
    expect(screens.length).toBeGreaterThanOrEqual(3);
    expect(screens.every((s) => s === '\x1b[2J\x1b[1;1H')).toBe(true);
    expect(reads.every((r) => r === 'getClusters')).toBe(true);
    expect(reads.length).toBe(screens.length);
    const iterationsOut = out.split(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n/m).slice(1);
    const names = (s: string): string[] => [...s.matchAll(/^\+ Cluster: (\w+) /gm)].map((m) => m[1]!);
    expect(names(iterationsOut[0]!)).toEqual(NAMES);
    expect(names(iterationsOut.at(-1)!)).toEqual(['alpha', 'beta', 'delta', 'gamma']);
  });

  it('an empty namespace: says so on stderr; json and yaml print an empty list, tables nothing', async () => {
    const store = new MemoryStore();
    for (const [format, expected] of [
      ['pretty', ''],
      ['topology', ''],
      ['tsv', ''],
      ['json', '[]\n'],
      ['yaml', '[]\n\n'],
    ] as const) {
      const r = await run(store, { format, all: true });
      expect({ format, out: r.out }).toEqual({ format, out: expected });
      expect(r.warnings).toEqual(['Listing members: no cluster in namespace /service']);
    }
  });

  it('refuses cluster names with --all', async () => {
    await expect(run(namespaceStore(), { format: 'pretty', all: true, clusters: ['alpha'] })).rejects.toThrow(
      new UserError('Listing members: --all reads every cluster; do not also name clusters (alpha)', 2),
    );
  });
});

describe('mergeMembersTables', () => {
  it('every table’s columns are in MEMBER_COLUMNS’ order', () => {
    const store = namespaceStore();
    for (const scope of NAMES) {
      const keys = store.list(`/service/${scope}/`).map(([k, v]) => ({
        key: k.slice(`/service/${scope}/`.length),
        value: v.value,
        version: String(v.modRevision),
        modifyVersion: String(v.modRevision),
      }));
      for (const extended of [false, true]) {
        const t = buildMembersTable(clusterFromNodes(scope, keys), scope, { extended, format: 'json' });
        const positions = t.columns.map((c) => (MEMBER_COLUMNS as readonly string[]).indexOf(c));
        expect(positions.every((p) => p >= 0)).toBe(true);
        expect([...positions].sort((a, b) => a - b)).toEqual(positions);
      }
    }
  });

  it('of no table is an empty document', () => {
    expect(mergeMembersTables([])).toMatchObject({ columns: [], rows: [] });
  });
});
