/**
 * Which replication slots a node should have, as Patroni 4.1.4 works it out from the cluster and the dynamic
 * configuration (dcs `Cluster.get_replication_slots` with `_get_members_slots`, `_get_permanent_slots` and
 * `_merge_permanent_slots`; `global_config.permanent_slots`, `member_slots_ttl`, `ignore_slots`, `use_slots`).
 *
 * - Member slots: with slot advancing (PostgreSQL 11+) and `member_slots_ttl` > 0 (the default, 1800 s) every node
 *   keeps a physical slot for every other streaming member (a `nofailover` node only for the members replicating
 *   from it), plus the slots named in the status key's `retain_slots` (members that vanished less than
 *   `member_slots_ttl` ago). Otherwise the primary keeps slots for the members that stream from it and a replica
 *   for the members replicating from it. A slot's target position comes from the status key's `slots`, or from the
 *   member's own `xlog_location` when it replicates from another member.
 * - Permanent slots (`permanent_replication_slots`, `permanent_slots` or `slots`): physical ones everywhere
 *   (PostgreSQL 11+), logical ones on the primary and on replicas that can become primary and stream from it.
 *
 * Pure; the member-name-to-slot-name mapping comes from the caller.
 */
import type { Cluster, JsonObject, Member } from './cluster.js';
import { parseGucInt } from './guc-values.js';
import type { Lsn } from './lsn.js';
import { isTree, parseBool, pyBool } from './python.js';
import { tagNoFailover } from './tags.js';

export interface DesiredSlot {
  readonly type: 'physical' | 'logical';
  /** Logical slots: the database and output plugin. */
  readonly database?: string;
  readonly plugin?: string;
  /** The position the slot should reach (status key or a cascading member's feedback); absent: unknown. */
  readonly lsn?: Lsn;
  /** Physical slots: whether a walsender is expected to use it on this node; absent: no expectation. */
  readonly expectedActive?: boolean;
}

export type DesiredSlots = ReadonlyMap<string, DesiredSlot>;

/** Patroni's `slot_name_re`. */
const SLOT_NAME = /^[a-z0-9_]{1,63}$/;

export const DEFAULT_MEMBER_SLOTS_TTL = 1800;

const isMapping = (v: unknown): v is JsonObject => isTree(v);

/** Python truthiness of a configuration value (`or` chains). */
function truthy(v: unknown): boolean {
  if (isMapping(v)) return Object.keys(v).length > 0;
  return pyBool(v);
}

/** `global_config.permanent_slots`: the first non-empty of the three spellings. */
export function permanentSlotsConfig(dynamic: JsonObject | undefined): JsonObject {
  const d = dynamic ?? {};
  const v = [d['permanent_replication_slots'], d['permanent_slots'], d['slots']].find(truthy);
  return isMapping(v) ? v : {};
}

/** `global_config.use_slots`: parse_bool of `postgresql.use_slots` (default true); unreadable is false. */
export function useSlotsConfig(dynamic: JsonObject | undefined): boolean {
  const pg = dynamic?.['postgresql'];
  const section = isMapping(pg) ? pg : {};
  const v = 'use_slots' in section ? section['use_slots'] : true;
  return parseBool(v) === true;
}

/** `global_config.member_slots_ttl` in seconds (default 1800; a unit-less value is seconds). */
export function memberSlotsTtl(dynamic: JsonObject | undefined): number {
  const v = dynamic?.['member_slots_ttl'];
  if (v === undefined || v === null) return DEFAULT_MEMBER_SLOTS_TTL;
  return parseGucInt(v, 's') ?? DEFAULT_MEMBER_SLOTS_TTL;
}

export interface IgnoreMatcher {
  readonly name?: unknown;
  readonly database?: unknown;
  readonly plugin?: unknown;
  readonly type?: unknown;
}

/** `global_config.ignore_slots_matchers`: the mappings listed under `ignore_slots`. */
export function ignoreMatchers(dynamic: JsonObject | undefined): readonly IgnoreMatcher[] {
  const v = dynamic?.['ignore_slots'];
  return Array.isArray(v) ? v.filter(isMapping) : [];
}

