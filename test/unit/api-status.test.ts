import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { statusFromJson, statusJson, type AgentStatus, type StatusExtras } from '../../src/api/status.js';
import type { JsonObject } from '../../src/model/cluster.js';
import { pyJson } from '../../src/model/pyjson.js';
import { fixturePath, readFixture } from '../helpers/fixtures.js';

const EXTRAS: StatusExtras = {
  at: 1_000_000,
  postmasterRunning: true,
  standbyCluster: false,
  nextRunAt: 1_000_000,
  ttl: 30,
  maximumLagOnFailover: 1048576,
};

const captures = readdirSync(fixturePath('rest')).sort();

/** Every captured status document: /patroni and the health-check GETs answer with it. */
const statusBodies = captures.flatMap((capture) =>
  (['leader', 'replica'] as const).flatMap((role) =>
    readdirSync(fixturePath('rest', capture, role))
      .filter((f) => f.endsWith('.body'))
      .map((f) => ({ capture, role, file: f, text: readFixture('rest', capture, role, f) }))
      .filter(({ text }) => text.startsWith('{"state": ')),
  ),
);

const base: AgentStatus = {
  ...EXTRAS,
  state: 'running',
  role: 'primary',
  postmasterRunning: true,
  postgres: {
    postmasterStartTime: '2026-11-22 02:47:03.023174+00:00',
    serverVersion: 150018,
    xlog: { kind: 'primary', location: 67108960n },
    timeline: 1,
    replication: [],
  },
  syncStandby: false,
  quorumStandby: false,
  pause: false,
  clusterUnlocked: false,
  failsafeModeIsActive: false,
  dcsLastSeen: 1795315664,
  tags: {},
  sysid: '7710821883631976027',
  pendingRestart: false,
  patroni: { version: '3.0.2', scope: 'demo', name: 'node1' },
  watchdogFailed: false,
};

describe('statusJson reproduces the captured 3.0.2 status documents', () => {
  it('found the captures', () => expect(statusBodies.length).toBeGreaterThan(50));
  it.each(statusBodies.map((b) => [`${b.capture}/${b.role}/${b.file}`, b.text]))('%s', (_name, text) => {
    const doc = JSON.parse(text) as JsonObject;
    expect(pyJson(statusJson(statusFromJson(doc, EXTRAS)))).toBe(text);
  });
});

