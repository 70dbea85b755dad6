/**
 * `demote-cluster` / `promote-cluster` next to patronictl 4.1.4, on a real 2-node Patroni 4.1.4 cluster on etcd v3:
 * both CLIs are run on the same cluster state and their exit codes and output compared (the refusals byte for byte;
 * a demotion or promotion line by line, with the timestamps, the member tables and the per-second state lines, whose
 * number depends on timing, set aside), and the `standby_cluster` section each writes through the leader's
 * PATCH /config is read back from the DCS. In a pipe pgwarden writes nothing on stderr; on a pseudo-terminal it
 * shows what it waits for with the elapsed time.
 *
 * The standby cluster follows 127.0.0.1:1, where nothing listens: the standby leader runs (recovering from its own
 * WAL), which is all the commands wait for.
 *
 * Needs: root, PostgreSQL 15, etcd, util-linux `script`, the shared/ checkout beside the repository (Patroni 4.1.4 on
 * Debian's python3) and a built pgwarden.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import {
  PATRONICTL4,
  runCommand,
  startPatroniCluster,
  type CommandResult,
  type PatroniCluster,
} from '../harness/patroni.js';
import { removeDir, tempDir, waitFor } from '../harness/process.js';
import { runOnPty } from '../harness/pty.js';
import { describeNeeding } from '../harness/requirements.js';
import { PGWARDEN, show } from '../helpers/patroni-suite.js';
import { createDcs } from '../../src/dcs/registry.js';
import type { Cluster } from '../../src/model/cluster.js';

const TEST_MS = 240_000;
const STANDBY = ['--host', '127.0.0.1', '--port', '1', '--primary-slot-name', 'lab_standby'];

describeNeeding(
  'postgres',
  'etcd',
  'patroni4',
  'patronictl4',
  'script',
  'bundle',
  'root',
)('demote-cluster / promote-cluster next to patronictl 4.1.4 (etcd3)', () => {
  let etcd: EtcdServer | undefined;
  let lab: PatroniCluster | undefined;
  let home = '';
  let env: NodeJS.ProcessEnv = {};
  const cluster = (): PatroniCluster => {
    if (!lab) throw new Error('the Patroni 4.1.4 cluster did not start (see beforeAll)');
    return lab;
  };
  const run = (cmd: 'pgwarden' | 'patronictl', args: readonly string[]): Promise<CommandResult> => {
    const argv = ['-c', cluster().configFile(0), ...args];
    return cmd === 'pgwarden'
      ? runCommand(process.execPath, [PGWARDEN, ...argv], { env, timeoutMs: 150_000, cwd: home })
      : runCommand(PATRONICTL4, argv, { env, timeoutMs: 150_000, cwd: home });
  };
  const readDcs = async (): Promise<Cluster> => {
    const dcs = await createDcs(
      { kind: 'etcd3', hosts: [etcd?.endpoint ?? ''], protocol: 'http' },
      { namespace: '/service', scope: 'lab', ttl: 30, retryTimeout: 5, ctl: true },
    );
    try {
      return await dcs.getCluster();
    } finally {
      await dcs.close();
    }
  };
  /** Waits until the leader runs in `role` and every member is running or streaming. */
  const settled = (role: string): Promise<void> =>
    waitFor(
      `the cluster to settle as ${role}`,
      async () => {
        const c = await readDcs();
        return (
          c.leader?.member?.data.raw['role'] === role &&
          c.members.length === 2 &&
          c.members.every((m) => ['running', 'streaming'].includes(m.data.state))
        );
      },
      90_000,
    ).then(() => undefined);

  beforeAll(async () => {
    home = tempDir('ctl-cluster-role-home');
    env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' };
    if (process.env.TZ !== undefined) env.TZ = process.env.TZ;
    etcd = await startEtcd();
    lab = await startPatroniCluster({
      dcs: 'etcd3',
      dcsEndpoint: etcd.endpoint,
      nodes: 2,
      scope: 'lab',
      ttl: 20,
      loopWait: 2,
      retryTimeout: 5,
      patroniVersion: '4.1.4',
    });
  }, 300_000);

  afterAll(async () => {
    try {
      await lab?.stop();
    } finally {
      await etcd?.stop();
      if (home) removeDir(home);
    }
  }, 120_000);

  it('refusals: the same stderr and exit code as patronictl 4.1.4', { timeout: TEST_MS }, async () => {
    for (const args of [
      ['demote-cluster', 'lab', '--force'],
      ['demote-cluster', 'lab', '--force', '--primary-slot-name', 's1'],
      ['promote-cluster', 'lab', '--force'],
      ['promote-cluster', '--force'],
    ]) {
      const [ours, theirs] = await Promise.all([run('pgwarden', args), run('patronictl', args)]);
      expect(
        { code: ours.code, out: ours.stdout, err: ours.stderr },
        `${args.join(' ')}\n${show('pgwarden', ours)}${show('patronictl', theirs)}`,
      ).toEqual({ code: theirs.code, out: theirs.stdout, err: theirs.stderr });
      expect(ours.code).toBe(1);
    }
  });

  /** The lines that do not depend on timing: tables and per-second state lines out, timestamps masked. */
  const shape = (stdout: string): string[] =>
    stdout
      .trimEnd()
      .split('\n')
      .filter((l) => !/^[+|]/.test(l))
      .map((l) => l.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d /, 'TS '))
      .filter((l) => !l.startsWith('TS cluster is unlocked: '));
  const stateLines = (stdout: string): string[] =>
    stdout.split('\n').filter((l) => / cluster is unlocked: (True|False), leader role: /.test(l));

  it(
    'demote then promote with each CLI: same output shape, same standby_cluster in the DCS',
    { timeout: TEST_MS },
    async () => {
      await cluster().waitReady({ timeoutMs: 90_000 });
      const written: Record<string, unknown> = {};
      const outputs: Record<string, CommandResult> = {};
      for (const [demoter, promoter] of [
        ['pgwarden', 'patronictl'],
        ['patronictl', 'pgwarden'],
      ] as const) {
        const d = await run(demoter, ['demote-cluster', 'lab', '--force', ...STANDBY]);
        expect(d.code, show(demoter, d) + cluster().logTails()).toBe(0);
        written[demoter] = (await readDcs()).config?.data['standby_cluster'];
        outputs[`demote ${demoter}`] = d;
        await settled('standby_leader');
        const p = await run(promoter, ['promote-cluster', 'lab', '--force']);
        expect(p.code, show(promoter, p) + cluster().logTails()).toBe(0);
        expect((await readDcs()).config?.data['standby_cluster']).toBeUndefined();
        outputs[`promote ${promoter}`] = p;
        await settled('primary');
      }
      expect(written['pgwarden']).toEqual({ host: '127.0.0.1', port: 1, primary_slot_name: 'lab_standby' });
      expect(written['pgwarden']).toEqual(written['patronictl']);

      for (const action of ['demote', 'promote']) {
        const ours = outputs[`${action} pgwarden`]!;
        const theirs = outputs[`${action} patronictl`]!;
        const why = show('pgwarden', ours) + show('patronictl', theirs);
        expect(shape(ours.stdout), why).toEqual(shape(theirs.stdout));
        expect(shape(ours.stdout), why).toEqual([
          'Current cluster topology',
          `TS cluster is successfully ${action}d`,
        ]);
        // Tables: the same header row both times; state lines: the same form.
        const header = (s: string): string | undefined => s.split('\n').find((l) => l.startsWith('| Member'));
        expect(header(ours.stdout), why).toBe(header(theirs.stdout));
        for (const l of stateLines(ours.stdout)) {
          expect(l).toMatch(
            /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d cluster is unlocked: (True|False), leader role: \w+, leader state: [\w ]+(, previous leader state: '[\w ]+')?$/,
          );
        }
        // In a pipe, nothing on stderr (the progress line is for terminals only).
        expect(ours.stderr, why).toBe('');
      }
    },
  );

  it('on a terminal, shows what it waits for and the elapsed time', { timeout: TEST_MS }, async () => {
    await settled('primary');
    const t = runOnPty(
      [
        process.execPath,
        PGWARDEN,
        '-c',
        cluster().configFile(0),
        'demote-cluster',
        'lab',
        '--force',
        ...STANDBY,
      ],
      { env, cwd: home, timeoutMs: 150_000 },
    );
    await t.expect(/Waiting for lab to run as a standby cluster \(\d+s elapsed\)/, 60_000);
    const r = await t.done(150_000);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/ cluster is successfully demoted\n/);
    await settled('standby_leader');
    const p = await run('pgwarden', ['promote-cluster', 'lab', '--force']);
    expect(p.code, show('pgwarden', p)).toBe(0);
    await settled('primary');
  });

  it(
    'pause --wait on a terminal shows who has not reported yet; resume --wait in a pipe prints as patronictl',
    {
      timeout: TEST_MS,
    },
    async () => {
      await settled('primary');
      const t = runOnPty(
        [process.execPath, PGWARDEN, '-c', cluster().configFile(0), 'pause', 'lab', '--wait'],
        {
          env,
          cwd: home,
          timeoutMs: 60_000,
        },
      );
      // Right after the PATCH no member has published pause: true yet (they do at their next cycle).
      await t.expect(/Waiting for pg\d(, pg\d)? to report pause: true \(\d+s elapsed\)/, 30_000);
      const r = await t.done(60_000);
      expect(r.code, r.output).toBe(0);
      expect(r.output).toMatch(/Success: cluster management is paused\n/);
      const resume = await run('pgwarden', ['resume', 'lab', '--wait']);
      expect({ code: resume.code, out: resume.stdout, err: resume.stderr }, show('pgwarden', resume)).toEqual(
        {
          code: 0,
          out: "'resume' request sent, waiting until it is recognized by all nodes\nSuccess: cluster management is resumed\n",
          err: '',
        },
      );
    },
  );
});
