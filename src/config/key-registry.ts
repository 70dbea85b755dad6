/**
 * Every configuration key pgwarden knows, and what it does with it (issue 12, item 1: every setting takes effect
 * or is refused). A key is `supported` (works as in Patroni 4.1.4, or as in 3.0.2 where pgwarden speaks 3.0.2),
 * `refused` (pgwarden does not do what it asks: the agent and edit-config stop with the dotted path and what to
 * do, except for the values listed as safe, which are what pgwarden does anyway), or `warned` (Patroni ignores it
 * too, or it tunes something pgwarden does not have: accepted with a warning). A key in neither table is unknown:
 * Patroni's validator does not look at unknown keys, so pgwarden accepts it with a warning.
 *
 * Patterns are dotted paths; `*` matches any one key, `<method>` the custom `bootstrap.method` and
 * `<replica_method>` a `postgresql.create_replica_methods` entry. A rule with `subtree` covers everything below it
 * (its values are checked by the section parsers).
 */
import { pyShown } from './config-values.js';
import { USER_KEYS } from './postgresql-section.js';

export type KeyRule =
  | { readonly status: 'supported'; readonly subtree?: boolean }
  | {
      readonly status: 'refused';
      readonly subtree?: boolean;
      /** What is wrong; `%v` is replaced by the value found. */
      readonly problem: string;
      /** What to do. */
      readonly fix: string;
      /** Values that ask for what pgwarden does anyway (the default); a `null` value is always accepted. */
      readonly accepts?: (value: unknown) => boolean;
    }
  | {
      readonly status: 'warned';
      readonly subtree?: boolean;
      readonly reason: string;
      /** Values that ask for what pgwarden does: accepted without a warning. */
      readonly accepts?: (value: unknown) => boolean;
    };

export type RuleTable = Readonly<Record<string, KeyRule>>;

const S: KeyRule = { status: 'supported' };
const TREE: KeyRule = { status: 'supported', subtree: true };

function refused(
  problem: string,
  fix: string,
  accepts?: (value: unknown) => boolean,
  subtree = false,
): KeyRule {
  return { status: 'refused', problem, fix, subtree, ...(accepts ? { accepts } : {}) };
}

const warned = (reason: string, subtree = false, accepts?: (value: unknown) => boolean): KeyRule => ({
  status: 'warned',
  reason,
  subtree,
  ...(accepts ? { accepts } : {}),
});

// Safe-value predicates: the value asks for what pgwarden does anyway.
const isNumber =
  (n: number) =>
  (v: unknown): boolean =>
    v === n || (typeof v === 'string' && v.trim() === String(n));

const NO_DCS = (name: string): KeyRule =>
  refused(
    `the ${name} DCS is not supported by pgwarden`,
    'use an etcd3 or zookeeper section instead',
    undefined,
    true,
  );

/** A PostgreSQL user: its name, password and the libpq keywords Patroni passes on. */
function userRules(path: string): RuleTable {
  const keys = ['username', 'password', ...USER_KEYS];
  const out: Record<string, KeyRule> = { [path]: S };
  for (const k of keys) out[`${path}.${k}`] = S;
  // Patroni merges a user's keys into its connection parameters, so a Kerberos service name there reaches libpq
  // (primary_conninfo, pg_rewind); pgwarden passes on only the keys above, and its own connections (node-postgres)
  // cannot use Kerberos at all.
  out[`${path}.krbsrvname`] = refused(
    'not supported by pgwarden (Kerberos service names are not passed on with connections)',
    `remove ${path}.krbsrvname`,
  );
  return out;
}

