/**
 * pgwarden's write-side commands against a real Patroni 3.0.2 cluster with restapi.authentication, on etcd v3 AND
 * ZooKeeper (one cluster per DCS, shared by that DCS's tests): pgwarden acts, the result is checked through the DCS /
 * REST API, and where the action can be repeated the output is compared with real patronictl's for the same action.
 *
 * Needs: root (agents run as user postgres), Debian packages patroni, python3-etcd, python3-kazoo, postgresql-15,
 * etcd-server, zookeeper; and a built pgwarden (`npm run build`).
 */
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd } from '../harness/etcd.js';
import {
  runCommand,
  runPatronictl,
  startPatroniCluster,
  type CommandResult,
  type PatroniCluster,
  type PatroniDcs,
} from '../harness/patroni.js';
import { removeDir, tempDir, waitFor } from '../harness/process.js';
import { runOnPty } from '../harness/pty.js';
import { startZooKeeper } from '../harness/zookeeper.js';
import { createDcs } from '../../src/dcs/registry.js';
import type { Cluster } from '../../src/model/cluster.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PGWARDEN = join(REPO, 'bin', 'run.js');
const TEST_MS = 90_000;
const AUTH = { username: 'admin', password: 'lab-secret' } as const;

function show(label: string, r: CommandResult): string {
  return `----- ${label} (exit ${String(r.code)})\n--- stdout:\n${r.stdout}--- stderr:\n${r.stderr}`;
}

/** The lines after the member table (result lines), without the table itself. */
function afterTable(stdout: string): string[] {
  const lines = stdout.trimEnd().split('\n');
  const last = lines.map((l) => l.startsWith('+')).lastIndexOf(true);
  return lines.slice(last + 1);
}

