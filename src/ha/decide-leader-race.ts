/**
 * `decide` for an unlocked cluster: the leader race (ha.py `process_unhealthy_cluster`) and the others' side of a
 * switchover.
 */
import type { Member } from '../model/cluster.js';
import { clusterTimeline, isFailoverEmpty } from '../model/cluster.js';
import type { Action, Decision } from './actions.js';
import type { PeerStatus } from './snapshot.js';
import type { Ctx } from './decide-helpers.js';
import {
  iAmNoFailover,
  isFailoverPossible,
  isLagging,
  isQuorumMode,
  isStandbyCluster,
  isSyncMode,
  peer,
  peerCanPromote,
  promotable,
  quorumModeActive,
  syncMatches,
  syncModeActive,
  syncQuorum,
  syncVoters,
} from './decide-helpers.js';
import { enforcePrimaryRole } from './decide-leader.js';
import { enforceFollowRemoteMember, follow } from './decide-recovery.js';
import { watchdogHealthy } from './watchdog.js';

// ---------------------------------------------------------------------------------------------------------------
// unlocked cluster: the leader race (ha.py `process_unhealthy_cluster`) and the others' side of a switchover

export function processUnhealthyCluster(ctx: Ctx): Decision {
  const { s, c } = ctx;
  if (isHealthiestNode(ctx)) {
    const actions: Action[] = [
      {
        type: 'AcquireLock',
        otherwise: follow(
          ctx,
          'demoted self after trying and failing to obtain lock',
          'following new leader after trying and failing to obtain lock',
          { kind: 'lock-holder' },
        ),
      },
    ];
    const f = c.failover;
    if (f && !isFailoverEmpty(f)) {
      if (s.config.paused && f.leader && f.member) {
        actions.push({
          type: 'RewriteFailoverKey',
          candidate: f.member,
          ...(f.scheduledAt === undefined ? {} : { scheduledAt: f.scheduledAt }),
          version: f.version,
        });
      } else {
        actions.push({ type: 'ClearFailoverKey' });
      }
    }
    // In a standby cluster the healthiest member becomes the new standby leader, following the remote primary.
    const rest = isStandbyCluster(s)
      ? enforceFollowRemoteMember(ctx, 'promoted self to a standby leader by acquiring session lock')
      : enforcePrimaryRole(
          ctx,
          'acquired session lock as a leader',
          'promoted self to leader by acquiring session lock',
        );
    return { ...rest, actions: [...actions, ...rest.actions] };
  }
  const waits: Action[] =
    !isFailoverEmpty(c.failover) || iAmNoFailover(s) ? [{ type: 'Wait', ms: 2000 }] : [];
  const d = iAmNoFailover(s)
    ? follow(
        ctx,
        'demoting self because I am not allowed to become primary',
        'following a different leader because I am not allowed to promote',
      )
    : follow(
        ctx,
        'demoting self because i am not the healthiest node',
        'following a different leader because i am not the healthiest node',
      );
  return { ...d, actions: [...waits, ...d.actions] };
}

