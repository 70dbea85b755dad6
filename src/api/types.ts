/** The REST API's request and reply shapes, shared by the server, its routes and the agent's handlers. */
import type { JsonObject } from '../model/cluster.js';
import type { QueryParams } from './health.js';

export type MaybePromise<T> = T | Promise<T>;

/** `write_response`: Server, Date, extra headers, Content-Type, body. */
export interface TextReply {
  readonly code: number;
  readonly body: string;
  /** Defaults to `text/html`, as Patroni's plain-text answers carry. */
  readonly contentType?: string;
  /** Written before Content-Type (e.g. `lsn` for POST /failsafe). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A JSON body (`application/json`, Python spacing). */
export interface JsonReply {
  readonly code: number;
  readonly json: unknown;
}

/** Python's `send_error`: the HTML error page. */
export interface ErrorReply {
  readonly error: number;
  readonly message?: string;
}

export type ApiReply = TextReply | JsonReply | ErrorReply;

export interface ApiRequest {
  readonly method: string;
  /** URL path without the query. */
  readonly path: string;
  readonly query: QueryParams;
  /** The JSON body: `{}` for endpoints with an optional body that got none. */
  readonly body: JsonObject;
  /** Lower-cased names. */
  readonly headers: ReadonlyMap<string, string>;
  readonly remoteAddress: string;
}

export type ApiHandler = (request: ApiRequest) => MaybePromise<ApiReply>;

/** Mutating endpoints; each requires access checks and is only routed when its handler is given. */
export interface UnsafeHandlers {
  readonly switchover?: ApiHandler; // POST /switchover
  readonly failover?: ApiHandler; // POST /failover
  readonly restart?: ApiHandler; // POST /restart
  readonly reload?: ApiHandler; // POST /reload
  readonly reinitialize?: ApiHandler; // POST /reinitialize
  readonly patchConfig?: ApiHandler; // PATCH /config
  readonly putConfig?: ApiHandler; // PUT /config
  readonly deleteSwitchover?: ApiHandler; // DELETE /switchover
  readonly deleteRestart?: ApiHandler; // DELETE /restart
  readonly failsafe?: ApiHandler; // POST /failsafe
}

export interface TlsOptions {
  readonly certfile: string;
  readonly keyfile?: string;
  readonly keyfilePassword?: string;
  readonly cafile?: string;
  readonly ciphers?: string;
  /** `required`: the handshake demands a client cert; `optional`: unsafe endpoints do (403 otherwise). */
  readonly verifyClient?: 'none' | 'optional' | 'required';
}

/** What `restapi` settings a reload may change without a new listener (Patroni's `reload_config`). */
export interface ApiSecurity {
  readonly auth?: { readonly username: string; readonly password: string };
  /** `restapi.allowlist`: IPs, CIDR networks or host names allowed to call unsafe endpoints. */
  readonly allowlist?: readonly string[];
  /** `restapi.allowlist_include_members`: members' api_url hosts are allowed too. */
  readonly allowlistIncludeMembers?: boolean;
  /** The `Server` header (see `serverHeaderFor`). */
  readonly serverHeader?: string;
  /** `restapi.http_extra_headers` (plus `https_extra_headers` under TLS), in order. */
  readonly extraHeaders?: Readonly<Record<string, string>>;
  readonly tls?: TlsOptions;
}
