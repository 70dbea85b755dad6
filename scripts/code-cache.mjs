// Writes dist/cli.cjs.cache, V8's code cache for the CLI bundle (bin/load-cli.js). The bundle is loaded without a
// cache and runs what users start most: `--help`, `list --help` and `list` against stand-ins for etcd's JSON
// gateway and for ZooKeeper served from this process; then V8 serializes the functions compiled so far, so that a start that loads
// the cache compiles only what those runs did not reach. A training run that fails leaves the cache smaller, not
// wrong (V8 compiles what it lacks): the build says so and goes on.
import { Buffer } from 'node:buffer';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
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

/** ZooKeeper's 64-bit fields; the stand-in's values all fit in a double. */
const long = (n) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(n));
  return b;
};
const int = (n) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const bytes = (b) => Buffer.concat([int(b.length), b]);
const SESSION = 0x1000000000001;
/** A znode's Stat (68 bytes); members and the leader are ephemerals of a member's session. */
const stat = (i, dataLength, numChildren, ephemeral) =>
  Buffer.concat([
    ...[i + 2, i + 10, 1e12, 1e12].map(long),
    ...[0, numChildren, 0].map(int),
    long(ephemeral ? SESSION + 1 : 0),
    int(dataLength),
    int(numChildren),
    long(i + 10),
  ]);

/**
 * ZooKeeper 3.8 as a 3-member Patroni 3.0.2 cluster `train` shows it, on the wire (jute): the session handshake,
 * getChildren2, getData, exists, ping and closeSession, which is all `list` sends.
 */
function standInZooKeeper(socket) {
  const base = `/service/${SCOPE}`;
  const znodes = new Map(
    Object.entries(KEYS).map(([k, v], i) => [`${base}/${k}`, { i, value: Buffer.from(v) }]),
  );
  const childrenOf = (path) => {
    const names = new Set();
    for (const p of znodes.keys())
      if (p.startsWith(`${path}/`)) names.add(p.slice(path.length + 1).split('/')[0]);
    return names.size > 0 || path === base ? [...names] : undefined;
  };
  const reply = (xid, err, body = Buffer.alloc(0)) => {
    const payload = Buffer.concat([int(xid), long(100), int(err), body]);
    socket.write(Buffer.concat([int(payload.length), payload]));
  };
  const NO_NODE = -101;
  let pending = Buffer.alloc(0);
  let connected = false;
  socket.on('error', () => undefined);
  socket.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
      const frame = pending.subarray(4, 4 + pending.readInt32BE(0));
      pending = pending.subarray(4 + frame.length);
      if (!connected) {
        connected = true;
        const body = Buffer.concat([
          int(0),
          int(frame.readInt32BE(12)),
          long(SESSION),
          bytes(Buffer.alloc(16)),
        ]);
        socket.write(Buffer.concat([int(body.length), body]));
        continue;
      }
      const [xid, type] = [frame.readInt32BE(0), frame.readInt32BE(4)];
      const path = type === -11 || type === 11 ? '' : frame.toString('utf8', 12, 12 + frame.readInt32BE(8));
      const node = znodes.get(path);
      const children = childrenOf(path);
      if (type === 11) reply(xid, 0);
      else if (type === -11) {
        reply(xid, 0);
        socket.end();
      } else if (type === 12) {
        if (!children) reply(xid, NO_NODE);
        else
          reply(
            xid,
            0,
            Buffer.concat([
              int(children.length),
              ...children.map((c) => bytes(Buffer.from(c))),
              stat(0, 0, children.length, false),
            ]),
          );
      } else if (type === 4 || type === 3) {
        if (!node && !children) reply(xid, NO_NODE);
        else {
          const value = node?.value ?? Buffer.alloc(0);
          const st = stat(node?.i ?? 0, value.length, children?.length ?? 0, /leader|members/.test(path));
          reply(xid, 0, type === 4 ? Buffer.concat([bytes(value), st]) : st);
        }
      } else {
        socket.destroy();
        return;
      }
    }
  });
}

const server = createServer(standInEtcd);
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const zooKeeper = createTcpServer(standInZooKeeper);
await new Promise((resolve) => zooKeeper.listen(0, '127.0.0.1', resolve));
const dir = mkdtempSync(join(tmpdir(), 'pgwarden-code-cache-'));
/**
 * The rest of a member's patroni.yml as deployments write it (nested mappings, lists of scalars and of mappings,
 * quoted and plain scalars, comments): `list` parses the whole file, and a YAML construct the training runs did not
 * meet is compiled at every start (half a million instructions a line of a 75-line file, before this was added).
 */
const MEMBER_CONFIG = `# a member of ${SCOPE}
log:
  level: INFO
  format: '%(asctime)s %(levelname)s: %(message)s'
restapi:
  listen: 0.0.0.0:8008
  connect_address: 10.0.0.1:8008
  authentication: {username: admin, password: "s3cret"}
bootstrap:
  dcs:
    ttl: 30
    loop_wait: 10
    retry_timeout: 10
    maximum_lag_on_failover: 1048576
    synchronous_mode: false
    postgresql:
      use_pg_rewind: true
      parameters:
        max_connections: 100
        shared_buffers: 1GB
        hot_standby: 'on'
        wal_keep_size: 128MB
  initdb:
  - encoding: UTF8
  - data-checksums
postgresql:
  listen: 0.0.0.0:5432
  connect_address: 10.0.0.1:5432
  data_dir: /var/lib/postgresql/15/main
  bin_dir: /usr/lib/postgresql/15/bin
  authentication:
    replication:
      username: replicator
      password: rep-pass
    superuser:
      username: postgres
      password: "pg-pass"
  pg_hba:
  - local all all peer
  - host replication replicator 10.0.0.0/24 scram-sha-256
  parameters:
    unix_socket_directories: '/var/run/postgresql'
    log_line_prefix: '%m [%p] '
  callbacks:
    on_role_change: |
      /usr/local/bin/role-change
watchdog:
  mode: 'off'
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
  priority: 1.5
  zone: ~
`;
const configFor = (name, section) => {
  const path = join(dir, `${name}.yml`);
  writeFileSync(path, `scope: ${SCOPE}\nnamespace: /service\nname: pg1\n${section}\n${MEMBER_CONFIG}`);
  return path;
};
const config = configFor('etcd3', `etcd3:\n  hosts: 127.0.0.1:${server.address().port}`);
const zooKeeperConfig = configFor('zookeeper', `zookeeper:\n  hosts: 127.0.0.1:${zooKeeper.address().port}`);

const { exports: cli, script } = loadCli({ cache: false });
const dirOfRun = new URL('../bin/run.js', import.meta.url).href;
const write = process.stdout.write;
const failed = [];
const runs = [
  ['--help'],
  ['list', '--help'],
  ['list', '--config-file', config],
  ['list', '--config-file', zooKeeperConfig],
];
for (const args of runs) {
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
zooKeeper.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
