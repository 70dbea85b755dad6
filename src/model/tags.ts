/**
 * Patroni's reading of a member's `tags` (tags.py `Tags`), the same for the member key in the DCS, the `tags` of a
 * peer's REST status and our own configuration. The boolean tags are read with Python's `bool()`, so a tag written
 * as the string `"false"` is set; only `nostream` goes through `parse_bool` (so `"false"` and `"off"` are not set
 * there, and `"true"` is).
 */
import { parseGucInt } from './guc-values.js';
import { parseBool, pyBool } from './python.js';

type Tags = Readonly<Record<string, unknown>>;

/** `Tags._bool_tag`: the boolean tag when present (not null), else a priority of 0 or less. */
function boolTag(tags: Tags, boolName: string, priorityName: string): boolean {
  const fromTags = tags[boolName];
  if (fromTags !== undefined && fromTags !== null) return pyBool(fromTags);
  const priority = parseGucInt(tags[priorityName]);
  return priority !== undefined && priority <= 0;
}

/** `Tags._priority_tag`: 0 when the boolean tag is set, else the priority (1 when absent or invalid). */
function priorityTag(tags: Tags, boolName: string, priorityName: string): number {
  if (pyBool(tags[boolName])) return 0;
  return parseGucInt(tags[priorityName]) ?? 1;
}

/** `Tags.nofailover`: never promote this member. */
export function tagNoFailover(tags: Tags): boolean {
  return boolTag(tags, 'nofailover', 'failover_priority');
}

/** `Tags.failover_priority`. */
export function tagFailoverPriority(tags: Tags): number {
  return priorityTag(tags, 'nofailover', 'failover_priority');
}

/** `Tags.nosync`: never a synchronous standby. */
export function tagNoSync(tags: Tags): boolean {
  return boolTag(tags, 'nosync', 'sync_priority');
}

/** `Tags.sync_priority`: higher is picked first as a synchronous standby; 0 when `nosync` is set. */
export function tagSyncPriority(tags: Tags): number {
  return priorityTag(tags, 'nosync', 'sync_priority');
}

/**
 * `Tags.nostream`: `parse_bool(tags.get('nostream')) or False`. Such a member does not stream (it replays WAL
 * from the archive only), the primary keeps no slot for it and it never carries permanent logical slots.
 */
export function tagNoStream(tags: Tags): boolean {
  return parseBool(tags['nostream']) ?? false;
}

/** `Tags.noloadbalance`: `bool(tags.get('noloadbalance', False))`. */
export function tagNoLoadBalance(tags: Tags): boolean {
  return pyBool(tags['noloadbalance']);
}

/** `Tags.clonefrom`: the tag's truthiness (`Member.clonefrom` also needs a `conn_url`). */
export function tagCloneFrom(tags: Tags): boolean {
  return pyBool(tags['clonefrom']);
}
