/**
 * The agent's shutdown sequence (SIGTERM, SIGINT, an uncaught error): Patroni's `Patroni._shutdown` + `Ha.shutdown`.
 * The REST API closes first (peers then see us as unreachable). Not paused: a synchronous standby first asks the
 * leader to take it out of `/sync` (the `nosync` tag in its member key) and waits for that at most twice loop_wait
 * (Patroni's `while_not_sync_standby`, src/ha/shutdown.ts), so that its stop does not hold up the primary's commits;
 * then PostgreSQL stops (fast). A leader releases the lock early, while the postmaster still delivers WAL, only when
 * a member that may promote has received the shutdown checkpoint (Patroni's `_on_shutdown`, src/ha/loop-shutdown.ts);
 * otherwise it writes the checkpoint to `status` and releases the lock once PostgreSQL is down, so that a replica
 * takes over at once. The member key is published once more with state `stopped`. Paused (maintenance mode): nothing is touched, PostgreSQL keeps
 * running and the leader key stays until its ttl runs out, as Patroni 4.1.4 does ("Leader key is not deleted and
 * Postgresql is not stopped due paused state"); the operator paused the cluster so that the agent keeps its hands off.
 */
import type { Dcs } from '../dcs/dcs.js';
import type { HaLoop } from '../ha/loop.js';
import { SYSTEM_CLOCK, type LoopClock } from '../ha/loop-ports.js';
import { LEAVE_SYNC_POLL_MS, isSyncStandby, leaveSyncTimeoutMs, mustLeaveSyncFirst } from '../ha/shutdown.js';
import { pyJson } from '../model/pyjson.js';
import { errorText } from '../model/text.js';
import type { PostgresNode } from './node.js';

/** What the shutdown does, from what the agent knows when it starts. */
export interface ShutdownPlan {
  readonly stopPostgres: boolean;
  /** Write the shutdown checkpoint to `status` and delete the leader key. */
  readonly releaseLock: boolean;
  /** Publish the member key once more (state `stopped`). */
  readonly touchMember: boolean;
  /**
   * Close the DCS client. Paused, it is left to the process exit: a graceful ZooKeeper close would delete the
   * session's ephemeral leader key (etcd's lease is never revoked either way), which Patroni leaves in place.
   */
  readonly closeDcs: boolean;
}

export function shutdownPlan(o: { readonly paused: boolean; readonly wasLeader: boolean }): ShutdownPlan {
  if (o.paused) return { stopPostgres: false, releaseLock: false, touchMember: false, closeDcs: false };
  return { stopPostgres: true, releaseLock: o.wasLeader, touchMember: true, closeDcs: true };
}

export interface ShutdownDeps {
  readonly loop: Pick<HaLoop, 'pendingAsync' | 'haConfig' | 'lastCluster' | 'isLeader' | 'shutdownHook'>;
  readonly node: Pick<PostgresNode, 'self' | 'shutdown' | 'shutdownCheckpoint' | 'memberValue' | 'close'>;
  readonly dcs: Pick<Dcs, 'writeStatus' | 'getCluster' | 'deleteLeader' | 'touchMember' | 'close'>;
  readonly log: {
    info(text: string): void;
    warning(text: string): void;
    error(text: string): void;
  };
  readonly closeApi: () => Promise<void>;
  readonly name: string;
  readonly watchdog: { readonly running: boolean; disable(): Promise<void> };
  /** Real time unless a test gives its own. */
  readonly clock?: Pick<LoopClock, 'monotonic' | 'sleep'>;
}

/**
 * Patroni's `while_not_sync_standby` before the stop: publish `nosync` and wait until `/sync` of the current leader
 * no longer names us, polling every 2 s for at most twice loop_wait. The DCS failing skips the wait (only a hint).
 */
async function leaveSyncFirst(d: ShutdownDeps): Promise<void> {
  const { loop, node, dcs, log } = d;
  const wanted = mustLeaveSyncFirst({
    holdsLock: loop.isLeader(),
    synchronousMode: loop.haConfig.synchronousMode !== 'off',
    nosync: node.self.tags.nosync,
  });
  if (!wanted) return;
  const clock = d.clock ?? SYSTEM_CLOCK;
  let touched = false;
  try {
    touched = await dcs.touchMember(await node.memberValue({ isLeader: false, nosync: true }));
  } catch {
    touched = false;
  }
  if (!touched) {
    log.warning('Updating member state failed, skipping synchronous standby disable');
    return;
  }
  const deadline = clock.monotonic() + leaveSyncTimeoutMs(loop.haConfig.loopWait);
  for (;;) {
    try {
      if (!isSyncStandby(await dcs.getCluster(), d.name)) return;
    } catch {
      log.warning('Could not get cluster state, skipping synchronous standby disable');
      return;
    }
    log.info('Waiting for primary to release us from synchronous standby');
    const left = deadline - clock.monotonic();
    if (left <= 0) return;
    await clock.sleep(Math.min(LEAVE_SYNC_POLL_MS, left));
  }
}

export async function shutdown(d: ShutdownDeps): Promise<void> {
  const { loop, node, dcs, log } = d;
  await d.closeApi().catch((e: unknown) => log.warning(`closing the REST API: ${errorText(e)}`));
  const task = loop.pendingAsync;
  if (task) log.warning(`shutting down while ${task.description} is still running`);
  const plan = shutdownPlan({
    paused: loop.haConfig.paused,
    wasLeader: loop.lastCluster?.leader?.name === d.name,
  });
  if (!plan.stopPostgres) {
    log.info('Leader key is not deleted and Postgresql is not stopped due paused state');
    await d.watchdog.disable();
  }
  let released = false;
  if (plan.stopPostgres) {
    await leaveSyncFirst(d);
    const hook = plan.releaseLock
      ? loop.shutdownHook(() => {
          released = true;
        })
      : undefined;
    try {
      await node.shutdown(hook);
      log.info('stopped PostgreSQL');
      // As Patroni: the watchdog is disarmed once PostgreSQL is down (its stop's safepoint), left armed otherwise.
      await d.watchdog.disable();
    } catch (e) {
      // A primary still running keeps its lock: releasing it would let a replica promote next to it (Patroni too).
      // The DCS client is not closed either: a graceful ZooKeeper close would delete the ephemeral leader key.
      const armed = d.watchdog.running ? ' Leaving watchdog running.' : '';
      log.error(`PostgreSQL shutdown failed, leader key not removed: ${errorText(e)}.${armed}`);
      await node.close();
      return;
    }
  }
  if (plan.releaseLock && !released) {
    try {
      const lsn = await node.shutdownCheckpoint().catch(() => undefined);
      if (lsn !== undefined) await dcs.writeStatus(pyJson({ optime: lsn }, true));
      const cluster = await dcs.getCluster();
      if (await dcs.deleteLeader(cluster)) log.info('Leader key released');
    } catch (e) {
      log.error(`releasing the leader key failed: ${errorText(e)}`);
    }
  }
  if (plan.touchMember) {
    try {
      await dcs.touchMember(await node.memberValue({ isLeader: false }));
    } catch (e) {
      log.warning(`updating the member key failed: ${errorText(e)}`);
    }
  }
  await node.close();
  if (plan.closeDcs) await dcs.close();
}