function isHealthiestNode(ctx: Ctx): boolean {
  const { s, c } = ctx;
  const pg = s.postgres;
  const paused = s.config.paused;
  const f = c.failover;
  const hasFailover = f !== undefined && !isFailoverEmpty(f);

  const released = s.memory.releasedLeaderKeyAt;
  if (released !== undefined && s.now - released < s.config.ttl * 1000) {
    ctx.logs.push({
      level: 'info',
      text: 'backoff: skip leader race after pre_promote script failure and releasing the lock voluntarily',
    });
    return false;
  }
  // Deliberately stricter than Patroni, which lets a nofailover node that already runs as primary take the lock:
  // a nofailover member never acquires the lock.
  if (iAmNoFailover(s)) return false;
  if (paused && hasFailover && !f.scheduledAt) {
    const r = manualFailoverProcessNoLeader(ctx);
    if (r !== undefined) return r;
  }
  if (pg.state === 'starting') return false;
  if (pg.isPrimary) {
    if (paused) return !c.initialize || pg.sysid === c.initialize;
    // A primary that froze while another node was promoted must not grab the lock back (newest rule).
    return (pg.timeline ?? 0) >= clusterTimeline(c);
  }
  if (paused) return false;
  if (hasFailover) {
    if (isSyncMode(s) && f.leader && !syncMatches(c, s.me.name)) return false;
    return manualFailoverProcessNoLeader(ctx) ?? false;
  }
  if (!watchdogHealthy(s.watchdog, s.config)) {
    ctx.logs.push({ level: 'warning', text: 'Watchdog device is not usable' });
    return false;
  }

  const byName = new Map<string, Member>();
  for (const m of s.lastLockedCluster?.members ?? []) byName.set(m.name, m);
  if (s.config.failsafeMode && c.failsafe) {
    const names = Object.keys(c.failsafe);
    if (names.length > 0 && !names.includes(s.me.name)) return false;
    for (const [name, url] of Object.entries(c.failsafe)) byName.set(name, failsafeMember(name, url));
  }
  for (const m of c.members) byName.set(m.name, m);
  let candidates = [...byName.values()];
  // In synchronous mode only the last known primary and its sync standbys may be promoted automatically. In quorum
  // commit mode a node outside the voters may race too: it needs the votes of `quorum` voters not ahead of it.
  if (syncModeActive(ctx)) {
    if (!isQuorumMode(s) && !syncMatches(c, s.me.name)) return false;
    candidates = candidates.filter((m) => syncMatches(c, m.name));
  }
  return isHealthiest(ctx, candidates, true);
}

function failsafeMember(name: string, apiUrl: string): Member {
  return {
    name,
    version: '',
    data: { raw: {}, apiUrl, state: 'unknown', tags: {}, pendingRestart: false, pause: false },
  };
}

/** Patroni's `_is_healthiest_node` (newest rules: timeline must be known, failover_priority breaks WAL ties). */
function isHealthiest(ctx: Ctx, members: readonly Member[], checkReplicationLag: boolean): boolean {
  const { s, c } = ctx;
  const myWal = s.postgres.walPosition;
  if (checkReplicationLag) {
    if (isLagging(ctx, myWal)) {
      ctx.logs.push({ level: 'info', text: 'My wal position exceeds maximum replication lag' });
      return false;
    }
    if (s.config.checkTimeline) {
      const tl = clusterTimeline(c);
      const mine = s.postgres.timeline;
      if (mine === undefined) {
        ctx.logs.push({ level: 'info', text: 'Can not figure out my timeline' });
        return false;
      }
      if (mine < tl) {
        ctx.logs.push({
          level: 'info',
          text: `My timeline ${mine} is behind last known cluster timeline ${tl}`,
        });
        return false;
      }
    }
  }
  const formerLeader = syncModeActive(ctx) ? c.sync.leader : s.lastLockedCluster?.leader?.name;
  // Quorum commit: every acknowledged commit is on at least one voter of any `quorum` voters besides the candidate,
  // so a candidate that `quorum` voters report not ahead of it holds every acknowledged commit.
  const quorumActive = quorumModeActive(ctx);
  const quorum = quorumActive ? syncQuorum(c) : 0;
  const voting = new Set((quorumActive ? syncVoters(c) : []).map((n) => n.toLowerCase()));
  let votes = voting.has(s.me.name.toLowerCase()) ? 0 : -1;
  let nodesAhead = 0;
  for (const m of promotable(ctx, members)) {
    const st = peer(ctx, m.name);
    if (st === undefined || !peerCanPromote(st)) continue;
    if (st.isPrimary) {
      ctx.logs.push({ level: 'warning', text: `Primary (${m.name}) is still alive` });
      return false;
    }
    if (myWal < st.walPosition) {
      nodesAhead += 1;
      ctx.logs.push({ level: 'info', text: `Wal position of ${m.name} is ahead of my wal position` });
      if (!syncModeActive(ctx) || c.sync.leader?.toLowerCase() !== m.name.toLowerCase()) return false;
      ctx.logs.push({ level: 'info', text: 'Ignoring the former leader being ahead of us' });
    } else if (st.walPosition > 0n) {
      const vote = voting.has(m.name.toLowerCase());
      let lowPriority = myWal === st.walPosition && s.me.tags.failoverPriority < st.failoverPriority;
      if (lowPriority && formerLeader === m.name) {
        ctx.logs.push({
          level: 'info',
          text: `Ignoring former leader ${m.name} having priority ${st.failoverPriority} higher than this nodes ${s.me.tags.failoverPriority} priority`,
        });
        lowPriority = false;
      }
      if (lowPriority && (!quorumActive || vote)) {
        ctx.logs.push({
          level: 'info',
          text: `${m.name} has equally tolerable WAL position and priority ${st.failoverPriority}, while this node has priority ${s.me.tags.failoverPriority}`,
        });
        return false;
      }
      if (vote) {
        ctx.logs.push({ level: 'info', text: `Got quorum vote from ${m.name}` });
        votes += 1;
      }
    }
  }
  // The former leader counts as healthy even alone; anyone else needs `quorum` votes.
  return (
    !quorumActive ||
    votes >= quorum ||
    (nodesAhead === 0 && c.sync.leader?.toLowerCase() === s.me.name.toLowerCase())
  );
}

