/**
 * Applies the key registry (src/config/key-registry.ts) to a configuration tree: the local configuration when the
 * agent starts or reloads, the dynamic configuration in `bootstrap.dcs`, in the DCS `config` key, in edit-config
 * and in PATCH /config.
 *
 * At run time a running agent cannot refuse what a Patroni node (or someone editing the DCS by hand) wrote, so it
 * logs the refusal and acts on the strictest reading it implements (`DynamicConfigGuard`): it never acts as if a
 * safety setting it lacks were on.
 */
import { UserError } from './errors.js';
import { isMapping } from './config-values.js';
import {
  DYNAMIC_RULES,
  LOCAL_RULES,
  LOCAL_TOP_DYNAMIC,
  classify,
  refusalMessage,
  warningMessage,
  type KeyRule,
  type PatternContext,
  type RuleTable,
} from './key-registry.js';

type Tree = Readonly<Record<string, unknown>>;

export interface ConfigFindings {
  /** `<dotted.path>: <what is wrong>; <what to do>` for each refused value. */
  readonly errors: string[];
  readonly warnings: string[];
}

interface Walk {
  readonly table: RuleTable;
  readonly ctx: PatternContext;
  /** Used for a key the table does not know, before calling it unknown. */
  readonly fallback?: (path: readonly string[]) => KeyRule | undefined;
  readonly out: ConfigFindings;
}

function walk(w: Walk, node: Tree, path: readonly string[]): void {
  for (const [key, value] of Object.entries(node)) {
    const p = [...path, key];
    const dotted = p.join('.');
    const rule = classify(w.table, p, w.ctx) ?? w.fallback?.(p);
    if (rule === undefined) {
      // Patroni's validator walks its schema, not the file: it never looks at an unknown key.
      w.out.warnings.push(`${dotted}: unknown key, ignored`);
      continue;
    }
    if (rule.status === 'warned') {
      if (value !== null && value !== undefined && !(rule.accepts?.(value) ?? false))
        w.out.warnings.push(warningMessage(dotted, rule));
      continue;
    }
    if (
      rule.status === 'refused' &&
      value !== null &&
      value !== undefined &&
      !(rule.accepts?.(value) ?? false)
    ) {
      w.out.errors.push(refusalMessage(dotted, rule, value));
      continue;
    }
    if (rule.subtree !== true && isMapping(value)) walk(w, value, p);
  }
}

function localContext(tree: Tree): PatternContext {
  const b = tree['bootstrap'];
  const method = isMapping(b) && typeof b['method'] === 'string' ? b['method'] : undefined;
  const pg = tree['postgresql'];
  const methods = isMapping(pg) ? pg['create_replica_methods'] : undefined;
  return {
    ...(method !== undefined && method !== 'initdb' && !(method in LOCAL_BOOTSTRAP_KEYS)
      ? { bootstrapMethod: method }
      : {}),
    replicaMethods: Array.isArray(methods)
      ? methods.filter((m): m is string => typeof m === 'string' && m !== 'basebackup')
      : [],
  };
}

/** `bootstrap.<name>` keys that are not a custom method's section even when bootstrap.method names them. */
const LOCAL_BOOTSTRAP_KEYS: Readonly<Record<string, true>> = {
  dcs: true,
  method: true,
  initdb: true,
  pg_hba: true,
  users: true,
  post_bootstrap: true,
  post_init: true,
};

/** A dynamic setting at the top of patroni.yml: Patroni ignores it there. */
function topLevelDynamic(path: readonly string[]): KeyRule | undefined {
  return path.length === 1 && classify(DYNAMIC_RULES, path) !== undefined ? LOCAL_TOP_DYNAMIC : undefined;
}

/** Every key of the local configuration (file and environment merged), `bootstrap.dcs` included. */
export function checkLocalKeys(tree: Tree): ConfigFindings {
  const out: ConfigFindings = { errors: [], warnings: [] };
  walk({ table: LOCAL_RULES, ctx: localContext(tree), fallback: topLevelDynamic, out }, tree, []);
  const b = tree['bootstrap'];
  const dcs = isMapping(b) ? b['dcs'] : undefined;
  if (isMapping(dcs)) {
    const inner = validateDynamicConfig(dcs, 'bootstrap.dcs');
    out.errors.push(...inner.errors);
    out.warnings.push(...inner.warnings);
  }
  return out;
}

/**
 * Every key of a dynamic configuration. `prefix` is where it sits for the messages (`bootstrap.dcs`); the DCS
 * `config` key, edit-config and PATCH /config use none.
 */
export function validateDynamicConfig(data: Tree, prefix = ''): ConfigFindings {
  const out: ConfigFindings = { errors: [], warnings: [] };
  const w: Walk = { table: DYNAMIC_RULES, ctx: {}, out };
  walk(w, data, []);
  if (prefix === '') return out;
  const at = (m: string): string => `${prefix}.${m}`;
  return { errors: out.errors.map(at), warnings: out.warnings.map(at) };
}

/** The refusals of a dynamic configuration as one UserError (edit-config, PATCH /config, agent start). */
export function assertDynamicConfig(data: Tree, prefix = ''): string[] {
  const found = validateDynamicConfig(data, prefix);
  if (found.errors.length > 0) throw new UserError(found.errors.join('\n'));
  return found.warnings;
}

/**
 * The DCS `config` key as the agent finds it when it starts: a setting it does not implement stops it there (at
 * run time it reads such settings the safe way instead: `DynamicConfigGuard`). Returns the warnings.
 */
export function assertDynamicConfigAtStart(data: Tree): string[] {
  const found = validateDynamicConfig(data);
  if (found.errors.length > 0) {
    throw new UserError(
      `the cluster's dynamic configuration (DCS config key) asks for what pgwarden does not do:\n${found.errors.join('\n')}\nchange it with pgwarden edit-config`,
    );
  }
  return found.warnings.map((w) => `dynamic configuration (DCS config key): ${w}`);
}

/**
 * edit-config and PATCH /config: the refusals a change brings in, as one UserError. A refused value already in the
 * DCS (written by a Patroni node of a mixed cluster) does not block an unrelated change; the agents log it.
 */
export function assertDynamicConfigChange(before: Tree, after: Tree): string[] {
  const old = new Set(validateDynamicConfig(before).errors);
  const found = validateDynamicConfig(after);
  const added = found.errors.filter((e) => !old.has(e));
  if (added.length > 0) throw new UserError(added.join('\n'));
  return found.warnings;
}

// ---------------------------------------------------------------------------------------------------------------
// Run time

/**
 * The dynamic configuration a running agent acts on when the DCS holds settings it refuses (written by a
 * Patroni node of a mixed cluster, or by hand): a setting refused at start has no effect (e.g. a dynamic
 * `postgresql.pg_ctl_timeout`: the local value is used) and is logged.
 */
export function runtimeDynamicConfig(data: Tree): { effective: Tree; errors: string[] } {
  const { errors } = validateDynamicConfig(data);
  if (errors.length === 0) return { effective: data, errors };
  return { effective: { ...data }, errors };
}

export interface GuardLog {
  error(text: string): void;
}

/** Applies `runtimeDynamicConfig` to each configuration read from the DCS; logs its refusals when they change. */
export class DynamicConfigGuard {
  private reported = '';

  absorb(data: Tree, log: GuardLog): Tree {
    const { effective, errors } = runtimeDynamicConfig(data);
    const report = errors.join('\n');
    if (report !== this.reported) {
      for (const e of errors) {
        log.error(`dynamic configuration (DCS config key): ${e}; this node goes on with the safe reading`);
      }
      this.reported = report;
    }
    return effective;
  }
}
