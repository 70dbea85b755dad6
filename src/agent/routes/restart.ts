/**
 * POST /restart (now or scheduled), DELETE /restart, POST /reload and POST /reinitialize (api.py `do_POST_restart`,
 * `do_DELETE_restart`, `do_POST_reload`, `do_POST_reinitialize`; ha.py `restart`, `restart_matches`,
 * `evaluate_scheduled_restart`, `reinitialize`).
 */
import type { ApiReply, ApiRequest, UnsafeHandlers } from '../../api/types.js';
import { isPaused } from '../../model/cluster.js';
import { parseGucInt } from '../../model/guc-values.js';
import { parseBool, pyBool, pyStr } from '../../model/python.js';
import { errorText } from '../../model/text.js';
import type { EndpointDeps } from './deps.js';
import { setLongTimeout, type LongTimer } from './long-timer.js';
import { freshCluster, parseSchedule, postgresVersionToInt, text, type Reply } from './parse.js';

interface ScheduledRestart {
  readonly request: Readonly<Record<string, unknown>>;
  readonly postmasterStartTime: string | undefined;
  readonly timer: LongTimer;
}

class RestartRoutes {
  private readonly loop: EndpointDeps['loop'];
  private readonly node: EndpointDeps['node'];
  private readonly log: EndpointDeps['log'];
  private readonly now: () => number;
  private scheduledRestart: ScheduledRestart | undefined;

  constructor(private readonly deps: EndpointDeps) {
    this.loop = deps.loop;
    this.node = deps.node;
    this.log = deps.log;
    this.now = deps.now ?? Date.now;
  }

  readonly reload = (): ApiReply => {
    this.node.reload().then(
      () => this.loop.wake(),
      (e: unknown) => this.log.warning(`reload failed: ${errorText(e)}`),
    );
    return text(202, 'reload scheduled');
  };

  /** ha.py `restart_matches`. */
  private readonly restartMatches = async (request: Readonly<Record<string, unknown>>): Promise<boolean> => {
    let reason = '';
    const role = request['role'];
    const mine = this.node.role();
    if (pyBool(role) && (role === 'primary' ? 'master' : role) !== (mine === 'primary' ? 'master' : mine))
      reason = 'host role mismatch';
    const want = request['postgres_version'];
    if (pyBool(want)) {
      const n = postgresVersionToInt(want);
      if (typeof n === 'number' && n <= (await this.node.serverVersion()))
        reason = 'postgres version mismatch';
    }
    if ('restart_pending' in request && !this.node.pendingRestart())
      reason = 'pending restart flag is not set';
    if (!reason) return true;
    this.log.info(`not proceeding with the restart: ${reason}`);
    return false;
  };

  /** ha.py `restart`: [ok, message]. */
  private readonly runRestart = async (
    request: Readonly<Record<string, unknown>>,
    wait: boolean,
  ): Promise<readonly [boolean, string]> => {
    if (!(await this.restartMatches(request))) return [false, 'restart conditions are not satisfied'];
    const timeout =
      typeof request['timeout'] === 'number' ? request['timeout'] : this.loop.haConfig.primaryStartTimeout;
    const started = this.loop.startRequested('restart', 'restart', (t) => this.node.restart(timeout, t));
    if (typeof started === 'string') return [false, `${started} already in progress`];
    if (!wait) {
      started.catch(() => undefined);
      return [true, 'restart initiated'];
    }
    if (await started) return [true, 'restarted successfully'];
    return [false, this.node.isStarting() ? 'postgres is still starting' : 'restart failed'];
  };

