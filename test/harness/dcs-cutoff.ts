/**
 * One "leader cut off from the DCS" case, the same for pgwarden agents and for Patroni: with the write probe
 * running on every member, cut the DCS off (`cut`), keep it away until past the old lock's expiry, bring it back
 * (`restore`) and wait for one leader with streaming replicas again. Returns the figures and the safety findings;
 * the test decides what to assert (pgwarden) or only report (Patroni, the oracle).
 */
import { waitFor } from './process.js';
import {
  createProbeTable,
  lastLockLogLine,
  startWriteProbe,
  watchLeaseExpiry,
  type LeaseWatch,
} from './write-probe.js';

export interface CutoffMembers {
  readonly nodes: readonly { readonly name: string; readonly pgPort: number; readonly logFile: string }[];
  /** One primary and every other member streaming from it; resolves to the leader's name. */
  waitReady(timeoutMs: number): Promise<string>;
  logTails(): string;
}

export interface CutoffCase {
  readonly label: string;
  readonly ttl: number;
  readonly members: CutoffMembers;
  /** Cuts the DCS off; resolves once the cut is in effect (the signal was delivered / the process exited). */
  cut(): Promise<void>;
  restore(): Promise<void>;
  /** etcd: poll the leader key's lease, for etcd's own lower bound of the lock's expiry. */
  readonly etcd?: { readonly endpoint: string; readonly leaderKey: string };
  /** How long to wait for one leader + streaming replicas after the restore (default 120 s). */
  readonly recoverTimeoutMs?: number;
}

export interface CutoffFigures {
  readonly label: string;
  readonly leader: string;
  readonly newLeader: string;
  /** Seconds from the cut: the old primary's last acknowledged write; the end of its first refused round. */
  readonly lastAckS: number;
  readonly refusedS: number;
  /** Seconds from the last lock refresh (the agent's log line) to the refused round's end. */
  readonly refusedAfterRefreshS: number;
  /**
   * Seconds from the cut to the first round in which the old primary answered as a read-only server (it runs
   * again, as a standby: Patroni's demote('offline')); undefined when it stayed down until the DCS came back.
   */
  readonly readOnlyS?: number;
  /** etcd: seconds from the refused round's end to the lease expiry's lower bound (positive: in time). */
  readonly marginToLeaseExpiryS?: number;
  readonly outageS: number;
  /** Seconds from the restore to one leader + streaming replicas, and to its first acknowledged write. */
  readonly recoveredS: number;
  readonly firstWriteAfterRestoreS: number;
  readonly rounds: number;
  /** Safety findings: empty when the case was safe. */
  readonly violations: readonly string[];
  /** Probe rounds around the cut, for failure messages. */
  readonly trace: string;
}

const s = (ms: number): number => Math.round(ms) / 1000;

