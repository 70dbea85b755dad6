/**
 * What an integration suite needs from the machine (servers, binaries, the built bundle, root), checked in one
 * place. A suite names its needs: `describeNeeding('postgres', 'etcd')('title', () => ...)`.
 *
 * With everything present that is a plain `describe`. With something missing the suite does not run, and:
 * - under CI (`CI` set, as CI services and .ci/run do) the file fails, naming what is missing, so a CI machine
 *   without e.g. etcd cannot pass by skipping (.ci/run counts such a file as one failed test);
 * - elsewhere the suite is skipped and a warning on stderr names what is missing.
 *
 * Paths come from the harness modules that start the servers, so the check and the use cannot disagree.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe } from 'vitest';
import { ETCD } from './etcd.js';
import { WRITER_PY } from './ha-probe.js';
import { HAPROXY } from './haproxy.js';
import { PATRONI, PATRONI4, PATRONICTL, PATRONICTL4, PG_BIN } from './patroni.js';
import { ZK_SERVER } from './zookeeper.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const INSTALL = 'scripts/install-deps.sh installs it';

interface Check {
  /** Why it is missing, or undefined when present. */
  readonly missing: () => string | undefined;
}

/** `path` is a regular file, executable when `executable`; else why not. */
function fileCheck(path: string, hint: string, executable = true): Check {
  return {
    missing: () => {
      try {
        if (!statSync(path).isFile()) return `${path} is not a file; ${hint}`;
        if (executable) accessSync(path, constants.X_OK);
        return undefined;
      } catch {
        return `${path} ${executable ? 'is not an executable file' : 'does not exist'}; ${hint}`;
      }
    },
  };
}

const NEEDS = {
  postgres: fileCheck(`${PG_BIN}/initdb`, `PostgreSQL 15: ${INSTALL}`),
  pg_rewind: fileCheck(`${PG_BIN}/pg_rewind`, `PostgreSQL 15: ${INSTALL}`),
  etcd: fileCheck(ETCD, `etcd 3.4: ${INSTALL}`),
  zookeeper: fileCheck(ZK_SERVER, `ZooKeeper 3.8: ${INSTALL}`),
  patroni: fileCheck(PATRONI, `Patroni 3.0.2: ${INSTALL}`),
  patronictl: fileCheck(PATRONICTL, `Patroni 3.0.2: ${INSTALL}`),
  patroni4: fileCheck(PATRONI4, 'Patroni 4.1.4: the shared/ checkout beside the repository'),
  patronictl4: fileCheck(PATRONICTL4, 'Patroni 4.1.4: the shared/ checkout beside the repository'),
  haproxy: fileCheck(HAPROXY, `HAProxy: ${INSTALL}`),
  'writer.py': fileCheck(
    WRITER_PY,
    "the reference lab's probe, from the shared/ checkout beside the repository",
    false,
  ),
  script: fileCheck(
    '/usr/bin/script',
    'util-linux `script`, for a pseudo-terminal: apt-get install util-linux',
  ),
  time: fileCheck('/usr/bin/time', 'GNU time, for peak RSS: apt-get install time'),
  zsh: fileCheck('/usr/bin/zsh', `zsh, to check the completion script: ${INSTALL}`),
  bundle: fileCheck(resolve(REPO, 'dist', 'cli.cjs'), 'run `npm run build`', false),
  root: {
    missing: () =>
      process.getuid?.() === 0
        ? undefined
        : 'not running as root (the harness runs PostgreSQL and the agents as user postgres)',
  },
} satisfies Record<string, Check>;

export type Need = keyof typeof NEEDS;

/** Every need in `needs` that this machine lacks, with why. */
export function missingNeeds(needs: readonly Need[]): { readonly need: Need; readonly why: string }[] {
  return [...new Set(needs)].flatMap((need) => {
    const why = NEEDS[need].missing();
    return why === undefined ? [] : [{ need, why }];
  });
}

/** CI services set CI=true; `CI=false` or `CI=0` means a developer's machine. */
export const underCi = (): boolean => !['', '0', 'false'].includes((process.env.CI ?? '').toLowerCase());

/**
 * `describe` when every need is met; otherwise a skipped describe with a warning naming what is missing, or under CI
 * an error naming it, thrown while vitest collects the file: the file fails before any of its hooks start a server.
 */
export function describeNeeding(...needs: Need[]): ReturnType<typeof describe.skipIf> {
  const missing = missingNeeds(needs);
  if (missing.length > 0) {
    const list = missing.map(({ need, why }) => `${need} (${why})`).join('; ');
    if (underCi()) throw new Error(`missing on this CI machine: ${list}`);
    console.warn(`SKIPPED (not under CI): missing ${list}`);
  }
  return describe.skipIf(missing.length > 0);
}
