/**
 * Loaders for the Patroni 3.0.2 captures in `test/fixtures/patroni-3.0.2` (a copy of the lab's
 * `shared/fixtures/patroni-3.0.2`, kept in the repository so that a clone alone runs the unit tests). Paths are
 * resolved from the repository root, never from an absolute `/work` path.
 *
 * DCS snapshots (`dcs/*.txt`) come in two shapes:
 *
 * - etcd: `## key: /<ns>/<scope>/<key>` blocks with `create_revision=.. mod_revision=.. version=.. lease=<hex>|none`
 *   and a pretty-printed value, followed by `# raw etcdctl output`: the `etcdctl get -w json` document whose values
 *   are base64 of the exact bytes stored. The raw values are used (they keep e.g. the spaced JSON that
 *   `patronictl edit-config` 3.0.2 writes); the pretty values are only cross-checked against them. Without a raw
 *   section the value is rebuilt from the pretty form as for ZooKeeper.
 * - ZooKeeper: `## znode: /<ns>/<scope>/<key>` blocks with the znode stat (`ephemeralOwner=0x.. version=..
 *   dataLength=.. mzxid=0x..`) and a pretty-printed value (`(empty)` for no data). The exact bytes are not in the
 *   capture, so JSON objects and arrays are re-serialised compactly with `JSON.stringify` (Patroni writes DCS values
 *   with `separators=(',', ':')`) and the result is checked against the stat's `dataLength`: a mismatch throws
 *   instead of silently handing the parser a value Patroni never wrote.
 *
 * Version mapping follows spec 1.4: etcd `version` = `modifyVersion` = `mod_revision`, `session` = the lease id;
 * ZooKeeper `version` = znode `version`, `modifyVersion` = `mzxid`, `session` = `ephemeralOwner` (absent for
 * persistent znodes). Lease ids, ephemeral owners and zxids are hex in the captures and become decimal strings here
 * (the design keeps revisions and lease ids as decimal strings).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DcsNode } from '../../src/dcs/dcs.js';

/** The repository root (this file is `test/helpers/fixtures.ts`). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `test/fixtures/patroni-3.0.2` under the repository root. */
export const FIXTURES_ROOT = resolve(REPO_ROOT, 'test', 'fixtures', 'patroni-3.0.2');

export function fixturePath(...parts: string[]): string {
  return resolve(FIXTURES_ROOT, ...parts);
}

export function readFixture(...parts: string[]): string {
  return readFileSync(fixturePath(...parts), 'utf8');
}

/** File names of every DCS snapshot (`etcd.txt`, `zookeeper.txt`, ...), sorted. */
export function listDcsSnapshots(): string[] {
  return readdirSync(fixturePath('dcs'))
    .filter((f) => f.endsWith('.txt'))
    .sort();
}

export interface DcsSnapshot {
  readonly backend: 'etcd3' | 'zookeeper';
  readonly scope: string;
  /** Without slashes, e.g. `service`. */
  readonly namespace: string;
  /** Every key strictly under `/<namespace>/<scope>/`, in capture order. */
  readonly nodes: DcsNode[];
}

interface Block {
  readonly path: string;
  readonly meta: string;
  /** The value text as printed (pretty-printed JSON, `(empty)`, or plain text). */
  readonly printed: string;
}

/** Loads `dcs/<file>` (a bare name, with or without `.txt`) or a path to a snapshot file. */
export function loadDcsSnapshot(file: string): DcsSnapshot {
  const path =
    isAbsolute(file) || file.includes('/')
      ? file
      : fixturePath('dcs', file.endsWith('.txt') ? file : `${file}.txt`);
  const text = readFileSync(path, 'utf8');
  if (text.startsWith('# etcd snapshot')) return loadEtcd(text, path);
  if (text.startsWith('# zookeeper snapshot')) return loadZooKeeper(text, path);
  throw new Error(`${path}: not a DCS snapshot (first line: ${text.split('\n')[0]})`);
}

function splitBlocks(text: string, marker: string): { blocks: Block[]; rest: string } {
  const rawAt = text.indexOf('\n# raw etcdctl output');
  const body = rawAt === -1 ? text : text.slice(0, rawAt);
  const rest = rawAt === -1 ? '' : text.slice(rawAt + 1);
  const blocks: Block[] = [];
  for (const chunk of body.split(`\n${marker}`).slice(1)) {
    const lines = chunk.split('\n');
    const valueAt = lines.indexOf('value:');
    if (valueAt !== 2) throw new Error(`malformed snapshot block: ${lines.slice(0, 3).join(' | ')}`);
    blocks.push({
      path: (lines[0] ?? '').trim(),
      meta: lines[1] ?? '',
      printed: lines
        .slice(valueAt + 1)
        .join('\n')
        .replace(/\n+$/, ''),
    });
  }
  return { blocks, rest };
}

function metaField(meta: string, name: string): string {
  const m = new RegExp(`(?:^|\\s)${name}=(\\S+)`).exec(meta);
  if (!m?.[1]) throw new Error(`no ${name}= in "${meta}"`);
  return m[1];
}

