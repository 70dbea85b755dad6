/**
 * Failsafe mode's POST /failsafe from the leader to the other members while the DCS cannot be reached (Patroni 4.1.4's
 * ha.py `call_failsafe_member`): the body names this node (`name`, `conn_url`, `api_url`) and carries its slot
 * positions (`slots`, for the replicas to advance their permanent slots while the DCS is down), each request has a 2 s
 * timeout and one retry (Patroni's `timeout=2, retries=1`), all in parallel. A member accepts with 200 `Accepted`
 * and may send its received/replayed position in the `lsn` header. Credentials: `ctl.authentication`, else
 * `restapi.authentication` (Patroni's request.py); TLS settings as the peer probes (src/agent/peers.ts).
 */
import { requestMember, type RestClientOptions } from '../api/client.js';
import type { AgentConfig } from '../config/agent-config.js';
import type { FailsafeAnswer, FailsafeCaller } from '../ha/loop.js';
import type { Lsn } from '../model/lsn.js';
import { errorText } from '../model/text.js';
import { excerpt, probeTlsFor } from './peers.js';

export const FAILSAFE_TIMEOUT_MS = 2_000;
const ATTEMPTS = 2;

type Auth = NonNullable<RestClientOptions['auth']>;

function ctlAuth(config: AgentConfig): Auth | undefined {
  const ctl = (config.raw as Record<string, unknown>)['ctl'];
  if (typeof ctl !== 'object' || ctl === null) return undefined;
  const a = (ctl as Record<string, unknown>)['authentication'];
  if (typeof a !== 'object' || a === null) return undefined;
  const { username, password } = a as Record<string, unknown>;
  return typeof username === 'string' && typeof password === 'string' ? { username, password } : undefined;
}

/** The REST client options of POST /failsafe (read on every call, so a reload takes effect). */
export function failsafeClientOptions(
  config: AgentConfig,
  timeoutMs = FAILSAFE_TIMEOUT_MS,
): RestClientOptions {
  const tls = probeTlsFor(config);
  const auth = ctlAuth(config) ?? config.restapi.authentication;
  return {
    timeoutMs,
    insecure: tls.insecure,
    ...(auth ? { auth } : {}),
    ...(tls.cacert ? { cacert: tls.cacert } : {}),
    ...(tls.certfile ? { certfile: tls.certfile } : {}),
    ...(tls.keyfile ? { keyfile: tls.keyfile } : {}),
  };
}

/** Python's `parse_int` of the `lsn` header: a decimal integer, else nothing. */
function lsnHeader(value: string | string[] | undefined): bigint | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v !== undefined && /^\s*\d+\s*$/.test(v) ? BigInt(v.trim()) : undefined;
}

/** The leader's slot positions for the body's `slots`; undefined (or a rejection): none sent. */
export type FailsafeSlots = () => Promise<Readonly<Record<string, Lsn>> | undefined>;

/**
 * How long the leader waits for its slot positions before the check: the check decides whether the primary keeps
 * accepting writes, so a slow local PostgreSQL must not hold it up (Patroni sends positions its cycle already read).
 * Late: the body goes without `slots`.
 */
export const FAILSAFE_SLOTS_BUDGET_MS = 1_000;

/** The `slots` of the body: JSON numbers, as Patroni sends them. */
async function slotsBody(
  slots: FailsafeSlots | undefined,
  log: { warning(text: string): void },
  budgetMs: number,
): Promise<Record<string, number> | undefined> {
  if (slots === undefined) return undefined;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), budgetMs);
  });
  const read = slots().catch((e: unknown) => {
    log.warning(`failsafe: could not read the replication slots: ${errorText(e)}`);
    return undefined;
  });
  try {
    const positions = await Promise.race([read, late]);
    if (positions === 'late') {
      log.warning(`failsafe: the replication slots were not read within ${budgetMs} ms; sent without them`);
      return undefined;
    }
    if (positions === undefined) return undefined;
    return Object.fromEntries(Object.entries(positions).map(([name, lsn]) => [name, Number(lsn)]));
  } finally {
    clearTimeout(timer);
  }
}

export function createFailsafeCaller(
  config: () => AgentConfig,
  log: { info(text: string): void; warning(text: string): void },
  slots?: FailsafeSlots,
  timeoutMs = FAILSAFE_TIMEOUT_MS,
  slotsBudgetMs = FAILSAFE_SLOTS_BUDGET_MS,
): FailsafeCaller {
  return async (members) => {
    const c = config();
    const options = failsafeClientOptions(c, timeoutMs);
    const positions = await slotsBody(slots, log, slotsBudgetMs);
    const body = {
      name: c.name,
      conn_url: c.connUrl,
      api_url: c.apiUrl,
      ...(positions === undefined ? {} : { slots: positions }),
    };
    return Promise.all(
      members.map(async (m): Promise<FailsafeAnswer> => {
        let failure: unknown;
        for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
          try {
            const res = await requestMember(m.apiUrl, 'failsafe', options, 'POST', body);
            log.info(`Got response from ${m.name} ${m.apiUrl}: ${excerpt(res.body, 500)}`);
            const lsn = lsnHeader(res.headers?.['lsn']);
            return {
              name: m.name,
              accepted: res.status === 200 && res.body === 'Accepted',
              ...(lsn === undefined ? {} : { lsn }),
            };
          } catch (e) {
            failure = e;
          }
        }
        log.warning(`Request failed to ${m.name}: POST ${m.apiUrl} (${excerpt(errorText(failure), 500)})`);
        return { name: m.name, accepted: false };
      }),
    );
  };
}
