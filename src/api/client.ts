/**
 * Calls a member's REST API the way patronictl does: the member's `api_url` with its path replaced by the
 * endpoint, Basic auth when configured, TLS settings from the `ctl` section. undici is loaded on first use.
 */
import { readFileSync } from 'node:fs';

export interface RestClientOptions {
  readonly auth?: { readonly username: string; readonly password: string };
  readonly cacert?: string;
  readonly certfile?: string;
  readonly keyfile?: string;
  readonly insecure?: boolean;
  /** Bound on the whole request; patronictl has none, but a CLI must not hang on a dead member. */
  readonly timeoutMs: number;
}

export interface RestResponse {
  readonly status: number;
  readonly body: string;
}

export function endpointUrl(apiUrl: string, endpoint: string): string {
  const u = new URL(apiUrl);
  u.pathname = `/${endpoint.replace(/^\//, '')}`;
  u.search = '';
  return u.toString();
}

export async function requestMember(
  apiUrl: string,
  endpoint: string,
  options: RestClientOptions,
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE' = 'GET',
  body?: unknown,
): Promise<RestResponse> {
  // Bundled (dist/), a CommonJS package imported dynamically exposes only `default`; unbundled, named exports.
  const imported = await import('undici');
  const undici = (imported as unknown as { default?: typeof imported }).default ?? imported;
  const { request, Agent } = undici;
  const url = endpointUrl(apiUrl, endpoint);
  const headers: Record<string, string> = { 'user-agent': 'pgwarden' };
  if (options.auth) {
    headers['authorization'] =
      `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}`;
  }
  const dispatcher = new Agent({
    connect: {
      rejectUnauthorized: !options.insecure,
      ca: options.cacert ? readFileSync(options.cacert) : undefined,
      cert: options.certfile ? readFileSync(options.certfile) : undefined,
      key: options.keyfile ? readFileSync(options.keyfile) : undefined,
    },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    connectTimeout: options.timeoutMs,
  });
  try {
    const res = await request(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      dispatcher,
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    return { status: res.statusCode, body: await res.body.text() };
  } finally {
    await dispatcher.close();
  }
}
