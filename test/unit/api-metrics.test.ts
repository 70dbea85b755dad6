/**
 * `GET /metrics` rendering (src/api/metrics.ts) against Patroni 4.1.4's `do_GET_metrics`: the whole body of a
 * captured 4.1.4 replica status document written out line by line from api.py, then per-state tables (primary,
 * replica, paused, stopped PostgreSQL, standby leader, sync standby, `unknown` state) through `statusJson`, and the
 * helpers (padded version, Python float repr, `total_seconds()` of Python datetimes, cross-checked with python3).
 */
import { describe, expect, it } from 'vitest';
import {
  epochSeconds,
  metricsText,
  paddedSemver,
  postgresStateIndex,
  pyFloat,
  type StatusDocument,
} from '../../src/api/metrics.js';
import { statusJson, type AgentStatus } from '../../src/api/status.js';
import { readFileSync } from 'node:fs';
import { REPO_ROOT } from '../helpers/fixtures.js';

type Capture = Record<string, { body: StatusDocument }>;
const capture = (file: string): Capture =>
  JSON.parse(readFileSync(`${REPO_ROOT}/test/fixtures/patroni-4.1.4/${file}`, 'utf8')) as Capture;

/** `name -> value` of every sample line. */
function samples(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{scope="lab",name="pg\d"\} (\S+)$/.exec(line);
    if (m) out.set(m[1] ?? '', m[2] ?? '');
  }
  return out;
}

const STATE_VALUES =
  '# Values: 0=initdb, 1=initdb_failed, 2=custom_bootstrap, 3=custom_bootstrap_failed, 4=creating_replica, ' +
  '5=running, 6=starting, 7=bootstrap_starting, 8=start_failed, 9=restarting, 10=restart_failed, 11=stopping, ' +
  '12=stopped, 13=stop_failed, 14=crashed';