export async function runCutoffCase(c: CutoffCase): Promise<CutoffFigures> {
  const { members, ttl } = c;
  const leader = await members.waitReady(120_000);
  const old = members.nodes.find((n) => n.name === leader);
  if (!old) throw new Error(`leader ${leader} is not a node`);
  await createProbeTable(old.pgPort);
  const probe = startWriteProbe(members.nodes.map((n) => ({ name: n.name, port: n.pgPort })));
  let lease: LeaseWatch | undefined;
  try {
    if (c.etcd) lease = watchLeaseExpiry(c.etcd.endpoint, c.etcd.leaderKey);
    const l = lease;
    // The probe writes on the leader, the leader has logged a cycle holding the lock (the refresh the figures count
    // from: a cut right after bootstrap would come before the first one), and (etcd) the lease has been seen.
    await waitFor(
      `${c.label}: the probe's writes on ${leader}, a lock refresh in its log and the leader key's lease`,
      () =>
        probe.rounds().filter((r) => r.accepted.some((a) => a.name === leader)).length >= 10 &&
        lastLockLogLine(old.logFile, Date.now() + 1) !== undefined &&
        (l === undefined || l.expiryLowerBound() !== undefined),
      30_000,
      100,
    );
    const cutAt = Date.now();
    await c.cut();
    const leaseBound = lease?.expiryLowerBound();
    await lease?.stop();
    lease = undefined;

    // Keep the DCS away until past the old lock's expiry, so that a primary accepting writes too late is seen.
    const holdUntil = cutAt + ttl * 1000 + 1500;
    await waitFor(`${c.label}: ${ttl} s of outage`, () => Date.now() >= holdUntil, ttl * 1000 + 10_000, 100);
    const restoreAt = Date.now();
    await c.restore();

    const newLeader = await members.waitReady(c.recoverTimeoutMs ?? 120_000);
    const recoveredAt = Date.now();
    await waitFor(
      `${c.label}: a write acknowledged by ${newLeader} after the restore`,
      () => probe.firstAcceptAfter(restoreAt) !== undefined,
      30_000,
      100,
    );
    await probe.stop();

    const violations: string[] = [];
    const lastAck = probe.lastAccept(leader, restoreAt);
    const lastRefresh = lastLockLogLine(old.logFile, cutAt + 1);
    if (lastAck === undefined) throw new Error(`${c.label}: ${leader} never acknowledged a probe write`);
    if (lastRefresh === undefined) throw new Error(`${c.label}: no lock refresh of ${leader} in its log`);
    const refusedRound = probe.rounds().find((r) => r.start > lastAck);
    if (!refusedRound || refusedRound.start > restoreAt) {
      violations.push(`${leader} kept acknowledging writes until the DCS came back`);
    }
    const refusedAt = refusedRound?.end ?? restoreAt;
    if (refusedAt > lastRefresh + ttl * 1000) {
      violations.push(
        `${leader} refused writes only ${s(refusedAt - lastRefresh)} s after its last lock refresh (ttl ${ttl})`,
      );
    }
    if (leaseBound !== undefined && refusedAt > leaseBound) {
      violations.push(`${leader} refused writes ${s(refusedAt - leaseBound)} s after its lease could expire`);
    }
    for (const r of probe.doubleRounds()) {
      violations.push(
        `round at +${s(r.start - cutAt)} s: ${r.accepted.map((a) => a.name).join(' and ')} accepted writes`,
      );
    }
    // While the DCS is away nobody may be promoted (nobody can take the lock).
    const early = probe.firstAcceptAfter(lastAck);
    if (early && early.at < restoreAt) {
      violations.push(`${early.name} accepted a write at +${s(early.at - cutAt)} s, while the DCS was away`);
    }
    const firstAfter = probe.firstAcceptAfter(restoreAt);
    const readOnlyRound = probe
      .rounds()
      .find((r) => r.start > lastAck && r.start < restoreAt && /read-only/.test(r.refused[leader] ?? ''));
    return {
      label: c.label,
      leader,
      newLeader,
      lastAckS: s(lastAck - cutAt),
      refusedS: s(refusedAt - cutAt),
      refusedAfterRefreshS: s(refusedAt - lastRefresh),
      ...(readOnlyRound === undefined ? {} : { readOnlyS: s(readOnlyRound.end - cutAt) }),
      ...(leaseBound === undefined ? {} : { marginToLeaseExpiryS: s(leaseBound - refusedAt) }),
      outageS: s(restoreAt - cutAt),
      recoveredS: s(recoveredAt - restoreAt),
      firstWriteAfterRestoreS: s((firstAfter?.at ?? Number.NaN) - restoreAt),
      rounds: probe.rounds().length,
      violations,
      trace: probe.describe(cutAt - 1000, 120),
    };
  } catch (e) {
    throw new Error(
      `${e instanceof Error ? e.message : String(e)}\n${members.logTails()}\nprobe:\n${probe.describe(0, 60)}`,
    );
  } finally {
    await lease?.stop();
    await probe.stop();
  }
}

export function figuresLine(system: string, f: CutoffFigures): string {
  return (
    `${system.padEnd(8)} ${f.label}: leader ${f.leader}, last write acknowledged +${f.lastAckS.toFixed(2)} s, ` +
    `writes refused by +${f.refusedS.toFixed(2)} s after the cut = ${f.refusedAfterRefreshS.toFixed(2)} s after ` +
    `its last lock refresh` +
    (f.marginToLeaseExpiryS === undefined
      ? ''
      : ` (${f.marginToLeaseExpiryS.toFixed(2)} s before the lease could expire)`) +
    `; ${f.readOnlyS === undefined ? 'PostgreSQL stayed down' : `read-only standby from +${f.readOnlyS.toFixed(2)} s`}` +
    `; outage ${f.outageS.toFixed(1)} s; after the restore: ${f.newLeader} leader with streaming replicas in ` +
    `${f.recoveredS.toFixed(2)} s, first write ${f.firstWriteAfterRestoreS.toFixed(2)} s; ${f.rounds} probe rounds, ` +
    `${f.violations.length === 0 ? 'never two writable members' : `VIOLATIONS: ${f.violations.join('; ')}`}`
  );
}
