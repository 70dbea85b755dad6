/** A configuration tree as YAML and `PATRONI_*` variables give it, and Patroni's merge of one tree over another. */
export type ConfigTree = Record<string, unknown>;

export function isMapping(v: unknown): v is ConfigTree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge where `override` wins and `null` deletes, as Patroni merges config files and env. */
export function deepMerge(base: ConfigTree, override: ConfigTree): ConfigTree {
  const out: ConfigTree = { ...base };
  for (const [k, v] of Object.entries(override)) {
    if (v === null) delete out[k];
    else if (isMapping(v) && isMapping(out[k])) out[k] = deepMerge(out[k], v);
    else out[k] = v;
  }
  return out;
}