/** The local configuration: patroni.yml and the `PATRONI_*` environment variables. */
export const LOCAL_RULES: RuleTable = {
  name: S,
  scope: S,
  namespace: S,
  thread_pool_size: warned('ignored: pgwarden has no thread pool (one event loop serves the REST API)'),
  thread_stack_size: warned('ignored: pgwarden has no threads'),

  log: S,
  // Patroni 4.1.4's log settings (src/agent/logging): applied at start and on every reload.
  'log.level': S,
  'log.type': S,
  'log.format': S,
  'log.dateformat': S,
  'log.static_fields': TREE,
  'log.dir': S,
  'log.file_num': S,
  'log.file_size': S,
  'log.mode': S,
  'log.traceback_level': S,
  'log.deduplicate_heartbeat_logs': S,
  'log.max_queue_size': warned('ignored: pgwarden writes each log line at once (no queue to bound)'),
  'log.loggers': S,
  // pgwarden logs through one logger, `pgwarden`; `patroni` (the parent of Patroni's loggers) names it too.
  'log.loggers.pgwarden': S,
  'log.loggers.patroni': S,
  'log.loggers.*': warned(
    "ignored: pgwarden has no such logger; its messages all come from the logger 'pgwarden' (also set as 'patroni')",
  ),

  ctl: S,
  'ctl.insecure': S,
  'ctl.cacert': S,
  'ctl.certfile': S,
  'ctl.keyfile': S,
  'ctl.keyfile_password': refused(
    "not supported by pgwarden's CLI yet (encrypted client keys cannot be used)",
    'decrypt the key file and remove ctl.keyfile_password',
  ),
  'ctl.authentication': S,
  'ctl.authentication.username': S,
  'ctl.authentication.password': S,
  'ctl.auth': S,

  restapi: S,
  'restapi.listen': S,
  'restapi.connect_address': S,
  'restapi.authentication': S,
  'restapi.authentication.username': S,
  'restapi.authentication.password': S,
  'restapi.auth': S,
  'restapi.certfile': S,
  'restapi.keyfile': S,
  'restapi.keyfile_password': S,
  'restapi.cafile': S,
  'restapi.ciphers': S,
  'restapi.verify_client': S,
  'restapi.http_extra_headers': TREE,
  'restapi.https_extra_headers': TREE,
  'restapi.request_queue_size': warned("ignored: pgwarden listens with Node's default backlog"),
  'restapi.thread_pool_size': warned('ignored: pgwarden has no thread pool'),
  'restapi.allowlist': S,
  'restapi.allowlist_include_members': S,
  'restapi.server_tokens': S,

  etcd3: S,
  'etcd3.host': S,
  'etcd3.hosts': S,
  'etcd3.port': S,
  'etcd3.url': S,
  'etcd3.proxy': S,
  'etcd3.protocol': S,
  'etcd3.username': S,
  'etcd3.password': S,
  'etcd3.cacert': S,
  'etcd3.cert': S,
  'etcd3.key': S,
  // DNS SRV discovery as Patroni (src/dcs/etcd3/srv.ts); discovery_srv and srv_domain are older names of srv that
  // Patroni's etcd client still reads (and prefers), though its validator does not (config/patroni-validator.ts).
  'etcd3.srv': S,
  'etcd3.srv_suffix': S,
  'etcd3.discovery_srv': S,
  'etcd3.srv_domain': S,
  // false (the default): the hosts only bootstrap the list of etcd members, whose client URLs are used; true: the
  // hosts as given (src/dcs/etcd3/members.ts).
  'etcd3.use_proxies': S,
  // The passphrase of an encrypted etcd3.key (src/dcs/etcd3/gateway.ts).
  'etcd3.key_password': S,
  etcd: refused(
    'the etcd v2 API is not supported by pgwarden, which speaks etcd v3 only',
    'rename the section to etcd3 (Patroni reads the same keys there only if the cluster was created on v3)',
    undefined,
    true,
  ),
  zookeeper: S,
  'zookeeper.hosts': S,
  // TLS, digest (or other) authentication and znode ACLs: src/config/zookeeper-section.ts, src/dcs/zookeeper/.
  'zookeeper.use_ssl': S,
  'zookeeper.cacert': S,
  'zookeeper.cert': S,
  'zookeeper.key': S,
  'zookeeper.key_password': S,
  'zookeeper.verify': S,
  'zookeeper.set_acls': TREE,
  'zookeeper.auth_data': TREE,
  consul: NO_DCS('Consul'),
  exhibitor: NO_DCS('Exhibitor'),
  kubernetes: NO_DCS('Kubernetes'),
  raft: NO_DCS('Raft'),
  citus: refused('Citus clusters are not supported by pgwarden', 'remove the citus section', undefined, true),

  bootstrap: S,
  // bootstrap.dcs is the dynamic configuration: checked against DYNAMIC_RULES.
  'bootstrap.dcs': TREE,
  // Custom bootstrap (src/postgres/custom-bootstrap.ts): the method's section is passed to its command as written.
  'bootstrap.method': S,
  'bootstrap.<method>': TREE,
  'bootstrap.initdb': TREE,
  'bootstrap.pg_hba': TREE,
  'bootstrap.users': TREE,
  'bootstrap.post_bootstrap': S,
  'bootstrap.post_init': S,

  postgresql: S,
  'postgresql.listen': S,
  'postgresql.connect_address': S,
  'postgresql.proxy_address': S,
  'postgresql.data_dir': S,
  'postgresql.config_dir': S,
  'postgresql.bin_dir': S,
  'postgresql.bin_name': S,
  'postgresql.bin_name.pg_ctl': S,
  'postgresql.bin_name.initdb': S,
  'postgresql.bin_name.pg_controldata': S,
  'postgresql.bin_name.pg_basebackup': S,
  'postgresql.bin_name.postgres': S,
  'postgresql.bin_name.pg_isready': S,
  'postgresql.bin_name.pg_rewind': S,
  'postgresql.pgpass': S,
  'postgresql.database': S,
  'postgresql.authentication': S,
  ...userRules('postgresql.authentication.superuser'),
  ...userRules('postgresql.authentication.replication'),
  ...userRules('postgresql.authentication.rewind'),
  'postgresql.parameters': TREE,
  'postgresql.pg_hba': TREE,
  'postgresql.pg_ident': TREE,
  'postgresql.callbacks': S,
  'postgresql.callbacks.on_start': S,
  'postgresql.callbacks.on_stop': S,
  'postgresql.callbacks.on_restart': S,
  'postgresql.callbacks.on_reload': S,
  'postgresql.callbacks.on_role_change': S,
  'postgresql.create_replica_methods': S,
  'postgresql.<replica_method>': TREE,
  'postgresql.basebackup': TREE,
  'postgresql.recovery_conf': TREE,
  'postgresql.custom_conf': S,
  'postgresql.use_unix_socket': S,
  // Patroni opens replication connections to its own PostgreSQL with it (a replica's timeline, custom bootstrap
  // trust lines); pgwarden never does: it reads the timeline over the superuser session, and its custom bootstrap
  // trusts the address of that session (local socket or TCP) for the superuser and the replication user.
  'postgresql.use_unix_socket_repl': warned(
    'ignored: pgwarden opens no replication connection to its own PostgreSQL, so there is nothing for it to steer',
  ),
  'postgresql.pg_ctl_timeout': S,
  'postgresql.use_pg_rewind': S,
  'postgresql.remove_data_directory_on_rewind_failure': S,
  'postgresql.remove_data_directory_on_diverged_timelines': S,
  'postgresql.pre_promote': S,
  // Run before every stop of a running PostgreSQL (src/postgres/before-stop.ts).
  'postgresql.before_stop': S,
  'postgresql.krbsrvname': refused(
    'not supported by pgwarden yet (it is not passed to replication connections)',
    'remove postgresql.krbsrvname',
  ),
  'postgresql.use_slots': warned(
    'only read from the dynamic configuration, ignored here; set it in bootstrap.dcs.postgresql or with edit-config',
  ),
  // The layout before `authentication`, still read by Patroni.
  ...userRules('postgresql.superuser'),
  ...userRules('postgresql.replication'),
  ...userRules('postgresql.pg_rewind'),
  'postgresql.name': S,

  watchdog: S,
  'watchdog.mode': S,
  'watchdog.device': S,
  'watchdog.safety_margin': S,
  // Not in Patroni's validator, but read by its Watchdog: `testing` is the acceptance suite's FIFO device.
  'watchdog.driver': S,

  tags: S,
  'tags.nofailover': S,
  'tags.failover_priority': S,
  'tags.clonefrom': S,
  'tags.noloadbalance': S,
  'tags.replicatefrom': S,
  'tags.nosync': S,
  // Read at run time as tags.py does (model/tags.ts): 0 or less means nosync, higher priorities are picked first
  // as synchronous standbys (ha/sync.ts).
  'tags.sync_priority': S,
  // parse_bool: a true value stops streaming (no primary_conninfo, WAL from restore_command) and the primary's slot.
  'tags.nostream': S,
  // Custom tags are published in the member key as written.
  'tags.*': TREE,
};

