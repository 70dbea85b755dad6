/** `list` / `topology`: read each named cluster and print its member table, optionally on a refresh loop. */
import { UserError } from '../config/errors.js';
import type { LocalConfig } from '../config/local-config.js';
import type { Dcs } from '../dcs/dcs.js';
import { renderMembersTable, type ListFormat } from '../render/members.js';
import { openDcs } from './context.js';
import { buildMembersTable } from './list.js';
import { interrupted, localTimestamp, watchInterval, watching } from './watch.js';

export interface ListRequest {
  readonly config: LocalConfig;
  readonly clusters: readonly string[];
  readonly format: ListFormat;
  readonly extended: boolean;
  readonly timestamp: boolean;
  readonly watchContinuous: boolean;
  readonly watchSeconds?: string;
  readonly write: (text: string) => void;
  readonly warn: (text: string) => void;
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

export async function listClusters(req: ListRequest): Promise<void> {
  const names = req.clusters.length > 0 ? req.clusters : req.config.scope ? [req.config.scope] : [];
  if (names.length === 0) {
    req.warn('Listing members: No cluster names were provided');
    return;
  }
  const every = watchInterval(req.watchContinuous, parseWatchSeconds(req.watchSeconds));
  const clients = new Map<string, Dcs>();
  try {
    await watching(
      { every, write: (t) => process.stdout.write(t), stopped: every ? interrupted() : undefined },
      async () => {
        if (req.timestamp) req.write(localTimestamp());
        for (const name of names) {
          let dcs = clients.get(name);
          if (!dcs) {
            dcs = await openDcs(req.config, name);
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
