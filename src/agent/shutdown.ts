/**
 * The agent's shutdown sequence (SIGTERM, SIGINT, an uncaught error): Patroni's `Patroni._shutdown` + `Ha.shutdown`.
 * The REST API closes first (peers then see us as unreachable). Not paused: PostgreSQL stops (fast), a leader writes
 * the shutdown checkpoint to `status` and releases the lock so that a replica takes over at once, and the member key
 * is published once more with state `stopped`. Paused (maintenance mode): nothing is touched, PostgreSQL keeps
 * running and the leader key stays until its ttl runs out, as Patroni 4.1.4 does ("Leader key is not deleted and
 * Postgresql is not stopped due paused state"); the operator paused the cluster so that the agent keeps its hands off.
 */
import type { Dcs } from '../dcs/dcs.js';
import type { HaLoop } from '../ha/loop.js';
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
  readonly loop: Pick<HaLoop, 'pendingAsync' | 'haConfig' | 'lastCluster'>;
  readonly node: Pick<PostgresNode, 'shutdown' | 'shutdownCheckpoint' | 'memberValue' | 'close'>;
  readonly dcs: Pick<Dcs, 'writeStatus' | 'getCluster' | 'deleteLeader' | 'touchMember' | 'close'>;
  readonly log: {
    info(text: string): void;
    warning(text: string): void;
    error(text: string): void;
  };
  readonly closeApi: () => Promise<void>;
  readonly name: string;
  readonly watchdog: { readonly running: boolean; disable(): Promise<void> };
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
  if (plan.stopPostgres) {
    try {
      await node.shutdown();
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
  if (plan.releaseLock) {
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
