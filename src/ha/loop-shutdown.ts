/**
 * The imperative side of src/ha/shutdown.ts for a leader: the hook a clean stop of PostgreSQL calls once its control
 * file says `shut down` while the postmaster still runs (Patroni's `on_shutdown`). It pauses a second, asks the other
 * members for their WAL positions, and releases the lock at once when one that may promote has the shutdown
 * checkpoint. Used by the graceful demotion (loop-actions.ts) and the agent's shutdown (src/agent/shutdown.ts).
 * Also the graceful demotion's wait, before its stop, for a successor streaming from us.
 */
import type { Cluster } from '../model/cluster.js';
import type { Lsn } from '../model/lsn.js';
import { errorText } from '../model/text.js';
import type { LocalNode, LoopClock, LoopLogger, PeerProber } from './loop-ports.js';
import {
  SHUTDOWN_CATCH_UP_MS,
  SUCCESSOR_STREAM_POLL_MS,
  demotionSuccessors,
  releaseAtShutdownCheckpoint,
  successorStreamTimeoutMs,
  successorStreaming,
} from './shutdown.js';
import type { HaSnapshot } from './snapshot.js';

/** Called with the shutdown checkpoint's LSN. Never rejects. */
export type ShutdownHook = (checkpoint: Lsn) => Promise<void>;

export interface ShutdownHookDeps {
  /** The two DCS writes it makes (the `Dcs` methods of the same names). */
  readonly dcs: {
    writeStatus(value: string): Promise<boolean>;
    deleteLeader(cluster: Cluster): Promise<boolean>;
  };
  readonly node: Pick<LocalNode, 'shutdownStatusValue'>;
  readonly probe: PeerProber;
  readonly clock: Pick<LoopClock, 'sleep'>;
  readonly log: LoopLogger;
  /** The snapshot of the cycle that decided the stop; its cluster is the one whose lock we hold. */
  readonly snapshot: HaSnapshot;
  readonly cluster: Cluster;
  /** Still ours? (Patroni's `is_leader()` in `_on_shutdown`.) */
  readonly holdsLock: () => boolean;
  /** The lock was released here: the caller must not release it again. */
  readonly released: () => void;
  /** Not released early: write the checkpoint as the leader's optime anyway (the shutdown path, not a demotion). */
  readonly writeOptimeOtherwise: boolean;
}

export function shutdownHook(d: ShutdownHookDeps): ShutdownHook {
  return async (checkpoint) => {
    try {
      if (!d.holdsLock()) return;
      await d.clock.sleep(SHUTDOWN_CATCH_UP_MS);
      const members = d.cluster.members
        .filter((m) => m.name !== d.snapshot.me.name && m.data.apiUrl)
        .map((m) => ({ name: m.name, apiUrl: m.data.apiUrl ?? '' }));
      const peers = await d.probe(members).catch(() => new Map());
      const { release, logs } = releaseAtShutdownCheckpoint(
        { ...d.snapshot, cluster: d.cluster, peers },
        d.cluster,
        checkpoint,
      );
      for (const l of logs) d.log[l.level](l.text);
      if (release) {
        await d.dcs.writeStatus(d.node.shutdownStatusValue(checkpoint));
        if (await d.dcs.deleteLeader(d.cluster)) {
          d.log.info('Leader key released: a member has received the shutdown checkpoint');
        }
        d.released();
      } else {
        d.log.info(
          'no member has received the shutdown checkpoint yet: keeping the leader key until PostgreSQL exits',
        );
        if (d.writeOptimeOtherwise) await d.dcs.writeStatus(d.node.shutdownStatusValue(checkpoint));
      }
    } catch (e) {
      d.log.warning(`releasing the leader key at the shutdown checkpoint failed: ${errorText(e)}`);
    }
  };
}

/**
 * Before a graceful demotion's stop: wait until a member that may take over streams from us (pg_stat_replication),
 * bounded by successorStreamTimeoutMs; past that, or when PostgreSQL cannot tell, the demotion goes on.
 */
export async function waitForSuccessorStream(d: {
  readonly node: Pick<LocalNode, 'streamingReplicas'>;
  readonly clock: Pick<LoopClock, 'monotonic' | 'sleep'>;
  readonly log: LoopLogger;
  readonly snapshot: HaSnapshot;
  readonly cluster: Cluster;
}): Promise<void> {
  const successors = demotionSuccessors({ ...d.snapshot, cluster: d.cluster }, d.cluster);
  const streamingReplicas = d.node.streamingReplicas?.bind(d.node);
  if (successors.length === 0 || streamingReplicas === undefined) return;
  const timeoutMs = successorStreamTimeoutMs(
    d.snapshot.config.loopWait,
    d.snapshot.config.walRetrieveRetryIntervalMs,
  );
  const deadline = d.clock.monotonic() + timeoutMs;
  let logged = false;
  for (;;) {
    const streaming = await streamingReplicas().catch(() => undefined);
    if (streaming === undefined || successorStreaming(successors, streaming)) return;
    if (d.clock.monotonic() >= deadline) {
      d.log.warning(
        `none of ${successors.join(', ')} streams from us after ${timeoutMs / 1000} s: demoting anyway`,
      );
      return;
    }
    if (!logged)
      d.log.info(`waiting for ${successors.join(', ')} to stream from us before the shutdown checkpoint`);
    logged = true;
    await d.clock.sleep(SUCCESSOR_STREAM_POLL_MS);
  }
}
