/**
 * The mutating endpoints (api.py `do_POST_*`, `do_PATCH_config`, `do_PUT_config`, `do_DELETE_*`): which body each
 * reads, and the JSON body reader with Patroni's codes (411 without Content-Length, 400 for bad JSON) and a size
 * cap enforced while reading (413), so a client cannot make the agent buffer an unbounded body.
 */
import type { IncomingMessage } from 'node:http';
import type { JsonObject } from '../../model/cluster.js';
import type { ApiHandler, UnsafeHandlers } from '../types.js';

export type BodyMode = 'none' | 'required' | 'optional';

export interface UnsafeRoute {
  readonly handler: ApiHandler;
  readonly body: BodyMode;
  /** Patroni's `allowlist_check_members`: POST /failsafe checks only the configured allowlist. */
  readonly checkMembers: boolean;
}

const TABLE: readonly (readonly [string, keyof UnsafeHandlers, BodyMode])[] = [
  ['POST_switchover', 'switchover', 'required'],
  ['POST_failover', 'failover', 'required'],
  ['POST_restart', 'restart', 'optional'],
  ['POST_reload', 'reload', 'none'],
  ['POST_reinitialize', 'reinitialize', 'optional'],
  ['POST_failsafe', 'failsafe', 'required'],
  ['PATCH_config', 'patchConfig', 'required'],
  ['PUT_config', 'putConfig', 'required'],
  ['DELETE_switchover', 'deleteSwitchover', 'none'],
  ['DELETE_restart', 'deleteRestart', 'none'],
];

/** Only endpoints with a handler are routed (others fall through to 501, as a method Patroni lacks). */
export function unsafeRoutes(handlers: UnsafeHandlers): ReadonlyMap<string, UnsafeRoute> {
  const out = new Map<string, UnsafeRoute>();
  for (const [key, name, body] of TABLE) {
    const handler = handlers[name];
    if (handler) out.set(key, { handler, body, checkMembers: name !== 'failsafe' });
  }
  return out;
}

/** The parsed body, or the HTTP error code to answer with. */
export type BodyResult =
  { readonly ok: true; readonly body: JsonObject } | { readonly ok: false; readonly code: number };

const fail = (code: number): BodyResult => ({ ok: false, code });

/** Reads at most `maxBytes`; answers 413 as soon as the declared or received size is over it. */
export async function readJsonBody(
  req: IncomingMessage,
  mode: BodyMode,
  maxBytes: number,
): Promise<BodyResult> {
  if (mode === 'none') return { ok: true, body: {} };
  const lengthText = req.headers['content-length'];
  if (lengthText === undefined) return mode === 'optional' ? { ok: true, body: {} } : fail(411);
  const length = Number(lengthText);
  if (!Number.isSafeInteger(length) || length < 0) return fail(400);
  if (length > maxBytes) return fail(413);
  if (length === 0 && mode === 'optional') return { ok: true, body: {} };
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) return fail(413);
    chunks.push(chunk);
  }
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      const obj = parsed as JsonObject;
      if (Object.keys(obj).length > 0 || mode === 'optional') return { ok: true, body: obj };
    }
  } catch {
    // Patroni's bare `except`: 400
  }
  return fail(400);
}
