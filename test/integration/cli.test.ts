/**
 * The built CLI as users run it (`node bin/run.js`, i.e. the bundle): help, exit codes, one-line errors, and
 * `version CLUSTER` talking to members' REST APIs (a stub server on loopback) through a real etcd.
 */
import { execFile, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Etcd3Dcs } from '../../src/dcs/etcd3/etcd3-dcs.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { freePort, removeDir, tempDir } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { readFixture } from '../helpers/fixtures.js';

const ALL_COMMANDS = [
  'agent',
  'dsn',
  'edit-config',
  'failover',
  'flush',
  'history',
  'list',
  'pause',
  'query',
  'reinit',
  'reload',
  'remove',
  'restart',
  'resume',
  'show-config',
  'switchover',
  'topology',
  'version',
];
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

function pgwarden(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const t0 = Date.now();
  return new Promise((resolveRun) => {
    execFile(
      process.execPath,
      [join(ROOT, 'bin', 'run.js'), ...args],
      { env: { PATH: process.env['PATH'], HOME: dir, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolveRun({ code, stdout, stderr, ms: Date.now() - t0 });
      },
    );
  });
}

let dir = '';
let etcd: EtcdServer | undefined;
let rest: Server | undefined;
let restPort = 0;
let deadPort = 0;
const seenAuth: (string | undefined)[] = [];

beforeAll(async () => {
  dir = tempDir('cli');
  etcd = await startEtcd();
  restPort = await freePort();
  deadPort = await freePort();
  const body = readFixture('rest', 'etcd', 'leader', 'patroni.body');
  rest = createServer((req, res) => {
    seenAuth.push(req.headers['authorization']);
    res.writeHead(req.url === '/patroni' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((r) => rest!.listen(restPort, '127.0.0.1', () => r()));
  // Member leases outlive the whole file: its --help runs alone take a minute on a loaded 2-core machine.
  for (const [name, port] of [
    ['pg1', restPort],
    ['pg2', deadPort],
  ] as const) {
    const member = new Etcd3Dcs(
      { namespace: '/service', scope: 'demo', name, ttl: 600, retryTimeout: 5, ctl: false },
      { hosts: [etcd.endpoint], protocol: 'http' },
    );
    await member.touchMember(
      JSON.stringify({
        conn_url: `postgres://127.0.0.1:${port + 1}/postgres`,
        api_url: `http://127.0.0.1:${port}/patroni`,
        state: 'running',
        role: name === 'pg1' ? 'master' : 'replica',
        version: '3.0.2',
      }),
    );
    await member.close();
  }
  // A member without a REST API (api_url) is skipped by `version`, as patronictl skips it.
  const silent = new Etcd3Dcs(
    { namespace: '/service', scope: 'demo', name: 'pg3', ttl: 600, retryTimeout: 5, ctl: false },
    { hosts: [etcd.endpoint], protocol: 'http' },
  );
  await silent.touchMember(
    JSON.stringify({ conn_url: 'postgres://127.0.0.1:1/postgres', state: 'stopped', role: 'replica' }),
  );
  await silent.close();
}, 60_000);

afterAll(async () => {
  await new Promise<void>((r) => (rest ? rest.close(() => r()) : r()));
  await etcd?.stop();
  removeDir(dir);
});

const describeWithNeeds = describeNeeding('etcd', 'bundle');

describeWithNeeds('pgwarden CLI', () => {
  it('--help lists every command with a summary', async () => {
    const r = await pgwarden(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ALL_COMMANDS) {
      expect(r.stdout).toMatch(new RegExp(`^  ${cmd} +\\S`, 'm'));
    }
  });

  it('every command has a description and examples', async () => {
    for (const cmd of ALL_COMMANDS) {
      const r = await pgwarden([cmd, '--help']);
      expect(r.code, cmd).toBe(0);
      expect(r.stdout, cmd).toContain('DESCRIPTION');
      expect(r.stdout, cmd).toContain('EXAMPLES');
    }
  });

  it('prints its version', async () => {
    const r = await pgwarden(['version']);
    expect(r).toMatchObject({ code: 0, stdout: 'pgwarden version 0.1.0\n' });
  });

  it('exits 2 on usage errors', async () => {
    expect((await pgwarden(['list', '--bogus'])).code).toBe(2);
    expect((await pgwarden(['nosuchcommand'])).code).toBe(2);
    expect((await pgwarden(['list', '-f', 'xml'])).code).toBe(2);
  });

  it('exits 1 with one line naming a missing config file, without a stack trace', async () => {
    const r = await pgwarden(['-c', join(dir, 'nope.yml'), 'list']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `Error: Provided config file ${join(dir, 'nope.yml')} not existing or no read rights. Check the -c/--config-file parameter\n`,
    );
  });

  it('exits 1 naming the file for malformed YAML and for a config without a DCS', async () => {
    const bad = join(dir, 'bad.yml');
    writeFileSync(bad, 'scope: demo\netcd3:\n  hosts: [127.0.0.1:2379\n');
    const r1 = await pgwarden(['-c', bad, 'list']);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(
      new RegExp(`^Error: config file ${bad} is not valid YAML: .+ at line \\d+, column \\d+\\n$`),
    );
    const nodcs = join(dir, 'nodcs.yml');
    writeFileSync(nodcs, 'scope: demo\n');
    const r2 = await pgwarden(['-c', nodcs, 'list']);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toBe(
      `Error: no DCS configured in ${nodcs}: add an etcd3 or zookeeper section, set PATRONI_ETCD3_HOSTS, or pass --dcs-url etcd3://HOST:PORT\n`,
    );
  });

  it('exits 1 naming the endpoint when the DCS does not answer, within the retry timeout', async () => {
    const port = await freePort();
    const r = await pgwarden(['-d', `etcd3://127.0.0.1:${port}`, 'list', 'demo']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`Error: no etcd3 at 127.0.0.1:${port}: connection refused\n`);
    expect(r.ms).toBeLessThan(10_000 + 5_000);
  });

  it('reads scope and DCS from PATRONI_* variables alone', async () => {
    const r = await pgwarden(['list', '-f', 'json'], {
      PATRONI_SCOPE: 'demo',
      PATRONI_ETCD3_HOSTS: etcd!.endpoint,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // No leader key and no WAL positions: all are replicas with unknown lag.
    expect(JSON.parse(r.stdout)).toEqual([
      {
        Cluster: 'demo',
        Member: 'pg1',
        Host: `127.0.0.1:${restPort + 1}`,
        Role: 'Replica',
        State: 'running',
        'Lag in MB': 'unknown',
      },
      {
        Cluster: 'demo',
        Member: 'pg2',
        Host: `127.0.0.1:${deadPort + 1}`,
        Role: 'Replica',
        State: 'running',
        'Lag in MB': 'unknown',
      },
      {
        Cluster: 'demo',
        Member: 'pg3',
        Host: '127.0.0.1:1',
        Role: 'Replica',
        State: 'stopped',
        'Lag in MB': 'unknown',
      },
    ]);
  });

  it('version CLUSTER asks each member over REST with Basic auth and reports members that do not answer', async () => {
    const cfg = join(dir, 'auth.yml');
    writeFileSync(
      cfg,
      `scope: demo\netcd3:\n  hosts: ${etcd!.endpoint}\nrestapi:\n  authentication: {username: admin, password: secret}\n`,
    );
    seenAuth.length = 0;
    const r = await pgwarden(['-c', cfg, 'version', 'demo']);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, 3)).toEqual(['pgwarden version 0.1.0', '', 'pg1: Patroni 3.0.2 PostgreSQL 15.18']);
    expect(lines[3]).toMatch(/^pg2: failed to get version: .*(ECONNREFUSED|refused)/);
    expect(lines.slice(4)).toEqual(['']);
    expect(seenAuth).toEqual([`Basic ${Buffer.from('admin:secret').toString('base64')}`]);
  });

  it('list -t -w SECONDS prints a timestamp and refreshes, clearing the screen, until interrupted', async () => {
    const child = spawn(
      process.execPath,
      [join(ROOT, 'bin', 'run.js'), '-d', `etcd3://${etcd!.endpoint}`, 'list', 'demo', '-t', '-w', '0.3'],
      {
        env: { PATH: process.env['PATH'], HOME: dir },
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const deadline = Date.now() + 15_000;
    while ((out.match(/\+ Cluster: demo/g) ?? []).length < 3 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    const frames = out.split('\x1b[2J\x1b[1;1H').filter((f) => f !== '');
    expect(frames.length).toBeGreaterThanOrEqual(3);
    for (const f of frames) expect(f).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n\+ Cluster: demo/);
  });
});
