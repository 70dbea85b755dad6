/**
 * Patroni's Python semantics in one place. Patroni reads JSON and YAML values with two different notions of "true"
 * and compares values by their `str()`; each call site here names the Patroni function it mirrors:
 *
 * - `pyBool(v)`: Python's `bool(v)` (`if value:`), e.g. `bool(tags.get('noloadbalance'))`, `request.get('leader')`;
 * - `parseBool(v)`: utils.py `parse_bool` (on/true/yes/1, off/false/no/0, anything else `None`), e.g. `pause`,
 *   `synchronous_mode`, `use_slots`, the `bool` branch of `compare_values`;
 * - `pyStr(v)`: Python's `str(v)` of a JSON value;
 * - `patchConfig(config, data)`: utils.py `patch_config`.
 */

export type PyTree = Record<string, unknown>;

/** A Python dict: a plain object, not null, not an array. */
export function isTree(v: unknown): v is PyTree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Python's `bool()` of a JSON value: None, False, 0, '', [] and {} are false; everything else is true. */
export function pyBool(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === 0n || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/**
 * utils.py `parse_bool`: `str(value).lower()` in on/true/yes/1 is `true`, in off/false/no/0 is `false`, anything
 * else (including `' on'`: Patroni does not strip) is `undefined`.
 */
export function parseBool(value: unknown): boolean | undefined {
  const v = pyStr(value).toLowerCase();
  if (v === 'on' || v === 'true' || v === 'yes' || v === '1') return true;
  if (v === 'off' || v === 'false' || v === 'no' || v === '0') return false;
  return undefined;
}

/** Python's `repr()` of a string: single quotes unless the text holds a `'` and no `"`. */
function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '\\' || ch === quote) out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

/** Python's `repr()` of a JSON value, as `str()` prints the items of a list or dict. */
export function pyReprValue(v: unknown): string {
  return typeof v === 'string' ? pyRepr(v) : pyStr(v);
}

/**
 * Python's `str()` of a JSON value: `None`, `True`/`False`, numbers as written (`nan`, `inf`), strings as they are,
 * lists and dicts as Python prints them (`[1, 'a']`, `{'k': None}`). JSON cannot tell `1` from `1.0`: both print `1`.
 */
export function pyStr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'nan';
    if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(pyReprValue).join(', ')}]`;
  if (typeof v === 'object') {
    const items = Object.entries(v).map(([k, x]) => `${pyRepr(k)}: ${pyReprValue(x)}`);
    return `{${items.join(', ')}}`;
  }
  // A function or a symbol is no JSON value and has no Python counterpart: name its type.
  return typeof v;
}

/**
 * utils.py `patch_config`: merges `data` into `config` in place and returns whether `config` changed. A `null`
 * deletes the key; a mapping merges into a mapping and replaces anything else; a scalar or list replaces the old
 * value only when their `str()` differ (so `5` stays `5` when `'5'` is patched in). Callers that must not change
 * their input patch a copy (`structuredClone`).
 */
export function patchConfig(config: PyTree, data: PyTree): boolean {
  let changed = false;
  for (const [name, value] of Object.entries(data)) {
    const has = Object.prototype.hasOwnProperty.call(config, name);
    if (value === null || value === undefined) {
      if (has) {
        const old = config[name];
        delete config[name];
        if (old !== null && old !== undefined) changed = true;
      }
    } else if (!has) {
      config[name] = value;
      changed = true;
    } else if (isTree(value)) {
      const old = config[name];
      if (isTree(old)) {
        if (patchConfig(old, value)) changed = true;
      } else {
        config[name] = value;
        changed = true;
      }
    } else if (pyStr(config[name]) !== pyStr(value)) {
      config[name] = value;
      changed = true;
    }
  }
  return changed;
}

/** utils.py `deep_compare`: same keys, mappings compared recursively, everything else by `str()`. */
export function deepCompare(a: PyTree, b: PyTree): boolean {
  const ka = Object.keys(a);
  const kb = new Set(Object.keys(b));
  if (ka.length !== kb.size || ka.some((k) => !kb.has(k))) return false;
  for (const [k, v] of Object.entries(a)) {
    const w = b[k];
    if (isTree(v)) {
      if (!(isTree(w) && deepCompare(v, w))) return false;
    } else if (pyStr(v) !== pyStr(w)) return false;
  }
  return true;
}
