/** The agent's typed view of patroni.yml (spec 3.1-3.3), built by src/config/agent-config.ts. */
import type { ConfigTree, DcsTarget, LocalConfig } from './local-config.js';

type Node = Readonly<Record<string, unknown>>;

export interface HostPort {
  /** Without IPv6 brackets; `''` or `*` on a listen address means every interface. */
  readonly host: string;
  readonly port: number;
}

export interface PgListen {
  /** The addresses, in order; the first one is used for local connections. */
  readonly hosts: readonly string[];
  readonly port: number;
  /** The `listen_addresses` GUC value. */
  readonly listenAddresses: string;
}

export interface BasicAuth {
  readonly username: string;
  readonly password: string;
}

export interface PgUser {
  readonly username: string;
  readonly password?: string;
  /** libpq connection keywords given with the user (sslmode, sslcert, ..., channel_binding). */
  readonly connectionParams: Readonly<Record<string, string>>;
}

/** `bootstrap.initdb` / `postgresql.basebackup`: a list of flags and single-key maps, or a plain map. */
export type ToolOptionsValue =
  readonly (string | Readonly<Record<string, string | number>>)[] | Readonly<Record<string, unknown>>;

export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'WARNING' | 'ERROR' | 'FATAL' | 'CRITICAL';
export type WatchdogMode = 'off' | 'automatic' | 'required';
export type CallbackName = 'on_start' | 'on_stop' | 'on_restart' | 'on_reload' | 'on_role_change';

export interface RestApiConfig {
  readonly listen: HostPort;
  readonly connectAddress: HostPort;
  /** `https` iff `certfile` is set. */
  readonly protocol: 'http' | 'https';
  readonly authentication?: BasicAuth;
  readonly certfile?: string;
  readonly keyfile?: string;
  readonly keyfilePassword?: string;
  readonly cafile?: string;
  readonly ciphers?: string;
  readonly verifyClient?: 'none' | 'optional' | 'required';
  readonly allowlist: readonly string[];
  readonly allowlistIncludeMembers: boolean;
  readonly httpExtraHeaders: Readonly<Record<string, string>>;
  readonly httpsExtraHeaders: Readonly<Record<string, string>>;
  readonly requestQueueSize: number;
  readonly serverTokens: 'original' | 'minimal' | 'productonly';
}

export interface BootstrapUser {
  readonly password?: string;
  readonly options: readonly string[];
}

export interface BootstrapConfig {
  /** Copied verbatim into the DCS `config` key by the node that initializes the cluster. */
  readonly dcs: Node;
  /** `initdb` unless a custom method is named. */
  readonly method: string;
  /** The `bootstrap.<method>` section of a custom method (it has a `command`). */
  readonly methodConfig?: Node;
  readonly initdb?: ToolOptionsValue;
  readonly pgHba?: readonly string[];
  readonly users: Readonly<Record<string, BootstrapUser>>;
  readonly postBootstrap?: string;
  readonly postInit?: string;
}

export interface PostgresqlConfig {
  readonly listen: PgListen;
  readonly connectAddress: HostPort;
  readonly proxyAddress?: HostPort;
  readonly dataDir: string;
  /** Defaults to `dataDir`. */
  readonly configDir: string;
  /** `''` means "search PATH". */
  readonly binDir: string;
  /** Custom binary names, keyed by the standard name (`pg_ctl`, `initdb`, ...). */
  readonly binName: Readonly<Record<string, string>>;
  /** Absolute; defaults to `~/pgpass`. */
  readonly pgpass: string;
  readonly database: string;
  readonly authentication: {
    readonly superuser: PgUser;
    readonly replication: PgUser;
    readonly rewind?: PgUser;
  };
  /** Local GUCs, as written (the command-line GUCs among them are ignored later, spec 2.4). */
  readonly parameters: Node;
  readonly pgHba?: readonly string[];
  readonly pgIdent?: readonly string[];
  readonly callbacks: Readonly<Partial<Record<CallbackName, string>>>;
  readonly createReplicaMethods: readonly string[];
  /** The `postgresql.<method>` section of every listed method other than `basebackup`. */
  readonly replicaMethods: Readonly<Record<string, Node>>;
  readonly basebackup?: ToolOptionsValue;
  readonly recoveryConf?: Node;
  readonly customConf?: string;
  readonly useUnixSocket: boolean;
  readonly useUnixSocketRepl: boolean;
  readonly pgCtlTimeout: number;
  /** Local override of the dynamic `postgresql.use_pg_rewind`; undefined when not set locally. */
  readonly usePgRewind?: boolean;
  readonly removeDataDirectoryOnRewindFailure: boolean;
  readonly removeDataDirectoryOnDivergedTimelines: boolean;
  readonly prePromote?: string;
  readonly beforeStop?: string;
}

