/**
 * POST /failsafe (Patroni 4.1.4's api.py `do_POST_failsafe`, ha.py `update_failsafe`): with failsafe mode on, a
 * leader that lost the DCS asks this member to accept it. A running primary refuses (500 `Running as a leader`);
 * anyone else remembers the leader (and the slot positions it sent in `slots`) for ttl and answers 200 `Accepted`, with its received/replayed position in the
 * `lsn` header when known. Failsafe mode off: 502.
 */
import type { ApiReply, ApiRequest, UnsafeHandlers } from '../../api/types.js';
import { lsnFromJson, type Lsn } from '../../model/lsn.js';
import type { EndpointDeps } from './deps.js';

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The leader's `slots` (name -> position); entries that are no position are left out, no object: none. */
export function failsafeSlots(v: unknown): Record<string, Lsn> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out: Record<string, Lsn> = {};
  for (const [name, x] of Object.entries(v)) {
    const lsn = lsnFromJson(x);
    if (lsn !== undefined) out[name] = lsn;
  }
  return out;
}

export function failsafeEndpoints(deps: EndpointDeps): UnsafeHandlers {
  const { loop, node } = deps;
  return {
    failsafe: (req: ApiRequest): ApiReply => {
      if (loop.haConfig.failsafeMode !== true || loop.failsafeContactedBy === undefined)
        return { error: 502 };
      const name = str(req.body['name']);
      // Patroni reads name, conn_url and api_url unchecked: a body without a name fails there too.
      if (name === undefined) return { error: 400 };
      const role = node.role();
      if (role === 'master' || role === 'primary') return { code: 500, body: 'Running as a leader' };
      const apiUrl = str(req.body['api_url']);
      const connUrl = str(req.body['conn_url']);
      const slots = failsafeSlots(req.body['slots']);
      const lsn = loop.failsafeContactedBy({
        name,
        ...(apiUrl ? { apiUrl } : {}),
        ...(connUrl ? { connUrl } : {}),
        ...(slots ? { slots } : {}),
      });
      return { code: 200, body: 'Accepted', ...(lsn === undefined ? {} : { headers: { lsn: String(lsn) } }) };
    },
  };
}
