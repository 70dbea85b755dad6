/**
 * The `/cluster` document (`cluster_as_json`): one entry per member with its role as the cluster sees it, its state and
 * its lag behind the leader. `patronictl list` and the agent's REST API both build from this.
 */
import { isPaused, syncStateMatches, type Cluster, type JsonObject } from './cluster.js';
import { flavorOfMembers, type Flavor } from './flavor.js';
import { formatLsn, type Lsn } from './lsn.js';
import { parseBool } from './python.js';
import { isStandbyCluster } from './standby-cluster.js';

export type ClusterRole = 'leader' | 'standby_leader' | 'sync_standby' | 'quorum_standby' | 'replica';

export interface MemberView {
  readonly name: string;
  readonly role: ClusterRole;
  readonly state: string;
  readonly apiUrl?: string;
  readonly host?: string;
  readonly port?: number;
  readonly timeline?: number;
  readonly pendingRestart?: boolean;
  readonly pendingRestartReason?: JsonObject;
  readonly scheduledRestart?: JsonObject;
  readonly tags?: JsonObject;
  /** Bytes behind the leader's optime, or `unknown`; absent on the leader. */
  readonly lag?: bigint | 'unknown';
  readonly lsn?: Lsn | 'unknown';
  readonly receiveLsn?: Lsn | 'unknown';
  readonly receiveLag?: bigint | 'unknown';
  readonly replayLsn?: Lsn | 'unknown';
  readonly replayLag?: bigint | 'unknown';
}

export interface ClusterView {
  readonly scope: string;
  readonly members: readonly MemberView[];
  readonly pause: boolean;
  readonly scheduledSwitchover?: { readonly at: string; readonly from?: string; readonly to?: string };
  readonly flavor: Flavor;
}

function hostPort(connUrl: string | undefined): { host?: string; port?: number } {
  if (!connUrl) return {};
  try {
    const u = new URL(connUrl);
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    if (!host) return {};
    // Patroni's conn_kwargs defaults the port to 5432, so /cluster always carries one.
    return { host, port: u.port ? Number(u.port) : 5432 };
  } catch {
    return {};
  }
}

function syncMode(config: JsonObject): 'off' | 'on' | 'quorum' {
  const v = config['synchronous_mode'];
  if (typeof v === 'string' && v.trim().toLowerCase() === 'quorum') return 'quorum';
  return parseBool(v) ? 'on' : 'off';
}

const lagOf = (optime: Lsn, lsn: Lsn | undefined): bigint | 'unknown' =>
  lsn === undefined ? 'unknown' : optime >= lsn ? optime - lsn : 0n;

export function clusterView(cluster: Cluster, flavor?: Flavor): ClusterView {
  const fl = flavor ?? flavorOfMembers(cluster.members.map((m) => m.data.version));
  const config = cluster.config?.data ?? {};
  const leaderName = cluster.leader?.name;
  const mode = syncMode(config);
  const syncNames = fl.syncRoleNeedsSyncMode && mode === 'off' ? undefined : cluster.sync;
  const syncRole: ClusterRole = mode === 'quorum' ? 'quorum_standby' : 'sync_standby';
  const optime = cluster.status.optime;

  const byName = [...cluster.members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const members = byName.map((m): MemberView => {
    const d = m.data;
    let role: ClusterRole;
    if (m.name === leaderName) role = isStandbyCluster(config) ? 'standby_leader' : 'leader';
    else if (syncNames && syncStateMatches(syncNames, m.name)) role = syncRole;
    else role = 'replica';
    // The raw value: a member that did not publish a state shows an empty cell, as in patronictl.
    const rawState = typeof d.raw['state'] === 'string' ? d.raw['state'] : '';
    const state =
      (role !== 'leader' && fl.replicationStateAsState ? d.replicationState : undefined) || rawState;
    const view: Record<string, unknown> = {
      name: m.name,
      role,
      state,
      apiUrl: d.apiUrl,
      ...hostPort(d.connUrl),
      timeline: d.timeline,
      pendingRestart: 'pending_restart' in d.raw ? d.pendingRestart : undefined,
      pendingRestartReason: d.pendingRestartReason,
      scheduledRestart: d.scheduledRestart,
      tags: 'tags' in d.raw ? d.tags : undefined,
    };
    if (m.name !== leaderName) {
      view['lag'] = lagOf(optime, d.xlogLocation);
      if (fl.lsnColumns) {
        const receive = d.receiveLsn ?? d.xlogLocation;
        const replay = d.replayLsn ?? d.xlogLocation;
        view['lsn'] = d.xlogLocation ?? 'unknown';
        view['receiveLsn'] = receive ?? 'unknown';
        view['receiveLag'] = lagOf(optime, receive);
        view['replayLsn'] = replay ?? 'unknown';
        view['replayLag'] = lagOf(optime, replay);
      }
    }
    return view as unknown as MemberView;
  });

  const f = cluster.failover;
  return {
    scope: cluster.scope,
    members,
    pause: isPaused(cluster),
    scheduledSwitchover: f?.scheduledAt ? { at: f.scheduledAt, from: f.leader, to: f.member } : undefined,
    flavor: fl,
  };
}

/** `/cluster` as Patroni serialises it (snake_case, text LSNs in 4.1). */
export function clusterViewJson(view: ClusterView): Record<string, unknown> {
  const lsnText = (v: Lsn | 'unknown' | undefined): string | undefined =>
    v === undefined ? undefined : v === 'unknown' ? v : formatLsn(v);
  const members = view.members.map((m) => ({
    name: m.name,
    role: m.role,
    state: m.state,
    api_url: m.apiUrl ?? null,
    host: m.host,
    port: m.host === undefined ? undefined : m.port,
    timeline: m.timeline,
    pending_restart: m.pendingRestart,
    pending_restart_reason: m.pendingRestartReason,
    scheduled_restart: m.scheduledRestart,
    tags: m.tags,
    receive_lag: m.receiveLag,
    receive_lsn: lsnText(m.receiveLsn),
    replay_lag: m.replayLag,
    replay_lsn: lsnText(m.replayLsn),
    lag: m.lag,
    lsn: lsnText(m.lsn),
  }));
  const out: Record<string, unknown> = { members };
  if (view.flavor.scopeInClusterJson) out['scope'] = view.scope;
  if (view.pause) out['pause'] = true;
  if (view.scheduledSwitchover) out['scheduled_switchover'] = view.scheduledSwitchover;
  return out;
}
