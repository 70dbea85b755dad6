/**
 * The README's main-job commands: `npm run cluster:up` (scripts/cluster-up.sh) leaves a local etcd and three
 * pgwarden agents running and prints `pgwarden list`; `npm run cluster:down` stops every process by pid and
 * removes the directory. Run here on free ports in a temp dir, exactly as a newcomer would run them otherwise.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runCommand } from '../harness/patroni.js';
import { freePort, removeDir, tempDir } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Three consecutive free ports (the scripts number members' ports from a base). */
async function freeRun(n: number): Promise<number> {
  for (;;) {
    const base = await freePort();
    const taken = await Promise.all(
      Array.from({ length: n - 1 }, async (_x, i) => {
        const r = await runCommand('ss', ['-Hltn', `sport = :${base + i + 1}`], { timeoutMs: 5000 });
        return r.stdout.trim() !== '';
      }),
    );
    if (!taken.includes(true) && base + n < 65535) return base;
  }
}

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'root');

describeWithNeeds('npm run cluster:up / cluster:down', () => {
  const parent = tempDir('local');
  const dir = join(parent, 'cluster');
  let env: NodeJS.ProcessEnv = {};
  const pids: number[] = [];

  afterAll(async () => {
    // Whatever the test left: the down script again, then anything still alive by pid.
    await runCommand('bash', ['scripts/cluster-down.sh'], { timeoutMs: 120_000, env });
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    removeDir(parent);
  });

  it('starts etcd and three agents, shows the cluster, and stops everything', async () => {
    env = {
      ...process.env,
      PGWARDEN_LOCAL_DIR: dir,
      ETCD_PORT: String(await freeRun(2)),
      REST_PORT: String(await freeRun(3)),
      PG_PORT: String(await freeRun(3)),
    };
    const up = await runCommand('bash', ['scripts/cluster-up.sh'], { timeoutMs: 300_000, env });
    expect(up.code, `${up.stdout}\n${up.stderr}`).toBe(0);
    const table = up.stdout.split('\n').filter((l) => /^\| pg\d /.test(l));
    expect(table).toHaveLength(3);
    expect(table.filter((l) => /\| Leader +\| running /.test(l))).toHaveLength(1);
    expect(table.filter((l) => /\| Replica +\| streaming /.test(l))).toHaveLength(2);
    expect(up.stdout).toContain('Stop: npm run cluster:down');

    for (const f of ['etcd.pid', 'pg1/agent.pid', 'pg2/agent.pid', 'pg3/agent.pid']) {
      const pid = Number(readFileSync(join(dir, f), 'utf8').trim());
      expect(alive(pid), f).toBe(true);
      pids.push(pid);
    }
    for (const i of [1, 2, 3]) {
      const pm = Number(
        readFileSync(join(dir, `pg${i}`, 'data', 'postmaster.pid'), 'utf8').split('\n', 1)[0],
      );
      expect(alive(pm), `postmaster of pg${i}`).toBe(true);
      pids.push(pm);
    }

    const down = await runCommand('bash', ['scripts/cluster-down.sh'], { timeoutMs: 120_000, env });
    expect(down.code, down.stderr).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  }, 360_000);
});
