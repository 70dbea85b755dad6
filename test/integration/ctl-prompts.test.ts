/**
 * The CLI's contract with scripts and with people (README "Exit codes"), on the built CLI: a cluster in a real etcd
 * whose members' REST APIs are stubs on loopback that answer as Patroni 3.0.2 does and record what they receive.
 * Without a terminal a missing flag fails at once naming it; --force never asks, also on a terminal; on a terminal
 * (util-linux `script`) the questions are asked and answered; a declined confirmation and a member's error answer
 * exit 1.
 */
import { execFile } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Etcd3Dcs } from '../../src/dcs/etcd3/etcd3-dcs.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { freePort, removeDir, tempDir } from '../harness/process.js';
import { runOnPty } from '../harness/pty.js';
import { describeNeeding } from '../harness/requirements.js';

const RUN = resolve(import.meta.dirname, '..', '..', 'bin', 'run.js');

interface Seen {
  readonly member: string;
  readonly method: string;
  readonly path: string;
  readonly body: string;
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

let dir = '';
let cfg = '';
let etcd: EtcdServer | undefined;
const servers: Server[] = [];
const members: Etcd3Dcs[] = [];
const seen: Seen[] = [];
/** Status and body a member answers to POST /restart. */
const restartAnswer = new Map<string, readonly [number, string]>();

function env(): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir, LANG: 'C.UTF-8', TZ: 'UTC' };
}

/** The CLI with stdin a pipe (not a terminal) that is never written to. */
function pgwarden(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> {
  const t0 = Date.now();
  return new Promise((done) => {
    execFile(
      process.execPath,
      [RUN, '-c', cfg, ...args],
      { env: { ...env(), ...extraEnv }, timeout: 30_000, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        done({ code, stdout, stderr, ms: Date.now() - t0 });
      },
    );
  });
}

const onPty = (args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): ReturnType<typeof runOnPty> =>
  runOnPty([process.execPath, RUN, '-c', cfg, ...args], { env: { ...env(), ...extraEnv }, cwd: dir });

/** A member's REST API answering the unsafe endpoints as Patroni 3.0.2 does. */
async function stubMember(name: string, role: 'master' | 'replica'): Promise<number> {
  const port = await freePort();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0] ?? '';
      const method = req.method ?? '';
      if (method !== 'GET') seen.push({ member: name, method, path, body });
      const reply = (code: number, text: string, type = 'text/html'): void => {
        res.writeHead(code, { 'content-type': type });
        res.end(text);
      };
      const key = `${method} ${path}`;
      if (key === 'GET /patroni') {
        reply(
          200,
          JSON.stringify({ state: 'running', role, patroni: { version: '3.0.2', scope: 'demo' } }),
          'application/json',
        );
      } else if (key === 'POST /reload') reply(202, 'reload scheduled');
      else if (key === 'POST /restart') {
        const [code, text] = restartAnswer.get(name) ?? [200, 'restarted successfully'];
        reply(code, text);
      } else if (key === 'POST /switchover') reply(200, 'Successfully switched over to "pg2"');
      else if (key === 'POST /failover') reply(200, 'Successfully failed over to "pg2"');
      else if (key === 'POST /reinitialize') reply(200, 'reinitialize started');
      else reply(404, 'not stubbed');
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  servers.push(server);
  return port;
}

async function writeCluster(): Promise<void> {
  for (const m of members) await m.close();
  members.length = 0;
  for (const [name, role] of [
    ['pg1', 'master'],
    ['pg2', 'replica'],
  ] as const) {
    const port = await stubMember(name, role);
    const dcs = new Etcd3Dcs(
      { namespace: '/service', scope: 'demo', name, ttl: 600, retryTimeout: 5, ctl: false },
      { hosts: [etcd?.endpoint ?? ''], protocol: 'http' },
    );
    members.push(dcs);
    await dcs.touchMember(
      JSON.stringify({
        conn_url: `postgres://127.0.0.1:${port + 1}/postgres`,
        api_url: `http://127.0.0.1:${port}/patroni`,
        state: 'running',
        role,
        version: '3.0.2',
        timeline: 1,
      }),
    );
    if (role === 'master') {
      expect(await dcs.attemptToAcquireLeader()).toBe(true);
      await dcs.setConfigValue(JSON.stringify({ loop_wait: 10, ttl: 30, retry_timeout: 10 }));
    }
  }
}

beforeAll(async () => {
  dir = tempDir('ctl-prompts');
  etcd = await startEtcd();
  cfg = join(dir, 'ctl.yml');
  writeFileSync(cfg, `scope: demo\nnamespace: /service\netcd3:\n  hosts: ${etcd.endpoint}\n`);
  await writeCluster();
}, 60_000);

afterAll(async () => {
  for (const m of members) await m.close();
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  await etcd?.stop();
  if (dir) removeDir(dir);
});

