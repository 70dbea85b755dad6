/**
 * The agent's unsafe REST endpoints with Patroni 3.0.2's validations, status codes and messages (api.py
 * `do_POST_switchover`/`failover`, `do_DELETE_switchover`, `do_PATCH_config`, `do_PUT_config`, `do_POST_reload`,
 * `do_POST_restart`, `do_DELETE_restart`, `do_POST_reinitialize`; ha.py `restart`, `reinitialize`). Access checks
 * (allowlist, client certificates, Basic auth) and body parsing happen in src/api/server.ts before these run.
 *
 * Everything the handlers touch comes in through `EndpointDeps`, so they can be exercised without PostgreSQL.
 */
import type { ApiReply, ApiRequest, UnsafeHandlers } from '../api/server.js';
import type { Dcs } from '../dcs/dcs.js';
import type { PeerProber, TaskControl } from '../ha/loop.js';
import type { AsyncKind, PeerStatus } from '../ha/snapshot.js';
import { isFailoverEmpty, isPaused, type Cluster, type JsonObject, type Member } from '../model/cluster.js';
import { pyJson } from '../model/pyjson.js';
import { deepCompare, parseBool, patchConfig, pyBool, pyStr } from '../model/python.js';
import { errorText } from '../model/text.js';

/** The HA loop as the endpoints see it. */
export interface EndpointLoop {
  readonly lastCluster: Cluster | undefined;
  readonly haConfig: { readonly loopWait: number; readonly primaryStartTimeout: number };
  wake(): void;
  startRequested(
    kind: AsyncKind,
    description: string,
    body: (t: TaskControl) => Promise<boolean>,
  ): Promise<boolean> | string;
  cancelTask(): void;
}

/** The local member as the endpoints see it. */
export interface EndpointNode {
  /** `master` or `replica` (what PostgreSQL runs as now), anything else when unknown. */
  readonly role: () => string;
  /** `server_version_num`, 0 when unknown. */
  readonly serverVersion: () => Promise<number>;
  /** `pg_postmaster_start_time()` text, undefined when not running. */
  readonly postmasterStartTime: () => Promise<string | undefined>;
  /** Still starting after a restart that timed out. */
  readonly isStarting: () => boolean;
  /** A reload left a parameter that needs a restart (Patroni's `pending_restart`). */
  readonly pendingRestart: () => boolean;
  /** Stop and start again in the current role (`primary` when we hold the lock); resolves to success. */
  readonly restart: (timeoutSeconds: number, task: TaskControl) => Promise<boolean>;
  /** Stop, wipe the data directory and clone from `from`. */
  readonly reinitialize: (from: Member, task: TaskControl) => Promise<boolean>;
  /** Re-read the local configuration file and reload PostgreSQL (SIGHUP). */
  readonly reload: () => Promise<void>;
  /** Publish (or withdraw) the scheduled restart in the member key (`scheduled_restart`). */
  readonly setScheduledRestart: (data: JsonObject | undefined) => void;
}

export interface EndpointDeps {
  readonly name: string;
  readonly dcs: Dcs;
  readonly loop: EndpointLoop;
  readonly node: EndpointNode;
  /** `GET /patroni` of other members (Patroni's `fetch_nodes_statuses`). */
  readonly probe: PeerProber;
  readonly log: { info(text: string): void; warning(text: string): void };
  /** Seconds between DCS polls while a switchover runs; Patroni sleeps 1 s. */
  readonly pollIntervalMs?: number;
  readonly now?: () => number;
}

type Reply = Promise<ApiReply>;

const text = (code: number, body: string): ApiReply => ({ code, body });

// ---------------------------------------------------------------------------------------------------------------
// Parsing helpers

export type ScheduleResult =
  | { readonly ok: true; readonly at: Date; readonly iso: string }
  | { readonly ok: false; readonly code: number; readonly error: string };

const ISO_RE =
  /^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6})\d*)?)?)?\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)?\s*$/i;

/**
 * api.py `parse_schedule`: a timestamp with a zone, not in the past. The accepted syntax is ISO 8601 (what
 * patronictl sends); dateutil accepts more free-form text, which we answer with the 422 "unable to parse".
 * `iso` is Python's `datetime.isoformat()` of the parsed value (the zone offset kept).
 */
