/**
 * pgwarden's write-side commands that keep the leader where it is, against a real Patroni 3.0.2 cluster with
 * restapi.authentication, on etcd v3 AND ZooKeeper (one cluster per DCS, shared by that DCS's tests): refusal
 * without a terminal, pause/resume, reload, edit-config, restart, flush, 401 without credentials, scheduled
 * switchover and restart. pgwarden acts, the result is checked through the DCS / REST API, and where the action can
 * be repeated the output is compared with real patronictl's. Reinit, query, switchover/failover and remove are in
 * ctl-actions-patroni-leader.test.ts.
 *
 * Needs: root (agents run as user postgres), Debian packages patroni, python3-etcd, python3-kazoo, postgresql-15,
 * etcd-server, zookeeper; and a built pgwarden (`npm run build`).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { PatroniDcs } from '../harness/patroni.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { afterTable, PATRONI_SUITE_NEEDS, patroniSuite, show } from '../helpers/patroni-suite.js';

const TEST_MS = 90_000;

describeNeeding(...PATRONI_SUITE_NEEDS).each<PatroniDcs>(['etcd3', 'zookeeper'])(
  'pgwarden write commands on Patroni 3.0.2 (%s)',
  (kind) => {
    const ctx = patroniSuite(kind);

    it('refuses to prompt without a terminal, naming the flag (exit 1)', { timeout: TEST_MS }, async () => {
      const r = await ctx.pgwarden(['reload', 'lab']);
      expect(r.code, show('pgwarden', r)).toBe(1);
      expect(r.stderr).toMatch(
        /^Error: --force is required when stdin is not a terminal \(would ask: Are you sure you want to reload members pg\d, pg\d, pg\d\?\)/,
      );
      const s = await ctx.pgwarden(['switchover', 'lab']);
      expect(s.code, show('pgwarden', s)).toBe(1);
      expect(s.stderr).toMatch(
        /^Error: --leader is required when stdin is not a terminal \(would ask: Primary\)/,
      );
    });

    it('pause / resume: messages as patronictl, maintenance mode in list', { timeout: TEST_MS }, async () => {
      const p = await ctx.pgwarden(['pause']);
      expect({ code: p.code, out: p.stdout }, show('pgwarden', p)).toEqual({
        code: 0,
        out: 'Success: cluster management is paused\n',
      });
      await waitFor(
        'list to show Maintenance mode',
        async () => (await ctx.pgwarden(['list'])).stdout.includes(' Maintenance mode: on'),
        20_000,
        300,
      );
      const [ours, theirs] = await Promise.all([ctx.pgwarden(['pause']), ctx.patronictl(['pause'])]);
      expect(
        { code: ours.code, out: ours.stdout, err: ours.stderr },
        show('pgwarden', ours) + show('patronictl', theirs),
      ).toEqual({
        code: theirs.code,
        out: theirs.stdout,
        err: theirs.stderr,
      });
      expect(ours.stderr).toBe('Error: Cluster is already paused\n');
      const r = await ctx.pgwarden(['resume', '--wait']);
      expect({ code: r.code, out: r.stdout }, show('pgwarden', r)).toEqual({
        code: 0,
        out: "'resume' request sent, waiting until it is recognized by all nodes\nSuccess: cluster management is resumed\n",
      });
      expect((await ctx.pgwarden(['list'])).stdout).not.toContain('Maintenance mode');
    });

    it('reload --force prints the table and the same lines as patronictl', { timeout: TEST_MS }, async () => {
      const ours = await ctx.pgwarden(['reload', 'lab', '--force']);
      const theirs = await ctx.patronictl(['reload', 'lab', '--force']);
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
        const ours = await ctx.pgwarden([
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
        expect(await ctx.showConfig()).toContain('loop_wait: 3');
        // patronictl reverts pgwarden's change, then does the same change: the outputs must be identical.
        const revert = await ctx.patronictl([
          'edit-config',
          '-s',
          'loop_wait=2',
          '-p',
          'max_connections=50',
          '--force',
        ]);
        expect(revert.code, show('patronictl', revert)).toBe(0);
        const theirs = await ctx.patronictl([
          'edit-config',
          '-s',
          'loop_wait=3',
          '-p',
          'max_connections=60',
          '--force',
        ]);
        expect(ours.stdout, show('pgwarden', ours) + show('patronictl', theirs)).toBe(theirs.stdout);
        const same = await ctx.pgwarden(['edit-config', '-s', 'loop_wait=3', '--force']);
        expect(same.stdout).toBe('Not changed\n');
        const back = await ctx.pgwarden([
          'edit-config',
          '-s',
          'loop_wait=2',
          '-p',
          'max_connections=50',
          '--force',
        ]);
        expect(back.code, show('pgwarden', back)).toBe(0);
        expect(await ctx.showConfig()).toContain('loop_wait: 2');
        expect(await ctx.showConfig()).toContain('max_connections: 50');
      },
    );

    it('restart --force restarts the member (as patronictl prints it)', { timeout: TEST_MS }, async () => {
      const leader = await ctx.lab().leaderName();
      const replica = ctx
        .lab()
        .nodes.map((n) => n.name)
        .find((n) => n !== leader)!;
      const before = JSON.parse(
        (
          await ctx.lab().rest(
            ctx.lab().nodes.findIndex((n) => n.name === replica),
            '/patroni',
          )
        ).body,
      ) as { postmaster_start_time?: string };
      const r = await ctx.pgwarden(['restart', 'lab', replica, '--force']);
      expect(r.code, show('pgwarden', r)).toBe(0);
      expect(afterTable(r.stdout)).toEqual([`Success: restart on member ${replica}`]);
      const after = JSON.parse(
        (
          await ctx.lab().rest(
            ctx.lab().nodes.findIndex((n) => n.name === replica),
            '/patroni',
          )
        ).body,
      ) as { postmaster_start_time?: string };
      expect(after.postmaster_start_time).not.toBe(before.postmaster_start_time);
      await ctx.lab().waitReady({ timeoutMs: 60_000 });
    });

    it('flush switchover with nothing scheduled: same as patronictl', { timeout: TEST_MS }, async () => {
      const [ours, theirs] = await Promise.all([
        ctx.pgwarden(['flush', 'lab', 'switchover']),
        ctx.patronictl(['flush', 'lab', 'switchover']),
      ]);
      expect({ code: ours.code, out: ours.stdout }).toEqual({ code: theirs.code, out: theirs.stdout });
      expect(ours.stdout).toBe('No pending scheduled switchover\n');
    });

    it(
      'without REST credentials: the Failed lines as patronictl, exit 1 and a hint',
      { timeout: TEST_MS },
      async () => {
        const bare = join(ctx.home(), `bare-${kind}.yml`);
        writeFileSync(
          bare,
          kind === 'etcd3'
            ? `scope: lab\netcd3:\n  hosts: ${ctx.endpoint() ?? ''}\n`
            : `scope: lab\nzookeeper:\n  hosts:\n  - ${ctx.endpoint() ?? ''}\n`,
        );
        const [ours, theirs] = await Promise.all([
          ctx.pgwarden(['restart', 'lab', '--force'], bare),
          ctx.patronictl(['restart', 'lab', '--force'], bare),
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
        const [p1, p2] = await Promise.all([ctx.pgwarden(['pause'], bare), ctx.patronictl(['pause'], bare)]);
        expect(p1.stdout, show('pgwarden', p1) + show('patronictl', p2)).toBe(p2.stdout);
        expect(p1.stdout).toBe(
          'Failed: pause cluster management status code=401, (no auth header received)\n',
        );
      },
    );

    it('scheduled switchover and scheduled restart, then flush', { timeout: TEST_MS }, async () => {
      const leader = await ctx.lab().leaderName();
      const replica = ctx
        .lab()
        .nodes.map((n) => n.name)
        .find((n) => n !== leader)!;
      const at = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, '+00:00');
      const s = await ctx.pgwarden(['switchover', '--scheduled', at, '--force']);
      expect(s.code, show('pgwarden', s)).toBe(0);
      expect(s.stdout).toMatch(/\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{5} Switchover scheduled\n/);
      expect(s.stdout).toContain(` Switchover scheduled at: ${at}\n`);
      const [l1, l2] = await Promise.all([ctx.pgwarden(['list']), ctx.patronictl(['list'])]);
      expect(l1.stdout, show('pgwarden', l1) + show('patronictl', l2)).toBe(l2.stdout);
      const f = await ctx.pgwarden(['flush', 'lab', 'switchover']);
      expect({ code: f.code, out: f.stdout }, show('pgwarden', f)).toEqual({
        code: 0,
        out: 'Success: scheduled switchover deleted\n',
      });
      expect((await ctx.readDcs()).failover?.scheduledAt).toBeUndefined();

      const r = await ctx.pgwarden(['restart', 'lab', replica, '--scheduled', at, '--force']);
      expect(afterTable(r.stdout), show('pgwarden', r)).toEqual([
        `Success: restart scheduled on member ${replica}`,
      ]);
      await waitFor(
        `scheduled_restart in the member key of ${replica}`,
        async () =>
          (await ctx.readDcs()).members.find((m) => m.name === replica)?.data.scheduledRestart !== undefined,
        20_000,
        300,
      );
      const fr = await ctx.pgwarden(['flush', 'lab', replica, 'restart', '--force']);
      expect({ code: fr.code, lines: afterTable(fr.stdout) }, show('pgwarden', fr)).toEqual({
        code: 0,
        lines: [`Success: flush scheduled restart for member ${replica}`],
      });
      const [n1, n2] = await Promise.all([
        ctx.pgwarden(['flush', 'lab', leader, 'restart', '--force']),
        ctx.patronictl(['flush', 'lab', leader, 'restart', '--force']),
      ]);
      expect(afterTable(n1.stdout), show('pgwarden', n1) + show('patronictl', n2)).toEqual(
        afterTable(n2.stdout),
      );
      expect(afterTable(n1.stdout)).toEqual([`No scheduled restart for member ${leader}`]);
    });
  },
);