const hexToDecimal = (hex: string): string => BigInt(hex.startsWith('0x') ? hex : `0x${hex}`).toString(10);

/** `/<ns>/<scope>/<key>` -> parts; undefined for paths at or above the cluster prefix. */
function splitPath(path: string): { namespace: string; scope: string; key: string } | undefined {
  const parts = path.split('/').filter((p) => p !== '');
  if (parts.length < 3) return undefined;
  return { namespace: parts[0] ?? '', scope: parts[1] ?? '', key: parts.slice(2).join('/') };
}

/** The stored text rebuilt from its pretty-printed form: JSON containers compact, anything else verbatim. */
function compactFromPrinted(printed: string): string {
  if (!/^[[{]/.test(printed)) return printed;
  return JSON.stringify(JSON.parse(printed) as unknown);
}

function sameJsonOrText(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  } catch {
    return false;
  }
}

function buildSnapshot(
  backend: DcsSnapshot['backend'],
  source: string,
  entries: { path: string; node: Omit<DcsNode, 'key'> }[],
): DcsSnapshot {
  let namespace: string | undefined;
  let scope: string | undefined;
  const nodes: DcsNode[] = [];
  for (const { path, node } of entries) {
    const parts = splitPath(path);
    if (!parts) continue; // `/service`, `/service/lab`: the prefix itself, not a key of the cluster
    if (namespace === undefined || scope === undefined) ({ namespace, scope } = parts);
    else if (parts.namespace !== namespace || parts.scope !== scope) {
      throw new Error(
        `${source}: ${path} is outside /${namespace}/${scope}/ (one cluster per snapshot expected)`,
      );
    }
    nodes.push({ key: parts.key, ...node });
  }
  if (namespace === undefined || scope === undefined)
    throw new Error(`${source}: no keys under a cluster prefix`);
  return { backend, namespace, scope, nodes };
}

interface EtcdKv {
  key: string;
  value?: string;
  mod_revision?: number;
}

function loadEtcd(text: string, source: string): DcsSnapshot {
  const { blocks, rest } = splitBlocks(text, '## key: ');
  // The raw document's values are exact. Its lease ids exceed 2^53 and lose precision in JSON.parse, so leases are
  // read from the decoded (hex) metadata instead; keys and values are base64 strings and survive intact.
  const rawLine = rest.split('\n').find((l) => l.startsWith('{'));
  const raw = new Map<string, { value: string; modRevision?: number }>();
  if (rawLine) {
    const doc = JSON.parse(rawLine) as { kvs?: EtcdKv[] };
    for (const kv of doc.kvs ?? []) {
      raw.set(Buffer.from(kv.key, 'base64').toString('utf8'), {
        // etcd's JSON omits empty fields: no `value` means the empty string.
        value: Buffer.from(kv.value ?? '', 'base64').toString('utf8'),
        modRevision: kv.mod_revision,
      });
    }
    if (raw.size !== blocks.length) {
      throw new Error(`${source}: ${blocks.length} decoded keys but ${raw.size} in the raw etcdctl output`);
    }
  }
  const entries = blocks.map((b) => {
    const modRevision = metaField(b.meta, 'mod_revision');
    const lease = metaField(b.meta, 'lease');
    const exact = raw.get(b.path);
    let value: string;
    if (exact) {
      if (exact.modRevision !== undefined && String(exact.modRevision) !== modRevision) {
        throw new Error(`${source}: ${b.path} mod_revision ${modRevision} != raw ${exact.modRevision}`);
      }
      if (!sameJsonOrText(exact.value, b.printed)) {
        throw new Error(`${source}: ${b.path} decoded value disagrees with the raw value`);
      }
      value = exact.value;
    } else if (rawLine) {
      throw new Error(`${source}: ${b.path} missing from the raw etcdctl output`);
    } else {
      value = compactFromPrinted(b.printed);
    }
    return {
      path: b.path,
      node: {
        value,
        version: modRevision,
        modifyVersion: modRevision,
        ...(lease === 'none' ? {} : { session: hexToDecimal(lease) }),
      },
    };
  });
  return buildSnapshot('etcd3', source, entries);
}

function loadZooKeeper(text: string, source: string): DcsSnapshot {
  const { blocks } = splitBlocks(text, '## znode: ');
  const entries = blocks.map((b) => {
    const dataLength = Number(metaField(b.meta, 'dataLength'));
    const value = dataLength === 0 ? '' : compactFromPrinted(b.printed);
    if (Buffer.byteLength(value, 'utf8') !== dataLength) {
      throw new Error(
        `${source}: ${b.path} rebuilt value has ${Buffer.byteLength(value, 'utf8')} bytes, dataLength=${dataLength}`,
      );
    }
    const owner = metaField(b.meta, 'ephemeralOwner');
    return {
      path: b.path,
      node: {
        value,
        version: metaField(b.meta, 'version'),
        modifyVersion: hexToDecimal(metaField(b.meta, 'mzxid')),
        ...(owner === '0' ? {} : { session: hexToDecimal(owner) }),
      },
    };
  });
  return buildSnapshot('zookeeper', source, entries);
}