export function parseSchedule(value: unknown, action: string, now: number = Date.now()): ScheduleResult {
  const unparsable: ScheduleResult = {
    ok: false,
    code: 422,
    error: 'Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601',
  };
  if (typeof value !== 'string') return unparsable;
  const m = ISO_RE.exec(value);
  if (!m) return unparsable;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac, zone] = m;
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59)
    return unparsable;
  if (zone === undefined) {
    return { ok: false, code: 400, error: `Timezone information is mandatory for the scheduled ${action}` };
  }
  let offsetMin = 0;
  if (!/^(Z|UTC)$/i.test(zone)) {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    offsetMin = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0'));
  }
  const micros = (frac ?? '').padEnd(6, '0');
  const utc =
    Date.UTC(Number(y), month - 1, day, Number(h), Number(mi), Number(s), Number(micros.slice(0, 3))) -
    offsetMin * 60_000;
  const at = new Date(utc);
  if (Number.isNaN(at.getTime())) return unparsable;
  if (utc < now) return { ok: false, code: 422, error: `Cannot schedule ${action} in the past` };
  const abs = Math.abs(offsetMin);
  const off = `${offsetMin < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  const fraction = frac !== undefined && Number(micros) !== 0 ? `.${micros}` : '';
  const iso = `${y}-${mo}-${d}T${h.padStart(2, '0')}:${mi}:${s}${fraction}${off}`;
  return { ok: true, at, iso };
}

/** misc.py `postgres_version_to_int`: `X.Y` (X >= 10) or `X.Y.Z`. */
export function postgresVersionToInt(version: unknown): number | string {
  const v = pyStr(version);
  const parts = v.split('.');
  if (parts.some((p) => !/^\s*[+-]?\d+\s*$/.test(p))) return `Invalid PostgreSQL version: ${v}`;
  const nums = parts.map((p) => Number.parseInt(p, 10));
  const [first = 0] = nums;
  if (nums.length < 2 || (nums.length === 2 && first < 10) || nums.length > 3) {
    return `Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: ${v}`;
  }
  if (nums.length === 2) nums.splice(1, 0, 0);
  return Number(nums.map((n) => String(n).padStart(2, '0')).join(''));
}

/** utils.py `parse_int(value, 's')`: a number or a number with a time unit, rounded to seconds. */
export function parseSeconds(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.round(value);
  if (typeof value !== 'string') return undefined;
  const m = /^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(ms|s|min|h|d)?\s*$/.exec(value);
  if (!m) return undefined;
  const factor: Readonly<Record<string, number>> = { ms: 0.001, s: 1, min: 60, h: 3600, d: 86400 };
  return Math.round(Number(m[1]) * (factor[m[2] ?? 's'] ?? 1));
}

function deepCopy(o: JsonObject): Record<string, unknown> {
  return JSON.parse(JSON.stringify(o)) as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------------------------
// The handlers

interface ScheduledRestart {
  readonly request: Readonly<Record<string, unknown>>;
  readonly postmasterStartTime: string | undefined;
  readonly timer: NodeJS.Timeout;
}

export function agentEndpoints(deps: EndpointDeps): UnsafeHandlers {
  const { dcs, loop, node, log } = deps;
  const now = deps.now ?? Date.now;
  const pollMs = deps.pollIntervalMs ?? 1000;
  let scheduledRestart: ScheduledRestart | undefined;

  const freshCluster = async (): Promise<Cluster | undefined> => {
    try {
      return await dcs.getCluster();
    } catch {
      return loop.lastCluster;
    }
  };
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  const synchronousMode = (c: Cluster): boolean => parseBool(c.config?.data['synchronous_mode']) === true;

  /** api.py `is_failover_possible`; undefined when possible, else the 412 text. */
  const failoverImpossible = async (
    c: Cluster,
    leader: string | undefined,
    candidate: string | undefined,
    action: string,
  ): Promise<string | undefined> => {
    if (leader && c.leader?.name !== leader) return 'leader name does not match';
    let members: readonly Member[];
    if (candidate) {
      if (action === 'switchover' && synchronousMode(c) && !c.sync.members.includes(candidate))
        return 'candidate name does not match with sync_standby';
      members = c.members.filter((m) => m.name === candidate);
      if (members.length === 0) return 'candidate does not exists';
    } else if (synchronousMode(c)) {
      members = c.members.filter((m) => c.sync.members.includes(m.name));
      if (members.length === 0) return `${action} is not possible: can not find sync_standby`;
    } else {
      members = c.members.filter((m) => m.name !== c.leader?.name && m.data.apiUrl);
      if (members.length === 0)
        return `${action} is not possible: cluster does not have members except leader`;
    }
    const probed = members.flatMap((m) => (m.data.apiUrl ? [{ name: m.name, apiUrl: m.data.apiUrl }] : []));
    const statuses: ReadonlyMap<string, PeerStatus> =
      probed.length > 0 ? await deps.probe(probed) : new Map();
    for (const st of statuses.values()) {
      if (st.reachable && !st.nofailover && !st.watchdogFailed) return undefined;
    }
    return `${action} is not possible: no good candidates have been found`;
  };

  /** api.py `poll_failover_result`. */
  const pollResult = async (
    leader: string | undefined,
    candidate: string | undefined,
    action: 'switchover' | 'failover',
  ): Promise<ApiReply> => {
    const past = action === 'switchover' ? 'switched' : 'failed';
    const title = action === 'switchover' ? 'Switchover' : 'Failover';
    const rounds = Math.max(10, loop.haConfig.loopWait) * 2;
    for (let i = 0; i < rounds; i++) {
      await sleep(pollMs);
      let c: Cluster;
      try {
        c = await dcs.getCluster();
      } catch (e) {
        log.info(`Exception occurred during polling ${action} result: ${errorText(e)}`);
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
  const failoverHandler =
    (action: 'switchover' | 'failover') =>
    async (req: ApiRequest): Reply => {
      const title = action === 'switchover' ? 'Switchover' : 'Failover';
      const body = req.body;
      const leader = pyBool(body['leader']) ? pyStr(body['leader']) : undefined;
      const rawCandidate = pyBool(body['candidate']) ? body['candidate'] : body['member'];
      const candidate = pyBool(rawCandidate) ? pyStr(rawCandidate) : undefined;
      const scheduledRaw = body['scheduled_at'];
      const c = await freshCluster();
      log.info(
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
          const r = parseSchedule(scheduledRaw, action, now());
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
        const reason = await failoverImpossible(c, leader, candidate, action);
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
        written = await dcs.setFailoverValue(value);
      } catch (e) {
        log.warning(`writing the failover key failed: ${errorText(e)}`);
      }
      if (!written) return text(503, `failed to write ${action} key into DCS`);
      loop.wake();
      if (scheduledIso !== undefined) return text(202, `${title} scheduled`);
      return pollResult(c.leader?.name, candidate, action);
    };

  const deleteSwitchover = async (): Reply => {
    const c = await freshCluster();
    const f = c?.failover;
    if (f && !isFailoverEmpty(f) && f.scheduledAt) {
      let ok = false;
      try {
        ok = await dcs.setFailoverValue('{}', f.version);
      } catch {
        ok = false;
      }
      if (!ok) return { error: 409 };
      return text(200, 'scheduled switchover deleted');
    }
    return text(404, 'no switchover is scheduled');
  };

  const patchConfigHandler = async (req: ApiRequest): Reply => {
    let c: Cluster;
    try {
      c = await dcs.getCluster();
    } catch {
      return { error: 503 };
    }
    const cfg = c.config;
    if (!cfg || !cfg.modifyVersion || !cfg.valid) return { error: 503 };
    const data = deepCopy(cfg.data);
    if (patchConfig(data, req.body)) {
      let ok = false;
      try {
        ok = await dcs.setConfigValue(pyJson(data, true), cfg.version);
      } catch {
        ok = false;
      }
      if (!ok) return { error: 409 };
    }
    loop.wake();
    return { code: 200, json: data };
  };

  const putConfigHandler = async (req: ApiRequest): Reply => {
    const c = await freshCluster();
    if (!deepCompare(req.body, c?.config?.data ?? {})) {
      let ok = false;
      try {
        ok = await dcs.setConfigValue(pyJson(req.body, true));
      } catch {
        ok = false;
      }
      if (!ok) return { error: 502 };
    }
    return { code: 200, json: req.body };
  };

  const reload = (): ApiReply => {
    node.reload().then(
      () => loop.wake(),
      (e: unknown) => log.warning(`reload failed: ${errorText(e)}`),
    );
    return text(202, 'reload scheduled');
  };

  /** ha.py `restart_matches`. */
  const restartMatches = async (request: Readonly<Record<string, unknown>>): Promise<boolean> => {
    let reason = '';
    const role = request['role'];
    const mine = node.role();
    if (pyBool(role) && (role === 'primary' ? 'master' : role) !== (mine === 'primary' ? 'master' : mine))
      reason = 'host role mismatch';
    const want = request['postgres_version'];
    if (pyBool(want)) {
      const n = postgresVersionToInt(want);
      if (typeof n === 'number' && n <= (await node.serverVersion())) reason = 'postgres version mismatch';
    }
    if ('restart_pending' in request && !node.pendingRestart()) reason = 'pending restart flag is not set';
    if (!reason) return true;
    log.info(`not proceeding with the restart: ${reason}`);
    return false;
  };

  /** ha.py `restart`: [ok, message]. */
  const runRestart = async (
    request: Readonly<Record<string, unknown>>,
    wait: boolean,
  ): Promise<readonly [boolean, string]> => {
    if (!(await restartMatches(request))) return [false, 'restart conditions are not satisfied'];
    const timeout =
      typeof request['timeout'] === 'number' ? request['timeout'] : loop.haConfig.primaryStartTimeout;
    const started = loop.startRequested('restart', 'restart', (t) => node.restart(timeout, t));
    if (typeof started === 'string') return [false, `${started} already in progress`];
    if (!wait) {
      started.catch(() => undefined);
      return [true, 'restart initiated'];
    }
    if (await started) return [true, 'restarted successfully'];
    return [false, node.isStarting() ? 'postgres is still starting' : 'restart failed'];
  };

  const restart = async (req: ApiRequest): Reply => {
    let code = 500;
    let data = 'restart failed';
    const c = await freshCluster();
    const request: Record<string, unknown> = { ...req.body };
    if (c && isPaused(c) && 'schedule' in request)
      return text(code, "Can't schedule restart in the paused state");
    let failed = false;
    let scheduleAt: Date | undefined;
    for (const k of Object.keys(request)) {
      const v = request[k];
      if (k === 'schedule') {
        const r = parseSchedule(v, 'restart', now());
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
        const t = parseSeconds(v);
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
        const [ok, message] = await runRestart(request, true);
        return text(ok ? 200 : 503, message);
      } catch (e) {
        log.warning(`Exception during restart: ${errorText(e)}`);
        return text(400, 'restart failed');
      }
    }
    if (scheduledRestart) return text(409, 'Another restart is already scheduled');
    const startTime = await node.postmasterStartTime().catch(() => undefined);
    scheduledRestart = scheduleRestart(request, scheduleAt, startTime);
    node.setScheduledRestart({ ...request, postmaster_start_time: startTime ?? null });
    loop.wake();
    return text(202, 'Restart scheduled');
  };

  /** ha.py `evaluate_scheduled_restart`, driven by a timer instead of the HA cycle. */
  const scheduleRestart = (
    request: Readonly<Record<string, unknown>>,
    at: Date,
    postmasterStartTime: string | undefined,
  ): ScheduledRestart => {
    const fire = async (): Promise<void> => {
      const entry = scheduledRestart;
      scheduledRestart = undefined;
      node.setScheduledRestart(undefined);
      if (!entry) return;
      const c = loop.lastCluster;
      if (c && isPaused(c)) {
        log.info('not running the scheduled restart: the cluster is paused');
        return;
      }
      const recent = await node.postmasterStartTime().catch(() => undefined);
      if (recent && entry.postmasterStartTime && recent !== entry.postmasterStartTime) {
        log.info(`Cancelling scheduled restart: postgres restart has already happened at ${recent}`);
        return;
      }
      const [ok, message] = await runRestart(entry.request, false);
      if (!ok) log.warning(`Scheduled restart: ${message}`);
    };
    const timer = setTimeout(
      () => {
        fire().catch((e: unknown) => log.warning(`Scheduled restart failed: ${errorText(e)}`));
      },
      Math.max(0, at.getTime() - now()),
    );
    timer.unref();
    return { request, postmasterStartTime, timer };
  };

  const deleteRestart = (): ApiReply => {
    if (!scheduledRestart) return text(404, 'no restarts are scheduled');
    clearTimeout(scheduledRestart.timer);
    scheduledRestart = undefined;
    node.setScheduledRestart(undefined);
    loop.wake();
    return text(200, 'scheduled restart deleted');
  };

  /** ha.py `reinitialize` (3.0.2: only `force`). */
  const reinitialize = async (req: ApiRequest): Reply => {
    const force = parseBool(req.body['force']) === true;
    const c = await freshCluster();
    if (!c?.leader?.name) return text(503, 'Cluster has no leader, can not reinitialize');
    if (c.leader.name === deps.name) return text(503, 'I am the leader, can not reinitialize');
    const from = c.leader.member ?? c.members.find((m) => m.name === c.leader?.name);
    if (!from) return text(503, 'Cluster has no leader, can not reinitialize');
    if (force) loop.cancelTask();
    const started = loop.startRequested('reinitialize', 'reinitialize', (t) => node.reinitialize(from, t));
    if (typeof started === 'string') return text(503, `${started} already in progress`);
    started.then(
      (ok) => log.info(ok ? 'reinitialize finished' : 'reinitialize failed'),
      (e: unknown) => log.warning(`reinitialize failed: ${errorText(e)}`),
    );
    return text(200, 'reinitialize started');
  };

  return {
    switchover: failoverHandler('switchover'),
    failover: failoverHandler('failover'),
    deleteSwitchover,
    patchConfig: patchConfigHandler,
    putConfig: putConfigHandler,
    reload,
    restart,
    deleteRestart,
    reinitialize,
  };
}
