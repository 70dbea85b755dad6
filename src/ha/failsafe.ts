/**
 * DCS failsafe mode, the pure part (Patroni 4.1.4's ha.py `_failsafe_config`, `_handle_dcs_error`,
 * `check_failsafe_topology`, `Failsafe.update_cluster`). With `failsafe_mode` on:
 * - the leader keeps the `/failsafe` key equal to the members it knows (name -> api_url), written after each lock
 *   refresh (`WriteFailsafe`, only when it differs from what the DCS holds);
 * - a running primary that cannot reach the DCS asks every other member of the last known `/failsafe` topology to
 *   accept it (`FailsafeCheck`, a guard the loop executes by POST /failsafe) and stays primary only while all
 *   accept; otherwise it falls back to what it does without failsafe (demote);
 * - a replica that a leader contacted within ttl sees that leader in an unlocked cluster (`withFailsafeLeader`), so
 *   it neither races for the lock nor stops following while the leader cannot reach the DCS.
 * A replica that lost the DCS and is not contacted keeps running as it is ('DCS is not accessible'), as in Patroni.
 */
import type { Cluster, Member } from '../model/cluster.js';
import type { Lsn } from '../model/lsn.js';
import { pyBool } from '../model/python.js';
import type { Action, Decision, FailsafeCheck } from './actions.js';
import type { FailsafeLeader, HaConfig, HaSnapshot } from './snapshot.js';

export const FAILSAFE_CONTINUE =
  'continue to run as a leader because failsafe mode is enabled and all members are accessible';

/**
 * Patroni's `_failsafe_config`: every member with an api_url, plus this node (its own api_url) when its member key
 * is missing. Undefined when failsafe mode is off.
 */
export function failsafeConfig(s: HaSnapshot, c: Cluster): Record<string, string> | undefined {
  if (!s.config.failsafeMode) return undefined;
  const out: Record<string, string> = {};
  for (const m of c.members) if (m.data.apiUrl) out[m.name] = m.data.apiUrl;
  if (!(s.me.name in out) && s.me.apiUrl) out[s.me.name] = s.me.apiUrl;
  return out;
}

function sameTopology(
  a: Readonly<Record<string, string>> | undefined,
  b: Readonly<Record<string, string>>,
): boolean {
  if (a === undefined) return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/**
 * After every lock refresh of a decision (also inside the guards' `otherwise`), write the `/failsafe` key when
 * failsafe mode is on and the topology differs from the stored one (Patroni's `update_leader(..., failsafe)`).
 */
export function withFailsafeWrites(s: HaSnapshot, d: Decision): Decision {
  const c = s.cluster;
  if (c === undefined || !s.dcsReachable) return d;
  const topology = failsafeConfig(s, c);
  if (topology === undefined || sameTopology(c.failsafe, topology)) return d;
  return addAfterRefresh(d, topology);
}

function addAfterRefresh(d: Decision, topology: Readonly<Record<string, string>>): Decision {
  let changed = false;
  const actions: Action[] = [];
  for (const a of d.actions) {
    if ('otherwise' in a) {
      const other = addAfterRefresh(a.otherwise, topology);
      if (other !== a.otherwise) changed = true;
      actions.push(other === a.otherwise ? a : { ...a, otherwise: other });
    } else {
      actions.push(a);
    }
    if (a.type === 'RefreshLock') {
      actions.push({ type: 'WriteFailsafe', topology });
      changed = true;
    }
  }
  return changed ? { ...d, actions } : d;
}

/**
 * A running primary that cannot reach the DCS: with failsafe mode on and this node in the last known topology, the
 * `FailsafeCheck` guard (POST /failsafe to every other member; none: a one-node cluster, accepted at once), and
 * `fallback` (what happens without failsafe) when a member does not accept. Undefined: failsafe does not apply.
 */
export function failsafeOnDcsError(s: HaSnapshot, fallback: Decision): Decision | undefined {
  if (!s.config.failsafeMode) return undefined;
  const topology = s.failsafe?.topology;
  if (topology === undefined || !(s.me.name in topology)) return undefined;
  const members = Object.entries(topology)
    .filter(([name]) => name !== s.me.name)
    .map(([name, apiUrl]) => ({ name, apiUrl }));
  const check: FailsafeCheck = { type: 'FailsafeCheck', members, otherwise: fallback };
  return { actions: [check], message: FAILSAFE_CONTINUE };
}

/**
 * Patroni's `load_cluster_from_dcs` with failsafe mode: an unlocked cluster gets the leader that contacted this node
 * within ttl (`Failsafe.update_cluster`), so the node keeps following it and stays out of the leader race.
 */
export function withFailsafeLeader(
  cluster: Cluster,
  config: HaConfig,
  leader: FailsafeLeader | undefined,
): Cluster {
  if (!config.failsafeMode || cluster.leader?.name) return cluster;
  return failsafeUpdatedCluster(cluster, leader);
}

/**
 * Patroni's `Failsafe.update_cluster` (also the cluster its `_sync_replication_slots` uses with failsafe mode on,
 * locked or not): with a leader that contacted this node within ttl, that leader, and the status key's slot
 * positions replaced by the ones it sent (none: no positions), so a replica advances its permanent slots while the
 * DCS cannot be reached. Without such a leader, the cluster as it is.
 */
export function failsafeUpdatedCluster(cluster: Cluster, leader: FailsafeLeader | undefined): Cluster {
  if (leader === undefined) return cluster;
  const known = cluster.members.find((m) => m.name === leader.name);
  const member: Member = {
    name: leader.name,
    version: '',
    data: {
      ...(known?.data ?? { raw: {}, state: 'running', tags: {}, pendingRestart: false, pause: false }),
      ...(leader.apiUrl ? { apiUrl: leader.apiUrl } : {}),
      ...(leader.connUrl ? { connUrl: leader.connUrl } : {}),
    },
  };
  return withFailsafeSlots(
    { ...cluster, leader: { name: leader.name, version: '', member } },
    leader.slots ?? {},
  );
}

/**
 * The rest of `Failsafe.update_cluster`: `slots` become the status key's positions, and a member that replicates
 * from another one (`replicatefrom`) and is named in `slots` reports that position, so the primary (whose `slots`
 * are the positions the members sent back to its POST /failsafe) advances the slots of cascading members.
 */
export function withFailsafeSlots(cluster: Cluster, slots: Readonly<Record<string, Lsn>>): Cluster {
  const members = cluster.members.map((m): Member => {
    const lsn = slots[m.name];
    return lsn !== undefined && pyBool(m.data.tags['replicatefrom'])
      ? { ...m, data: { ...m.data, xlogLocation: lsn } }
      : m;
  });
  return { ...cluster, members, status: { ...cluster.status, slots } };
}
