/**
 * The actions that restart, move the leader or rebuild a member, on three pgwarden agents with
 * restapi.authentication, on etcd v3 AND ZooKeeper (one cluster per DCS): pgwarden's restart, switchover, failover,
 * reinit --wait, query and (last, on a terminal) remove on both; real patronictl 3.0.2's reload and restart on both,
 * its switchover and reinit --wait on etcd3 and its failover on ZooKeeper (one DCS each keeps the file short; the
 * agents' REST API does not depend on the DCS).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { waitFor } from '../harness/process.js';
import { runOnPty } from '../harness/pty.js';
import { describeNeeding } from '../harness/requirements.js';
import { afterTable, AGENT_SUITE_NEEDS, agentSuite, show, type Kind } from '../helpers/agent-suite.js';

const PGWARDEN = resolve(import.meta.dirname, '..', '..', 'bin', 'run.js');

describeNeeding(...AGENT_SUITE_NEEDS, 'script').each<Kind>(['etcd3', 'zookeeper'])(
  'pgwarden agents on %s: restart, switchover, failover, reinit, query',
  (kind) => {
    const ctx = agentSuite(kind, `actions-${kind}`);

    it('reload and restart with patronictl and pgwarden', { timeout: 90_000 }, async () => {
      const r = await ctx.patronictl(['reload', ctx.scope, '--force']);
      expect(r.code, show('patronictl reload', r)).toBe(0);
      expect(
        r.stdout.match(/Reload request received for member pg\d and will be processed within \d+ seconds/g),
      ).toHaveLength(3);
      const leader = await ctx.leaderName();
      const [a, b] = ctx.cluster().nodes.filter((n) => n.name !== leader);
      const startTime = async (name: string): Promise<string> =>
        (await ctx.cluster().psql(ctx.indexOf(name), 'SELECT pg_postmaster_start_time()')).stdout;
      const before = [await startTime(a?.name ?? ''), await startTime(b?.name ?? '')];
      const s = await ctx.patronictl(['restart', ctx.scope, a?.name ?? '', '--force']);
      expect(afterTable(s.stdout), show('patronictl restart', s)).toEqual([
        `Success: restart on member ${a?.name}`,
      ]);
      const o = await ctx.pgwarden(['restart', ctx.scope, b?.name ?? '', '--force']);
      expect({ code: o.code, lines: afterTable(o.stdout) }, show('pgwarden restart', o)).toEqual({
        code: 0,
        lines: [`Success: restart on member ${b?.name}`],
      });
      await ctx.leaderName();
      expect(await startTime(a?.name ?? '')).not.toBe(before[0]);
      expect(await startTime(b?.name ?? '')).not.toBe(before[1]);
    });

    /** A leader-moving action by `tool`; resolves to the new leader once the cluster is ready again. */
    const move = async (
      tool: 'pgwarden' | 'patronictl',
      action: 'switchover' | 'failover',
    ): Promise<string> => {
      const leader = await ctx.leaderName();
      const candidate = ctx.cluster().nodes.find((n) => n.name !== leader)?.name ?? '';
      const r = await ctx[tool]([action, ctx.scope, '--force', '--candidate', candidate]);
      const why = `${show(`${tool} ${action}`, r)}\n${ctx.diag()}`;
      expect(r.code, why).toBe(0);
      // patronictl 3.0.2 (and pgwarden, as it) sends the current leader with a failover: the member answers as
      // for a switchover.
      const verb = action === 'switchover' ? 'switched' : '(switched|failed)';
      expect(r.stdout, why).toMatch(
        new RegExp(
          `\\n\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{5} Successfully ${verb} over to "${candidate}"\\n\\+ Cluster: `,
        ),
      );
      expect(await ctx.cluster().waitReady({ timeoutMs: 60_000 })).toBe(candidate);
      return candidate;
    };

    it(
      `switchover with pgwarden${kind === 'etcd3' ? ' and patronictl' : ''}`,
      { timeout: 90_000 },
      async () => {
        if (kind === 'etcd3') await move('patronictl', 'switchover');
        await move('pgwarden', 'switchover');
      },
    );

    it(
      `failover with pgwarden${kind === 'zookeeper' ? ' and patronictl' : ''}`,
      { timeout: 90_000 },
      async () => {
        if (kind === 'zookeeper') await move('patronictl', 'failover');
        await move('pgwarden', 'failover');
      },
    );

    it(
      `reinit --wait with pgwarden${kind === 'etcd3' ? ' and patronictl' : ''}`,
      { timeout: 120_000 },
      async () => {
        const leader = await ctx.leaderName();
        const [a, b] = ctx.cluster().nodes.filter((n) => n.name !== leader);
        const tools = kind === 'etcd3' ? (['patronictl', 'pgwarden'] as const) : (['pgwarden'] as const);
        for (const [i, tool] of tools.entries()) {
          const member = (i === 0 ? a : b)?.name ?? '';
          const r = await ctx[tool](['reinit', ctx.scope, member, '--force', '--wait']);
          expect(
            { code: r.code, lines: afterTable(r.stdout) },
            `${show(`${tool} reinit`, r)}\n${ctx.diag()}`,
          ).toEqual({
            code: 0,
            lines: [
              `Success: reinitialize for member ${member}`,
              `Waiting for reinitialize to complete on: ${member}`,
              `Reinitialize is completed on: ${member}`,
            ],
          });
          // The member reports its new state a moment before it logs the end of the job.
          const log = ctx.cluster().nodes[ctx.indexOf(member)]?.logFile ?? '';
          await waitFor(
            `reinitialize finished in ${log}`,
            () => readFileSync(log, 'utf8').includes('reinitialize finished'),
            20_000,
            200,
          );
        }
        const no = await ctx.pgwarden(['reinit', ctx.scope, leader, '--force']);
        expect({ code: no.code, err: no.stderr }).toEqual({
          code: 1,
          err: 'Error: No replica among provided members\n',
        });
        expect(await ctx.cluster().waitReady({ timeoutMs: 60_000 })).toBe(leader);
      },
    );

    it('query -f json on the leader and on a replica', { timeout: 30_000 }, async () => {
      const q = await ctx.pgwarden([
        'query',
        ctx.scope,
        '-U',
        'postgres',
        '--format',
        'json',
        '-c',
        'select pg_is_in_recovery() as r',
      ]);
      expect({ code: q.code, out: JSON.parse(q.stdout) as unknown }, show('pgwarden query', q)).toEqual({
        code: 0,
        out: [{ r: false }],
      });
      const rq = await ctx.pgwarden([
        'query',
        ctx.scope,
        '-r',
        'replica',
        '-U',
        'postgres',
        '-c',
        'select pg_is_in_recovery()',
      ]);
      expect(rq.stdout, show('pgwarden query -r replica', rq)).toBe('pg_is_in_recovery\nTrue\n');
    });

    it('remove (on a terminal, last) deletes every key of the cluster', { timeout: 60_000 }, async () => {
      const leader = await ctx.leaderName();
      // Stopped (SIGSTOP) agents cannot write their keys again while the test looks at the DCS.
      const pids = ctx.cluster().nodes.map((_n, i) => ctx.cluster().pid(i));
      if (pids.some((p) => p === undefined || p <= 0))
        throw new Error(`an agent is not running: ${String(pids)}`);
      for (const pid of pids) process.kill(pid!, 'SIGSTOP');
      try {
        const t = runOnPty(
          [process.execPath, PGWARDEN, '-c', ctx.cluster().nodes[0]?.configFile ?? '', 'remove', ctx.scope],
          {
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ctx.cluster().dir, LANG: 'C.UTF-8' },
            cwd: ctx.cluster().dir,
          },
        );
        await t.expect('Please confirm the cluster name to remove');
        t.type(`${ctx.scope}\r`);
        await t.expect('please type: "Yes I am aware"');
        t.type('Yes I am aware\r');
        await t.expect('This cluster currently is healthy. Please specify the leader name to continue');
        t.type(`${leader}\r`);
        const r = await t.done();
        expect(r.code, r.output).toBe(0);
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
      } finally {
        for (const pid of pids) process.kill(pid!, 'SIGCONT');
      }
    });
  },
);
