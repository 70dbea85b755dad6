/**
 * The etcd v3 requests the DCS adapter builds (src/dcs/etcd3/etcd3-dcs.ts): transaction compares and operations on
 * base64 keys, and a key/value read back as a DcsNode.
 */
import type { DcsNode } from '../dcs.js';
import { b64, fromB64, type Compare, type KeyValue, type RequestOp } from './gateway.js';

export const createAbsent = (key: string): Compare => ({
  key: b64(key),
  target: 'CREATE',
  create_revision: '0',
});
export const valueIs = (key: string, value: string): Compare => ({
  key: b64(key),
  target: 'VALUE',
  value: b64(value),
});
export const modIs = (key: string, revision: string): Compare => ({
  key: b64(key),
  target: 'MOD',
  mod_revision: revision,
});
export const putOp = (key: string, value: string, lease?: string): RequestOp => ({
  request_put: { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) },
});
export const deleteOp = (key: string): RequestOp => ({ request_delete_range: { key: b64(key) } });

/** A key/value under `prefix` as a DcsNode (key relative to it); undefined for a key outside it. */
export function nodeUnder(prefix: string, kv: KeyValue | undefined): DcsNode | undefined {
  const key = fromB64(kv?.key);
  if (!key.startsWith(prefix)) return undefined;
  const revision = kv?.mod_revision ?? '0';
  return {
    key: key.slice(prefix.length),
    value: fromB64(kv?.value),
    version: revision,
    modifyVersion: revision,
    ...(kv?.lease && kv.lease !== '0' ? { session: kv.lease } : {}),
  };
}

/** A CAS token etcd can hold: a decimal revision. Anything else cannot match, so the CAS simply fails. */
export const isRevision = (v: string): boolean => /^\d{1,19}$/.test(v);
