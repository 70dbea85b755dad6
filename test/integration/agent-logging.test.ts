/**
 * The `log` section on a real agent (issue 12 item 5): with log.dir and a small file_size the agent writes
 * patroni.log in the suite's format, rotates it to patroni.log.1 and .2 and keeps no more than file_num old files,
 * and nothing goes to stderr; a SIGHUP with log.dir removed moves the lines back to stderr.
 */
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';

const FILE_SIZE = 700;
const FORMAT = '%(asctime)s %(levelname)s [%(pathname)s:%(lineno)d - %(funcName)s]: %(message)s';

const logSection = (dir: string, extra = ''): string =>
  `log:\n  dir: ${dir}\n  file_size: ${FILE_SIZE}\n  file_num: 2\n  mode: 384\n  format: '${FORMAT}'\n${extra}`;

describeNeeding(
  'postgres',
  'etcd',
  'bundle',
  'root',
)('pgwarden agent: log.dir rotation', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };

  beforeAll(async () => {
    etcd = await startEtcd();
    cluster = await startAgentCluster({
      etcdEndpoint: etcd.endpoint,
      nodes: 1,
      loopWait: 1,
      ttl: 10,
      topLevelExtra: (n) => logSection(n.dir),
    });
  });

  afterAll(async () => {
    try {
      await cluster?.stop();
    } finally {
      await etcd?.stop();
    }
  });

  it('rotates patroni.log at file_size, keeps file_num files, writes nothing to stderr', async () => {
    const node = c().nodes[0]!;
    const logs = (): string[] => readdirSync(node.dir).filter((f) => f.startsWith('patroni.log'));
    await c()
      .waitReady({ timeoutMs: 90_000 })
      .catch((e: unknown) => {
        const current = logs().includes('patroni.log')
          ? readFileSync(join(node.dir, 'patroni.log'), 'utf8')
          : '';
        throw new Error(`${String(e)}\npatroni.log:\n${current}`);
      });
    await waitFor('patroni.log.2', () => logs().includes('patroni.log.2'), 90_000, 200);
    // One more rotation: .2 is replaced, never a .3.
    const oldest = readFileSync(join(node.dir, 'patroni.log.2'), 'utf8');
    await waitFor(
      'another rotation',
      () => readFileSync(join(node.dir, 'patroni.log.2'), 'utf8') !== oldest,
      90_000,
      200,
    );
    expect(logs().sort()).toEqual(['patroni.log', 'patroni.log.1', 'patroni.log.2']);
    for (const f of logs()) {
      expect(statSync(join(node.dir, f)).size).toBeLessThan(FILE_SIZE);
      expect(statSync(join(node.dir, f)).mode & 0o777).toBe(0o600);
    }
    const lines = readFileSync(join(node.dir, 'patroni.log.1'), 'utf8').trim().split('\n');
    for (const l of lines)
      expect(l).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) \[.+:\d+ - .+\]: /);
    // The call site: the agent's bundle, the line and the (minified) method that logged the HA loop's cycle line.
    expect(lines.some((l) => /\[\/.*dist\/agent\.js:\d+ - \S+\]: no action\. /.test(l))).toBe(true);
    expect(readFileSync(node.logFile, 'utf8')).not.toMatch(/ INFO[: ]/);
  }, 300_000);

  it('goes back to stderr when a reload removes log.dir', async () => {
    const node = c().nodes[0]!;
    const yml = readFileSync(node.configFile, 'utf8');
    writeFileSync(
      node.configFile,
      yml.replace(/^log:\n(?: {2}.*\n)+/m, "log:\n  format: '%(levelname)s %(message)s'\n"),
    );
    process.kill(c().pid(0)!, 'SIGHUP');
    await waitFor(
      'INFO lines on stderr',
      () => /^INFO no action\./m.test(readFileSync(node.logFile, 'utf8')),
      30_000,
      200,
    );
  }, 60_000);
});
