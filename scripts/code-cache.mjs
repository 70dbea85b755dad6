// Writes dist/cli.cjs.cache, V8's code cache for the CLI bundle (bin/load-cli.js). The bundle is loaded without a
// cache and runs what users start most: `--help`, `list --help` and `list` against a stand-in for etcd's JSON
// gateway served from this process; then V8 serializes the functions compiled so far, so that a start that loads
// the cache compiles only what those runs did not reach. A training run that fails leaves the cache smaller, not
// wrong (V8 compiles what it lacks): the build says so and goes on.
import { Buffer } from 'node:buffer';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { URL } from 'node:url';
import { CODE_CACHE, loadCli } from '../bin/load-cli.js';

const SCOPE = 'train';
const member = (name, port, role) =>
  JSON.stringify({
    conn_url: `postgres://127.0.0.1:${port}/postgres`,
    api_url: `http://127.0.0.1:${port + 1000}/patroni`,
    state: 'running',
    role,
    version: '3.0.2',
    xlog_location: 67417104,
    timeline: 1,
  });
const KEYS = {
  config: JSON.stringify({ ttl: 30, loop_wait: 10, retry_timeout: 10, maximum_lag_on_failover: 1048576 }),
  initialize: '7716542204476301791',
  leader: 'pg1',
  'members/pg1': member('pg1', 5432, 'master'),
  'members/pg2': member('pg2', 5433, 'replica'),
  'members/pg3': member('pg3', 5434, 'replica'),
  status: JSON.stringify({ optime: 67417104 }),
};
const b64 = (s) => Buffer.from(s).toString('base64');

/**
 * etcd 3.4's gateway as a 3-member Patroni 3.0.2 cluster `train` shows it: `/version`, `/v3/cluster/member/list`
 * (one etcd member: this server) and `/v3/kv/range`.
 */
function standInEtcd(req, res) {
  const json = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.url === '/version') return json(200, { etcdserver: '3.4.23', etcdcluster: '3.4.0' });
  req.resume();
  if (req.url === '/v3/cluster/member/list') {
    const self = `http://127.0.0.1:${server.address().port}`;
    const members = [{ ID: '2', name: 'etcd1', peerURLs: ['http://127.0.0.1:2380'], clientURLs: [self] }];
    return req.on('end', () => json(200, { header: { cluster_id: '1', member_id: '2' }, members }));
  }
  if (req.url !== '/v3/kv/range')
    return json(404, { error: 'Not Found', code: 5, message: `stand-in etcd: no ${req.url}` });
  const header = { cluster_id: '1', member_id: '2', revision: '186', raft_term: '2' };
  const kvs = Object.entries(KEYS).map(([k, v], i) => ({
    key: b64(`/service/${SCOPE}/${k}`),
    create_revision: String(i + 2),
    mod_revision: String(i + 10),
    version: '1',
    value: b64(v),
  }));
  req.on('end', () => json(200, { header, kvs, count: String(kvs.length) }));
}

const server = createServer(standInEtcd);
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const dir = mkdtempSync(join(tmpdir(), 'pgwarden-code-cache-'));
const config = join(dir, 'patroni.yml');
writeFileSync(
  config,
  `scope: ${SCOPE}\nnamespace: /service\nname: pg1\netcd3:\n  hosts: 127.0.0.1:${server.address().port}\n`,
);

const { exports: cli, script } = loadCli({ cache: false });
const dirOfRun = new URL('../bin/run.js', import.meta.url).href;
const write = process.stdout.write;
const failed = [];
for (const args of [['--help'], ['list', '--help'], ['list', '--config-file', config]]) {
  let out = '';
  process.stdout.write = (chunk) => ((out += String(chunk)), true);
  try {
    await cli.execute({ args, dir: dirOfRun });
    if (process.exitCode) failed.push(`${args.join(' ')}: exit code ${String(process.exitCode)}`);
    else if (args[0] === 'list' && !args.includes('--help') && !out.includes(`Cluster: ${SCOPE}`))
      failed.push(`${args.join(' ')}: no table in its output: ${out}`);
  } catch (e) {
    failed.push(`${args.join(' ')}: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    process.stdout.write = write;
    process.exitCode = undefined;
  }
}
writeFileSync(CODE_CACHE, script.createCachedData());
for (const f of failed)
  process.stderr.write(`code-cache: WARNING training run ${f}; the cache covers less\n`);
server.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
