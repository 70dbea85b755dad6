/**
 * DCS failsafe mode on ZooKeeper, the scenario of agent-failsafe.test.ts with ZooKeeper in place of etcd: three
 * pgwarden agents on real PostgreSQL 15 and one real ZooKeeper, restapi authentication on, ttl 20 / loop_wait 2 /
 * retry_timeout 5, `failsafe_mode: true` set with PATCH /config.
 *
 * Asserted: the leader writes the `/failsafe` key naming every member; with ZooKeeper frozen (SIGSTOP) for 2 * ttl,
 * every INSERT on the primary succeeds (polled all along) while the replicas answer POST /failsafe and stay
 * replicas; after ZooKeeper is back, the same leader. Then with ZooKeeper frozen again and one replica killed, the
 * primary stops accepting writes within a deadline and nobody accepts writes while ZooKeeper is away.
 */
import { failsafeScenario } from '../helpers/failsafe-suite.js';
import { describeNeeding } from '../harness/requirements.js';

describeNeeding(
  'postgres',
  'zookeeper',
  'bundle',
  'root',
)('pgwarden: failsafe mode with ZooKeeper cut off', () => {
  failsafeScenario('zookeeper', 'failsafezk');
});