describe('statusJson field rules (spec 4.5)', () => {
  it('3.0.2 primary with replication and tags (the spec example)', () => {
    const s: AgentStatus = {
      ...base,
      postgres: {
        ...base.postgres!,
        replication: [
          {
            usename: 'replicator',
            application_name: 'node3',
            client_addr: '127.0.0.1',
            state: 'streaming',
            sync_state: 'async',
            sync_priority: 0,
          },
        ],
      },
      tags: { mytag: 'hello' },
    };
    expect(pyJson(statusJson(s))).toBe(
      '{"state": "running", "postmaster_start_time": "2026-11-22 02:47:03.023174+00:00", "role": "master", ' +
        '"server_version": 150018, "xlog": {"location": 67108960}, "timeline": 1, "replication": [{"usename": ' +
        '"replicator", "application_name": "node3", "client_addr": "127.0.0.1", "state": "streaming", ' +
        '"sync_state": "async", "sync_priority": 0}], "dcs_last_seen": 1795315664, "tags": {"mytag": "hello"}, ' +
        '"database_system_identifier": "7710821883631976027", "patroni": {"version": "3.0.2", "scope": "demo"}}',
    );
  });

  it('role spelling is a parameter, defaulting by version', () => {
    expect(statusJson(base)['role']).toBe('master');
    expect(statusJson(base, { primaryRole: 'primary' })['role']).toBe('primary');
    expect(statusJson({ ...base, patroni: { ...base.patroni, version: '4.1.4' } })['role']).toBe('primary');
    expect(statusJson({ ...base, role: 'master' }, { primaryRole: 'primary' })['role']).toBe('primary');
    expect(statusJson({ ...base, role: 'replica' })['role']).toBe('replica');
  });

  it('4.1 replica with pending restart reason (the spec example)', () => {
    const s: AgentStatus = {
      ...base,
      role: 'replica',
      postgres: {
        postmasterStartTime: '2026-11-22 02:54:26.714541+00:00',
        serverVersion: 150018,
        xlog: {
          kind: 'replica',
          receivedLocation: 67109056n,
          replayedLocation: 67109056n,
          replayedTimestamp: '2026-11-22 02:55:10.886681+00:00',
          paused: false,
        },
        timeline: 1,
        replicationState: 'streaming',
        replication: [],
        latestEndLsn: 67109056n,
      },
      dcsLastSeen: 1795316131,
      tags: { mytag: 'hello' },
      sysid: '7710823709639820511',
      pendingRestart: true,
      pendingRestartReason: { max_connections: { old_value: '100', new_value: '120' } },
      patroni: { version: '4.1.4', scope: 'demo4', name: 'node2' },
    };
    expect(pyJson(statusJson(s))).toBe(
      '{"state": "running", "postmaster_start_time": "2026-11-22 02:54:26.714541+00:00", "role": "replica", ' +
        '"server_version": 150018, "xlog": {"received_location": 67109056, "replayed_location": 67109056, ' +
        '"replayed_timestamp": "2026-11-22 02:55:10.886681+00:00", "paused": false}, "timeline": 1, ' +
        '"replication_state": "streaming", "dcs_last_seen": 1795316131, "tags": {"mytag": "hello"}, ' +
        '"database_system_identifier": "7710823709639820511", "pending_restart": true, "pending_restart_reason": ' +
        '{"max_connections": {"old_value": "100", "new_value": "120"}}, "patroni": {"version": "4.1.4", ' +
        '"scope": "demo4", "name": "node2"}}',
    );
  });

  it('3.0.2 leaves out replication_state, pending_restart_reason and patroni.name', () => {
    const s: AgentStatus = {
      ...base,
      role: 'replica',
      postgres: {
        ...base.postgres!,
        xlog: {
          kind: 'replica',
          receivedLocation: 5n,
          replayedLocation: 4n,
          replayedTimestamp: null,
          paused: true,
        },
        replicationState: 'streaming',
      },
      pendingRestart: true,
      pendingRestartReason: { x: { old_value: '1', new_value: '2' } },
    };
    const doc = statusJson(s);
    expect(Object.keys(doc)).not.toContain('replication_state');
    expect(doc['pending_restart']).toBe(true);
    expect(Object.keys(doc)).not.toContain('pending_restart_reason');
    expect(doc['patroni']).toEqual({ version: '3.0.2', scope: 'demo' });
    expect(pyJson(doc['xlog'])).toBe(
      '{"received_location": 5, "replayed_location": 4, "replayed_timestamp": null, "paused": true}',
    );
  });

  it('PostgreSQL unreachable: state, internal role, flags, dcs_last_seen', () => {
    const s: AgentStatus = {
      ...base,
      state: 'stopped',
      role: 'demoted',
      postgres: undefined,
      clusterUnlocked: true,
      failsafeModeIsActive: true,
      sysid: undefined,
    };
    expect(pyJson(statusJson(s))).toBe(
      '{"state": "stopped", "role": "demoted", "cluster_unlocked": true, "failsafe_mode_is_active": true, ' +
        '"dcs_last_seen": 1795315664, "patroni": {"version": "3.0.2", "scope": "demo"}}',
    );
  });

  it('pause sits after watchdog_failed in 3.0.x and before cluster_unlocked later', () => {
    const s: AgentStatus = {
      ...base,
      pause: true,
      clusterUnlocked: true,
      watchdogFailed: true,
      scheduledRestart: { schedule: '2026-11-22T03:00:00+00:00', role: 'master' },
    };
    expect(Object.keys(statusJson(s)).slice(-5)).toEqual([
      'database_system_identifier',
      'patroni',
      'scheduled_restart',
      'watchdog_failed',
      'pause',
    ]);
    const newer = statusJson({ ...s, patroni: { ...s.patroni, version: '4.0.10' } });
    const keys = Object.keys(newer);
    expect(keys.indexOf('pause')).toBe(keys.indexOf('cluster_unlocked') - 1);
    expect(keys.indexOf('timeline')).toBeLessThan(keys.indexOf('pause'));
  });

  it('sync_standby/quorum_standby only as true, quorum only from 4.0', () => {
    const replica: AgentStatus = {
      ...base,
      role: 'replica',
      postgres: {
        ...base.postgres!,
        xlog: {
          kind: 'replica',
          receivedLocation: 1n,
          replayedLocation: 1n,
          replayedTimestamp: null,
          paused: false,
        },
      },
    };
    expect(Object.keys(statusJson(replica))).not.toContain('sync_standby');
    const sync = statusJson({ ...replica, syncStandby: true });
    expect(Object.keys(sync).slice(4, 7)).toEqual(['xlog', 'sync_standby', 'timeline']);
    expect(Object.keys(statusJson({ ...replica, quorumStandby: true }))).not.toContain('quorum_standby');
    const v4 = { ...replica, quorumStandby: true, patroni: { ...replica.patroni, version: '4.0.0' } };
    expect(statusJson(v4)['quorum_standby']).toBe(true);
  });

  it('logger fields and latest_end_lsn never leaks', () => {
    const s: AgentStatus = {
      ...base,
      loggerQueueSize: 1200,
      loggerRecordsLost: 3,
      postgres: { ...base.postgres!, latestEndLsn: 99n },
    };
    const text = pyJson(statusJson(s));
    expect(text.endsWith('"logger_queue_size": 1200, "logger_records_lost": 3}')).toBe(true);
    expect(text).not.toContain('latest_end_lsn');
  });
});
