/**
 * Calls a member's REST API the way patronictl does: the member's `api_url` with its path replaced by the
 * endpoint, Basic auth when configured, TLS settings from the `ctl` section.
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
  /** Lower-cased names (e.g. the `lsn` of a POST /failsafe answer). */
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
}

export function endpointUrl(apiUrl: string, endpoint: string): string {
  const u = new URL(apiUrl);
  u.pathname = `/${endpoint.replace(/^\//, '')}`;
  u.search = '';
  return u.toString();
}

/**
 * One request to a member's REST API over node:http/https. Deliberately not undici: its WebAssembly HTTP parser
 * costs a long-running agent about 10 MB of heap and 8 MB of resident code (measured), and the CLI start-up time.
 * The body goes with a Content-Length (Patroni's server reads no chunked bodies); one connection per request.
 */
export async function requestMember(
  apiUrl: string,
  endpoint: string,
  options: RestClientOptions,
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE' = 'GET',
  body?: unknown,
): Promise<RestResponse> {
  const url = new URL(endpointUrl(apiUrl, endpoint));
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = { 'user-agent': 'pgwarden' };
  if (options.auth) {
    headers['authorization'] =
      `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}`;
  }
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  const https = url.protocol === 'https:';
  const mod = https ? await import('node:https') : await import('node:http');
  return new Promise<RestResponse>((resolve, reject) => {
    const req = mod.request(url, {
      method,
      headers,
      agent: false,
      ...(https
        ? {
            rejectUnauthorized: !options.insecure,
            ...(options.cacert ? { ca: readFileSync(options.cacert) } : {}),
            ...(options.certfile ? { cert: readFileSync(options.certfile) } : {}),
            ...(options.keyfile ? { key: readFileSync(options.keyfile) } : {}),
          }
        : {}),
    });
    const timer = setTimeout(
      () => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          headers: res.headers,
        });
      });
    });
    req.end(payload);
  });
}