describe.each<PatroniDcs>(['etcd3', 'zookeeper'])('pgwarden write commands on Patroni 3.0.2 (%s)', (kind) => {
  let server: { readonly endpoint: string; stop(): Promise<void> } | undefined;
  let cluster: PatroniCluster | undefined;
  let home = '';
  let env: NodeJS.ProcessEnv = {};

  const lab = (): PatroniCluster => {
    if (!cluster) throw new Error('the Patroni cluster did not start (see beforeAll)');
    return cluster;
  };
  const cfg = (): string => lab().configFile(0);
  const pgwarden = (args: readonly string[], config = cfg()): Promise<CommandResult> =>
    runCommand(process.execPath, [PGWARDEN, '-c', config, ...args], { env, timeoutMs: 90_000, cwd: home });
  const patronictl = (args: readonly string[], config = cfg()): Promise<CommandResult> =>
    runPatronictl(['-c', config, ...args], { env, timeoutMs: 90_000 });
  const readDcs = async (): Promise<Cluster> => {
    const endpoint = server?.endpoint ?? '';
    const dcs = await createDcs(
      kind === 'zookeeper' ? { kind, hosts: [endpoint] } : { kind, hosts: [endpoint], protocol: 'http' },
      { namespace: '/service', scope: 'lab', ttl: 30, retryTimeout: 5, ctl: true },
    );
    try {
      return await dcs.getCluster();
    } finally {
      await dcs.close();
    }
  };
  const showConfig = async (): Promise<string> => (await pgwarden(['show-config'])).stdout;

  beforeAll(async () => {
    home = tempDir('ctl-actions-home');
    env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8', PGPASSWORD: 'zalando' };
    if (process.env.TZ !== undefined) env.TZ = process.env.TZ;
    server = kind === 'etcd3' ? await startEtcd() : await startZooKeeper();
    cluster = await startPatroniCluster({
      dcs: kind,
      dcsEndpoint: server.endpoint,
      restapiAuth: AUTH,
      nodes: 3,
      scope: 'lab',
      ttl: 20,
      loopWait: 2,
      retryTimeout: 5,
    });
  }, 300_000);

  afterAll(async () => {
    const errors: string[] = [];
    try {
      await cluster?.stop();
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    }
    try {
      await server?.stop();
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    }
    if (home) removeDir(home);
    if (errors.length > 0) throw new Error(errors.join('\n'));
  }, 120_000);

  it('refuses to prompt without a terminal, naming the flag (exit 1)', { timeout: TEST_MS }, async () => {
    const r = await pgwarden(['reload', 'lab']);
    expect(r.code, show('pgwarden', r)).toBe(1);
    expect(r.stderr).toMatch(
      /^Error: --force is required when stdin is not a terminal \(would ask: Are you sure you want to reload members pg\d, pg\d, pg\d\?\)/,
    );
    const s = await pgwarden(['switchover', 'lab']);
    expect(s.code, show('pgwarden', s)).toBe(1);
    expect(s.stderr).toMatch(
      /^Error: --leader is required when stdin is not a terminal \(would ask: Primary\)/,
    );
  });

  it('pause / resume: messages as patronictl, maintenance mode in list', { timeout: TEST_MS }, async () => {
    const p = await pgwarden(['pause']);
    expect({ code: p.code, out: p.stdout }, show('pgwarden', p)).toEqual({
      code: 0,
      out: 'Success: cluster management is paused\n',
    });
    await waitFor(
      'list to show Maintenance mode',
      async () => (await pgwarden(['list'])).stdout.includes(' Maintenance mode: on'),
      20_000,
      300,
    );
    const [ours, theirs] = await Promise.all([pgwarden(['pause']), patronictl(['pause'])]);
    expect(
      { code: ours.code, out: ours.stdout, err: ours.stderr },
      show('pgwarden', ours) + show('patronictl', theirs),
    ).toEqual({
      code: theirs.code,
      out: theirs.stdout,
      err: theirs.stderr,
    });
    expect(ours.stderr).toBe('Error: Cluster is already paused\n');
    const r = await pgwarden(['resume', '--wait']);
    expect({ code: r.code, out: r.stdout }, show('pgwarden', r)).toEqual({
      code: 0,
      out: "'resume' request sent, waiting until it is recognized by all nodes\nSuccess: cluster management is resumed\n",
    });
    expect((await pgwarden(['list'])).stdout).not.toContain('Maintenance mode');
  });

  it('reload --force prints the table and the same lines as patronictl', { timeout: TEST_MS }, async () => {
    const ours = await pgwarden(['reload', 'lab', '--force']);
    const theirs = await patronictl(['reload', 'lab', '--force']);
    expect(ours.code, show('pgwarden', ours)).toBe(0);
    expect(ours.stdout).toMatch(/^\+ Cluster: lab /);
    expect(afterTable(ours.stdout), show('pgwarden', ours) + show('patronictl', theirs)).toEqual(
      afterTable(theirs.stdout),
    );
    expect(afterTable(ours.stdout).sort()).toEqual(
      ['pg1', 'pg2', 'pg3'].map(
        (m) => `Reload request received for member ${m} and will be processed within 2 seconds`,
      ),
    );
  });

  it(
    "edit-config: same diff and result as patronictl, both read each other's writes",
    { timeout: TEST_MS },
    async () => {
      const ours = await pgwarden([
        'edit-config',
        '-s',
        'loop_wait=3',
        '-p',
        'max_connections=60',
        '--force',
      ]);
      expect(ours.code, show('pgwarden', ours)).toBe(0);
      expect(ours.stdout).toContain('-loop_wait: 2\n+loop_wait: 3\n');
      expect(ours.stdout.endsWith('Configuration changed\n')).toBe(true);
      expect(await showConfig()).toContain('loop_wait: 3');
      // patronictl reverts pgwarden's change, then does the same change: the outputs must be identical.
      const revert = await patronictl([
        'edit-config',
        '-s',
        'loop_wait=2',
        '-p',
        'max_connections=50',
        '--force',
      ]);
      expect(revert.code, show('patronictl', revert)).toBe(0);
      const theirs = await patronictl([
        'edit-config',
        '-s',
        'loop_wait=3',
        '-p',
        'max_connections=60',
        '--force',
      ]);
      expect(ours.stdout, show('pgwarden', ours) + show('patronictl', theirs)).toBe(theirs.stdout);
      const same = await pgwarden(['edit-config', '-s', 'loop_wait=3', '--force']);
      expect(same.stdout).toBe('Not changed\n');
      const back = await pgwarden([
        'edit-config',
        '-s',
        'loop_wait=2',
        '-p',
        'max_connections=50',
        '--force',
      ]);
      expect(back.code, show('pgwarden', back)).toBe(0);
      expect(await showConfig()).toContain('loop_wait: 2');
      expect(await showConfig()).toContain('max_connections: 50');
    },
  );

  it('restart --force restarts the member (as patronictl prints it)', { timeout: TEST_MS }, async () => {
    const leader = await lab().leaderName();
    const replica = lab()
      .nodes.map((n) => n.name)
      .find((n) => n !== leader)!;
    const before = JSON.parse(
      (
        await lab().rest(
          lab().nodes.findIndex((n) => n.name === replica),
          '/patroni',
        )
      ).body,
    ) as { postmaster_start_time?: string };
    const r = await pgwarden(['restart', 'lab', replica, '--force']);
    expect(r.code, show('pgwarden', r)).toBe(0);
    expect(afterTable(r.stdout)).toEqual([`Success: restart on member ${replica}`]);
    const after = JSON.parse(
      (
        await lab().rest(
          lab().nodes.findIndex((n) => n.name === replica),
          '/patroni',
        )
      ).body,
    ) as { postmaster_start_time?: string };
    expect(after.postmaster_start_time).not.toBe(before.postmaster_start_time);
    await lab().waitReady({ timeoutMs: 60_000 });
  });

  it('flush switchover with nothing scheduled: same as patronictl', { timeout: TEST_MS }, async () => {
    const [ours, theirs] = await Promise.all([
      pgwarden(['flush', 'lab', 'switchover']),
      patronictl(['flush', 'lab', 'switchover']),
    ]);
    expect({ code: ours.code, out: ours.stdout }).toEqual({ code: theirs.code, out: theirs.stdout });
    expect(ours.stdout).toBe('No pending scheduled switchover\n');
  });

  it(
    'without REST credentials: the Failed lines as patronictl, exit 1 and a hint',
    { timeout: TEST_MS },
    async () => {
      const bare = join(home, `bare-${kind}.yml`);
      writeFileSync(
        bare,
        kind === 'etcd3'
          ? `scope: lab\netcd3:\n  hosts: ${server?.endpoint ?? ''}\n`
          : `scope: lab\nzookeeper:\n  hosts:\n  - ${server?.endpoint ?? ''}\n`,
      );
      const [ours, theirs] = await Promise.all([
        pgwarden(['restart', 'lab', '--force'], bare),
        patronictl(['restart', 'lab', '--force'], bare),
      ]);
      expect(ours.code, show('pgwarden', ours)).toBe(1);
      expect(afterTable(ours.stdout), show('pgwarden', ours) + show('patronictl', theirs)).toEqual(
        afterTable(theirs.stdout),
      );
      expect(afterTable(ours.stdout).sort()).toEqual(
        ['pg1', 'pg2', 'pg3'].map(
          (m) => `Failed: restart for member ${m}, status code=401, (no auth header received)`,
        ),
      );
      expect(ours.stderr).toContain(
        'requires authentication (401 no auth header received): set ctl.authentication',
      );
      const [p1, p2] = await Promise.all([pgwarden(['pause'], bare), patronictl(['pause'], bare)]);
      expect(p1.stdout, show('pgwarden', p1) + show('patronictl', p2)).toBe(p2.stdout);
      expect(p1.stdout).toBe('Failed: pause cluster management status code=401, (no auth header received)\n');
    },
  );

  it('scheduled switchover and scheduled restart, then flush', { timeout: TEST_MS }, async () => {
    const leader = await lab().leaderName();
    const replica = lab()
      .nodes.map((n) => n.name)
      .find((n) => n !== leader)!;
    const at = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, '+00:00');
    const s = await pgwarden(['switchover', '--scheduled', at, '--force']);
    expect(s.code, show('pgwarden', s)).toBe(0);
    expect(s.stdout).toMatch(/\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{5} Switchover scheduled\n/);
    expect(s.stdout).toContain(` Switchover scheduled at: ${at}\n`);
    const [l1, l2] = await Promise.all([pgwarden(['list']), patronictl(['list'])]);
    expect(l1.stdout, show('pgwarden', l1) + show('patronictl', l2)).toBe(l2.stdout);
    const f = await pgwarden(['flush', 'lab', 'switchover']);
    expect({ code: f.code, out: f.stdout }, show('pgwarden', f)).toEqual({
      code: 0,
      out: 'Success: scheduled switchover deleted\n',
    });
    expect((await readDcs()).failover?.scheduledAt).toBeUndefined();

    const r = await pgwarden(['restart', 'lab', replica, '--scheduled', at, '--force']);
    expect(afterTable(r.stdout), show('pgwarden', r)).toEqual([
      `Success: restart scheduled on member ${replica}`,
    ]);
    await waitFor(
      `scheduled_restart in the member key of ${replica}`,
      async () =>
        (await readDcs()).members.find((m) => m.name === replica)?.data.scheduledRestart !== undefined,
      20_000,
      300,
    );
    const fr = await pgwarden(['flush', 'lab', replica, 'restart', '--force']);
    expect({ code: fr.code, lines: afterTable(fr.stdout) }, show('pgwarden', fr)).toEqual({
      code: 0,
      lines: [`Success: flush scheduled restart for member ${replica}`],
    });
    const [n1, n2] = await Promise.all([
      pgwarden(['flush', 'lab', leader, 'restart', '--force']),
      patronictl(['flush', 'lab', leader, 'restart', '--force']),
    ]);
    expect(afterTable(n1.stdout), show('pgwarden', n1) + show('patronictl', n2)).toEqual(
      afterTable(n2.stdout),
    );
    expect(afterTable(n1.stdout)).toEqual([`No scheduled restart for member ${leader}`]);
  });

  it(
    'reinit --force --wait rebuilds a replica; query runs SQL as patronictl does',
    { timeout: TEST_MS },
    async () => {
      const leader = await lab().leaderName();
      const replica = lab()
        .nodes.map((n) => n.name)
        .find((n) => n !== leader)!;
      const r = await pgwarden(['reinit', 'lab', replica, '--force', '--wait']);
      expect({ code: r.code, lines: afterTable(r.stdout) }, show('pgwarden', r) + lab().logTails()).toEqual({
        code: 0,
        lines: [
          `Success: reinitialize for member ${replica}`,
          `Waiting for reinitialize to complete on: ${replica}`,
          `Reinitialize is completed on: ${replica}`,
        ],
      });
      await lab().waitReady({ leader, timeoutMs: 60_000 });
      const sql = ['query', 'lab', '-U', 'postgres', '-c', 'select pg_is_in_recovery() as r, 1 as one'];
      const [q1, q2] = await Promise.all([pgwarden(sql), patronictl(sql)]);
      expect({ code: q1.code, out: q1.stdout }, show('pgwarden', q1) + show('patronictl', q2)).toEqual({
        code: q2.code,
        out: q2.stdout,
      });
      expect(q1.stdout).toBe('r\tone\nFalse\t1\n');
    },
  );

  it(
    'switchover --force --candidate makes the candidate leader; failover brings it back',
    { timeout: 150_000 },
    async () => {
      const leader = await lab().leaderName();
      const candidate = lab()
        .nodes.map((n) => n.name)
        .find((n) => n !== leader)!;
      const r = await pgwarden(['switchover', '--force', '--candidate', candidate]);
      expect(r.code, show('pgwarden', r)).toBe(0);
      expect(r.stdout.split('\n')[0]).toBe('Current cluster topology');
      expect(r.stdout).toMatch(
        new RegExp(
          `\\n\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{5} Successfully switched over to "${candidate}"\\n\\+ Cluster: lab `,
        ),
      );
      await lab().waitReady({ leader: candidate, timeoutMs: 60_000 });

      const f = await pgwarden(['failover', '--force', '--candidate', leader]);
      expect(f.code, show('pgwarden', f)).toBe(0);
      // 3.0.2's failover sends the current leader, so the member answers as for a switchover.
      expect(f.stdout).toMatch(new RegExp(`\\d{5} Successfully (switched|failed) over to "${leader}"`));
      await lab().waitReady({ leader, timeoutMs: 60_000 });
    },
  );

  const removeAndCheck = async (leader: string): Promise<void> => {
    const t = runOnPty([process.execPath, PGWARDEN, '-c', cfg(), 'remove', 'lab'], { env, cwd: home });
    await t.expect('Please confirm the cluster name to remove');
    t.type('lab\r');
    await t.expect('please type: "Yes I am aware"');
    t.type('Yes I am aware\r');
    await t.expect('This cluster currently is healthy. Please specify the leader name to continue');
    t.type(`${leader}\r`);
    const r = await t.done();
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/^\+ Cluster: lab /);
    const view = await readDcs();
    expect({
      members: view.members.length,
      leader: view.leader,
      init: view.initialize,
      config: view.config,
    }).toEqual({
      members: 0,
      leader: undefined,
      init: undefined,
      config: undefined,
    });
  };

  it('remove (on a terminal) deletes every key of the cluster', { timeout: TEST_MS }, async () => {
    const leader = await lab().leaderName();
    // Stopped (SIGSTOP) agents cannot write their keys again while the test looks at the DCS.
    const pids = lab().nodes.map((_n, i) => lab().pid(i));
    if (pids.some((p) => p === undefined || p <= 0))
      throw new Error(`a Patroni agent is not running: ${String(pids)}`);
    for (const pid of pids) process.kill(pid!, 'SIGSTOP');
    try {
      await removeAndCheck(leader);
    } finally {
      for (const pid of pids) process.kill(pid!, 'SIGCONT');
    }
  });
});
