/**
 * The unsafe REST endpoints of pgwarden agents (src/agent/endpoints.ts) with restapi.authentication configured, on
 * etcd v3 AND ZooKeeper (one cluster per DCS, shared by that DCS's tests): Patroni 3.0.2's 400/401/412/422 texts,
 * Basic auth and what the CLIs print without credentials (and with ctl.auth 'user:pass'), scheduled switchover
 * and restart and their flush, PATCH/PUT /config, pause/resume, edit-config. Driven by raw HTTP, by pgwarden and by
 * real patronictl 3.0.2. The actions that move the leader or rebuild a member are in agent-actions.test.ts.
 */
import { expect, it } from 'vitest';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import {
  afterTable,
  AGENT_SUITE_NEEDS,
  agentSuite,
  AUTH,
  show,
  type Answer,
  type Kind,
} from '../helpers/agent-suite.js';

const answer = async (p: Promise<Answer>): Promise<Answer> => {
  const { status, body } = await p;
  return { status, body };
};

describeNeeding(...AGENT_SUITE_NEEDS).each<Kind>(['etcd3', 'zookeeper'])(
  'pgwarden agents on %s: unsafe REST endpoints',
  (kind) => {
    const ctx = agentSuite(kind, `agents-${kind}`);

    it('answers Patroni 3.0.2 validation texts', async () => {
      const leader = await ctx.leaderName();
      const p = ctx.port(leader);
      const post = (path: string, body?: unknown): Promise<Answer> => answer(ctx.call(p, 'POST', path, body));
      expect(await post('/switchover', { candidate: 'pg2' })).toEqual({
        status: 400,
        body: 'Switchover could be performed only from a specific leader',
      });
      expect(await post('/failover', { leader })).toEqual({
        status: 400,
        body: 'Failover could be performed only to a specific candidate',
      });
      expect(await post('/switchover', { leader: 'nobody' })).toEqual({
        status: 412,
        body: 'leader name does not match',
      });
      expect(await post('/switchover', { leader, candidate: 'pg9' })).toEqual({
        status: 412,
        body: 'candidate does not exists',
      });
      expect(await post('/switchover', { leader, scheduled_at: '2030-01-01T10:00:00' })).toEqual({
        status: 400,
        body: 'Timezone information is mandatory for the scheduled switchover',
      });
      expect(await post('/switchover', { leader, scheduled_at: '2001-01-01T10:00:00+00:00' })).toEqual({
        status: 422,
        body: 'Cannot schedule switchover in the past',
      });
      expect(await post('/restart', { role: 'leader' })).toEqual({
        status: 400,
        body: 'PostgreSQL role should be either primary or replica',
      });
      expect(await post('/restart', { postgres_version: '10' })).toEqual({
        status: 400,
        body: 'Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: 10',
      });
      expect(await post('/restart', { foo: 1 })).toEqual({
        status: 400,
        body: 'Unknown filter for the scheduled restart: foo',
      });
      expect(await post('/restart', { role: 'replica' })).toEqual({
        status: 503,
        body: 'restart conditions are not satisfied',
      });
      expect(await answer(ctx.call(p, 'DELETE', '/restart'))).toEqual({
        status: 404,
        body: 'no restarts are scheduled',
      });
      expect(await answer(ctx.call(p, 'DELETE', '/switchover'))).toEqual({
        status: 404,
        body: 'no switchover is scheduled',
      });
      expect(await post('/reinitialize')).toEqual({
        status: 503,
        body: 'I am the leader, can not reinitialize',
      });
    });

    it('unsafe endpoints answer 401 without or with wrong Basic auth; GET stays open', async () => {
      const p = ctx.port(ctx.cluster().nodes[1]?.name ?? '');
      const none = await ctx.call(p, 'POST', '/reload', undefined, null);
      expect({ status: none.status, body: none.body, h: none.wwwAuthenticate }).toEqual({
        status: 401,
        body: 'no auth header received',
        h: 'Basic realm="Patroni"',
      });
      const wrong = `Basic ${Buffer.from('admin:nope').toString('base64')}`;
      for (const [method, path] of [
        ['POST', '/reload'],
        ['PATCH', '/config'],
        ['DELETE', '/switchover'],
        ['POST', '/restart'],
      ] as const) {
        const r = await ctx.call(p, method, path, method === 'PATCH' ? { x: 1 } : undefined, wrong);
        expect({ status: r.status, body: r.body }, `${method} ${path}`).toEqual({
          status: 401,
          body: 'not authenticated',
        });
      }
      expect((await ctx.call(p, 'GET', '/patroni', undefined, null)).status).toBe(200);
      expect((await ctx.call(p, 'POST', '/reload')).status).toBe(202);
    });

    it(
      'CLI without credentials: patronictl\'s Failed lines, exit 1 and a hint; ctl.auth "user:pass" works',
      { timeout: 60_000 },
      async () => {
        const bare = ctx.ctlConfig('ctl-noauth.yml', '');
        const [ours, theirs] = await Promise.all([
          ctx.pgwarden(['reload', ctx.scope, '--force'], bare),
          ctx.patronictl(['reload', ctx.scope, '--force'], bare),
        ]);
        expect(ours.code, show('pgwarden reload', ours)).toBe(1);
        expect(afterTable(ours.stdout), show('pgwarden', ours) + show('patronictl', theirs)).toEqual(
          afterTable(theirs.stdout),
        );
        expect(afterTable(ours.stdout).sort()).toEqual(
          ['pg1', 'pg2', 'pg3'].map(
            (m) => `Failed: reload for member ${m}, status code=401, (no auth header received)`,
          ),
        );
        expect(ours.stderr).toMatch(
          /^Hint: the REST API of pg\d requires authentication \(401 no auth header received\): set ctl\.authentication \(username, password\) or restapi\.authentication/,
        );
        expect(ours.stderr.split('\n').filter((l) => l.startsWith('Hint:'))).toHaveLength(1);

        const wrongCreds = ctx.ctlConfig(
          'ctl-wrong.yml',
          'ctl:\n  authentication:\n    username: admin\n    password: x\n',
        );
        const w = await ctx.pgwarden(['pause', ctx.scope], wrongCreds);
        expect(w.code, show('pgwarden pause', w)).toBe(1);
        expect(w.stdout).toBe('Failed: pause cluster management status code=401, (not authenticated)\n');
        expect(w.stderr).toContain('rejected the credentials for user admin (401 not authenticated)');

        // patronictl 3.0.2 reads ctl.auth as 'username:password'; so does pgwarden.
        const str = ctx.ctlConfig('ctl-string.yml', `ctl:\n  auth: '${AUTH.username}:${AUTH.password}'\n`);
        const [o2, t2] = await Promise.all([
          ctx.pgwarden(['reload', ctx.scope, '--force'], str),
          ctx.patronictl(['reload', ctx.scope, '--force'], str),
        ]);
        expect(o2.code, show('pgwarden', o2)).toBe(0);
        expect(afterTable(o2.stdout), show('pgwarden', o2) + show('patronictl', t2)).toEqual(
          afterTable(t2.stdout),
        );
        expect(afterTable(o2.stdout).sort()).toEqual(
          ['pg1', 'pg2', 'pg3'].map(
            (m) => `Reload request received for member ${m} and will be processed within 2 seconds`,
          ),
        );
      },
    );

    it(
      'schedules a switchover and a restart with the CLI and flushes them',
      { timeout: 60_000 },
      async () => {
        const leader = await ctx.leaderName();
        const replica = ctx.cluster().nodes.find((n) => n.name !== leader)?.name ?? '';
        const at = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, '+00:00');
        const s = await ctx.pgwarden(['switchover', ctx.scope, '--scheduled', at, '--force']);
        expect(s.code, show('pgwarden switchover --scheduled', s)).toBe(0);
        expect(s.stdout).toMatch(/\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{5} Switchover scheduled\n/);
        expect(s.stdout).toContain(` Switchover scheduled at: ${at}\n`);
        expect((await ctx.readDcs()).failover?.scheduledAt).toBe(at);
        expect(
          await answer(ctx.call(ctx.port(leader), 'POST', '/switchover', { leader, scheduled_at: at })),
        ).toEqual({
          status: 202,
          body: 'Switchover scheduled',
        });
        const f = await ctx.pgwarden(['flush', ctx.scope, 'switchover']);
        expect({ code: f.code, out: f.stdout }, show('pgwarden flush', f)).toEqual({
          code: 0,
          out: 'Success: scheduled switchover deleted\n',
        });
        const none = await ctx.pgwarden(['flush', ctx.scope, 'switchover']);
        expect(none.stdout).toBe('No pending scheduled switchover\n');

        const r = await ctx.pgwarden([
          'restart',
          ctx.scope,
          replica,
          '--scheduled',
          at,
          '--pg-version',
          '99.1',
          '--force',
        ]);
        expect(afterTable(r.stdout), show('pgwarden restart --scheduled', r)).toEqual([
          `Success: restart scheduled on member ${replica}`,
        ]);
        expect(await answer(ctx.call(ctx.port(replica), 'POST', '/restart', { schedule: at }))).toEqual({
          status: 409,
          body: 'Another restart is already scheduled',
        });
        await waitFor(
          `scheduled_restart in the member key of ${replica}`,
          async () =>
            (await ctx.readDcs()).members.find((m) => m.name === replica)?.data.scheduledRestart !==
            undefined,
          20_000,
          300,
        );
        const fr = await ctx.pgwarden(['flush', ctx.scope, 'restart', '--force']);
        expect(fr.code, show('pgwarden flush restart', fr)).toBe(0);
        expect(afterTable(fr.stdout).sort()).toEqual(
          ctx
            .cluster()
            .nodes.map((n) =>
              n.name === replica
                ? `Success: flush scheduled restart for member ${n.name}`
                : `No scheduled restart for member ${n.name}`,
            )
            .sort(),
        );
        expect(await answer(ctx.call(ctx.port(replica), 'DELETE', '/restart'))).toEqual({
          status: 404,
          body: 'no restarts are scheduled',
        });
      },
    );

    it('PATCH /config merges (null deletes) and PUT /config replaces', async () => {
      const p = ctx.port(ctx.cluster().nodes[1]?.name ?? '');
      const patched = await ctx.call(p, 'PATCH', '/config', { endpoint_test: { a: 1, b: 'x' } });
      expect(patched.status).toBe(200);
      const doc = JSON.parse(patched.body) as Record<string, unknown>;
      expect(doc['endpoint_test']).toEqual({ a: 1, b: 'x' });
      expect(doc['loop_wait']).toBe(2);
      const again = await ctx.call(p, 'PATCH', '/config', { endpoint_test: { a: null } });
      expect((JSON.parse(again.body) as Record<string, unknown>)['endpoint_test']).toEqual({ b: 'x' });
      const removed = await ctx.call(p, 'PATCH', '/config', { endpoint_test: null });
      expect(JSON.parse(removed.body)).not.toHaveProperty('endpoint_test');
      expect((await ctx.call(p, 'PATCH', '/config', {})).status).toBe(400);
      const current = JSON.parse((await ctx.call(p, 'GET', '/config')).body) as Record<string, unknown>;
      const put = await ctx.call(p, 'PUT', '/config', current);
      expect(put.status).toBe(200);
      expect(JSON.parse(put.body)).toEqual(current);
    });

    it('pause / resume with patronictl and pgwarden', { timeout: 60_000 }, async () => {
      const p = await ctx.patronictl(['pause', ctx.scope]);
      expect(p.stdout, show('patronictl pause', p)).toContain('Success: cluster management is paused');
      await waitFor(
        'member keys with "pause": true',
        async () => {
          const members = (await ctx.readDcs()).members;
          return members.length === 3 && members.every((m) => m.data.raw['pause'] === true);
        },
        20_000,
        300,
      );
      const [ours, theirs] = await Promise.all([
        ctx.pgwarden(['pause', ctx.scope]),
        ctx.patronictl(['pause', ctx.scope]),
      ]);
      expect({ code: ours.code, out: ours.stdout, err: ours.stderr }).toEqual({
        code: theirs.code,
        out: theirs.stdout,
        err: theirs.stderr,
      });
      expect(ours.stderr).toBe('Error: Cluster is already paused\n');
      const leader = (await ctx.cluster().primaries())[0] ?? '';
      expect(await answer(ctx.call(ctx.port(leader), 'POST', '/switchover', { leader }))).toEqual({
        status: 400,
        body: 'Switchover is possible only to a specific candidate in a paused state',
      });
      const sched = await ctx.pgwarden([
        'restart',
        ctx.scope,
        leader,
        '--scheduled',
        '2099-01-01T00:00+00:00',
        '--force',
      ]);
      expect(sched.code, show('pgwarden restart', sched)).toBe(1);
      expect(sched.stderr).toBe("Error: Can't schedule restart in the paused state\n");
      const r = await ctx.pgwarden(['resume', ctx.scope, '--wait']);
      expect({ code: r.code, out: r.stdout }, show('pgwarden resume', r)).toEqual({
        code: 0,
        out: "'resume' request sent, waiting until it is recognized by all nodes\nSuccess: cluster management is resumed\n",
      });
      expect((await ctx.pgwarden(['list', ctx.scope])).stdout).not.toContain('Maintenance mode');
    });

    it('edit-config by patronictl and by pgwarden reaches the agents', { timeout: 60_000 }, async () => {
      const t = await ctx.patronictl([
        'edit-config',
        ctx.scope,
        '-s',
        'maximum_lag_on_failover=2097152',
        '--force',
      ]);
      expect(t.stdout, show('patronictl edit-config', t)).toContain(
        '-maximum_lag_on_failover: 1048576\n+maximum_lag_on_failover: 2097152\n',
      );
      expect(t.stdout.endsWith('Configuration changed\n')).toBe(true);
      const p = ctx.port(ctx.cluster().nodes[2]?.name ?? '');
      await waitFor(
        'GET /config with the new value',
        async () =>
          (JSON.parse((await ctx.call(p, 'GET', '/config')).body) as Record<string, unknown>)[
            'maximum_lag_on_failover'
          ] === 2097152,
        10_000,
        200,
      );
      const o = await ctx.pgwarden([
        'edit-config',
        ctx.scope,
        '-s',
        'maximum_lag_on_failover=1048576',
        '--force',
      ]);
      expect(o.code, show('pgwarden edit-config', o)).toBe(0);
      expect(o.stdout).toBe(
        t.stdout.replace(
          '-maximum_lag_on_failover: 1048576\n+maximum_lag_on_failover: 2097152\n',
          '-maximum_lag_on_failover: 2097152\n+maximum_lag_on_failover: 1048576\n',
        ),
      );
      expect(
        (await ctx.pgwarden(['edit-config', ctx.scope, '-s', 'maximum_lag_on_failover=1048576', '--force']))
          .stdout,
      ).toBe('Not changed\n');
    });
  },
);