describe('metricsText: a captured Patroni 4.1.4 replica document', () => {
  it('writes do_GET_metrics line for line', () => {
    const doc = capture('rest-replica.json')['/patroni']?.body ?? {};
    const L = '{scope="lab",name="pg2"}';
    const expected = [
      '# HELP patroni_version Patroni semver without periods.',
      '# TYPE patroni_version gauge',
      `patroni_version${L} 040104`,
      '# HELP patroni_postgres_running Value is 1 if Postgres is running, 0 otherwise.',
      '# TYPE patroni_postgres_running gauge',
      `patroni_postgres_running${L} 1`,
      '# HELP patroni_postmaster_start_time Epoch seconds since Postgres started.',
      '# TYPE patroni_postmaster_start_time gauge',
      `patroni_postmaster_start_time${L} 1796328677.593543`,
      '# HELP patroni_primary Value is 1 if this node is the leader, 0 otherwise.',
      '# TYPE patroni_primary gauge',
      `patroni_primary${L} 0`,
      '# HELP patroni_xlog_location Current location of the Postgres transaction log, 0 if this node is not the leader.',
      '# TYPE patroni_xlog_location counter',
      `patroni_xlog_location${L} 0`,
      '# HELP patroni_standby_leader Value is 1 if this node is the standby_leader, 0 otherwise.',
      '# TYPE patroni_standby_leader gauge',
      `patroni_standby_leader${L} 0`,
      '# HELP patroni_replica Value is 1 if this node is a replica, 0 otherwise.',
      '# TYPE patroni_replica gauge',
      `patroni_replica${L} 1`,
      '# HELP patroni_sync_standby Value is 1 if this node is a sync standby, 0 otherwise.',
      '# TYPE patroni_sync_standby gauge',
      `patroni_sync_standby${L} 0`,
      '# HELP patroni_quorum_standby Value is 1 if this node is a quorum standby, 0 otherwise.',
      '# TYPE patroni_quorum_standby gauge',
      `patroni_quorum_standby${L} 0`,
      '# HELP patroni_xlog_received_location Current location of the received Postgres transaction log, 0 if this node is not a replica.',
      '# TYPE patroni_xlog_received_location counter',
      `patroni_xlog_received_location${L} 67108960`,
      '# HELP patroni_xlog_replayed_location Current location of the replayed Postgres transaction log, 0 if this node is not a replica.',
      '# TYPE patroni_xlog_replayed_location counter',
      `patroni_xlog_replayed_location${L} 67108960`,
      '# HELP patroni_xlog_replayed_timestamp Current timestamp of the replayed Postgres transaction log, 0 if null.',
      '# TYPE patroni_xlog_replayed_timestamp gauge',
      `patroni_xlog_replayed_timestamp${L} 0`,
      '# HELP patroni_xlog_paused Value is 1 if the Postgres xlog is paused, 0 otherwise.',
      '# TYPE patroni_xlog_paused gauge',
      `patroni_xlog_paused${L} 0`,
      '# HELP patroni_postgres_streaming Value is 1 if Postgres is streaming, 0 otherwise.',
      '# TYPE patroni_postgres_streaming gauge',
      `patroni_postgres_streaming${L} 1`,
      '# HELP patroni_postgres_in_archive_recovery Value is 1 if Postgres is replicating from archive, 0 otherwise.',
      '# TYPE patroni_postgres_in_archive_recovery gauge',
      `patroni_postgres_in_archive_recovery${L} 0`,
      '# HELP patroni_postgres_server_version Version of Postgres (if running), 0 otherwise.',
      '# TYPE patroni_postgres_server_version gauge',
      `patroni_postgres_server_version${L} 150018`,
      '# HELP patroni_cluster_unlocked Value is 1 if the cluster is unlocked, 0 if locked.',
      '# TYPE patroni_cluster_unlocked gauge',
      `patroni_cluster_unlocked${L} 0`,
      '# HELP patroni_failsafe_mode_is_active Value is 1 if failsafe mode is active, 0 if inactive.',
      '# TYPE patroni_failsafe_mode_is_active gauge',
      `patroni_failsafe_mode_is_active${L} 0`,
      '# HELP patroni_postgres_timeline Postgres timeline of this node (if running), 0 otherwise.',
      '# TYPE patroni_postgres_timeline gauge',
      `patroni_postgres_timeline${L} 1`,
      '# HELP patroni_dcs_last_seen Epoch timestamp when DCS was last contacted successfully by Patroni.',
      '# TYPE patroni_dcs_last_seen gauge',
      `patroni_dcs_last_seen${L} 1796328715`,
      '# HELP patroni_pending_restart Value is 1 if the node needs a restart, 0 otherwise.',
      '# TYPE patroni_pending_restart gauge',
      `patroni_pending_restart${L} 0`,
      '# HELP patroni_is_paused Value is 1 if auto failover is disabled, 0 otherwise.',
      '# TYPE patroni_is_paused gauge',
      `patroni_is_paused${L} 0`,
      '# HELP patroni_postgres_state Numeric representation of Postgres state.',
      STATE_VALUES,
      '# TYPE patroni_postgres_state gauge',
      `patroni_postgres_state${L} 5`,
    ];
    expect(metricsText(doc).split('\n')).toEqual([...expected, '']);
  });

  it('the captured 4.1.4 leader: primary, its flush LSN, no replica positions', () => {
    const m = samples(metricsText(capture('rest-leader.json')['/patroni']?.body ?? {}));
    expect(m.size).toBe(23);
    expect(Object.fromEntries(m)).toMatchObject({
      patroni_primary: '1',
      patroni_replica: '0',
      patroni_xlog_location: '67108960',
      patroni_xlog_received_location: '0',
      patroni_xlog_replayed_location: '0',
      patroni_postmaster_start_time: '1796328673.614195',
      patroni_postgres_streaming: '0',
      patroni_postgres_state: '5',
    });
  });
});