/** A slot as matched against `ignore_slots` (slots.py `ignore_replication_slot`). */
export interface SlotIdentity {
  readonly name: string;
  readonly type: string;
  readonly database?: string | undefined;
  readonly plugin?: string | undefined;
}

/** Whether one matcher covers the slot: its name (when given) and each of database/plugin/type it sets match. */
export function slotIgnored(matchers: readonly IgnoreMatcher[], slot: SlotIdentity): boolean {
  return matchers.some(
    (m) =>
      (m.name === undefined || m.name === null || m.name === slot.name) &&
      (['database', 'plugin', 'type'] as const).every((a) => !truthy(m[a]) || m[a] === slot[a]),
  );
}

/** `Cluster.is_physical_slot`. */
export function isPhysicalSlotValue(v: unknown): boolean {
  if (!truthy(v)) return true;
  return isMapping(v) && !isLogicalSlotValue(v) && (v['type'] ?? 'physical') === 'physical';
}

/** `Cluster.is_logical_slot`. */
export function isLogicalSlotValue(v: unknown): boolean {
  return (
    isMapping(v) && (v['type'] ?? 'logical') === 'logical' && truthy(v['database']) && truthy(v['plugin'])
  );
}

export interface SlotContext {
  readonly cluster: Cluster;
  readonly dynamic: JsonObject | undefined;
  /** Our member name and tags. */
  readonly self: string;
  readonly tags: JsonObject;
  /** `primary` while PostgreSQL runs as one, else `replica`. */
  readonly role: 'primary' | 'replica';
  /** PostgreSQL 11+: pg_replication_slot_advance() exists. */
  readonly canAdvanceSlots: boolean;
  readonly slotName: (member: string) => string;
}

function replicatefrom(tags: JsonObject): unknown {
  return tags['replicatefrom'];
}

function nostream(tags: JsonObject): boolean {
  return parseBool(tags['nostream']) === true;
}

function memberLsn(m: Member): Lsn {
  return m.data.xlogLocation ?? 0n;
}

const maxLsn = (a: Lsn, b: Lsn): Lsn => (a > b ? a : b);

/**
 * `Cluster.get_slot_name_on_primary`: the slot on the primary that carries our WAL (a cascading replica's is its
 * upstream's); undefined for `nostream` or a `replicatefrom` loop.
 */
export function slotNameOnPrimary(ctx: SlotContext, name: string, tags: JsonObject): string | undefined {
  const seen = new Set<string>();
  for (;;) {
    seen.add(name);
    if (nostream(tags)) return undefined;
    const rf = replicatefrom(tags);
    const up =
      typeof rf === 'string' && rf !== '' && rf !== name
        ? ctx.cluster.members.find((m) => m.name === rf)
        : undefined;
    if (!up) return ctx.slotName(name);
    if (seen.has(up.name)) return undefined;
    name = up.name;
    tags = up.data.tags;
  }
}

/** `Cluster.__permanent_slots`: the configured slots, each with the position known for it. */
function permanentSlots(ctx: SlotContext): Map<string, unknown> {
  const fromMembers = new Map<string, Lsn>();
  for (const m of ctx.cluster.members)
    if (truthy(replicatefrom(m.data.tags))) fromMembers.set(ctx.slotName(m.name), memberLsn(m));
  const out = new Map<string, unknown>();
  for (const [name, raw] of Object.entries(permanentSlotsConfig(ctx.dynamic))) {
    let value: unknown = truthy(raw) ? raw : {};
    if (isMapping(value)) {
      const { lsn: _ignored, ...rest } = value;
      const status = ctx.cluster.status.slots[name] ?? 0n;
      const lsn = maxLsn(isPhysicalSlotValue(value) ? (fromMembers.get(name) ?? 0n) : 0n, status);
      value = lsn > 0n ? { ...rest, lsn } : rest;
    }
    out.set(name, value);
  }
  return out;
}

