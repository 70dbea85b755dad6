/**
 * pgwarden's read commands against a real Patroni 3.0.2 cluster, with real patronictl as the oracle: for each DCS
 * (etcd v3, ZooKeeper) a DCS server and a 3-node Patroni cluster are started, and every comparison runs pgwarden
 * and patronictl on the same cluster with the same arguments and the same environment.
 *
 * Values that move between two reads (replication lag) are handled by polling: both tools run side by side until
 * they agree or ~20 s pass; then the assertion fails and shows both outputs.
 *
 * Needs: root (agents run as user postgres), Debian packages patroni, python3-etcd, python3-kazoo, postgresql-15,
 * etcd-server, zookeeper; and a built pgwarden (`npm run build`, done by `npm test`).
 */
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd } from '../harness/etcd.js';
import {
  runCommand,
  runPatronictl,
  startPatroniCluster,
  type CommandResult,
  type PatroniCluster,
  type PatroniDcs,
} from '../harness/patroni.js';
import { removeDir, tempDir, waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { startZooKeeper } from '../harness/zookeeper.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PGWARDEN = join(REPO, 'bin', 'run.js');

/** How long two tools may take to agree on values that move (lag). */
const AGREE_MS = 20_000;
const TEST_MS = 120_000;

interface DcsServer {
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** One environment for both tools: no PATRONI_* / DCS_URL leaking in, and an empty HOME (no default config). */
function cleanEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' };
  if (process.env.TZ !== undefined) env.TZ = process.env.TZ;
  return env;
}

function show(label: string, r: CommandResult): string {
  return `----- ${label} (exit ${String(r.code)})\n--- stdout:\n${r.stdout}--- stderr:\n${r.stderr}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    return { notJson: text, error: e instanceof Error ? e.message : String(e) };
  }
}

/** What a comparison looks at: the exit code and a view of stdout. */
type View = (r: CommandResult) => unknown;
const asText: View = (r) => ({ code: r.code, stdout: r.stdout });
const asJson: View = (r) => ({ code: r.code, json: parseJson(r.stdout) });
/** `version CLUSTER`: the first line names the tool (`pgwarden version X` vs `patronictl version 3.0.2`). */
const afterFirstLine: View = (r) => ({ code: r.code, rest: r.stdout.split('\n').slice(1) });

function compatSuite(kind: PatroniDcs): void {
  const dcsNeed = kind === 'etcd3' ? 'etcd' : 'zookeeper';
  const describeWithNeeds = describeNeeding('postgres', dcsNeed, 'patroni', 'patronictl', 'bundle', 'root');
  describeWithNeeds(`pgwarden vs patronictl on Patroni 3.0.2 with ${kind}`, () => {
    let dcs: DcsServer | undefined;
    let cluster: PatroniCluster | undefined;
    let home = '';
    let env: NodeJS.ProcessEnv = {};

    const lab = (): PatroniCluster => {
      if (!cluster) throw new Error('the Patroni cluster did not start (see beforeAll)');
      return cluster;
    };
    const dcsUrl = (): string => {
      if (!dcs) throw new Error('the DCS did not start (see beforeAll)');
      return `${kind === 'etcd3' ? 'etcd3' : 'zookeeper'}://${dcs.endpoint}`;
    };
    const pgwarden = (args: readonly string[]): Promise<CommandResult> =>
      runCommand(process.execPath, [PGWARDEN, ...args], { env, timeoutMs: 60_000, cwd: home });
    const patronictl = (args: readonly string[]): Promise<CommandResult> =>
      runPatronictl(args, { env, timeoutMs: 60_000 });
    /** pgwarden with `-d <scheme>://127.0.0.1:PORT` before the arguments. */
    const d = (args: readonly string[]): readonly string[] => ['-d', dcsUrl(), ...args];
    /**
     * patronictl's equivalent of `d(args)`. patronictl 3.0.2 knows no `etcd3://` scheme (`Error: Unknown dcs scheme:
     * etcd3`; accepted from 3.0.3 on, where `-d` replaces the DCS section of an otherwise empty config): for etcd3 the
     * oracle is a config file holding only that section.
     */
    const oracleD = (args: readonly string[]): readonly string[] =>
      kind === 'etcd3' ? ['-c', join(home, 'etcd3-only.yml'), ...args] : d(args);
    /** Both tools with `-c <node 1's patroni.yml>` before the arguments. */
    const withConfig = (args: readonly string[]): readonly string[] => ['-c', lab().configFile(0), ...args];

    /**
     * Runs both tools side by side until `view` of their results is equal, up to `timeoutMs`; then asserts with
     * both outputs in the message. `ours` defaults to `theirs` (the same arguments for both).
     */
    const agree = async (
      view: View,
      theirs: readonly string[],
      ours: readonly string[] = theirs,
      timeoutMs = AGREE_MS,
    ): Promise<{ ours: CommandResult; theirs: CommandResult }> => {
      const deadline = Date.now() + timeoutMs;
      let tries = 0;
      for (;;) {
        tries++;
        const [a, b] = await Promise.all([pgwarden(ours), patronictl(theirs)]);
        const same = isDeepStrictEqual(view(a), view(b));
        if (same || Date.now() > deadline) {
          expect(
            view(a),
            `pgwarden ${ours.join(' ')}  vs  patronictl ${theirs.join(' ')} (${tries} tries over ${timeoutMs} ms)\n` +
              `${show('pgwarden', a)}\n${show('patronictl', b)}`,
          ).toEqual(view(b));
          return { ours: a, theirs: b };
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    };

    beforeAll(async () => {
      home = tempDir('ctl-home');
      env = cleanEnv(home);
      dcs = kind === 'etcd3' ? await startEtcd() : await startZooKeeper();
      writeFileSync(join(home, 'etcd3-only.yml'), `etcd3:\n  hosts: ${dcs.endpoint}\n`);
      cluster = await startPatroniCluster({
        dcs: kind,
        dcsEndpoint: dcs.endpoint,
        nodes: 3,
        scope: 'lab',
        ttl: 20,
        loopWait: 2,
        retryTimeout: 5,
      });
    }, 300_000);

    afterAll(async () => {
      const errors: string[] = [];
      try {
        await cluster?.stop();
      } catch (e) {
        errors.push(e instanceof Error ? e.message : String(e));
      }
      try {
        await dcs?.stop();
      } catch (e) {
        errors.push(e instanceof Error ? e.message : String(e));
      }
      if (home) removeDir(home);
      if (errors.length > 0) throw new Error(errors.join('\n'));
    }, 120_000);

    describe('with -c patroni.yml', () => {
      it('list -f json parses to the same members', { timeout: TEST_MS }, async () => {
        const { theirs } = await agree(asJson, withConfig(['list', '-f', 'json']));
        expect(parseJson(theirs.stdout)).toHaveLength(3);
      });

      it('list (pretty) is byte-identical', { timeout: TEST_MS }, async () => {
        await agree(asText, withConfig(['list']));
      });

      it('list -f tsv and -f yaml are identical', { timeout: TEST_MS }, async () => {
        await agree(asText, withConfig(['list', '-f', 'tsv']));
        await agree(asText, withConfig(['list', '-f', 'yaml']));
      });

      it('list -e (pretty and json) is identical', { timeout: TEST_MS }, async () => {
        await agree(asText, withConfig(['list', '-e']));
        await agree(asJson, withConfig(['list', '-e', '-f', 'json']));
      });

      it('topology is identical', { timeout: TEST_MS }, async () => {
        await agree(asText, withConfig(['topology']));
      });

      it('history -f json is equal, history (pretty) identical', { timeout: TEST_MS }, async () => {
        await agree(asJson, withConfig(['history', '-f', 'json']));
        await agree(asText, withConfig(['history']));
      });

      it('show-config is identical', { timeout: TEST_MS }, async () => {
        await agree(asText, withConfig(['show-config']));
      });

      it('dsn (leader, -r replica, -m pg2) is identical', { timeout: TEST_MS }, async () => {
        await agree(asText, withConfig(['dsn']));
        await agree(asText, withConfig(['dsn', '-r', 'replica']));
        await agree(asText, withConfig(['dsn', '-m', 'pg2']));
      });

      it('version lab: the member lines agree', { timeout: TEST_MS }, async () => {
        const { ours, theirs } = await agree(afterFirstLine, withConfig(['version', 'lab']));
        expect(ours.stdout.split('\n', 1)[0], show('pgwarden', ours)).toMatch(/^pgwarden version \S+$/);
        expect(theirs.stdout.split('\n', 1)[0]).toBe('patronictl version 3.0.2');
        expect(theirs.stdout).toContain('pg1: Patroni 3.0.2 PostgreSQL 15');
      });

      it('global options after the command name work too (pgwarden only)', { timeout: TEST_MS }, async () => {
        await agree(asJson, withConfig(['list', '-f', 'json']), [
          'list',
          '-f',
          'json',
          '-c',
          lab().configFile(0),
        ]);
      });

      it('several cluster names (list lab lab) behave like patronictl', { timeout: TEST_MS }, async () => {
        await agree(asText, withConfig(['list', 'lab', 'lab']));
        await agree(asJson, withConfig(['list', 'lab', 'lab', '-f', 'json']));
        await agree(asText, withConfig(['topology', 'lab', 'lab']));
      });

      // An empty cluster has no member to tell its Patroni version, so pgwarden prints it in the newest layout
      // (4.1) where patronictl 3.0.2 prints its own; the known cluster's table must still be identical.
      it(
        'an unknown cluster next to a known one: same table for the known one, uninitialized for the other',
        { timeout: TEST_MS },
        async () => {
          const knownTable: View = (r) => ({
            code: r.code,
            lab: r.stdout.split(/\n(?=\+ Cluster: nosuch)/)[0],
          });
          const { ours } = await agree(knownTable, withConfig(['list', 'lab', 'nosuch']));
          const nosuch = ours.stdout.slice(ours.stdout.indexOf('+ Cluster: nosuch')).split('\n');
          expect(nosuch[0], show('pgwarden', ours)).toMatch(/^\+ Cluster: nosuch \(uninitialized\) -+\+/);
          expect(nosuch[2], show('pgwarden', ours)).toBe(nosuch[3]);
        },
      );
    });

    describe('with -d URL and the cluster name as argument', () => {
      it('list -f json and list (pretty) agree', { timeout: TEST_MS }, async () => {
        await agree(asJson, oracleD(['list', 'lab', '-f', 'json']), d(['list', 'lab', '-f', 'json']));
        await agree(asText, oracleD(['list', 'lab']), d(['list', 'lab']));
      });

      it('list lab lab agrees', { timeout: TEST_MS }, async () => {
        await agree(asText, oracleD(['list', 'lab', 'lab']), d(['list', 'lab', 'lab']));
        await agree(
          asJson,
          oracleD(['list', 'lab', 'lab', '-f', 'json']),
          d(['list', 'lab', 'lab', '-f', 'json']),
        );
      });

      it('topology, history, show-config, dsn agree', { timeout: TEST_MS }, async () => {
        await agree(asText, oracleD(['topology', 'lab']), d(['topology', 'lab']));
        await agree(asJson, oracleD(['history', 'lab', '-f', 'json']), d(['history', 'lab', '-f', 'json']));
        await agree(asText, oracleD(['show-config', 'lab']), d(['show-config', 'lab']));
        await agree(asText, oracleD(['dsn', 'lab']), d(['dsn', 'lab']));
      });

      it('version lab: the member lines agree', { timeout: TEST_MS }, async () => {
        await agree(afterFirstLine, oracleD(['version', 'lab']), d(['version', 'lab']));
      });

      it('-d after the command name works too (pgwarden only)', { timeout: TEST_MS }, async () => {
        await agree(asJson, oracleD(['list', 'lab', '-f', 'json']), [
          'list',
          'lab',
          '-f',
          'json',
          '-d',
          dcsUrl(),
        ]);
      });
    });

    describe('after a switchover', () => {
      let oldLeader = '';
      let newLeader = '';

      beforeAll(async () => {
        const c = lab();
        oldLeader = await c.leaderName();
        const candidate = c.nodes.find((n) => n.name !== oldLeader)?.name;
        if (!candidate) throw new Error('no replica to switch over to');
        const r = await c.patronictl(['switchover', '--force', '--candidate', candidate], { env });
        if (r.code !== 0) throw new Error(`patronictl switchover failed\n${show('patronictl', r)}`);
        // The new leader is primary and every other member, the old leader too, streams from it again.
        newLeader = await c.waitReady({ leader: candidate, timeoutMs: 120_000 });
      }, 180_000);

      it('history is non-empty and equal (json), identical (pretty)', { timeout: TEST_MS }, async () => {
        const { theirs } = await agree(asJson, withConfig(['history', '-f', 'json']));
        const history = parseJson(theirs.stdout);
        expect(Array.isArray(history) && history.length > 0, show('patronictl', theirs)).toBe(true);
        await agree(asText, withConfig(['history']));
      });

      it('list (json and pretty) and topology agree, with the new leader', { timeout: TEST_MS }, async () => {
        const { theirs } = await agree(asJson, withConfig(['list', '-f', 'json']));
        expect(theirs.stdout, `old leader ${oldLeader}`).toContain(`"Member": "${newLeader}"`);
        await agree(asText, withConfig(['list']));
        await agree(asText, withConfig(['topology']));
      });

      it('with -d URL: history and list agree', { timeout: TEST_MS }, async () => {
        await agree(asJson, oracleD(['history', 'lab', '-f', 'json']), d(['history', 'lab', '-f', 'json']));
        await agree(asText, oracleD(['list', 'lab']), d(['list', 'lab']));
      });
    });

    describe('with synchronous_mode on', () => {
      beforeAll(async () => {
        const c = lab();
        const r = await c.patronictl(['edit-config', '-s', 'synchronous_mode=true', '--force'], { env });
        if (r.code !== 0) throw new Error(`patronictl edit-config failed\n${show('patronictl', r)}`);
        let last: CommandResult | undefined;
        try {
          await waitFor(
            'patronictl list to show a Sync Standby',
            async () => {
              last = await c.patronictl(['list'], { env });
              return last.stdout.includes('Sync Standby');
            },
            90_000,
            500,
          );
        } catch (e) {
          const why = e instanceof Error ? e.message : String(e);
          throw new Error(`${why}\n${last ? show('patronictl list', last) : ''}\n${c.logTails()}`);
        }
      }, 120_000);

      it('list (pretty) is byte-identical', { timeout: TEST_MS }, async () => {
        await agree(asText, withConfig(['list']));
      });

      it('list -f json is equal', { timeout: TEST_MS }, async () => {
        await agree(asJson, withConfig(['list', '-f', 'json']));
      });

      it('topology and show-config agree', { timeout: TEST_MS }, async () => {
        await agree(asText, withConfig(['topology']));
        await agree(asText, withConfig(['show-config']));
      });
    });
  });
}

compatSuite('etcd3');
compatSuite('zookeeper');