const TOP_DYNAMIC =
  'dynamic setting, ignored in the local configuration; set it in bootstrap.dcs or with edit-config';

/** The dynamic configuration: the DCS `config` key, `bootstrap.dcs`, edit-config and PATCH /config. */
export const DYNAMIC_RULES: RuleTable = {
  ttl: S,
  loop_wait: S,
  retry_timeout: S,
  maximum_lag_on_failover: S,
  maximum_lag_on_syncnode: S,
  max_timelines_history: S,
  primary_start_timeout: S,
  master_start_timeout: S,
  check_timeline: S,
  pause: S,
  // true/false, or `quorum` (quorum commit, Patroni 4.0+: src/ha/quorum.ts).
  synchronous_mode: S,
  synchronous_mode_strict: S,
  synchronous_node_count: S,
  primary_stop_timeout: refused(
    'not supported by pgwarden yet (a primary stop is never cut short)',
    'remove primary_stop_timeout or set it to 0',
    isNumber(0),
  ),
  master_stop_timeout: refused(
    'not supported by pgwarden yet (a primary stop is never cut short)',
    'remove master_stop_timeout or set it to 0',
    isNumber(0),
  ),
  failsafe_mode: S,
  // Standby clusters (src/model/standby-cluster.ts; the HA core in src/ha/decide*.ts, recovery settings in
  // src/postgres/config-files.ts).
  standby_cluster: S,
  'standby_cluster.host': S,
  'standby_cluster.port': S,
  'standby_cluster.primary_slot_name': S,
  'standby_cluster.restore_command': S,
  'standby_cluster.archive_cleanup_command': S,
  'standby_cluster.recovery_min_apply_delay': S,
  'standby_cluster.create_replica_methods': S,
  // Replication slots (src/model/slot-config.ts, src/model/slot-plan.ts, src/postgres/slots-sync.ts).
  slots: TREE,
  permanent_slots: TREE,
  permanent_replication_slots: TREE,
  ignore_slots: TREE,
  member_slots_ttl: S,
  postgresql: S,
  'postgresql.parameters': TREE,
  'postgresql.use_pg_rewind': S,
  'postgresql.use_slots': S,
  'postgresql.pg_hba': TREE,
  'postgresql.pg_ident': TREE,
  // Local settings: Patroni drops these from the dynamic configuration.
  'postgresql.connect_address': warned(
    'ignored: a local setting, Patroni drops it from the dynamic configuration',
  ),
  'postgresql.proxy_address': warned(
    'ignored: a local setting, Patroni drops it from the dynamic configuration',
  ),
  'postgresql.listen': warned('ignored: a local setting, Patroni drops it from the dynamic configuration'),
  'postgresql.config_dir': warned(
    'ignored: a local setting, Patroni drops it from the dynamic configuration',
  ),
  'postgresql.data_dir': warned('ignored: a local setting, Patroni drops it from the dynamic configuration'),
  'postgresql.pgpass': warned('ignored: a local setting, Patroni drops it from the dynamic configuration'),
  'postgresql.authentication': warned(
    'ignored: a local setting, Patroni drops it from the dynamic configuration',
    true,
  ),
  // Patroni merges any other dynamic postgresql key into the local section; pgwarden reads them locally only.
  'postgresql.*': refused(
    'read by pgwarden from the local configuration only',
    "set it in the postgresql section of each node's patroni.yml",
    undefined,
    true,
  ),
};

