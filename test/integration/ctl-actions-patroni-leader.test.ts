/**
 * pgwarden's reinit --wait, query, switchover, failover and remove (on a terminal) against a real Patroni 3.0.2
 * cluster with restapi.authentication, on etcd v3 AND ZooKeeper (one cluster per DCS, shared by that DCS's tests).
 *
 * Needs: root (agents run as user postgres), Debian packages patroni, python3-etcd, python3-kazoo, postgresql-15,
 * etcd-server, zookeeper; and a built pgwarden (`npm run build`).
 */
import { expect, it } from 'vitest';
import type { PatroniDcs } from '../harness/patroni.js';
import { runOnPty } from '../harness/pty.js';
import { describeNeeding } from '../harness/requirements.js';
import { afterTable, PATRONI_SUITE_NEEDS, patroniSuite, PGWARDEN, show } from '../helpers/patroni-suite.js';

const TEST_MS = 90_000;

describeNeeding(...PATRONI_SUITE_NEEDS, 'script').each<PatroniDcs>(['etcd3', 'zookeeper'])(
  'pgwarden leader actions on Patroni 3.0.2 (%s)',
  (kind) => {
    const ctx = patroniSuite(kind);

    it(
      'reinit --force --wait rebuilds a replica; query runs SQL as patronictl does',
      { timeout: TEST_MS },
      async () => {
        const leader = await ctx.lab().leaderName();
        const replica = ctx
          .lab()
          .nodes.map((n) => n.name)
          .find((n) => n !== leader)!;
        const r = await ctx.pgwarden(['reinit', 'lab', replica, '--force', '--wait']);
        expect(
          { code: r.code, lines: afterTable(r.stdout) },
          show('pgwarden', r) + ctx.lab().logTails(),
        ).toEqual({
          code: 0,
          lines: [
            `Success: reinitialize for member ${replica}`,
            `Waiting for reinitialize to complete on: ${replica}`,
            `Reinitialize is completed on: ${replica}`,
          ],
        });
        await ctx.lab().waitReady({ leader, timeoutMs: 60_000 });
        const sql = ['query', 'lab', '-U', 'postgres', '-c', 'select pg_is_in_recovery() as r, 1 as one'];
        const [q1, q2] = await Promise.all([ctx.pgwarden(sql), ctx.patronictl(sql)]);
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
        const leader = await ctx.lab().leaderName();
        const candidate = ctx
          .lab()
          .nodes.map((n) => n.name)
          .find((n) => n !== leader)!;
        const r = await ctx.pgwarden(['switchover', '--force', '--candidate', candidate]);
        expect(r.code, show('pgwarden', r)).toBe(0);
        expect(r.stdout.split('\n')[0]).toBe('Current cluster topology');
        expect(r.stdout).toMatch(
          new RegExp(
            `\\n\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{5} Successfully switched over to "${candidate}"\\n\\+ Cluster: lab `,
          ),
        );
        await ctx.lab().waitReady({ leader: candidate, timeoutMs: 60_000 });

        const f = await ctx.pgwarden(['failover', '--force', '--candidate', leader]);
        expect(f.code, show('pgwarden', f)).toBe(0);
        // 3.0.2's failover sends the current leader, so the member answers as for a switchover.
        expect(f.stdout).toMatch(new RegExp(`\\d{5} Successfully (switched|failed) over to "${leader}"`));
        await ctx.lab().waitReady({ leader, timeoutMs: 60_000 });
      },
    );

    const removeAndCheck = async (leader: string): Promise<void> => {
      const t = runOnPty([process.execPath, PGWARDEN, '-c', ctx.cfg(), 'remove', 'lab'], {
        env: ctx.env(),
        cwd: ctx.home(),
      });
      await t.expect('Please confirm the cluster name to remove');
      t.type('lab\r');
      await t.expect('please type: "Yes I am aware"');
      t.type('Yes I am aware\r');
      await t.expect('This cluster currently is healthy. Please specify the leader name to continue');
      t.type(`${leader}\r`);
      const r = await t.done();
      expect(r.code, r.output).toBe(0);
      expect(r.output).toMatch(/^\+ Cluster: lab /);
      const view = await ctx.readDcs();
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
      const leader = await ctx.lab().leaderName();
      // Stopped (SIGSTOP) agents cannot write their keys again while the test looks at the DCS.
      const pids = ctx.lab().nodes.map((_n, i) => ctx.lab().pid(i));
      if (pids.some((p) => p === undefined || p <= 0))
        throw new Error(`a Patroni agent is not running: ${String(pids)}`);
      for (const pid of pids) process.kill(pid!, 'SIGSTOP');
      try {
        await removeAndCheck(leader);
      } finally {
        for (const pid of pids) process.kill(pid!, 'SIGCONT');
      }
    });
  },
);