const primary: AgentStatus = {
  at: 1_000_000,
  state: 'running',
  role: 'primary',
  postmasterRunning: true,
  postgres: {
    postmasterStartTime: '2026-11-22 02:55:23+00:00',
    serverVersion: 150018,
    xlog: { kind: 'primary', location: 123456789012n },
    timeline: 7,
    replication: [],
  },
  syncStandby: false,
  quorumStandby: false,
  pause: false,
  clusterUnlocked: false,
  failsafeModeIsActive: false,
  dcsLastSeen: 1795316134,
  tags: {},
  pendingRestart: false,
  patroni: { version: '4.1.4', scope: 'lab', name: 'pg1' },
  watchdogFailed: false,
  standbyCluster: false,
  nextRunAt: 1_000_000,
  ttl: 30,
  maximumLagOnFailover: 1048576,
};

const replica: AgentStatus = {
  ...primary,
  role: 'replica',
  postgres: {
    postmasterStartTime: '2026-11-22 02:55:02.353938+00:00',
    serverVersion: 150018,
    xlog: {
      kind: 'replica',
      receivedLocation: 68062120n,
      replayedLocation: 68062000n,
      replayedTimestamp: '2026-11-22 02:55:23.093783+00:00',
      paused: false,
    },
    timeline: 4,
    replicationState: 'streaming',
    replication: [],
  },
  patroni: { version: '4.1.4', scope: 'lab', name: 'pg2' },
};

const stopped: AgentStatus = {
  ...primary,
  state: 'stopped',
  role: 'demoted',
  postmasterRunning: false,
  postgres: undefined,
  clusterUnlocked: true,
  pendingRestart: true,
  pendingRestartReason: { max_connections: { old_value: '100', new_value: '200' } },
};

const rows = (s: AgentStatus): Record<string, string> =>
  Object.fromEntries(samples(metricsText(statusJson(s))));