/** Dynamic settings found at the top of patroni.yml: Patroni ignores them there, the DCS value wins. */
export const LOCAL_TOP_DYNAMIC: KeyRule = warned(TOP_DYNAMIC, true);

/** The registry's view of one refused value: `<path>: <what is wrong>; <what to do>`. */
export function refusalMessage(
  path: string,
  rule: Extract<KeyRule, { status: 'refused' }>,
  value: unknown,
): string {
  const problem = rule.problem.includes('%v') ? rule.problem.replace('%v', pyShown(value)) : rule.problem;
  return `${path}: ${problem}; ${rule.fix}`;
}

export function warningMessage(path: string, rule: Extract<KeyRule, { status: 'warned' }>): string {
  return `${path}: ${rule.reason}`;
}

/** Names a pattern segment may stand for in a given tree. */
export interface PatternContext {
  readonly bootstrapMethod?: string;
  readonly replicaMethods?: readonly string[];
}

function segmentMatches(pattern: string, key: string, ctx: PatternContext): boolean {
  if (pattern === key) return true;
  if (pattern === '*') return true;
  if (pattern === '<method>') return ctx.bootstrapMethod !== undefined && key === ctx.bootstrapMethod;
  if (pattern === '<replica_method>') return (ctx.replicaMethods ?? []).includes(key);
  return false;
}

/** How specific a pattern is: literal segments beat placeholders, placeholders beat `*`. */
function specificity(pattern: readonly string[]): number {
  return pattern.reduce((n, s) => n * 3 + (s === '*' ? 0 : s.startsWith('<') ? 1 : 2), 0);
}

const SPLIT = new Map<RuleTable, readonly (readonly [readonly string[], KeyRule])[]>();

function entries(table: RuleTable): readonly (readonly [readonly string[], KeyRule])[] {
  let e = SPLIT.get(table);
  if (e === undefined) {
    e = Object.entries(table).map(([k, r]) => [k.split('.'), r] as const);
    SPLIT.set(table, e);
  }
  return e;
}

/**
 * The rule for a path (its keys in order), or undefined when the key is unknown. A `subtree` rule on a prefix of
 * the path covers the path.
 */
export function classify(
  table: RuleTable,
  path: readonly string[],
  ctx: PatternContext = {},
): KeyRule | undefined {
  let best: { rule: KeyRule; score: number; length: number } | undefined;
  for (const [pattern, rule] of entries(table)) {
    if (pattern.length > path.length) continue;
    if (pattern.length < path.length && rule.subtree !== true) continue;
    if (!pattern.every((seg, i) => segmentMatches(seg, path[i]!, ctx))) continue;
    const score = specificity(pattern);
    // The longest match wins (a rule for the key itself over a subtree rule above it), then the most literal one.
    if (
      best === undefined ||
      pattern.length > best.length ||
      (pattern.length === best.length && score > best.score)
    ) {
      best = { rule, score, length: pattern.length };
    }
  }
  return best?.rule;
}
