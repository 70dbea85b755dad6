/**
 * What the HA cycle knows of the local PostgreSQL (Patroni's `Postgresql` state as ha.py reads it): produced by
 * src/postgres, read by src/ha. Pure types.
 */
import type { Lsn } from './lsn.js';

export type PostgresState =
  | 'running'
  | 'stopped'
  | 'starting'
  | 'stopping'
  | 'restarting'
  | 'crashed'
  | 'start failed'
  | 'restart failed'
  | 'initializing new cluster'
  | 'initdb failed'
  | 'running custom bootstrap script'
  | 'custom bootstrap failed'
  | 'creating replica'
  | 'unknown';

/** `Database cluster state` from pg_controldata, read when PostgreSQL is not running. */
export type ControlDataState =
  | 'in production'
  | 'in crash recovery'
  | 'shutting down'
  | 'shut down'
  | 'shut down in recovery'
  | 'in archive recovery'
  | 'starting up'
  | 'unknown';

export interface PostgresInfo {
  readonly state: PostgresState;
  /** The postmaster answers; `running` plus `starting` states count. */
  readonly isRunning: boolean;
  /** Running and not in recovery. */
  readonly isPrimary: boolean;
  readonly timeline?: number;
  /** Flush LSN on a primary, max(receive, replay) on a replica; 0 when unknown. */
  readonly walPosition: Lsn;
  readonly dataDirectoryEmpty: boolean;
  /** False when the data directory cannot be read (permissions, missing mount). */
  readonly dataDirectoryAccessible: boolean;
  /** Database system identifier from pg_controldata; undefined when there is no cluster. */
  readonly sysid?: string;
  /** Only needed when PostgreSQL is down: decides crash recovery before a restart. */
  readonly controlState?: ControlDataState;
  /**
   * The role it last ran in was primary (Patroni's `state_handler.role`: `primary`, or 3.x `master`). Together with
   * state `crashed` and `recoveryConfExists` it tells a crashed primary that may simply start again as one.
   */
  readonly wasPrimary?: boolean;
  /** The local role is `standby_leader` (Patroni's `state_handler.role`). */
  readonly isStandbyLeader?: boolean;
  /** standby.signal, recovery.signal or recovery.conf is in the data directory (read only when it is stopped). */
  readonly recoveryConfExists?: boolean;
  /** Milliseconds the instance has been in `state` (start timeout bookkeeping). */
  readonly msInState: number;
  /** The member it currently streams from (primary_conninfo target); undefined when none. */
  readonly followingName?: string;
  /**
   * The local timeline diverged from the leader's (ha.py `_handle_rewind_or_reinitialize`, checked by the node against
   * `leader`) and what can be done about it: `rewind` (use_pg_rewind and pg_rewind usable) or `reinitialize`
   * (remove_data_directory_on_diverged_timelines). Undefined: no divergence known.
   */
  readonly diverged?: { readonly leader: string; readonly remedy: 'rewind' | 'reinitialize' };
}
