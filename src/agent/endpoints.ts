/**
 * The agent's unsafe REST endpoints with Patroni 3.0.2's validations, status codes and messages (api.py
 * `do_POST_switchover`/`failover`, `do_DELETE_switchover`, `do_PATCH_config`, `do_PUT_config`, `do_POST_reload`,
 * `do_POST_restart`, `do_DELETE_restart`, `do_POST_reinitialize`, `do_POST_failsafe`; ha.py `restart`, `reinitialize`). Access checks
 * (allowlist, client certificates, Basic auth) and body parsing happen in src/api/server.ts before these run.
 *
 * Everything the handlers touch comes in through `EndpointDeps`, so they can be exercised without PostgreSQL. The
 * handlers live in src/agent/routes (failover.ts, config.ts, restart.ts); this module binds them together.
 */
import type { UnsafeHandlers } from '../api/types.js';
import { configEndpoints } from './routes/config.js';
import { failoverEndpoints } from './routes/failover.js';
import { failsafeEndpoints } from './routes/failsafe.js';
import type { EndpointDeps } from './routes/deps.js';
import { restartEndpoints } from './routes/restart.js';

export type { EndpointDeps, EndpointLoop, EndpointNode } from './routes/deps.js';
export { parseSchedule, postgresVersionToInt, type ScheduleResult } from './routes/parse.js';

/** All unsafe endpoints of the agent, from the route modules in src/agent/routes. */
export function agentEndpoints(deps: EndpointDeps): UnsafeHandlers {
  return {
    ...failoverEndpoints(deps),
    ...configEndpoints(deps),
    ...restartEndpoints(deps),
    ...failsafeEndpoints(deps),
  };
}
