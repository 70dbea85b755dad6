/**
 * Replication slots on three pgwarden agents (etcd3, PostgreSQL with wal_level logical), as Patroni 4.1.4 keeps
 * them: a permanent physical slot exists on the primary and on both replicas; a slot matched by `ignore_slots` is
 * never dropped while an unknown one is; a permanent logical slot is copied to the replicas and advanced there to
 * the consumer's position, so that after a switchover and then a failover (kill -9 of the leader) the consumer
 * goes on from where it stopped: it reads the rows it had not read, and none twice. Before each change of leader
 * every replica's copy is safe for a failover as Patroni 4.1.4 judges it (the primary's physical slot for the
 * replica holds a catalog_xmin between the primary logical slot's and the copy's, the agent says so) and the
 * replica's pg_wal holds the WAL from the copy's restart_lsn on.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { runCommand } from '../harness/patroni.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';

const PGWARDEN = resolve(import.meta.dirname, '..', '..', 'bin', 'run.js');

describeNeeding(
  'postgres',
  'etcd',
  'bundle',
  'root',
)('replication slots on pgwarden agents', () => {
  let etcd: EtcdServer | undefined;
  let agents: AgentCluster | undefined;
  const cluster = (): AgentCluster => {
    if (!agents) throw new Error('no cluster');
    return agents;
  };
  const idx = (name: string): number => cluster().nodes.findIndex((n) => n.name === name);

  beforeAll(async () => {
    etcd = await startEtcd();
    agents = await startAgentCluster({
      etcdEndpoint: etcd.endpoint,
      scope: 'slots',
      walLevel: 'logical',
      bootstrapDcsExtra: [
        'slots:',
        '  perm_phys:',
        '  perm_logical:',
        '    type: logical',
        '    database: postgres',
        '    plugin: test_decoding',
        'ignore_slots:',
        '- name: keep_me',
      ].join('\n'),
    });
    await agents.waitReady({ timeoutMs: 120_000 });
  }, 180_000);

  afterAll(async () => {
    try {
      await agents?.stop();
    } finally {
      await etcd?.stop();
    }
  }, 120_000);

  /** One value from `sql` on a node ('' when it failed). */
  const sql = async (name: string, query: string): Promise<string> => {
    const r = await cluster().psql(idx(name), query);
    return r.code === 0 ? r.stdout.trim() : '';
  };
  const slotOf = (name: string, slot: string): Promise<string> =>
    sql(
      name,
      `SELECT slot_type || ' ' || coalesce(confirmed_flush_lsn::text, restart_lsn::text, '-')
         FROM pg_replication_slots WHERE slot_name = '${slot}'`,
    );
  const names = (): string[] => cluster().nodes.map((n) => n.name);
  const leader = (): Promise<string> => cluster().waitReady({ timeoutMs: 90_000 });

  /** Until every node's copy of perm_logical is at the leader's confirmed position. */
  const logicalInSync = async (lead: string, exclude: readonly string[] = []): Promise<void> => {
    await waitFor(
      'perm_logical in sync on every node',
      async () => {
        const want = await slotOf(lead, 'perm_logical');
        if (!want.startsWith('logical ')) return false;
        for (const n of names().filter((x) => !exclude.includes(x)))
          if ((await slotOf(n, 'perm_logical')) !== want) return false;
        return true;
      },
      120_000,
      1000,
    ).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${cluster().logTails(40)}`);
    });
  };

  /**
   * Patroni's readiness of `replica`'s copy of perm_logical (slots.py `_ready_logical_slots`): on the primary
   * `lead`, the logical slot's catalog_xmin <= the catalog_xmin of the replica's physical slot <= the copy's
   * catalog_xmin; and the replica's pg_wal still has the segment of the copy's restart_lsn.
   */
  const copySafe = async (lead: string, replica: string): Promise<boolean> => {
    const onPrimary = await sql(
      lead,
      `SELECT l.catalog_xmin::text || ' ' || p.catalog_xmin::text
         FROM pg_replication_slots l, pg_replication_slots p
        WHERE l.slot_name = 'perm_logical' AND p.slot_name = '${replica}'`,
    );
    const onReplica = await sql(
      replica,
      `SELECT s.catalog_xmin::text || ' ' ||
              ((SELECT pg_catalog.min(pg_catalog.substr(name, 9, 16)) FROM pg_catalog.pg_ls_waldir()
                 WHERE name ~ '^[0-9A-F]{24}$')
               <= pg_catalog.lpad(pg_catalog.upper(pg_catalog.to_hex(
                    pg_catalog.floor((s.restart_lsn - '0/0') / 4294967296)::bigint)), 8, '0')
                  || pg_catalog.lpad(pg_catalog.upper(pg_catalog.to_hex(
                    pg_catalog.floor(pg_catalog.mod(s.restart_lsn - '0/0', 4294967296) / z.size)::bigint)), 8, '0'))::text
         FROM pg_replication_slots s,
              (SELECT setting::numeric AS size FROM pg_catalog.pg_settings WHERE name = 'wal_segment_size') z
        WHERE s.slot_name = 'perm_logical'`,
    );
    const [logical, physical] = onPrimary.split(' ').map(Number);
    const [copy, walHeld] = onReplica.split(' ');
    if (logical === undefined || physical === undefined || !copy || walHeld !== 'true') return false;
    if (!(logical <= physical && physical <= Number(copy))) return false;
    // The agent says so too, after its last copy of the slot.
    const log = readFileSync(cluster().nodes[idx(replica)]?.logFile ?? '', 'utf8');
    return (
      log.lastIndexOf('Logical slot perm_logical is safe to be used after a failover') >
      log.lastIndexOf('copying logical slots')
    );
  };

  /** Until every replica's copy of perm_logical is safe for a failover (see copySafe). */
  const logicalSafe = async (lead: string): Promise<void> => {
    await waitFor(
      'perm_logical safe for a failover on every replica',
      async () => {
        for (const n of names().filter((x) => x !== lead)) if (!(await copySafe(lead, n))) return false;
        return true;
      },
      120_000,
      1000,
    ).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${cluster().logTails(40)}`);
    });
  };

  /** The consumer: every change of table t not read yet, as the list of ids inserted. */
  const consume = async (lead: string): Promise<number[]> => {
    const r = await cluster().psql(
      idx(lead),
      "SELECT data FROM pg_logical_slot_get_changes('perm_logical', NULL, NULL)",
    );
    if (r.code !== 0) throw new Error(`consuming on ${lead} failed: ${r.stderr}\n${cluster().logTails(30)}`);
    return [...r.stdout.matchAll(/table public\.t: INSERT: id\[integer\]:(\d+)/g)].map((m) => Number(m[1]));
  };
  const insert = (lead: string, ids: readonly number[]): Promise<string> =>
    sql(lead, `INSERT INTO t SELECT unnest(ARRAY[${ids.join(',')}]) RETURNING 'ok'`);

  it(
    'a permanent physical slot exists on the primary and on both replicas',
    { timeout: 150_000 },
    async () => {
      await waitFor(
        'perm_phys on every node',
        async () => {
          for (const n of names()) if (!(await slotOf(n, 'perm_phys')).startsWith('physical ')) return false;
          return true;
        },
        120_000,
        1000,
      ).catch((e: unknown) => {
        throw new Error(`${String(e)}\n${cluster().logTails(40)}`);
      });
    },
  );

  it('an ignored slot is kept while an unknown one is dropped', { timeout: 150_000 }, async () => {
    const lead = await leader();
    await sql(lead, "SELECT pg_create_physical_replication_slot('keep_me', true)");
    await sql(lead, "SELECT pg_create_physical_replication_slot('drop_me', true)");
    expect(await slotOf(lead, 'keep_me')).toMatch(/^physical /);
    await waitFor('drop_me dropped', async () => (await slotOf(lead, 'drop_me')) === '', 60_000, 500);
    expect(await slotOf(lead, 'keep_me')).toMatch(/^physical /);
  });

  it(
    'a logical slot with a consumer position survives a switchover and a failover',
    { timeout: 480_000 },
    async () => {
      let lead = await leader();
      expect(await sql(lead, 'CREATE TABLE t (id integer PRIMARY KEY) ; SELECT 1')).toBe('1');
      // The slot was created before the replicas were cloned: its restart_lsn is in WAL they never had, so no
      // replica takes a copy until the consumer moves it past their clone. A checkpoint logs a running_xacts
      // record after the clones; reads that confirm past it move restart_lsn there (a read that finds nothing new
      // still does, for what it decodes before the confirmed position).
      const mark = await sql(lead, 'SELECT pg_catalog.pg_current_wal_lsn()');
      expect(await sql(lead, 'CHECKPOINT ; SELECT 1')).toBe('1');
      await insert(lead, [1, 2, 3]);
      expect(await consume(lead)).toEqual([1, 2, 3]);
      await waitFor(
        "perm_logical's restart_lsn past the replicas' clones",
        async () => {
          expect(await consume(lead)).toEqual([]);
          const past = await sql(
            lead,
            `SELECT restart_lsn >= '${mark}' FROM pg_replication_slots WHERE slot_name = 'perm_logical'`,
          );
          return past === 't';
        },
        60_000,
        1000,
      );
      await insert(lead, [4, 5]);
      await logicalInSync(lead);
      await logicalSafe(lead);

      // Switchover: the candidate's copy is at the consumer's position.
      const candidate = names().find((n) => n !== lead) ?? '';
      const r = await runCommand(
        process.execPath,
        [
          PGWARDEN,
          '-c',
          cluster().nodes[0]?.configFile ?? '',
          'switchover',
          'slots',
          '--force',
          '--candidate',
          candidate,
        ],
        { timeoutMs: 90_000, cwd: cluster().dir },
      );
      expect(r.code, `${r.stdout}\n${r.stderr}\n${cluster().logTails(40)}`).toBe(0);
      lead = await leader();
      expect(lead).toBe(candidate);
      expect(await consume(lead)).toEqual([4, 5]);

      // Failover: kill -9 the leader once every replica's copy has the new position.
      await insert(lead, [6, 7]);
      expect(await consume(lead)).toEqual([6, 7]);
      await insert(lead, [8, 9]);
      await logicalInSync(lead);
      await logicalSafe(lead);
      await waitFor(
        'rows 8 and 9 replayed everywhere',
        async () => {
          for (const n of names()) if ((await sql(n, 'SELECT count(*) FROM t')) !== '9') return false;
          return true;
        },
        60_000,
        500,
      );
      const old = lead;
      await cluster().kill9(idx(old));
      lead = await cluster().waitReady({ timeoutMs: 120_000, exclude: [old] });
      expect(lead).not.toBe(old);
      expect(await consume(lead)).toEqual([8, 9]);
    },
  );
});
