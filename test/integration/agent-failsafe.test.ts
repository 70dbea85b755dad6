/**
 * Issue 10, DCS failsafe mode on etcd3: three pgwarden agents on real PostgreSQL 15 and one etcd, restapi
 * authentication on (the leader's POST /failsafe must send it), ttl 20 / loop_wait 2 / retry_timeout 5, and
 * `failsafe_mode: true` set with PATCH /config.
 *
 * Asserted: the leader writes the `/failsafe` key naming every member (GET /failsafe); with etcd frozen (SIGSTOP)
 * for well past ttl, the primary keeps accepting writes (polled all along, every round must write), reports
 * `failsafe_mode_is_active`, and the replicas stay replicas; after etcd is back, the same leader with streaming
 * replicas. Then with etcd frozen again and one replica killed (agent and postmaster), the primary stops accepting
 * writes within a deadline (Patroni's demote('offline')) and nobody accepts writes while etcd is away.
 */
import { failsafeScenario } from '../helpers/failsafe-suite.js';
import { describeNeeding } from '../harness/requirements.js';

describeNeeding(
  'postgres',
  'etcd',
  'bundle',
  'root',
)('pgwarden: failsafe mode with etcd cut off', () => {
  failsafeScenario('etcd3', 'failsafe');
});
