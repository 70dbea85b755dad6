/**
 * The HA core's view of members from the agent's configuration and the DCS: this member's `SelfInfo` (tags as
 * the HA core reads them, whether it can clone without a leader) and another member's PostgreSQL address from its
 * `conn_url` (src/agent/node.ts wires both into LocalPostgres).
 */
import type { AgentConfig } from '../config/agent-config.js';
import type { SelfInfo } from '../ha/snapshot.js';
import { parseConnUrl } from '../ha/loop.js';
import type { Member } from '../model/cluster.js';
import type { PeerPostgres } from '../postgres/ports.js';
import { worksWithoutLeader } from '../postgres/replica-methods.js';

/** Members are immutable and a quiet cluster is served from the same objects cycle after cycle. */
const peers = new WeakMap<Member, PeerPostgres>();

/** A member's PostgreSQL as src/postgres needs it: the address and database from its `conn_url`. */
export function peerPostgres(m: Member): PeerPostgres {
  let peer = peers.get(m);
  if (peer === undefined) {
    peer = parsePeer(m);
    peers.set(m, peer);
  }
  return peer;
}

function parsePeer(m: Member): PeerPostgres {
  let dbname: string | undefined;
  try {
    const path = m.data.connUrl ? new URL(m.data.connUrl).pathname.replace(/^\//, '') : '';
    if (path !== '') dbname = decodeURIComponent(path);
  } catch {
    /* no database in it */
  }
  return {
    name: m.name,
    address: parseConnUrl(m.data.connUrl),
    dbname,
    role: m.data.role,
    timeline: m.data.timeline,
    checkpointAfterPromote: m.data.checkpointAfterPromote,
  };
}

/** A standby cluster's remote primary as the divergence check and pg_rewind see it. */
export function remotePeer(
  remote: { readonly name: string; readonly host: string; readonly port: number },
  leaderTimeline: number | undefined,
): PeerPostgres {
  return {
    name: remote.name,
    address: { host: remote.host, port: remote.port },
    dbname: undefined,
    role: undefined,
    timeline: leaderTimeline,
    checkpointAfterPromote: undefined,
    remote: true,
  };
}

export function selfOf(config: AgentConfig): Omit<SelfInfo, 'canRewind'> {
  return {
    name: config.name,
    tags: {
      nofailover: config.tags.nofailover,
      failoverPriority: config.tags.failoverPriority,
      nosync: config.tags.nosync,
      clonefrom: config.tags.clonefrom,
      ...(config.tags.nostream ? { nostream: true } : {}),
      ...(config.tags.replicatefrom === undefined ? {} : { replicatefrom: config.tags.replicatefrom }),
    },
    hasBootstrapConfig: config.bootstrap !== undefined,
    apiUrl: config.apiUrl,
    canCloneWithoutLeader: config.postgresql.createReplicaMethods.some((m) =>
      worksWithoutLeader(m, config.postgresql.replicaMethods[m]),
    ),
  };
}
