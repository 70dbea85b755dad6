/**
 * pgwarden's write-side commands against ONE real Patroni 3.0.2 cluster on etcd v3: pgwarden acts, the result is
 * checked through the DCS / REST API, and where the action can be repeated the output is compared with real
 * patronictl's for the same action.
 *
 * Needs: root (agents run as user postgres), Debian packages patroni, python3-etcd, postgresql-15, etcd-server; and a
 * built pgwarden (`npm run build`).
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import {
  runCommand,
  runPatronictl,
  startPatroniCluster,
  type CommandResult,
  type PatroniCluster,
} from '../harness/patroni.js';
import { removeDir, tempDir, waitFor } from '../harness/process.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PGWARDEN = join(REPO, 'bin', 'run.js');
const TEST_MS = 90_000;

function show(label: string, r: CommandResult): string {
  return `----- ${label} (exit ${String(r.code)})\n--- stdout:\n${r.stdout}--- stderr:\n${r.stderr}`;
}

/** The lines after the member table (result lines), without the table itself. */
function afterTable(stdout: string): string[] {
  const lines = stdout.trimEnd().split('\n');
  const last = lines.map((l) => l.startsWith('+')).lastIndexOf(true);
  return lines.slice(last + 1);
}

describe('pgwarden write commands on Patroni 3.0.2 (etcd3)', () => {
  let etcd: EtcdServer | undefined;
  let cluster: PatroniCluster | undefined;
  let home = '';
  let env: NodeJS.ProcessEnv = {};

  const lab = (): PatroniCluster => {
    if (!cluster) throw new Error('the Patroni cluster did not start (see beforeAll)');
    return cluster;
  };
  const cfg = (): string => lab().configFile(0);
  const pgwarden = (args: readonly string[]): Promise<CommandResult> =>
    runCommand(process.execPath, [PGWARDEN, '-c', cfg(), ...args], { env, timeoutMs: 90_000, cwd: home });
  const patronictl = (args: readonly string[]): Promise<CommandResult> =>
    runPatronictl(['-c', cfg(), ...args], { env, timeoutMs: 90_000 });
  const showConfig = async (): Promise<string> => (await pgwarden(['show-config'])).stdout;

  beforeAll(async () => {
    home = tempDir('ctl-actions-home');
    env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' };
    if (process.env.TZ !== undefined) env.TZ = process.env.TZ;
    etcd = await startEtcd();
    cluster = await startPatroniCluster({
      dcs: 'etcd3',
      dcsEndpoint: etcd.endpoint,
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
      await etcd?.stop();
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
    expect(afterTable(ours.stdout)).toEqual(
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
});
