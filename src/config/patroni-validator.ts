/**
 * What Patroni 4.1.4's validator (`patroni --validate-config`, patroni/validator.py `schema`) refuses although
 * Patroni's agent, and pgwarden's, runs with it: `pgwarden agent --validate-config` reports these too, so that both
 * checks pass and fail on the same files. At run time the agent keeps Patroni's behaviour (a ttl below 20 raised to
 * 20, nosync winning over a sync_priority with a warning, discovery_srv read as srv).
 */
import { parseGucInt } from '../model/guc-values.js';
import { parseBool } from '../model/python.js';
import { isMapping } from './config-values.js';

type Tree = Readonly<Record<string, unknown>>;

/** `AtMostOne(...)` pairs of the `tags` schema. */
const EXCLUSIVE_TAGS = [
  ['nofailover', 'failover_priority'],
  ['nosync', 'sync_priority'],
] as const;

/** `bootstrap.dcs` minimums of the schema (IntValidator, values read with parse_int) the agent does not refuse. */
const DCS_MINIMUMS: readonly (readonly [string, number, string])[] = [
  ['ttl', 20, 'the agent raises it to 20 at run time'],
  ['retry_timeout', 3, 'the agent runs with it'],
  ['maximum_lag_on_syncnode', -1, 'the agent runs with it'],
];

/** The keys of which the schema wants one in an etcd section (`Or("host", "hosts", ...)`). */
const ETCD_LOCATORS = ['host', 'hosts', 'srv', 'srv_suffix', 'url', 'proxy'];

function tagProblems(tree: Tree): string[] {
  const tags = tree['tags'];
  if (!isMapping(tags)) return [];
  return EXCLUSIVE_TAGS.filter(([a, b]) => a in tags && b in tags).map(
    ([a, b]) =>
      `tags: both ${a} and ${b} are set, and Patroni's validator accepts at most one of them (the agent would ` +
      `use ${a} and warn); keep one`,
  );
}

function dcsProblems(tree: Tree): string[] {
  const bootstrap = tree['bootstrap'];
  const dcs = isMapping(bootstrap) ? bootstrap['dcs'] : undefined;
  if (!isMapping(dcs)) return [];
  const out: string[] = [];
  for (const [key, min, runtime] of DCS_MINIMUMS) {
    if (dcs[key] === undefined || dcs[key] === null) continue;
    const n = parseGucInt(dcs[key]);
    if (n !== undefined && n < min) {
      out.push(
        `bootstrap.dcs.${key}: ${n} is less than ${min}, the least Patroni's validator accepts (${runtime}); ` +
          `set ${min} or more`,
      );
    }
  }
  return out;
}

function etcdProblems(tree: Tree): string[] {
  const out: string[] = [];
  for (const section of ['etcd', 'etcd3']) {
    const s = tree[section];
    if (!isMapping(s) || ETCD_LOCATORS.some((k) => k in s)) continue;
    const alias = ['srv_domain', 'discovery_srv'].find((k) => k in s);
    if (alias === undefined) continue;
    out.push(
      `${section}.${alias}: Patroni's validator wants one of ${ETCD_LOCATORS.join(', ')} and does not count ` +
        `${alias} (its agent reads it as srv); rename ${section}.${alias} to ${section}.srv`,
    );
  }
  return out;
}

/** Text that reads true (text that reads false is refused by the reader, src/config/zookeeper-section.ts). */
function zookeeperProblems(tree: Tree): string[] {
  const zk = tree['zookeeper'];
  const v = isMapping(zk) ? zk['use_ssl'] : undefined;
  if (typeof v !== 'string' || parseBool(v) !== true) return [];
  return [
    `zookeeper.use_ssl: ${JSON.stringify(v)} is text, not a boolean, which Patroni's validator refuses (its agent, ` +
      'like pgwarden, takes it as TLS on; PATRONI_ZOOKEEPER_USE_SSL is read as text); set use_ssl: true in the ' +
      'configuration file',
  ];
}

/** One `<dotted.path>: <what is wrong>; <what to do>` line per finding. */
export function patroniValidatorProblems(tree: Tree): string[] {
  return [...tagProblems(tree), ...dcsProblems(tree), ...etcdProblems(tree), ...zookeeperProblems(tree)];
}