/** `Cluster.permanent_physical_slots` (not a standby cluster: slots for `cluster_type: standby` are left out). */
export function permanentPhysicalSlotNames(ctx: SlotContext): ReadonlySet<string> {
  const out = new Set<string>();
  for (const [name, v] of permanentSlots(ctx))
    if (isPhysicalSlotValue(v) && !(isMapping(v) && v['cluster_type'] === 'standby')) out.add(name);
  return out;
}

/** `Cluster._get_permanent_slots`. */
function configuredPermanentSlots(ctx: SlotContext): Map<string, unknown> {
  if (!useSlotsConfig(ctx.dynamic) || tagNoFailover(ctx.tags)) return new Map();
  const all = permanentSlots(ctx);
  const physical = permanentPhysicalSlotNames(ctx);
  if (slotNameOnPrimary(ctx, ctx.self, ctx.tags) === undefined) {
    return ctx.canAdvanceSlots
      ? new Map([...all].filter(([n]) => physical.has(n)))
      : new Map<string, unknown>();
  }
  if (ctx.canAdvanceSlots || ctx.role === 'primary') return all;
  return new Map([...all].filter(([, v]) => isLogicalSlotValue(v)));
}

/** `Cluster._get_members_slots`. */
function membersSlots(ctx: SlotContext, errors: string[]): Map<string, DesiredSlot> {
  const out = new Map<string, DesiredSlot>();
  if (!useSlotsConfig(ctx.dynamic)) return out;
  const { cluster, self } = ctx;
  const nofailover = tagNoFailover(ctx.tags);
  const hasMember = (n: unknown): boolean => cluster.members.some((m) => m.name === n);
  const leaderFilter = (m: Member): boolean => {
    const rf = replicatefrom(m.data.tags);
    return rf === undefined || rf === null || rf === self || !hasMember(rf);
  };
  const replicaFilter = (m: Member): boolean =>
    replicatefrom(m.data.tags) === self && m.name !== cluster.leader?.name;
  const expectedActive = ctx.role === 'primary' ? leaderFilter : replicaFilter;
  let members = cluster.members.filter((m) => m.name !== self && !nostream(m.data.tags));
  members =
    ctx.canAdvanceSlots && memberSlotsTtl(ctx.dynamic) > 0
      ? members.filter((m) => !nofailover || replicatefrom(m.data.tags) === self)
      : members.filter(expectedActive);
  const leaderVersion = cluster.leader?.member?.data.version;
  const oldLeader = leaderVersion !== undefined && Number.parseInt(leaderVersion, 10) < 4;
  for (const m of members) {
    const name = ctx.slotName(m.name);
    let lsn = cluster.status.slots[name] ?? 0n;
    if (truthy(replicatefrom(m.data.tags)) || oldLeader) lsn = maxLsn(memberLsn(m), lsn);
    out.set(name, { type: 'physical', ...(lsn > 0n ? { lsn } : {}), expectedActive: expectedActive(m) });
  }
  const own = ctx.slotName(self);
  if (!nofailover)
    for (const name of cluster.status.retainSlots)
      if (!out.has(name) && name !== own) out.set(name, { type: 'physical' });
  if (out.size < members.length) {
    const byName = new Map<string, string[]>();
    for (const m of members)
      byName.set(ctx.slotName(m.name), [...(byName.get(ctx.slotName(m.name)) ?? []), m.name]);
    const clashes = [...byName]
      .filter(([, v]) => v.length > 1)
      .map(([k, v]) => `${v.join(', ')} map to ${k}`);
    errors.push(`Following cluster members share a replication slot name: ${clashes.join('; ')}`);
  }
  return out;
}

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  return typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

