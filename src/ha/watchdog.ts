/**
 * The watchdog's part of the HA decision (Patroni 4.1.4's `patroni/watchdog/base.py` as ha.py drives it), pure:
 * the timeout Patroni computes, whether this node may race for the lock (`is_healthy`), and where a decision arms,
 * pings or disarms the device. The device itself is the agent's (src/agent/watchdog/); the loop executes these
 * actions through its `WatchdogPort` (loop-ports.ts). See docs/architecture.md, "The watchdog".
 *
 * Safety rule: the device is pinged only right after a successful lock refresh, with a timeout shorter than the
 * lock's lifetime, so a hung agent's machine is reset before another member can take the lock.
 */
import type { Action, Decision, WatchdogActivate, WatchdogTiming } from './actions.js';
import type { HaConfig, HaSnapshot, WatchdogView } from './snapshot.js';

/** Patroni's `WatchdogConfig.timeout`: ttl - safety_margin, or half the ttl with a margin of -1. */
export function watchdogTimeout(ttl: number, safetyMargin: number): number {
  return safetyMargin === -1 ? Math.floor(ttl / 2) : ttl - safetyMargin;
}

/** Patroni's `timing_slack`: how much later than loop_wait a ping may come before the device fires. */
export function timingSlack(config: HaConfig, safetyMargin: number): number {
  return watchdogTimeout(config.ttl, safetyMargin) - config.loopWait;
}

/**
 * Patroni's `Watchdog.is_healthy`: only `required` can be unhealthy, when the timing leaves no slack or the device
 * cannot be used. An unhealthy node stays out of the leader race and says `watchdog_failed` in GET /patroni.
 */
export function watchdogHealthy(view: WatchdogView | undefined, config: HaConfig): boolean {
  if (view === undefined || view.mode !== 'required') return true;
  return timingSlack(config, view.safetyMargin) >= 0 && view.deviceUsable;
}

/**
 * Whether a ping now keeps the device firing before the lock expires: the device counts `timeoutSeconds` from the
 * ping, the lock `lockLeftMs` from now. False (skip the ping: the previous one fires earlier still) when the lock
 * refresh came too long before the ping, or when the DCS grants a lock shorter than the ttl.
 */
export function keepaliveIsSafe(lockLeftMs: number | undefined, timeoutSeconds: number): boolean {
  return lockLeftMs !== undefined && timeoutSeconds * 1000 <= lockLeftMs;
}

/**
 * Patroni's `enforce_primary_role` preamble: outside pause, a leader whose watchdog is not running activates it
 * before anything else; if that fails it demotes a running primary, or releases the lock instead of promoting.
 */
export function withActivation(s: HaSnapshot, d: Decision): Decision {
  const wd = s.watchdog;
  if (wd === undefined || wd.mode === 'off' || wd.running || s.config.paused) return d;
  const otherwise: Decision = s.postgres.isPrimary
    ? {
        message: 'Demoting self because watchdog could not be activated',
        actions: [{ type: 'Demote', mode: 'immediate', async: false, kind: 'demote', description: 'demote' }],
      }
    : {
        message: 'Not promoting self because watchdog could not be activated',
        actions: [{ type: 'ReleaseLock', voluntarily: true }],
      };
  return { ...d, actions: [activate(s, otherwise), ...d.actions] };
}

/** The timeout Patroni sets on the device this cycle, with the timings it comes from. */
export function watchdogTiming(config: HaConfig, safetyMargin: number): WatchdogTiming {
  return { timeout: watchdogTimeout(config.ttl, safetyMargin), ttl: config.ttl, loopWait: config.loopWait };
}

function activate(s: HaSnapshot, otherwise: Decision): WatchdogActivate {
  return {
    type: 'WatchdogActivate',
    timing: watchdogTiming(s.config, s.watchdog?.safetyMargin ?? 5),
    otherwise,
  };
}

/**
 * Whether an armed device must stay armed: outside pause, while this node holds the lock (Patroni's `is_leader()`
 * when the DCS cannot be read) or its PostgreSQL still runs as a primary (a demotion disarms once PostgreSQL is
 * down, as Patroni's stop does at its safepoint; until then a hung stop is still fenced).
 */
export function mustStayArmed(s: HaSnapshot): boolean {
  if (s.config.paused) return false;
  const leader =
    s.dcsReachable && s.cluster !== undefined
      ? s.cluster.leader?.name === s.me.name
      : s.lock.heldByMe && s.lock.expiresAt !== undefined && s.now < s.lock.expiresAt;
  return leader || (s.postgres.isRunning && s.postgres.isPrimary);
}

/**
 * Adds the watchdog's actions to a cycle's decision: a ping right after every lock refresh while armed (Patroni's
 * `update_lock`), a disarm when the node is no longer a leader or is paused, and the activation before the leader
 * key is taken after a bootstrap (Patroni's `post_bootstrap`, whose failure cancels the bootstrap).
 */
export function withWatchdog(s: HaSnapshot, d: Decision): Decision {
  const wd = s.watchdog;
  if (wd === undefined || d.actions[0]?.type === 'ProbePeers') return d;
  if (wd.running && !mustStayArmed(s)) {
    return { ...d, actions: [{ type: 'WatchdogDisable' }, ...d.actions] };
  }
  let out = d;
  if (wd.running) out = withKeepalives(out, watchdogTiming(s.config, wd.safetyMargin));
  if (wd.mode !== 'off' && out.actions.some((a) => a.type === 'TakeLeader')) {
    const cancel: Decision = {
      message: 'removing initialize key after failed attempt to bootstrap the cluster',
      actions: [{ type: 'CancelInitialization' }],
      logs: [{ level: 'error', text: 'Cancelling bootstrap because watchdog activation failed' }],
    };
    out = { ...out, actions: [activate(s, cancel), ...out.actions] };
  }
  return out;
}

function withKeepalives(d: Decision, timing: WatchdogTiming): Decision {
  const actions: Action[] = [];
  for (const a of d.actions) {
    if ('otherwise' in a) {
      actions.push({ ...a, otherwise: withKeepalives(a.otherwise, timing) });
    } else {
      actions.push(a);
    }
    // A passed failsafe check stands in for the lock refresh (Patroni's `_handle_dcs_error` keepalive).
    if (a.type === 'RefreshLock' || a.type === 'FailsafeCheck')
      actions.push({ type: 'WatchdogKeepalive', timing });
  }
  return { ...d, actions };
}
