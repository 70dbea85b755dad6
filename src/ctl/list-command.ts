/**
 * `list` / `topology`: read each named cluster, or with `--all` every cluster of the namespace in one DCS read, and
 * print its member table, optionally on a refresh loop.
 */
import { UserError } from '../config/errors.js';
import type { LocalConfig } from '../config/local-config.js';
import type { Dcs } from '../dcs/dcs.js';
import { renderMembersTable, type ListFormat } from '../render/members.js';
import { openDcs } from './context.js';
import { buildMembersTable, mergeMembersTables } from './list.js';
import { interrupted, localTimestamp, watchInterval, watching } from './watch.js';

export interface ListRequest {
  readonly config: LocalConfig;
  readonly clusters: readonly string[];
  /** Every cluster of the namespace (`--all`) instead of `clusters`. */
  readonly all?: boolean;
  readonly format: ListFormat;
  readonly extended: boolean;
  readonly timestamp: boolean;
  readonly watchContinuous: boolean;
  readonly watchSeconds?: string;
  readonly write: (text: string) => void;
  readonly warn: (text: string) => void;
  /** Opens the DCS client of a scope (default: the configured DCS; tests pass an in-memory one). */
  readonly open?: (config: LocalConfig, scope: string) => Promise<Dcs>;
  /** Ends a refresh loop (default: Ctrl-C). */
  readonly stopped?: Promise<void>;
  /** Where a refresh loop clears the screen (default: stdout). */
  readonly screen?: (text: string) => void;
}

export function parseWatchSeconds(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0)
    throw new UserError(
      `Invalid value for '-w' / '--watch': '${text}' is not a positive number of seconds`,
      2,
    );
  return n;
}

const stopSignal = (req: ListRequest): Promise<void> => req.stopped ?? interrupted();
const screenOf =
  (req: ListRequest) =>
  (text: string): void => {
    if (req.screen) req.screen(text);
    else process.stdout.write(text);
  };

export async function listClusters(req: ListRequest): Promise<void> {
  if (req.all) return listNamespace(req);
  const names = req.clusters.length > 0 ? req.clusters : req.config.scope ? [req.config.scope] : [];
  if (names.length === 0) {
    req.warn('Listing members: No cluster names were provided');
    return;
  }
  const every = watchInterval(req.watchContinuous, parseWatchSeconds(req.watchSeconds));
  const clients = new Map<string, Dcs>();
  try {
    await watching(
      { every, write: screenOf(req), stopped: every ? stopSignal(req) : undefined },
      async () => {
        if (req.timestamp) req.write(localTimestamp());
        for (const name of names) {
          let dcs = clients.get(name);
          if (!dcs) {
            dcs = await (req.open ?? openDcs)(req.config, name);
            clients.set(name, dcs);
          }
          const cluster = await dcs.getCluster();
          const table = buildMembersTable(cluster, name, { extended: req.extended, format: req.format });
          req.write(renderMembersTable(table, req.format));
        }
      },
    );
  } finally {
    await Promise.all([...clients.values()].map((d) => d.close()));
  }
}

/**
 * `--all`: the namespace in one read per refresh (Dcs.getClusters). Tables print one after another as for several
 * names; json, yaml and tsv print one document holding every cluster's members (its `Cluster` field says whose).
 */
async function listNamespace(req: ListRequest): Promise<void> {
  if (req.clusters.length > 0) {
    throw new UserError(
      `Listing members: --all reads every cluster; do not also name clusters (${req.clusters.join(', ')})`,
      2,
    );
  }
  const every = watchInterval(req.watchContinuous, parseWatchSeconds(req.watchSeconds));
  const dcs = await (req.open ?? openDcs)(req.config, req.config.scope ?? '');
  const options = { extended: req.extended, format: req.format };
  const oneDocument = req.format === 'json' || req.format === 'yaml' || req.format === 'tsv';
  try {
    await watching(
      { every, write: screenOf(req), stopped: every ? stopSignal(req) : undefined },
      async () => {
        if (req.timestamp) req.write(localTimestamp());
        const tables = (await dcs.getClusters()).map((c) => buildMembersTable(c, c.scope, options));
        if (tables.length === 0) req.warn(`Listing members: no cluster in namespace ${req.config.namespace}`);
        // One write for every table (a thousand small writes to a pipe cost more than drawing them): `write`
        // ends each text with a newline, so joined by one the output is the same.
        if (!oneDocument) {
          if (tables.length > 0) req.write(tables.map((t) => renderMembersTable(t, req.format)).join('\n'));
        } else if (tables.length > 0 || req.format !== 'tsv')
          req.write(renderMembersTable(mergeMembersTables(tables), req.format));
      },
    );
  } finally {
    await dcs.close();
  }
}
