/**
 * `patroni.dynamic.json` (Patroni's `save_cache` / `_load_cache`): the dynamic configuration cached in the data
 * directory, so that a member started while the DCS holds no `config` key (a wiped or new DCS) uses the cluster's
 * last configuration rather than its bootstrap.dcs, and a new leader writes that back. Read once at start; written
 * (compact Python-style JSON through a temporary file and a rename) after a cycle in which it changed, once the
 * data directory is initialized.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JsonObject } from '../model/cluster.js';
import { pyJson } from '../model/pyjson.js';
import { errorText } from '../model/text.js';
import type { PgLog } from './ports.js';

export const DYNAMIC_CACHE_FILE = 'patroni.dynamic.json';

/** The cached configuration; undefined when there is none or it is not a JSON object (logged). */
export function loadDynamicCache(dataDir: string, log: PgLog): JsonObject | undefined {
  const path = join(dataDir, DYNAMIC_CACHE_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const data = JSON.parse(text) as unknown;
    if (typeof data === 'object' && data !== null && !Array.isArray(data)) return data as JsonObject;
    log.error(`Exception when loading file: ${path}: not a JSON object`);
  } catch (e) {
    log.error(`Exception when loading file: ${path}: ${errorText(e)}`);
  }
  return undefined;
}

/** JSON with object keys sorted at every level: equal texts mean equal configurations (Patroni's deep_compare). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Writes the cache as Patroni does; files get the data directory's mode (0640 with group access, else 0600). */
export function saveDynamicCache(dataDir: string, data: JsonObject): void {
  const mode = (statSync(dataDir).mode & 0o050) === 0o050 ? 0o640 : 0o600;
  const tmp = join(dataDir, `${DYNAMIC_CACHE_FILE}${randomBytes(4).toString('hex')}`);
  try {
    writeFileSync(tmp, pyJson(data), { mode });
    renameSync(tmp, join(dataDir, DYNAMIC_CACHE_FILE));
    chmodSync(join(dataDir, DYNAMIC_CACHE_FILE), mode);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** What the agent holds: the configuration in effect and whether the file is behind it. */
export class DynamicCache {
  /** The configuration read from the file at start (undefined: none). */
  readonly loaded: JsonObject | undefined;
  private saved: string;
  private current: JsonObject | undefined;
  /** The object last found equal to the file (or written to it): compared again only once another is set. */
  private compared: JsonObject | undefined;

  constructor(
    private readonly dataDir: () => string,
    private readonly log: PgLog,
  ) {
    this.loaded = loadDynamicCache(dataDir(), log);
    this.current = this.loaded;
    this.saved = this.loaded === undefined ? '' : canonicalJson(this.loaded);
  }

  /** The configuration now in effect (from the DCS, or the bootstrap.dcs used without one). */
  set(data: JsonObject): void {
    this.current = data;
  }

  /** Whether `set` was given a configuration not yet compared with the file (an unchanged one is set rarely). */
  get pending(): boolean {
    return this.current !== undefined && this.current !== this.compared;
  }

  /** After a cycle: write the file when the configuration changed since it was last written. */
  save(): void {
    const data = this.current;
    if (data === undefined || data === this.compared) return;
    const text = canonicalJson(data);
    if (text === this.saved) {
      this.compared = data;
      return;
    }
    try {
      saveDynamicCache(this.dataDir(), data);
      this.saved = text;
      this.compared = data;
    } catch (e) {
      this.log.error(
        `Exception when saving file: ${join(this.dataDir(), DYNAMIC_CACHE_FILE)}: ${errorText(e)}`,
      );
    }
  }
}