  readonly restart = async (req: ApiRequest): Reply => {
    let code = 500;
    let data = 'restart failed';
    const c = await freshCluster(this.deps);
    const request: Record<string, unknown> = { ...req.body };
    if (c && isPaused(c) && 'schedule' in request)
      return text(code, "Can't schedule restart in the paused state");
    let failed = false;
    let scheduleAt: Date | undefined;
    for (const k of Object.keys(request)) {
      const v = request[k];
      if (k === 'schedule') {
        const r = parseSchedule(v, 'restart', this.now());
        if (!r.ok) {
          code = r.code;
          data = r.error;
          failed = true;
          break;
        }
        scheduleAt = r.at;
        request[k] = r.iso;
      } else if (k === 'role') {
        if (v !== 'master' && v !== 'primary' && v !== 'replica') {
          code = 400;
          data = 'PostgreSQL role should be either primary or replica';
          failed = true;
          break;
        }
      } else if (k === 'postgres_version') {
        const n = postgresVersionToInt(v);
        if (typeof n === 'string') {
          code = 400;
          data = n;
          failed = true;
          break;
        }
      } else if (k === 'timeout') {
        // api.py: parse_int(request['timeout'], 's'), of the JSON value's str().
        const t = parseGucInt(pyStr(v), 's');
        if (t === undefined || t <= 0) {
          code = 400;
          data = 'Timeout should be a positive number of seconds';
          failed = true;
          break;
        }
        request[k] = t;
      } else if (k !== 'restart_pending') {
        code = 400;
        data = `Unknown filter for the scheduled restart: ${k}`;
        failed = true;
        break;
      }
    }
    if (failed) return text(code, data);
    if (scheduleAt === undefined) {
      try {
        const [ok, message] = await this.runRestart(request, true);
        return text(ok ? 200 : 503, message);
      } catch (e) {
        this.log.warning(`Exception during restart: ${errorText(e)}`);
        return text(400, 'restart failed');
      }
    }
    if (this.scheduledRestart) return text(409, 'Another restart is already scheduled');
    const startTime = await this.node.postmasterStartTime().catch(() => undefined);
    this.scheduledRestart = this.scheduleRestart(request, scheduleAt, startTime);
    this.node.setScheduledRestart({ ...request, postmaster_start_time: startTime ?? null });
    this.loop.wake();
    return text(202, 'Restart scheduled');
  };

  /** ha.py `evaluate_scheduled_restart`, driven by a timer instead of the HA cycle. */
  private readonly scheduleRestart = (
    request: Readonly<Record<string, unknown>>,
    at: Date,
    postmasterStartTime: string | undefined,
  ): ScheduledRestart => {
    const fire = async (): Promise<void> => {
      const entry = this.scheduledRestart;
      this.scheduledRestart = undefined;
      this.node.setScheduledRestart(undefined);
      if (!entry) return;
      const c = this.loop.lastCluster;
      if (c && isPaused(c)) {
        this.log.info('not running the scheduled restart: the cluster is paused');
        return;
      }
      const recent = await this.node.postmasterStartTime().catch(() => undefined);
      if (recent && entry.postmasterStartTime && recent !== entry.postmasterStartTime) {
        this.log.info(`Cancelling scheduled restart: postgres restart has already happened at ${recent}`);
        return;
      }
      const [ok, message] = await this.runRestart(entry.request, false);
      if (!ok) this.log.warning(`Scheduled restart: ${message}`);
    };
    const timer = setLongTimeout(
      () => {
        fire().catch((e: unknown) => this.log.warning(`Scheduled restart failed: ${errorText(e)}`));
      },
      at.getTime(),
      this.now,
    );
    return { request, postmasterStartTime, timer };
  };

  readonly deleteRestart = (): ApiReply => {
    if (!this.scheduledRestart) return text(404, 'no restarts are scheduled');
    this.scheduledRestart.timer.cancel();
    this.scheduledRestart = undefined;
    this.node.setScheduledRestart(undefined);
    this.loop.wake();
    return text(200, 'scheduled restart deleted');
  };

  /** ha.py `reinitialize` (3.0.2: only `force`). */
  readonly reinitialize = async (req: ApiRequest): Reply => {
    const force = parseBool(req.body['force']) === true;
    const c = await freshCluster(this.deps);
    if (!c?.leader?.name) return text(503, 'Cluster has no leader, can not reinitialize');
    if (c.leader.name === this.deps.name) return text(503, 'I am the leader, can not reinitialize');
    const from = c.leader.member ?? c.members.find((m) => m.name === c.leader?.name);
    if (!from) return text(503, 'Cluster has no leader, can not reinitialize');
    if (force) this.loop.cancelTask();
    const started = this.loop.startRequested('reinitialize', 'reinitialize', (t) =>
      this.node.reinitialize(from, t),
    );
    if (typeof started === 'string') return text(503, `${started} already in progress`);
    started.then(
      (ok) => this.log.info(ok ? 'reinitialize finished' : 'reinitialize failed'),
      (e: unknown) => this.log.warning(`reinitialize failed: ${errorText(e)}`),
    );
    return text(200, 'reinitialize started');
  };
}

export function restartEndpoints(
  deps: EndpointDeps,
): Required<Pick<UnsafeHandlers, 'restart' | 'deleteRestart' | 'reload' | 'reinitialize'>> {
  const routes = new RestartRoutes(deps);
  return {
    restart: routes.restart,
    deleteRestart: routes.deleteRestart,
    reload: routes.reload,
    reinitialize: routes.reinitialize,
  };
}
