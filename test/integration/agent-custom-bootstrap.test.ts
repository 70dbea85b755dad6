/**
 * Issue 9 on real servers (PostgreSQL 15, etcd3): a new cluster made by a custom `bootstrap.method` (a script that
 * takes a pg_basebackup of another running cluster) with a `recovery_conf`: the replay ends, the new leader has
 * the old data, the superuser password of the new configuration (set through the temporary trust pg_hba.conf),
 * the configured pg_hba.conf back, no recovery settings left, and patroni.dynamic.json cached; and a second agent
 * started under a member name already running is refused (CRITICAL, exit code 1).
 */
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { etcdPost, startEtcd, type EtcdServer } from '../harness/etcd.js';
import { runCommand } from '../harness/patroni.js';
import { freePort, removeDir, startProcess, tempDir, waitFor, type Managed } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const PG_BIN = '/usr/lib/postgresql/15/bin';

function postgresIds(): { uid: number; gid: number } {
  const f =
    readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('postgres:'))
      ?.split(':') ?? [];
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

interface Extra {
  readonly dir: string;
  readonly restPort: number;
  readonly pgPort: number;
  readonly configFile: string;
  readonly logFile: string;
  readonly dataDir: string;
}

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'bundle', 'root');

describeWithNeeds('pgwarden agents: custom bootstrap method, duplicate member name', () => {
  let etcd: EtcdServer | undefined;
  let source: AgentCluster | undefined;
  const started: { agent: Managed; dataDir: string }[] = [];
  const root = tempDir('custom-bootstrap');
  const { uid, gid } = postgresIds();
  let restored: { readonly e: Extra; readonly agent: Managed } | undefined;
  const src = (): AgentCluster => {
    if (!source) throw new Error('no source cluster');
    return source;
  };

  /** pg1's configuration moved to a new directory and ports, edited by `edit`. */
  async function extraNode(label: string, edit: (yml: string) => string): Promise<Extra> {
    const n = src().nodes[0];
    if (!n) throw new Error('no pg1');
    const dir = join(root, label);
    mkdirSync(join(dir, 'pglog'), { recursive: true });
    const restPort = await freePort();
    const pgPort = await freePort();
    const yml = edit(
      read(n.configFile)
        .replaceAll(n.dir, dir)
        .replaceAll(`:${n.restPort}`, `:${restPort}`)
        .replaceAll(`:${n.pgPort}`, `:${pgPort}`),
    );
    const e: Extra = {
      dir,
      restPort,
      pgPort,
      configFile: join(dir, 'pgwarden.yml'),
      logFile: join(dir, 'agent.log'),
      dataDir: join(dir, 'data'),
    };
    writeFileSync(e.configFile, yml);
    writeFileSync(e.logFile, '');
    for (const p of [dir, join(dir, 'pglog'), e.configFile, e.logFile]) chownSync(p, uid, gid);
    chmodSync(dir, 0o700);
    return e;
  }

  function startAgent(e: Extra): Managed {
    const agent = startProcess(
      'setpriv',
      [
        '--reuid=postgres',
        '--regid=postgres',
        '--init-groups',
        'env',
        '-i',
        `HOME=${e.dir}`,
        'PATH=/usr/bin:/bin',
        'LANG=C.UTF-8',
        process.execPath,
        join(REPO, 'bin', 'run.js'),
        'agent',
        e.configFile,
      ],
      e.logFile,
      { cwd: e.dir },
    );
    started.push({ agent, dataDir: e.dataDir });
    return agent;
  }

  const psqlAs = (e: Extra, sql: string, password: string) =>
    runCommand(
      'setpriv',
      [
        '--reuid=postgres',
        '--regid=postgres',
        '--init-groups',
        'env',
        `PGPASSWORD=${password}`,
        `${PG_BIN}/psql`,
        '-X',
        '-At',
        '-w',
        '-h',
        '127.0.0.1',
        '-p',
        String(e.pgPort),
        '-U',
        'postgres',
        '-d',
        'postgres',
        '-c',
        sql,
      ],
      { timeoutMs: 30_000 },
    );

  beforeAll(async () => {
    etcd = await startEtcd();
    source = await startAgentCluster({ etcdEndpoint: etcd.endpoint, nodes: 1, scope: 'source', loopWait: 2 });
    await source.waitReady({ timeoutMs: 120_000 });
    const r = await source.psql(0, 'CREATE TABLE foo AS SELECT 42 AS answer');
    if (r.code !== 0) throw new Error(`CREATE TABLE failed: ${r.stderr}`);
  }, 180_000);

  afterAll(async () => {
    try {
      // Every agent first (a restarted one runs the PostgreSQL of an earlier one's data directory), then their
      // postmasters, so that one slow stop does not leave the others running.
      for (const { agent } of [...started].reverse()) await agent.stop(20_000);
      for (const { dataDir } of started) {
        await waitFor(
          `postmaster of ${dataDir} to stop`,
          () => !existsSync(join(dataDir, 'postmaster.pid')),
          30_000,
        );
      }
    } finally {
      try {
        await source?.stop();
      } finally {
        await etcd?.stop();
        removeDir(root);
      }
    }
  }, 120_000);

  it('refuses a second agent named like a running member: CRITICAL, exit code 1, the first one unharmed', async () => {
    const e = await extraNode('dup', (yml) => yml);
    const agent = startAgent(e);
    const code = await waitFor('the second pg1 to exit', () => agent.child.exitCode ?? false, 30_000, 100);
    expect(code).toBe(1);
    expect(read(e.logFile)).toMatch(/ CRITICAL: Can't start; there is already a node named 'pg1' running\n/);
    expect(existsSync(e.dataDir)).toBe(false);
    expect(await src().primaries()).toEqual(['pg1']);
  }, 60_000);

  it('bootstraps a new cluster from a pg_basebackup of another one through bootstrap.method', async () => {
    const pg1 = src().nodes[0];
    if (!pg1) throw new Error('no pg1');
    const argsLog = join(root, 'restore-args.log');
    const script = join(root, 'restore.sh');
    // Like Patroni's backup_restore: refuses an existing data directory, takes its arguments as --key=value.
    writeFileSync(
      script,
      `#!/bin/sh
echo "$@" > ${argsLog}
for a in "$@"; do case "$a" in --datadir=*) DATA="\${a#--datadir=}";; esac; done
[ -e "$DATA" ] && exit 9
PGPASSWORD=rep-pass exec ${PG_BIN}/pg_basebackup -D "$DATA" -h 127.0.0.1 -p ${pg1.pgPort} -U replicator -X stream -c fast
`,
    );
    chmodSync(script, 0o755);
    chownSync(root, uid, gid);
    const e = await extraNode('restored', (yml) =>
      yml
        .replace('scope: source', 'scope: restored')
        .replace('name: pg1', 'name: r1')
        .replace('password: zalando', 'password: zalando2')
        .replace(
          'bootstrap:\n',
          `bootstrap:
  method: restore
  restore:
    command: ${script} --source=pg1
    test-argument: test-value
    recovery_conf:
      restore_command: 'false'
      recovery_target_action: promote
`,
        ),
    );
    const agent = startAgent(e);
    restored = { e, agent };
    const status = await waitFor(
      'r1 to lead the restored cluster',
      async () => {
        if (agent.child.exitCode !== null) throw new Error(`r1 exited:\n${read(e.logFile)}`);
        try {
          const res = await fetch(`http://127.0.0.1:${e.restPort}/primary`, {
            signal: AbortSignal.timeout(2000),
          });
          return res.status === 200 ? ((await res.json()) as { timeline?: number }) : false;
        } catch {
          return false;
        }
      },
      120_000,
      500,
    );
    expect(read(argsLog).trim()).toBe(
      `--source=pg1 --scope=restored --datadir=${e.dataDir} --test-argument=test-value`,
    );
    // The replay ended in a promotion: a new timeline, the source's data, the new superuser password works.
    expect(status.timeline).toBe(2);
    const q = await psqlAs(e, 'SELECT answer FROM foo', 'zalando2');
    expect(q.stderr).toBe('');
    expect(q.stdout.trim()).toBe('42');
    expect((await psqlAs(e, 'SELECT 1', 'zalando')).code).not.toBe(0);
    // Nothing of the replay is left: the configured pg_hba.conf, no recovery settings or signal files.
    const hba = read(join(e.dataDir, 'pg_hba.conf'));
    expect(hba).toContain('host all all 127.0.0.1/32 md5');
    expect(hba.split('\n').filter((l) => l.endsWith('\ttrust'))).toEqual([]);
    const conf = read(join(e.dataDir, 'postgresql.conf'));
    expect(conf).not.toContain('restore_command');
    expect(conf).not.toContain("hot_standby = 'off'");
    expect(existsSync(join(e.dataDir, 'recovery.signal'))).toBe(false);
    // The dynamic configuration is cached in the data directory once the cluster runs.
    const cached = await waitFor(
      'patroni.dynamic.json',
      () => read(join(e.dataDir, 'patroni.dynamic.json')) || false,
      20_000,
    );
    expect(JSON.parse(cached)).toMatchObject({ loop_wait: 2, postgresql: { use_slots: true } });
  }, 180_000);

  it('a leader restarted while the DCS has no config key writes back its cached patroni.dynamic.json', async () => {
    if (!restored || !etcd) throw new Error('the restore test did not run');
    const { e } = restored;
    const endpoint = etcd.endpoint;
    const configKey = Buffer.from('/service/restored/config').toString('base64');
    await restored.agent.stop(20_000);
    await waitFor('r1 postmaster to stop', () => !existsSync(join(e.dataDir, 'postmaster.pid')), 30_000);
    // bootstrap.dcs now says otherwise: only the cache can bring loop_wait 2 back.
    writeFileSync(e.configFile, read(e.configFile).replace('loop_wait: 2', 'loop_wait: 3'));
    await etcdPost(endpoint, '/v3/kv/deleterange', { key: configKey });
    const agent = startAgent(e);
    const value = await waitFor(
      'the config key written again',
      async () => {
        if (agent.child.exitCode !== null) throw new Error(`r1 exited:\n${read(e.logFile)}`);
        const r = await etcdPost(endpoint, '/v3/kv/range', { key: configKey });
        const kv = (r['kvs'] as { value?: string }[] | undefined)?.[0];
        return kv?.value ? Buffer.from(kv.value, 'base64').toString('utf8') : false;
      },
      60_000,
      500,
    );
    expect(JSON.parse(value)).toMatchObject({ loop_wait: 2, ttl: 20 });
  }, 120_000);
});
