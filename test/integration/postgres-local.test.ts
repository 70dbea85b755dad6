/**
 * src/postgres against a real PostgreSQL 15: initdb -> config files -> start -> status queries -> replication
 * user + slot -> pg_basebackup -> streaming replica -> promote -> stop -> pg_controldata.
 * Runs the pg programs as `postgres` when the tests run as root.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort, removeDir, tempDir, waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { writePrivateFile, type PgBinariesConfig, type RunAs } from '../../src/postgres/binaries.js';
import { basebackup } from '../../src/postgres/basebackup.js';
import {
  buildReplicaSettings,
  buildServerParameters,
  cmdlineArgs,
  installHbaFile,
  installPostgresqlConf,
  renderHbaLines,
  renderPostgresqlConf,
  slotNameForMember,
  writeStandbySignal,
} from '../../src/postgres/config-writer.js';
import { initdb } from '../../src/postgres/initdb.js';
import {
  controldata,
  isRunning,
  promotePostgres,
  readMajorVersion,
  readPostmasterPid,
  startPostgres,
  stopPostgres,
  summarizeControldata,
} from '../../src/postgres/pg-ctl.js';
import {
  connect,
  createPhysicalSlot,
  instanceStatus,
  postmasterStartTime,
  replicationSlots,
  serverVersionNum,
  statReplication,
  type PgSession,
} from '../../src/postgres/queries.js';

const BIN_DIR = '/usr/lib/postgresql/15/bin';

function postgresUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

async function killPostmaster(pid: number): Promise<void> {
  const alive = (): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(pid, 'SIGQUIT'); // immediate shutdown
  try {
    await waitFor('postmaster exit', () => !alive(), 10_000, 50);
  } catch {
    if (alive()) process.kill(pid, 'SIGKILL');
  }
}

const describeWithNeeds = describeNeeding('postgres');

describeWithNeeds('local PostgreSQL control (src/postgres)', () => {
  const owner = postgresUser();
  const bins: PgBinariesConfig = { binDir: BIN_DIR, runAs: owner };
  const replPassword = `re:pl\\pa'ss w0rd`;
  const hba = [
    'local all all trust',
    'host all all 127.0.0.1/32 scram-sha-256',
    'host replication replicator 127.0.0.1/32 scram-sha-256',
  ];
  let base = '';
  let sock = '';
  let logs = '';
  let data1 = '';
  let data2 = '';
  let port1 = 0;
  let port2 = 0;
  const pids = new Set<number>();
  const sessions: PgSession[] = [];

  const mkdirOwned = (path: string, mode: number): string => {
    mkdirSync(path, { recursive: true });
    chmodSync(path, mode);
    if (owner) chownSync(path, owner.uid, owner.gid);
    return path;
  };
  const session = async (port: number): Promise<PgSession> => {
    const s = await connect({ host: sock, port, user: 'postgres' });
    sessions.push(s);
    return s;
  };
  const serverParameters = (port: number) =>
    buildServerParameters({
      scope: 'demo',
      listen: `127.0.0.1:${port}`,
      majorVersion: readMajorVersion(data1),
      dynamicParameters: {
        unix_socket_directories: sock,
        max_connections: 30,
        max_wal_senders: 5,
        shared_buffers: '16MB',
        fsync: 'off',
        wal_level: 'hot_standby',
      },
    });

  beforeAll(async () => {
    base = tempDir('pglocal');
    sock = mkdirOwned(join(base, 'sock'), 0o755);
    logs = mkdirOwned(join(base, 'logs'), 0o755);
    data1 = mkdirOwned(join(base, 'node1'), 0o700);
    data2 = mkdirOwned(join(base, 'node2'), 0o700);
    port1 = await freePort();
    port2 = await freePort();
  });

  afterAll(async () => {
    for (const s of sessions) await s.close().catch(() => undefined);
    for (const dir of [data1, data2]) {
      const pid = dir ? readPostmasterPid(dir)?.pid : undefined;
      if (pid !== undefined) pids.add(pid);
    }
    for (const pid of pids) await killPostmaster(pid);
    if (base) removeDir(base);
  });

  it('initdb with Patroni-style options, config files, start as primary', async () => {
    await initdb({
      bins,
      dataDir: data1,
      options: [{ encoding: 'UTF8' }, 'data-checksums', { locale: 'C' }],
      superuser: { username: 'postgres', password: 'sup:er\\secret' },
    });
    expect(readMajorVersion(data1)).toBe(150000);

    const sp = serverParameters(port1);
    expect(sp.parameters.get('wal_level')).toBe('replica');
    installPostgresqlConf(
      data1,
      renderPostgresqlConf({
        parameters: sp.parameters,
        hbaFile: join(data1, 'pg_hba.conf'),
        identFile: join(data1, 'pg_ident.conf'),
      }),
      { owner },
    );
    installHbaFile(data1, 'pg_hba.conf', renderHbaLines(hba), { owner });
    expect(existsSync(join(data1, 'postgresql.base.conf'))).toBe(true);
    expect(readFileSync(join(data1, 'postgresql.conf'), 'utf8')).toContain("include 'postgresql.base.conf'");

    const pid = await startPostgres({
      bins,
      dataDir: data1,
      configFile: join(data1, 'postgresql.conf'),
      postgresArgs: cmdlineArgs(sp.cmdline),
      logFile: join(logs, 'node1.log'),
      timeoutMs: 30_000,
    });
    pids.add(pid);
    expect(isRunning(data1)).toBe(pid);

    const s = await session(port1);
    const st = await instanceStatus(s);
    expect(st.inRecovery).toBe(false);
    expect(st.timeline).toBe(1);
    expect(st.flushLsn).toBeGreaterThan(0n);
    expect(await serverVersionNum(s)).toBeGreaterThanOrEqual(150000);
    expect(await postmasterStartTime(s)).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
    const settings = await s.query<{ name: string; setting: string }>(
      "SELECT name, setting FROM pg_settings WHERE name IN ('cluster_name', 'max_connections', 'wal_log_hints')",
    );
    expect(Object.fromEntries(settings.map((r) => [r.name, r.setting]))).toEqual({
      cluster_name: 'demo',
      max_connections: '30',
      wal_log_hints: 'on',
    });
  });

  it('creates a replication user and a slot, clones with pg_basebackup, streams as node-2', async () => {
    const s = await session(port1);
    await s.query(`CREATE USER replicator REPLICATION PASSWORD '${replPassword.replace(/'/g, "''")}'`);
    const slot = slotNameForMember('node-2');
    expect(slot).toBe('node_2');
    expect(await createPhysicalSlot(s, slot)).toBe(true);
    expect(await createPhysicalSlot(s, slot)).toBe(false);

    const replication = { username: 'replicator', password: replPassword };
    await basebackup({
      bins,
      dataDir: data2,
      source: { host: '127.0.0.1', port: port1 },
      replication,
      pgpassPath: join(base, 'pgpass-basebackup'),
      options: [{ label: 'pgwarden test' }],
    });
    expect(existsSync(join(data2, 'PG_VERSION'))).toBe(true);

    const sp = serverParameters(port2);
    const pgpassPath = join(base, 'pgpass-node2');
    const replica = buildReplicaSettings({
      memberName: 'node-2',
      primary: { host: '127.0.0.1', port: port1 },
      replication,
      majorVersion: readMajorVersion(data2),
      pgpassPath,
    });
    writePrivateFile(pgpassPath, replica.pgpass + '\n', owner);
    installPostgresqlConf(
      data2,
      renderPostgresqlConf({
        parameters: sp.parameters,
        hbaFile: join(data2, 'pg_hba.conf'),
        identFile: join(data2, 'pg_ident.conf'),
        recovery: replica.recovery,
      }),
      { owner },
    );
    writeStandbySignal(data2, { owner });

    const pid = await startPostgres({
      bins,
      dataDir: data2,
      configFile: join(data2, 'postgresql.conf'),
      postgresArgs: cmdlineArgs(sp.cmdline),
      logFile: join(logs, 'node2.log'),
      timeoutMs: 30_000,
    });
    pids.add(pid);

    const row = await waitFor(
      'node-2 streaming in pg_stat_replication',
      async () =>
        (await statReplication(s)).find((r) => r.applicationName === 'node-2' && r.state === 'streaming'),
      20_000,
      100,
    );
    expect(row.usename).toBe('replicator');
    expect(row.clientAddr).toBe('127.0.0.1');
    expect(row.syncState).toBe('async');
    expect((await replicationSlots(s)).find((r) => r.slotName === slot)?.active).toBe(true);

    const r = await session(port2);
    const st = await waitFor(
      'replica receiving',
      async () => {
        const x = await instanceStatus(r);
        return x.receiverState === 'streaming' && x.receiveLsn !== undefined ? x : undefined;
      },
      20_000,
      100,
    );
    expect(st.inRecovery).toBe(true);
    expect(st.timeline).toBe(1);
    expect(st.receiverSlotName).toBe(slot);
    expect(st.replayLsn).toBeGreaterThan(0n);
  });

  it('promotes the replica to timeline 2', async () => {
    await promotePostgres({ bins, dataDir: data2, timeoutMs: 30_000 });
    const r = await session(port2);
    const st = await waitFor(
      'promoted replica on timeline 2',
      async () => {
        const x = await instanceStatus(r);
        return !x.inRecovery && x.timeline === 2 ? x : undefined;
      },
      20_000,
      100,
    );
    expect(st.flushLsn).toBeGreaterThan(0n);
    expect(existsSync(join(data2, 'standby.signal'))).toBe(false);
  });

  it('stops both (fast); pg_controldata says shut down', async () => {
    for (const s of sessions.splice(0)) await s.close();
    expect(await stopPostgres({ bins, dataDir: data1, mode: 'fast', timeoutMs: 30_000 })).toBe('stopped');
    expect(await stopPostgres({ bins, dataDir: data2, mode: 'fast', timeoutMs: 30_000 })).toBe('stopped');
    expect(isRunning(data1)).toBeUndefined();
    expect(isRunning(data2)).toBeUndefined();
    expect(await stopPostgres({ bins, dataDir: data1, mode: 'fast' })).toBe('not-running');

    const c1 = summarizeControldata(await controldata(bins, data1));
    const c2 = summarizeControldata(await controldata(bins, data2));
    expect(c1.clusterState).toBe('shut down');
    expect(c2.clusterState).toBe('shut down');
    expect(c1.systemIdentifier).toMatch(/^\d+$/);
    expect(c2.systemIdentifier).toBe(c1.systemIdentifier);
    expect(c1.timeline).toBe(1);
    expect(c2.timeline).toBe(2);
    expect(c2.latestCheckpointLocation).toBeGreaterThan(0n);
  });
});
