/**
 * POST /switchover, POST /failover and DELETE /switchover with Patroni 3.0.2's validations, codes and messages
 * (api.py `do_POST_failover`, `is_failover_possible`, `poll_failover_result`, `do_DELETE_switchover`).
 */
import { isStandbyCluster } from '../../model/standby-cluster.js';
import type { ApiReply, ApiRequest, UnsafeHandlers } from '../../api/types.js';
import type { PeerStatus } from '../../ha/snapshot.js';
import { isFailoverEmpty, isPaused, type Cluster, type Member } from '../../model/cluster.js';
import { pyJson } from '../../model/pyjson.js';
import type { EndpointDeps } from './deps.js';
import { parseBool, pyBool, pyStr } from '../../model/python.js';
import { errorText } from '../../model/text.js';
import { freshCluster, parseSchedule, text, type Reply } from './parse.js';

class FailoverRoutes {
  private readonly dcs: EndpointDeps['dcs'];
  private readonly loop: EndpointDeps['loop'];
  private readonly log: EndpointDeps['log'];
  private readonly now: () => number;
  private readonly pollMs: number;

  constructor(private readonly deps: EndpointDeps) {
    this.dcs = deps.dcs;
    this.loop = deps.loop;
    this.log = deps.log;
    this.now = deps.now ?? Date.now;
    this.pollMs = deps.pollIntervalMs ?? 1000;
  }

  private readonly sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  /** Patroni's `is_synchronous_mode`: never in a standby cluster. */
  private readonly synchronousMode = (c: Cluster): boolean =>
    parseBool(c.config?.data['synchronous_mode']) === true && !isStandbyCluster(c.config?.data);

  /** api.py `is_failover_possible`; undefined when possible, else the 412 text. */
  private readonly failoverImpossible = async (
    c: Cluster,
    leader: string | undefined,
    candidate: string | undefined,
    action: string,
  ): Promise<string | undefined> => {
    if (leader && c.leader?.name !== leader) return 'leader name does not match';
    let members: readonly Member[];
    if (candidate) {
      if (action === 'switchover' && this.synchronousMode(c) && !c.sync.members.includes(candidate))
        return 'candidate name does not match with sync_standby';
      members = c.members.filter((m) => m.name === candidate);
      if (members.length === 0) return 'candidate does not exists';
    } else if (this.synchronousMode(c)) {
      members = c.members.filter((m) => c.sync.members.includes(m.name));
      if (members.length === 0) return `${action} is not possible: can not find sync_standby`;
    } else {
      members = c.members.filter((m) => m.name !== c.leader?.name && m.data.apiUrl);
      if (members.length === 0)
        return `${action} is not possible: cluster does not have members except leader`;
    }
    const probed = members.flatMap((m) => (m.data.apiUrl ? [{ name: m.name, apiUrl: m.data.apiUrl }] : []));
    const statuses: ReadonlyMap<string, PeerStatus> =
      probed.length > 0 ? await this.deps.probe(probed) : new Map();
    for (const st of statuses.values()) {
      if (st.reachable && !st.nofailover && !st.watchdogFailed) return undefined;
    }
    return `${action} is not possible: no good candidates have been found`;
  };

  /** api.py `poll_failover_result`. */
  private readonly pollResult = async (
    leader: string | undefined,
    candidate: string | undefined,
    action: 'switchover' | 'failover',
  ): Promise<ApiReply> => {
    const past = action === 'switchover' ? 'switched' : 'failed';
    const title = action === 'switchover' ? 'Switchover' : 'Failover';
    const rounds = Math.max(10, this.loop.haConfig.loopWait) * 2;
    for (let i = 0; i < rounds; i++) {
      await this.sleep(this.pollMs);
      let c: Cluster;
      try {
        c = await this.dcs.getCluster();
      } catch (e) {
        this.log.info(`Exception occurred during polling ${action} result: ${errorText(e)}`);
        continue;
      }
      const holder = c.leader?.name;
      if (holder && holder !== leader) {
        if (!candidate || candidate === holder) return text(200, `Successfully ${past} over to "${holder}"`);
        const Past = past.charAt(0).toUpperCase() + past.slice(1);
        return text(200, `${Past} over to "${holder}" instead of "${candidate}"`);
      }
      if (isFailoverEmpty(c.failover)) return text(503, `${title} failed`);
    }
    return text(503, `${title} status unknown`);
  };

