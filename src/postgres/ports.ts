/**
 * The few shapes src/postgres needs from whoever drives it (the agent wires the HA loop's logger and task control
 * in; they match structurally, so src/postgres depends on nothing above it).
 */

/** Where PostgreSQL control reports what it does. */
export interface PgLog {
  info(text: string): void;
  warning(text: string): void;
  error(text: string): void;
}

/** Cooperative cancellation of a long action, checked between steps. */
export interface Cancellation {
  readonly cancelled: () => boolean;
}

/** A member to stream from, resolved from its `conn_url`. */
export interface Upstream {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** A standby cluster's remote primary: `standby_cluster`'s slot and recovery_min_apply_delay apply. */
  readonly remote?: true;
}

/** Another member's PostgreSQL as read from its member key (the agent resolves its `conn_url`). */
export interface PeerPostgres {
  readonly name: string;
  /** From `conn_url`; undefined when it has no usable one. */
  readonly address: { readonly host: string; readonly port: number } | undefined;
  /** The database named in `conn_url` (undefined: none there). */
  readonly dbname: string | undefined;
  readonly role: string | undefined;
  /** The timeline it published (undefined: none). */
  readonly timeline?: number | undefined;
  /** `checkpoint_after_promote` as published (false: a promotion's CHECKPOINT is still running). */
  readonly checkpointAfterPromote: boolean | undefined;
  /**
   * A standby cluster's remote primary (Patroni's `RemoteMember`): no member key, so no role to check first; its
   * `timeline` is the one the standby cluster's lock holder published (ha.py `_leader_timeline`).
   */
  readonly remote?: true;
}

/**
 * How postgresql.conf is written: undefined as a primary; a standby of `primary` (none: no upstream). `remote`: the
 * standby leader of a standby cluster, also when it replays from the archive alone (no `primary`).
 */
export type StandbyTarget = { readonly primary?: Upstream; readonly remote?: boolean } | undefined;

/** How PostgreSQL starts: a primary, a replica, or the standby leader of a standby cluster. */
export type StartRole = 'replica' | 'primary' | 'standby_leader';