/** The node's tags as the agent uses them (compatible with the HA core's `MemberTags`). */
export interface AgentTags {
  readonly nofailover: boolean;
  /** 1 unless configured; 0 when `nofailover` is true. */
  readonly failoverPriority: number;
  readonly nosync: boolean;
  /** `sync_priority`: 1 unless configured; 0 when `nosync` is true. */
  readonly syncPriority: number;
  readonly clonefrom: boolean;
  readonly replicatefrom?: string;
  readonly noloadbalance: boolean;
  /** `nostream` (parse_bool): no WAL streaming, only restore_command. */
  readonly nostream: boolean;
  /** Every tag that is not one of the above, verbatim. */
  readonly custom: Node;
}

export interface WatchdogConfig {
  readonly mode: WatchdogMode;
  readonly device: string;
  /** Seconds; -1: half the ttl. */
  readonly safetyMargin: number;
  /** `default` (the Linux device) or `testing` (the acceptance suite's FIFO); anything else arms nothing. */
  readonly driver: string;
}

export interface AgentConfig {
  /** A path or `environment`. */
  readonly source: string;
  /** The merged tree (files, then `PATRONI_*`), for the effective-configuration merge with the DCS config. */
  readonly raw: ConfigTree;
  /** The same tree as the CLI sees it, for helpers that take a LocalConfig (dcsTarget, restCredentials). */
  readonly local: LocalConfig;
  readonly name: string;
  readonly scope: string;
  readonly namespace: string;
  readonly logLevel: LogLevel;
  /** The `log` section, applied by the agent's logger. */
  readonly log: LogSettings;
  readonly restapi: RestApiConfig;
  readonly dcs: DcsTarget;
  /** Present iff the file has a `bootstrap` section (only such a node may initialize a new cluster). */
  readonly bootstrap?: BootstrapConfig;
  readonly postgresql: PostgresqlConfig;
  readonly tags: AgentTags;
  /** The `tags` object as published in the member key (spec 1.2.3); empty when nothing survives the filter. */
  readonly memberTags: Node;
  /** `postgres://<postgresql.connect_address>/<database>`. */
  readonly connUrl: string;
  /** `<http|https>://<restapi.connect_address>/patroni`. */
  readonly apiUrl: string;
  /** `postgres://<postgresql.proxy_address>/<database>` when a proxy address is set. */
  readonly proxyUrl?: string;
  readonly watchdog: WatchdogConfig;
}

export interface LoadedAgentConfig {
  readonly config: AgentConfig;
  readonly warnings: string[];
}

/** The `log` section as read (src/config/log-section.ts). */
export interface LogSettings {
  /** The root level, a Python level number. */
  readonly level: number;
  readonly type: 'plain' | 'json';
  /** A %-style string, or (json) a list of field names and `{field: new_name}` maps. */
  readonly format: string | readonly unknown[];
  /** Undefined: Python's `YYYY-MM-DD HH:MM:SS,mmm`. */
  readonly dateformat?: string;
  readonly staticFields: Readonly<Record<string, unknown>>;
  readonly dir?: string;
  readonly fileSize: number;
  readonly fileNum: number;
  readonly mode?: number;
  readonly tracebackLevel: 'DEBUG' | 'ERROR';
  /** Per-logger levels as configured (`log.loggers`), level numbers. */
  readonly loggers: Readonly<Record<string, number>>;
  readonly deduplicateHeartbeatLogs: boolean;
}
