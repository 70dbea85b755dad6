/**
 * What differs on the wire between Patroni versions. pgwarden reads every form; when it imitates output
 * it picks the flavour of the newest Patroni version among the cluster's members, so `pgwarden list` on a 3.0.2
 * cluster looks like 3.0.2's patronictl and on a 4.1 cluster like 4.1's.
 */
export type VersionTuple = readonly [number, number, number];

export const NEWEST_PATRONI: VersionTuple = [4, 1, 4];

export function parseVersion(text: string | undefined): VersionTuple | undefined {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text ?? '');
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

export function versionAtLeast(v: VersionTuple, min: VersionTuple): boolean {
  for (let i = 0; i < 3; i++) if (v[i] !== min[i]) return v[i]! > min[i]!;
  return true;
}

export interface Flavor {
  readonly version: VersionTuple;
  /** ` Cluster: name (sysid) ` in the title (3.1.1+). */
  readonly titleWithSysid: boolean;
  /** Replicas show `replication_state` as their State (3.0.4+). */
  readonly replicationStateAsState: boolean;
  /** `Receive LSN`/`Replay LSN` columns instead of `Lag in MB` (4.1+). */
  readonly lsnColumns: boolean;
  /** `Pending restart reason` column (3.3+). */
  readonly pendingRestartReason: boolean;
  /** Sync Standby only shown while synchronous_mode is on (3.3+; before, any name in /sync). */
  readonly syncRoleNeedsSyncMode: boolean;
  /** `scope` in /cluster (3.2+). */
  readonly scopeInClusterJson: boolean;
}

export function flavorFor(version: VersionTuple): Flavor {
  return {
    version,
    titleWithSysid: versionAtLeast(version, [3, 1, 1]),
    replicationStateAsState: versionAtLeast(version, [3, 0, 4]),
    lsnColumns: versionAtLeast(version, [4, 1, 0]),
    pendingRestartReason: versionAtLeast(version, [3, 3, 0]),
    syncRoleNeedsSyncMode: versionAtLeast(version, [3, 3, 0]),
    scopeInClusterJson: versionAtLeast(version, [3, 2, 0]),
  };
}

/** The newest Patroni version any member reports, or the newest known when none says. */
export function flavorOfMembers(versions: readonly (string | undefined)[]): Flavor {
  let best: VersionTuple | undefined;
  for (const v of versions) {
    const t = parseVersion(v);
    if (t && (!best || !versionAtLeast(best, t))) best = t;
  }
  return flavorFor(best ?? NEWEST_PATRONI);
}