  /** api.py `do_POST_failover(action)` (3.0.2). */
  readonly failoverHandler =
    (action: 'switchover' | 'failover') =>
    async (req: ApiRequest): Reply => {
      const title = action === 'switchover' ? 'Switchover' : 'Failover';
      const body = req.body;
      const leader = pyBool(body['leader']) ? pyStr(body['leader']) : undefined;
      const rawCandidate = pyBool(body['candidate']) ? body['candidate'] : body['member'];
      const candidate = pyBool(rawCandidate) ? pyStr(rawCandidate) : undefined;
      const scheduledRaw = body['scheduled_at'];
      const c = await freshCluster(this.deps);
      this.log.info(
        `received ${action} request with leader=${leader ?? 'None'} candidate=${candidate ?? 'None'} scheduled_at=${pyBool(scheduledRaw) ? pyStr(scheduledRaw) : 'None'}`,
      );
      if (!c) return { error: 503 };
      const paused = isPaused(c);
      let code = 400;
      let data = '';
      let scheduledIso: string | undefined;
      if (action === 'failover' && !candidate)
        data = 'Failover could be performed only to a specific candidate';
      else if (action === 'switchover' && !leader)
        data = 'Switchover could be performed only from a specific leader';
      if (!data && pyBool(scheduledRaw)) {
        if (!leader) data = `Scheduled ${action} is possible only from a specific leader`;
        if (!data && paused) data = `Can't schedule ${action} in the paused state`;
        if (!data) {
          const r = parseSchedule(scheduledRaw, action, this.now());
          if (r.ok) scheduledIso = r.iso;
          else {
            code = r.code;
            data = r.error;
          }
        }
      }
      if (!data && paused && !candidate)
        data = `${title} is possible only to a specific candidate in a paused state`;
      if (!data && scheduledIso === undefined) {
        const reason = await this.failoverImpossible(c, leader, candidate, action);
        if (reason !== undefined) {
          code = 412;
          data = reason;
        }
      }
      if (data) return text(code, data);

      const value = pyJson(
        {
          ...(leader ? { leader } : {}),
          ...(candidate ? { member: candidate } : {}),
          ...(scheduledIso !== undefined ? { scheduled_at: scheduledIso } : {}),
        },
        true,
      );
      let written = false;
      try {
        // Compare-and-set against the key as read for the checks above: a concurrent request cannot swap in a
        // candidate that was never checked.
        written = await this.dcs.replaceFailoverValue(value, c.failover?.version);
      } catch (e) {
        this.log.warning(`writing the failover key failed: ${errorText(e)}`);
      }
      if (!written) return text(503, `failed to write ${action} key into DCS`);
      this.loop.wake();
      if (scheduledIso !== undefined) return text(202, `${title} scheduled`);
      return this.pollResult(c.leader?.name, candidate, action);
    };

  readonly deleteSwitchover = async (): Reply => {
    const c = await freshCluster(this.deps);
    const f = c?.failover;
    if (f && !isFailoverEmpty(f) && f.scheduledAt) {
      let ok = false;
      try {
        ok = await this.dcs.setFailoverValue('{}', f.version);
      } catch {
        ok = false;
      }
      if (!ok) return { error: 409 };
      return text(200, 'scheduled switchover deleted');
    }
    return text(404, 'no switchover is scheduled');
  };
}

export function failoverEndpoints(
  deps: EndpointDeps,
): Required<Pick<UnsafeHandlers, 'switchover' | 'failover' | 'deleteSwitchover'>> {
  const routes = new FailoverRoutes(deps);
  return {
    switchover: routes.failoverHandler('switchover'),
    failover: routes.failoverHandler('failover'),
    deleteSwitchover: routes.deleteSwitchover,
  };
}