/**
 * Patroni's `manual_failover_process_no_leader`: whether we should take the lock while a `failover` key exists and
 * nobody holds the lock. Undefined means "the key was stale and is being removed; carry on with the usual race".
 */
function manualFailoverProcessNoLeader(ctx: Ctx): boolean | undefined {
  const { s, c } = ctx;
  const f = c.failover;
  if (!f) return false;
  if (f.member) {
    if (f.member === s.me.name) return true;
    if (s.config.paused) {
      if (!c.members.some((m) => m.name === f.member) && s.postgres.isPrimary) {
        ctx.logs.push({
          level: 'warning',
          text: 'manual failover: removing failover key because failover candidate is not running',
        });
        ctx.pre.push({ type: 'ClearFailoverKey', version: f.version });
        return undefined;
      }
      return false;
    }
    // In synchronous mode (not quorum commit) a node outside /sync never acts, even when the candidate is unhealthy.
    if (isSyncMode(s) && !isQuorumMode(s) && !syncMatches(c, s.me.name)) return false;
    const member = c.members.find((m) => m.name === f.member);
    if (member) {
      const st: PeerStatus | undefined = peer(ctx, member.name);
      if (st !== undefined && peerCanPromote(st)) {
        ctx.logs.push({ level: 'info', text: `manual failover: to ${member.name}, i am ${s.me.name}` });
        return false;
      }
      const why =
        st === undefined || !st.reachable
          ? 'not reachable'
          : st.nofailover
            ? 'not allowed to promote'
            : 'not watchdog capable';
      ctx.logs.push({ level: 'warning', text: `manual failover: member ${member.name} is ${why}` });
    }
    // From here on the named candidate is out of the picture: any healthy member may take over.
  } else if (s.config.paused) {
    return false;
  }

  if (f.leader) {
    if (s.me.name === f.leader) {
      // The former leader takes the lock back only when nobody else can.
      const others = c.members.filter((m) => m.name !== f.member && m.name !== f.leader);
      return !isFailoverPossible(ctx, others, true, { excludeCandidate: f.member !== undefined });
    }
  }
  // The former leader is out; in synchronous mode so are the members outside `/sync`.
  const members = c.members.filter(
    (m) => m.name !== f.leader && (!syncModeActive(ctx) || syncMatches(c, m.name)),
  );
  return isHealthiest(ctx, members, false);
}
