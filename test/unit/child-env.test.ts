/**
 * PATRONI_* variables (the agent's configuration and secrets) never reach a program the agent starts: PostgreSQL
 * and its tools through runCommand, and the user's scripts (pre_promote here; callbacks, post_bootstrap and replica
 * methods take the same childEnv).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runPrePromote } from '../../src/postgres/callbacks.js';
import { childEnv } from '../../src/postgres/child-env.js';
import { runCommand } from '../../src/postgres/binaries.js';

const SECRET = 'PATRONI_SUPERUSER_PASSWORD';
const quiet = { info: () => undefined, warning: () => undefined, error: () => undefined };

describe('the environment of child processes', () => {
  beforeEach(() => {
    process.env[SECRET] = 'hunter2';
    process.env['PATRONI_RESTAPI_PASSWORD'] = 'rest-secret';
  });
  afterEach(() => {
    delete process.env[SECRET];
    delete process.env['PATRONI_RESTAPI_PASSWORD'];
  });

  it('childEnv drops every PATRONI_ variable, keeps the rest and applies the extras', () => {
    const env = childEnv(
      { PGPASSWORD: 'x', HOME: undefined },
      { PATH: '/bin', HOME: '/root', PATRONI_NAME: 'pg1', PATRONI_ETCD3_PASSWORD: 's', PGDATA: '/d' },
    );
    expect(env).toEqual({ PATH: '/bin', PGDATA: '/d', PGPASSWORD: 'x' });
  });

  it('PostgreSQL binaries (runCommand) do not inherit them', async () => {
    const r = await runCommand('/usr/bin/env', [], { env: { PGAPPNAME: 'probe' } });
    expect(r.stdout).toContain('PGAPPNAME=probe\n');
    expect(r.stdout).toContain('PATH=');
    expect(r.stdout).not.toContain('PATRONI_');
    expect(r.stdout).not.toContain('hunter2');
  });

  it('a pre_promote script does not inherit them', async () => {
    const probe = `sh -c 'test -z "$${SECRET}" && test -z "$PATRONI_RESTAPI_PASSWORD" && test -n "$PATH"'`;
    const r = await runPrePromote(probe, { timeoutMs: 10_000, cancelled: () => false, log: quiet });
    expect(r).toEqual({ ok: true, cancelled: false });
    // The same probe fails when the variable is there: it does look at it.
    const leaky = await runPrePromote(`sh -c 'test -z "$HOME"'`, {
      timeoutMs: 10_000,
      cancelled: () => false,
      log: quiet,
    });
    expect(leaky.ok).toBe(false);
  });
});