const show = (r: Run): string => `exit ${String(r.code)}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

const describeWithNeeds = describeNeeding('etcd', 'bundle', 'script');

describeWithNeeds('without a terminal: a missing flag fails at once, naming it (exit 1)', () => {
  const cases: readonly (readonly [readonly string[], string])[] = [
    [
      ['reload', 'demo'],
      '--force is required when stdin is not a terminal (would ask: Are you sure you want to reload members pg1, pg2?)',
    ],
    [
      ['restart', 'demo'],
      '--scheduled is required when stdin is not a terminal (would ask: When should the restart take place',
    ],
    [
      ['restart', 'demo', '--scheduled', 'now'],
      '--force is required when stdin is not a terminal (would ask: Are you sure you want to restart members pg1, pg2?)',
    ],
    [
      ['reinit', 'demo'],
      'is required when stdin is not a terminal (would ask: Which member do you want to reinitialize [pg2]?)',
    ],
    [
      ['reinit', 'demo', 'pg2'],
      '--force is required when stdin is not a terminal (would ask: Are you sure you want to reinitialize members pg2?)',
    ],
    [['switchover', 'demo'], '--leader is required when stdin is not a terminal (would ask: Primary)'],
    [
      ['switchover', 'demo', '--leader', 'pg1'],
      "--candidate is required when stdin is not a terminal (would ask: Candidate ['pg2'])",
    ],
    [
      ['switchover', 'demo', '--leader', 'pg1', '--candidate', 'pg2'],
      '--scheduled is required when stdin is not a terminal (would ask: When should the switchover take place',
    ],
    [
      ['switchover', 'demo', '--candidate', 'pg2', '--leader', 'pg1', '--scheduled', 'now'],
      '--force is required when stdin is not a terminal (would ask: Are you sure you want to switchover cluster demo, demoting current leader pg1?)',
    ],
    [
      ['failover', 'demo'],
      "--candidate is required when stdin is not a terminal (would ask: Candidate ['pg2'])",
    ],
    [
      ['failover', 'demo', '--candidate', 'pg2'],
      '--force is required when stdin is not a terminal (would ask: Are you sure you want to failover cluster demo, demoting current leader pg1?)',
    ],
    [
      ['flush', 'demo', 'restart'],
      '--force is required when stdin is not a terminal (would ask: Are you sure you want to flush members pg1, pg2?)',
    ],
    [
      ['edit-config', 'demo'],
      'one of --set, --pg, --apply or --replace is required when stdin is not a terminal',
    ],
    [
      ['edit-config', 'demo', '-s', 'loop_wait=5'],
      '--force is required when stdin is not a terminal (would ask: Apply these changes?)',
    ],
    [
      ['remove', 'demo'],
      'stdin is not a terminal, and this command must ask: Please confirm the cluster name to remove',
    ],
  ];
  it.each(cases)('%j', async (args, message) => {
    seen.length = 0;
    const r = await pgwarden(args);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr.startsWith('Error: ') && r.stderr.includes(message), show(r)).toBe(true);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.ms).toBeLessThan(10_000);
    expect(seen).toEqual([]);
  });
});

describeWithNeeds('on a terminal', () => {
  it('--force never asks: reload and switchover run without any input', async () => {
    seen.length = 0;
    const reload = await onPty(['reload', 'demo', '--force']).done();
    expect(reload.code, reload.output).toBe(0);
    expect(reload.output).toContain(
      'Reload request received for member pg1 and will be processed within 10 seconds',
    );
    expect(reload.output).not.toMatch(/^\? /m);
    const sw = await onPty(['switchover', 'demo', '--candidate', 'pg2', '--force']).done();
    expect(sw.code, sw.output).toBe(0);
    expect(sw.output).toContain('Successfully switched over to "pg2"');
    expect(sw.output).not.toMatch(/^\? /m);
    expect(seen.map((s) => `${s.member} ${s.method} ${s.path}`)).toEqual([
      'pg1 POST /reload',
      'pg2 POST /reload',
      'pg1 POST /switchover',
    ]);
    expect(JSON.parse(seen[2]?.body ?? '')).toEqual({ leader: 'pg1', candidate: 'pg2', scheduled_at: null });
  });

  it('a declined confirmation aborts with exit 1 and calls no member', async () => {
    seen.length = 0;
    const t = onPty(['reload', 'demo']);
    await t.expect('Are you sure you want to reload members pg1, pg2?');
    t.type('n\r');
    const r = await t.done();
    expect(r.code, r.output).toBe(1);
    expect(r.output).toContain('Error: Aborted reload');
    expect(seen).toEqual([]);
  });

  it('Ctrl-C at a question: Aborted!, exit 1; declining edit-config changes nothing, exit 0', async () => {
    seen.length = 0;
    const t = onPty(['restart', 'demo', '--scheduled', 'now']);
    await t.expect('Are you sure you want to restart members pg1, pg2?');
    t.type('\x03');
    const r = await t.done();
    expect(r.code, r.output).toBe(1);
    expect(r.output).toMatch(/^Aborted!$/m);
    expect(seen).toEqual([]);
    const before = (await pgwarden(['show-config', 'demo'])).stdout;
    const e = onPty(['edit-config', 'demo', '-s', 'ttl=31']);
    await e.expect('+ttl: 31');
    await e.expect('Apply these changes?');
    e.type('n\r');
    const d = await e.done();
    expect(d.code, d.output).toBe(0);
    expect(d.output).not.toContain('Configuration changed');
    expect((await pgwarden(['show-config', 'demo'])).stdout).toBe(before);
  });

  it('switchover asks leader, candidate, time and confirmation; the answers make the request', async () => {
    seen.length = 0;
    const t = onPty(['switchover', 'demo']);
    await t.expect('Primary');
    t.type('\r');
    await t.expect("Candidate ['pg2']");
    t.type('\r');
    await t.expect('When should the switchover take place');
    t.type('\r');
    await t.expect('Are you sure you want to switchover cluster demo, demoting current leader pg1?');
    t.type('y\r');
    const r = await t.done();
    expect(r.code, r.output).toBe(0);
    expect(seen.map((s) => `${s.member} ${s.method} ${s.path}`)).toEqual(['pg1 POST /switchover']);
    expect(JSON.parse(seen[0]?.body ?? '')).toEqual({ leader: 'pg1', candidate: null, scheduled_at: null });
  });

  it('restart asks when, confirmation and version; reinit asks which member', async () => {
    seen.length = 0;
    const t = onPty(['restart', 'demo', 'pg2']);
    await t.expect('When should the restart take place');
    t.type('\r');
    await t.expect('Are you sure you want to restart members pg2?');
    t.type('y\r');
    await t.expect('Restart if the PostgreSQL version is less than provided');
    t.type('16.1\r');
    const r = await t.done();
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('Success: restart on member pg2');
    const u = onPty(['reinit', 'demo']);
    await u.expect('Which member do you want to reinitialize [pg2]?');
    u.type('\r');
    await u.expect('Are you sure you want to reinitialize members pg2?');
    u.type('y\r');
    const v = await u.done();
    expect(v.code, v.output).toBe(0);
    expect(v.output).toContain('Success: reinitialize for member pg2');
    expect(seen.map((s) => [s.member, s.method, s.path, JSON.parse(s.body) as unknown])).toEqual([
      ['pg2', 'POST', '/restart', { postgres_version: '16.1' }],
      ['pg2', 'POST', '/reinitialize', { force: false }],
    ]);
  });

  it('edit-config opens $EDITOR and asks before writing', async () => {
    const editor = join(dir, 'editor.sh');
    writeFileSync(editor, '#!/bin/sh\nsed -i "s/^loop_wait: 10$/loop_wait: 7/" "$1"\n');
    chmodSync(editor, 0o755);
    const t = onPty(['edit-config', 'demo'], { EDITOR: editor });
    await t.expect('+loop_wait: 7');
    await t.expect('Apply these changes?');
    t.type('y\r');
    const r = await t.done();
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('Configuration changed');
    expect((await pgwarden(['show-config', 'demo'])).stdout).toContain('loop_wait: 7\n');
  });

  it('remove: a wrong answer aborts (exit 1); the three typed confirmations delete the cluster', async () => {
    const wrong = onPty(['remove', 'demo']);
    await wrong.expect('Please confirm the cluster name to remove');
    wrong.type('dmeo\r');
    const w = await wrong.done();
    expect(w.code, w.output).toBe(1);
    expect(w.output).toContain('Error: Cluster names specified do not match');

    const t = onPty(['remove', 'demo']);
    await t.expect('Please confirm the cluster name to remove');
    t.type('demo\r');
    await t.expect('please type: "Yes I am aware"');
    t.type('Yes I am aware\r');
    await t.expect('This cluster currently is healthy. Please specify the leader name to continue');
    t.type('pg1\r');
    const r = await t.done();
    expect(r.code, r.output).toBe(0);
    const list = await pgwarden(['list', 'demo', '-f', 'json']);
    expect({ code: list.code, out: list.stdout }).toEqual({ code: 0, out: '[]\n' });
    await writeCluster();
  });
});

describeWithNeeds('exit status of actions', () => {
  it("a member answering with an error status: patronictl's Failed line, exit 1", async () => {
    restartAnswer.set('pg2', [503, 'restart failed']);
    try {
      const r = await pgwarden(['restart', 'demo', '--force']);
      expect(r.code, show(r)).toBe(1);
      expect(r.stdout.trimEnd().split('\n').slice(-2)).toEqual([
        'Success: restart on member pg1',
        'Failed: restart for member pg2, status code=503, (restart failed)',
      ]);
    } finally {
      restartAnswer.delete('pg2');
    }
  });

  it('success exits 0; -f json output is JSON on stdout', async () => {
    const r = await pgwarden(['restart', 'demo', '--force']);
    expect(r.code, show(r)).toBe(0);
    const l = await pgwarden(['list', 'demo', '-f', 'json']);
    expect(l.code).toBe(0);
    expect((JSON.parse(l.stdout) as { Member: string }[]).map((m) => m.Member)).toEqual(['pg1', 'pg2']);
  });
});
