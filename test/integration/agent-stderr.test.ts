/**
 * A real agent whose stderr reader goes away (a log shipper restarted, `agent ... | tee` interrupted) keeps running
 * and keeps leading: every later log line meets EPIPE, which used to be an uncaught exception that killed the agent
 * and left PostgreSQL primary with nobody holding or releasing the lock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { waitFor } from '../harness/process.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const available =
  existsSync('/usr/lib/postgresql/15/bin/initdb') &&
  existsSync('/usr/bin/etcd') &&
  existsSync(join(REPO, 'dist', 'agent.js')) &&
  process.getuid?.() === 0;

const exited = (p: ChildProcess): boolean => p.exitCode !== null || p.signalCode !== null;

describe.skipIf(!available)('a pgwarden agent whose stderr pipe is closed', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  let agent: ChildProcess | undefined;

  beforeAll(async () => {
    etcd = await startEtcd();
  });

  afterAll(async () => {
    try {
      if (agent?.pid !== undefined && !exited(agent)) {
        const gone = new Promise((r) => agent?.once('exit', r));
        process.kill(-agent.pid, 'SIGTERM');
        const kill = setTimeout(
          () => agent?.pid !== undefined && process.kill(-agent.pid, 'SIGKILL'),
          20_000,
        );
        await gone;
        clearTimeout(kill);
      }
      await cluster?.stop();
    } finally {
      await etcd?.stop();
    }
  });

  it('keeps running and leading after the reader of its stderr went away', async () => {
    cluster = await startAgentCluster({ etcdEndpoint: etcd?.endpoint ?? '', nodes: 1, scope: 'stderr' });
    await cluster.waitReady({ timeoutMs: 60_000 });
    // Run the same member again, this time with stderr on a pipe we can close.
    await cluster.terminate(0);
    const node = cluster.nodes[0];
    if (!node) throw new Error('no node');
    const child = spawn(
      'setpriv',
      [
        '--reuid=postgres',
        '--regid=postgres',
        '--init-groups',
        'env',
        '-i',
        `HOME=${node.dir}`,
        'PATH=/usr/bin:/bin',
        'LANG=C.UTF-8',
        process.execPath,
        join(REPO, 'bin', 'run.js'),
        'agent',
        node.configFile,
      ],
      { cwd: node.dir, detached: true, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    agent = child;
    const stderr = child.stderr;
    if (!stderr) throw new Error('no stderr pipe');
    // Close our end as soon as the agent has said anything: every line after that meets a broken pipe.
    await new Promise<void>((r) => stderr.once('data', () => r()));
    stderr.destroy();
    const closedAt = Math.floor(Date.now() / 1000);

    // Several HA cycles later (loop_wait 2 s, each one logs), it is alive, the primary, and still reading the DCS.
    const last = await waitFor(
      'the agent to lead for 6 s after its stderr was closed',
      async () => {
        if (exited(child)) throw new Error(`the agent exited (code ${child.exitCode}, ${child.signalCode})`);
        const status = await cluster?.rest(0, '/patroni').catch(() => undefined);
        if (status?.status !== 200) return false;
        const doc = JSON.parse(status.body) as { role?: string; dcs_last_seen?: number };
        return doc.role === 'primary' && (doc.dcs_last_seen ?? 0) >= closedAt + 6 ? doc : false;
      },
      60_000,
      250,
    );
    expect(last.role).toBe('primary');
    expect(exited(child)).toBe(false);
  }, 180_000);
});