/** `Cluster._merge_permanent_slots`: permanent slots added to the member slots; problems in `errors`. */
function mergePermanent(
  ctx: SlotContext,
  slots: Map<string, DesiredSlot>,
  permanent: Map<string, unknown>,
  errors: string[],
): void {
  const own = ctx.slotName(ctx.self);
  const upstreamOf = new Map<string, boolean>();
  for (const m of ctx.cluster.members)
    upstreamOf.set(ctx.slotName(m.name), truthy(replicatefrom(m.data.tags)));
  const disabled: string[] = [];
  for (const [name, raw] of permanent) {
    if (!SLOT_NAME.test(name)) {
      errors.push(
        `Invalid permanent replication slot name '${name}': only lower case letters, numbers and the underscore`,
      );
      continue;
    }
    const value: unknown = truthy(raw) ? raw : { type: 'physical' };
    if (isMapping(value)) {
      const type =
        value['type'] ?? (truthy(value['database']) && truthy(value['plugin']) ? 'logical' : 'physical');
      const lsn = typeof value['lsn'] === 'bigint' ? { lsn: value['lsn'] } : {};
      if (type === 'physical') {
        if (!slots.has(name) && name !== own) {
          const expectedActive = upstreamOf.get(name) !== true && ctx.role === 'primary';
          slots.set(name, { type: 'physical', ...lsn, expectedActive });
        }
        continue;
      }
      if (isLogicalSlotValue({ ...value, type })) {
        if (!ctx.canAdvanceSlots) disabled.push(name);
        else if (slots.has(name))
          errors.push(
            `Permanent logical replication slot '${name}' conflicts with the slot of a cluster member`,
          );
        else
          slots.set(name, {
            type: 'logical',
            database: text(value['database']) ?? '',
            plugin: text(value['plugin']) ?? '',
            ...lsn,
          });
        continue;
      }
    }
    errors.push(`Bad value for slot '${name}' in permanent_slots: ${JSON.stringify(raw)}`);
  }
  if (disabled.length > 0)
    errors.push(
      `Permanent logical replication slots need PostgreSQL 11 or later; these will not be created: ${disabled.join(', ')}`,
    );
}

/** `Cluster.get_replication_slots`: the slots this node should have, and the configuration problems found. */
export function desiredSlots(ctx: SlotContext): { slots: DesiredSlots; errors: readonly string[] } {
  const errors: string[] = [];
  const slots = membersSlots(ctx, errors);
  mergePermanent(ctx, slots, configuredPermanentSlots(ctx), errors);
  return { slots, errors };
}

/**
 * `Cluster.maybe_filter_permanent_slots`: the slot positions a leader publishes in the status key. With
 * `member_slots_ttl` > 0 all of them; otherwise only the permanent ones (a logical one only when it is not named
 * like a member).
 */
export function publishedSlots(ctx: SlotContext, slots: Readonly<Record<string, Lsn>>): Record<string, Lsn> {
  if (memberSlotsTtl(ctx.dynamic) > 0) return { ...slots };
  const view: SlotContext = { ...ctx, tags: {}, self: '', role: 'replica' };
  const permanent = configuredPermanentSlots(view);
  const members = new Set(ctx.cluster.members.map((m) => ctx.slotName(m.name)));
  const out: Record<string, Lsn> = {};
  for (const [name, lsn] of Object.entries(slots)) {
    const v = permanent.get(name);
    if (!permanent.has(name)) continue;
    if (isPhysicalSlotValue(v) || (isLogicalSlotValue(v) && !members.has(name))) out[name] = lsn;
  }
  return out;
}

/**
 * `Cluster.should_enforce_hot_standby_feedback`: a node that keeps permanent logical slots (as a replica), or
 * that other members cascade from and one of them does, needs hot_standby_feedback so that the primary keeps the
 * catalog rows those slots need.
 */
export function shouldEnforceHotStandbyFeedback(
  ctx: SlotContext,
  name: string = ctx.self,
  tags: JsonObject = ctx.tags,
  seen: ReadonlySet<string> = new Set(),
): boolean {
  const view: SlotContext = { ...ctx, self: name, tags, role: 'replica' };
  if ([...desiredSlots(view).slots.values()].some((v) => v.type === 'logical')) return true;
  if (!useSlotsConfig(ctx.dynamic) || slotNameOnPrimary(ctx, name, tags) === undefined) return false;
  const next = new Set([...seen, name]);
  return ctx.cluster.members
    .filter((m) => replicatefrom(m.data.tags) === name && m.name !== ctx.cluster.leader?.name)
    .some((m) => !next.has(m.name) && shouldEnforceHotStandbyFeedback(ctx, m.name, m.data.tags, next));
}