describe('metricsText per state (through statusJson, as the agent serves it)', () => {
  it.each<[string, AgentStatus, Record<string, string>]>([
    [
      'primary',
      primary,
      {
        patroni_version: '040104',
        patroni_postgres_running: '1',
        patroni_postmaster_start_time: '1795316123.0',
        patroni_primary: '1',
        patroni_replica: '0',
        patroni_standby_leader: '0',
        patroni_xlog_location: '123456789012',
        patroni_xlog_received_location: '0',
        patroni_xlog_replayed_location: '0',
        patroni_xlog_replayed_timestamp: '0',
        patroni_postgres_streaming: '0',
        patroni_postgres_in_archive_recovery: '0',
        patroni_postgres_server_version: '150018',
        patroni_postgres_timeline: '7',
        patroni_dcs_last_seen: '1795316134',
        patroni_cluster_unlocked: '0',
        patroni_is_paused: '0',
        patroni_pending_restart: '0',
        patroni_postgres_state: '5',
      },
    ],
    [
      'streaming replica',
      replica,
      {
        patroni_postmaster_start_time: '1795316102.353938',
        patroni_primary: '0',
        patroni_replica: '1',
        patroni_xlog_location: '0',
        patroni_xlog_received_location: '68062120',
        patroni_xlog_replayed_location: '68062000',
        patroni_xlog_replayed_timestamp: '1795316123.093783',
        patroni_xlog_paused: '0',
        patroni_postgres_streaming: '1',
        patroni_postgres_in_archive_recovery: '0',
        patroni_postgres_timeline: '4',
        patroni_sync_standby: '0',
      },
    ],
    [
      'replica from the archive, replay paused, sync standby, paused cluster',
      {
        ...replica,
        postgres: {
          ...replica.postgres!,
          xlog: { ...(replica.postgres!.xlog as object), paused: true } as never,
          replicationState: 'in archive recovery',
        },
        syncStandby: true,
        pause: true,
      },
      {
        patroni_xlog_paused: '1',
        patroni_postgres_streaming: '0',
        patroni_postgres_in_archive_recovery: '1',
        patroni_sync_standby: '1',
        patroni_quorum_standby: '0',
        patroni_is_paused: '1',
      },
    ],
    [
      'stopped PostgreSQL, pending restart, no leader',
      stopped,
      {
        patroni_postgres_running: '0',
        patroni_postmaster_start_time: '0',
        patroni_primary: '0',
        patroni_replica: '0',
        patroni_xlog_location: '0',
        patroni_postgres_server_version: '0',
        patroni_postgres_timeline: '0',
        patroni_cluster_unlocked: '1',
        patroni_pending_restart: '1',
        patroni_postgres_state: '12',
      },
    ],
    [
      'running but not answering (`unknown`): state -1, the primary role kept',
      { ...stopped, state: 'unknown', role: 'primary', postmasterRunning: true, pendingRestart: false },
      { patroni_postgres_running: '0', patroni_primary: '1', patroni_postgres_state: '-1' },
    ],
    [
      'standby leader with failsafe active',
      { ...replica, role: 'standby_leader', failsafeModeIsActive: true, syncStandby: true },
      {
        patroni_standby_leader: '1',
        patroni_primary: '0',
        patroni_replica: '0',
        // Patroni flags sync standbys among replicas only.
        patroni_sync_standby: '0',
        patroni_failsafe_mode_is_active: '1',
      },
    ],
  ])('%s', (_name, status, expected) => {
    expect(rows(status)).toMatchObject(expected);
  });

  it('stopped PostgreSQL: no server version, so no streaming / archive-recovery pair (21 samples, not 23)', () => {
    const names = Object.keys(rows(stopped));
    expect(names).toHaveLength(21);
    expect(names).not.toContain('patroni_postgres_streaming');
    expect(names).not.toContain('patroni_postgres_in_archive_recovery');
    expect(Object.keys(rows(primary))).toEqual(Object.keys(rows(replica)));
  });

  it('every sample line carries the scope and name labels; label values are escaped', () => {
    const text = metricsText(statusJson(primary));
    const sampleLines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(sampleLines).toHaveLength(23);
    for (const l of sampleLines) expect(l).toMatch(/^patroni_\w+\{scope="lab",name="pg1"\} -?[\d.]+$/);
    const odd = metricsText(statusJson({ ...primary, patroni: { ...primary.patroni, scope: 'a"b\\c' } }));
    expect(odd).toContain('patroni_version{scope="a\\"b\\\\c",name="pg1"} 040104');
  });
});

describe('helpers', () => {
  it('paddedSemver', () => {
    expect(paddedSemver('4.1.4')).toBe('040104');
    expect(paddedSemver('3.0.2')).toBe('030002');
    expect(paddedSemver('10.12.3')).toBe('101203');
  });

  it('epochSeconds is total_seconds() of Python datetimes (values from python3)', () => {
    expect(epochSeconds('2026-12-03 20:11:13.614195+00:00')).toBe(1796328673.614195);
    expect(epochSeconds('2026-11-22 02:55:23+00:00')).toBe(1795316123);
    expect(epochSeconds('2026-11-22 04:55:23.000100+02:00')).toBe(1795316123.0001);
    expect(epochSeconds('2026-11-22 02:55:23.1-03:30')).toBe(1795328723.1);
    expect(epochSeconds('')).toBeUndefined();
    expect(epochSeconds('yesterday')).toBeUndefined();
  });

  it('pyFloat writes integral floats with .0', () => {
    expect(pyFloat(1795316123)).toBe('1795316123.0');
    expect(pyFloat(1795316123.0001)).toBe('1795316123.0001');
    expect(pyFloat(0)).toBe('0.0');
  });

  it('postgresStateIndex follows PostgresqlState', () => {
    expect(postgresStateIndex('initializing new cluster')).toBe(0);
    expect(postgresStateIndex('running')).toBe(5);
    expect(postgresStateIndex('stopped')).toBe(12);
    expect(postgresStateIndex('crashed')).toBe(14);
    expect(postgresStateIndex('unknown')).toBe(-1);
  });
});
