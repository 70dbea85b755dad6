/**
 * The environment of every program the agent starts: PostgreSQL (and so every backend, archive_command and
 * restore_command), pg_ctl and the other binaries, callbacks, pre_promote, post_bootstrap and replica methods.
 * `PATRONI_*` variables configure the agent and carry its secrets (REST API, etcd and superuser passwords): none of
 * them get those. Patroni strips them from the postmaster's environment; pgwarden strips them everywhere.
 */
const AGENT_ONLY_PREFIX = 'PATRONI_';

/** `base` (default: this process's environment) without the agent's own variables, with `extra` over it. */
export function childEnv(
  extra: Readonly<Record<string, string | undefined>> = {},
  base: Readonly<Record<string, string | undefined>> = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) {
    if (v !== undefined && !k.startsWith(AGENT_ONLY_PREFIX)) env[k] = v;
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}
