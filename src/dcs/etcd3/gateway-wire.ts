/** The messages of etcd's v3 gRPC-gateway JSON API that the gateway sends and reads, and their base64 keys. */

export type JsonObject = Record<string, unknown>;

export interface ResponseHeader {
  readonly cluster_id?: string;
  readonly member_id?: string;
  readonly revision?: string;
  readonly raft_term?: string;
}

export interface KeyValue {
  readonly key?: string;
  readonly value?: string;
  readonly create_revision?: string;
  readonly mod_revision?: string;
  readonly version?: string;
  readonly lease?: string;
}

export interface RangeResponse {
  readonly header?: ResponseHeader;
  readonly kvs?: readonly KeyValue[];
  /** Keys in the range (all of them, also when `limit` cut the answer); absent when zero. */
  readonly count?: string;
}

export interface PutResponse {
  readonly header?: ResponseHeader;
}

export interface DeleteRangeResponse {
  readonly header?: ResponseHeader;
  /** How many keys were deleted; absent when none (the gateway omits default values). */
  readonly deleted?: string;
}

export interface TxnResponse {
  readonly header?: ResponseHeader;
  /** Absent (not `false`) when the compare failed: the gateway omits default values. */
  readonly succeeded?: boolean;
  readonly responses?: readonly {
    readonly response_txn?: TxnResponse;
    readonly response_put?: PutResponse;
  }[];
}

export interface LeaseGrantResponse {
  readonly header?: ResponseHeader;
  readonly ID?: string;
  readonly TTL?: string;
}

export interface WatchEvent {
  readonly type?: string;
  readonly kv?: KeyValue;
}

export interface WatchResponse {
  readonly header?: ResponseHeader;
  readonly created?: boolean;
  readonly canceled?: boolean;
  readonly compact_revision?: string;
  readonly events?: readonly WatchEvent[];
}

export type Compare =
  | { readonly key: string; readonly target: 'CREATE'; readonly create_revision: string }
  | { readonly key: string; readonly target: 'MOD'; readonly mod_revision: string }
  | { readonly key: string; readonly target: 'VALUE'; readonly value: string };

export type RequestOp =
  | { readonly request_put: { readonly key: string; readonly value: string; readonly lease?: string } }
  | { readonly request_delete_range: { readonly key: string; readonly range_end?: string } }
  | { readonly request_txn: TxnRequest };

export interface TxnRequest {
  readonly compare: readonly Compare[];
  readonly success: readonly RequestOp[];
  readonly failure?: readonly RequestOp[];
}

export const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
export const fromB64 = (s: string | undefined): string =>
  s === undefined ? '' : Buffer.from(s, 'base64').toString('utf8');

/** End of a prefix range: the prefix with its last byte incremented (`/service/demo/` -> `/service/demo0`). */
export function prefixRangeEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    const byte = bytes[i] ?? 0;
    if (byte < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i] = byte + 1;
      return end.toString('base64');
    }
  }
  return Buffer.from([0]).toString('base64'); // all 0xff: to the end of the keyspace
}
