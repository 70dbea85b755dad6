/**
 * `npm run test:faults [FILTER]`: the fault suite. Each row (fault x implementation x synchronous mode, id
 * `fault/impl/sync`; FILTER is a regular expression on the id) runs on a fresh cluster in network namespaces,
 * one row at a time, within ROW_LIMIT_MS. Results are merged by id into .bench/faults.json, and docs/faults.md is
 * rewritten from it. Exit code 1 when a pgwarden row misses a target (two writable members; a lost acknowledged
 * write with synchronous mode on or strict; no self-healing) or a row could not run. `--report` only rewrites
 * docs/faults.md from .bench/faults.json. FAULT_RUNS=N runs each row N times (the median run is shown).
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { cpus, hostname, release, tmpdir, totalmem } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { createLab, CLIENT_IP, sweepStale } from '../harness/netns-lab.js';
import { removeDir, tempDir, waitFor } from '../harness/process.js';
import {
  startEtcdCluster,
  startZooKeeperEnsemble,
  type DcsKind,
  startFaultHaproxy,
  startMembers,
  sweepStaleDisks,
  unmountDisks,
  TIMING,
  type Implementation,
  type Member,
  type Members,
  type SyncMode,
} from './cluster.js';
import { FAULTS, type Fault } from './faults.js';
import {
  acceptsByMember,
  combineRuns,
  doubleRounds,
  lostAcks,
  markdownTable,
  parseMarkdownTable,
  resumeSeconds,
  targetLines,
  type RowResult,
} from './metrics.js';
import { createTables, startProbe, startWriter, storedIds } from './traffic.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const JSON_FILE = join(REPO, '.bench', 'faults.json');
const DOC_FILE = join(REPO, 'docs', 'faults.md');
const ROW_LIMIT_MS = 7 * 60_000;
/** FAULT_RUNS=N runs each row N times; the table shows the median run (combineRuns) and the range. */
const RUNS = Math.max(1, Number.parseInt(process.env.FAULT_RUNS ?? '1', 10) || 1);
const IMPLS: readonly Implementation[] = ['pgwarden', 'patroni-4.1.4', 'patroni-3.0.2'];
const SYNCS: readonly SyncMode[] = ['off', 'on', 'strict'];
const DCSS: readonly DcsKind[] = ['etcd3', 'zookeeper'];

interface Row {
  readonly id: string;
  readonly fault: Fault;
  readonly impl: Implementation;
  readonly sync: SyncMode;
  readonly dcs: DcsKind;
}

interface StoredRow extends RowResult {
  readonly id: string;
  readonly date: string;
  readonly seconds: number;
}

function allRows(): Row[] {
  return FAULTS.flatMap((fault) =>
    IMPLS.flatMap((impl) =>
      DCSS.flatMap((dcs) =>
        SYNCS.map((sync) => ({
          id: `${fault.name}/${impl}/${sync}${dcs === 'etcd3' ? '' : `/${dcs}`}`,
          fault,
          impl,
          sync,
          dcs,
        })),
      ),
    ),
  );
}

const EMPTY = {
  doubleWritable: 0,
  doubleWho: [],
  acked: 0,
  probeAccepts: {},
  lost: 0,
  resumeSeconds: null,
  healed: false,
  healSeconds: null,
} as const;

function log(text: string): void {
  process.stdout.write(`[faults ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The healthy leader's index, wrapped: waitFor takes a falsy value (index 0) for 'not yet'. */
async function healthy(members: Members): Promise<{ index: number } | undefined> {
  const index = await members.healthyLeader();
  return index === undefined ? undefined : { index };
}

/** A row that did not heal or lost acknowledged writes leaves its members' logs under .bench/faults-logs/<row>/. */
function keepLogs(row: Row, list: readonly Member[]): void {
  const to = join(REPO, '.bench', 'faults-logs', row.id.replace(/\//g, '_'));
  rmSync(to, { recursive: true, force: true });
  for (const m of list) {
    mkdirSync(join(to, m.name), { recursive: true });
    for (const f of [m.logFile, join(m.dir, 'pglog', 'postgresql.log'), m.configFile]) {
      if (existsSync(f)) copyFileSync(f, join(to, m.name, basename(f)));
    }
  }
  log(`${row.id}: logs kept in ${to}`);
}

/** One row on a fresh lab; everything it started is stopped and removed before it returns. */
async function runRow(row: Row): Promise<RowResult> {
  const lab = createLab();
  const dir = tempDir('faults');
  const deadline = Date.now() + ROW_LIMIT_MS;
  const hold = async (ms: number): Promise<void> => {
    if (Date.now() + ms > deadline) throw new Error(`row time (${ROW_LIMIT_MS / 1000} s) is up`);
    await new Promise((r) => setTimeout(r, ms));
  };
  const left = (): number => Math.max(1000, deadline - Date.now());
  const stops: (() => Promise<void>)[] = [];
  const fault = row.dcs === 'etcd3' ? row.fault.name : `${row.fault.name} (${row.dcs})`;
  const base = { fault, impl: row.impl, sync: row.sync };
  let partial: Partial<RowResult> = {};
  try {
    const etcd =
      row.dcs === 'zookeeper' ? await startZooKeeperEnsemble(lab, dir) : await startEtcdCluster(lab, dir);
    stops.push(() => etcd.stop());
    const members = startMembers(lab, dir, row.impl, row.sync, etcd, row.fault.diskMb, row.fault.watchdog);
    stops.unshift(() => members.stop());
    let leader: number;
    try {
      leader = await waitFor(
        'one leader and two streaming replicas',
        () => healthy(members),
        120_000,
        500,
      ).then((h) => h.index);
    } catch (e) {
      throw new Error(`${message(e)} (${members.unhealthyBecause()})\n${members.logTails(5)}`);
    }
    const leaderMember = members.list[leader];
    if (!leaderMember) throw new Error('no leader');
    await createTables(leaderMember.host.ip, 5432);
    const haproxy = await startFaultHaproxy(members.list, dir);
    stops.unshift(() => haproxy.stop());
    const writer = startWriter(haproxy.rwPort);
    const probe = startProbe(members.list.map((m) => ({ name: m.name, ip: m.host.ip })));
    stops.unshift(async () => {
      await writer.stop();
      await probe.stop();
    });
    await waitFor(
      '20 acknowledged writes before the fault',
      () => writer.records().length >= 20,
      30_000,
      100,
    );

    if (row.sync !== 'off') {
      // The fault hits a cluster whose synchronous standby is in place, not the seconds before the leader names one.
      await waitFor(
        'a synchronous standby (GET /sync 200 on a member)',
        async () =>
          (await Promise.all(members.list.map((_m, i) => members.restStatus(i, '/sync')))).includes(200),
        30_000,
        250,
      );
    }
    const faultStart = Date.now();
    log(`${row.id}: ${row.fault.what} (leader ${leaderMember.name})`);
    await row.fault.run({ lab, etcd, members, leader, hold });
    const faultEnd = Date.now();
    log(`${row.id}: fault removed after ${((faultEnd - faultStart) / 1000).toFixed(1)} s; waiting to heal`);

    let finalLeader: number | undefined;
    try {
      finalLeader = await waitFor(
        'the cluster to heal',
        () => healthy(members),
        Math.min(120_000, left()),
        500,
      ).then((h) => h.index);
    } catch {
      finalLeader = undefined;
    }
    const healedAt = Date.now();
    if (finalLeader === undefined) keepLogs(row, members.list);
    // Writes through HAProxy once healed: the writer's last gap is then closed, not cut short by the end.
    const ackedBefore = writer.records().length;
    await waitFor(
      'writes after healing',
      () => writer.records().length >= ackedBefore + 20,
      30_000,
      100,
    ).catch(() => undefined);
    await writer.stop();
    await probe.stop();
    const acks = writer.records();
    const doubles = doubleRounds(probe.records());
    partial = {
      doubleWritable: doubles.length,
      doubleWho: [...new Set(doubles.map((r) => r.accepted.map((a) => a.name).join('+')))],
      acked: acks.length,
      probeAccepts: acceptsByMember(probe.records()),
      resumeSeconds: resumeSeconds(acks, faultStart, Date.now()),
      healed: finalLeader !== undefined,
      healSeconds: finalLeader === undefined ? null : Math.round((healedAt - faultEnd) / 100) / 10,
    };
    // Lost writes are counted on the final primary; without one, on whichever member answers as primary.
    let primary = finalLeader;
    if (primary === undefined) {
      const codes = await Promise.all(members.list.map((_m, i) => members.restStatus(i, '/primary')));
      const ps = codes.flatMap((c, i) => (c === 200 ? [i] : []));
      primary = ps.length === 1 ? ps[0] : undefined;
    }
    const pm = primary === undefined ? undefined : members.list[primary];
    if (!pm) throw new Error(`no single primary at the end to count lost writes on\n${members.logTails()}`);
    const lost = lostAcks(acks, await storedIds(pm.host.ip, 5432));
    if (lost.length > 0) {
      // Which writes, acknowledged when (s from the fault's start), for the post-mortem; with the members' logs.
      const at = new Map(acks.map((a) => [a.id, a.at]));
      const when = (id: number | undefined): string =>
        id === undefined ? '?' : (((at.get(id) ?? faultStart) - faultStart) / 1000).toFixed(1);
      log(
        `${row.id}: ${lost.length} acknowledged ids missing on ${pm.name}: ${lost[0]} (at ${when(lost[0])} s) to ` +
          `${lost.at(-1)} (at ${when(lost.at(-1))} s)`,
      );
      if (finalLeader !== undefined) keepLogs(row, members.list);
    }
    if (finalLeader === undefined)
      log(`${row.id}: did not heal (${members.unhealthyBecause()})\n${members.logTails(15)}`);
    return { ...base, ...EMPTY, ...partial, lost: lost.length };
  } catch (e) {
    return { ...base, ...EMPTY, ...partial, error: message(e) };
  } finally {
    for (const stop of stops) await stop().catch((e: unknown) => log(`cleanup: ${message(e)}`));
    lab.destroy();
    unmountDisks();
    removeDir(dir);
  }
}

/** The commit this run's code is at, `+changes` when src/ or test/ differ from it (named in each row). */
function codeCommit(): string {
  const git = (...args: string[]): string =>
    execFileSync('git', args, { cwd: REPO, encoding: 'utf8' }).trim();
  try {
    const dirty = git('status', '--porcelain', '--', 'src', 'test') !== '';
    return `${git('rev-parse', '--short', 'HEAD')}${dirty ? '+changes' : ''}`;
  } catch {
    return 'unknown commit';
  }
}

function readStored(): StoredRow[] {
  if (existsSync(JSON_FILE)) {
    const doc = JSON.parse(readFileSync(JSON_FILE, 'utf8')) as { rows?: StoredRow[] };
    return doc.rows ?? [];
  }
  return existsSync(DOC_FILE) ? rowsOfCommittedTable(readFileSync(DOC_FILE, 'utf8')) : [];
}

/**
 * A checkout without .bench/faults.json: the rows of the committed docs/faults.md, so a run of a few rows adds to the
 * table instead of replacing it. A row's date is the table's first day and the `HH:MM` its code column names.
 */
function rowsOfCommittedTable(doc: string): StoredRow[] {
  const first = /Rows run\s+(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(doc);
  const day = first?.[1] ?? '1970-01-01';
  return parseMarkdownTable(doc).map((r) => {
    const [name, dcs] = r.fault.split(' (');
    const time = /(\d{2}:\d{2})$/.exec(r.code ?? '')?.[1] ?? first?.[2] ?? '00:00';
    return {
      ...r,
      id: `${name}/${r.impl}/${r.sync}${dcs ? `/${dcs.replace(')', '')}` : ''}`,
      date: `${day}T${time}:00.000Z`,
      seconds: 0,
    };
  });
}

function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${hostname()}: ${cpus().length} x ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, Node ${process.version}`;
}

function writeReport(rows: readonly StoredRow[]): void {
  const order = new Map(allRows().map((r, i) => [r.id, i]));
  const sorted = [...rows].sort((a, b) => (order.get(a.id) ?? 1e9) - (order.get(b.id) ?? 1e9));
  mkdirSync(join(REPO, '.bench'), { recursive: true });
  writeFileSync(JSON_FILE, `${JSON.stringify({ machine: machine(), rows: sorted }, null, 2)}\n`);
  const dates = sorted.map((r) => r.date).sort();
  const faults = FAULTS.map((f) => `- \`${f.name}\`: ${f.what}`).join('\n');
  mkdirSync(join(REPO, 'docs'), { recursive: true });
  writeFileSync(
    DOC_FILE,
    `# Fault suite results

Written by \`npm run test:faults [FILTER]\` (test/faults/run.ts); do not edit by hand. Rows run
${dates[0]?.slice(0, 16) ?? '-'} to ${dates.at(-1)?.slice(0, 16) ?? '-'} UTC on ${machine()}, while other work
shared the machine's CPUs. Rows not in the table have not been run. The \`code\` column names the pgwarden
commit each row ran on (the suite's code; for Patroni rows Patroni's own code ran the agents) and the time it
ended; \`faults@d7e1450\` rows ran on the fault suite's first version (branch \`faults\`, results committed in
d7e1450), between 17:06 and 18:29 UTC.

Each row: a fresh 3-member cluster (agent + PostgreSQL 15 per network namespace), a 3-node etcd cluster (one
namespace per node), HAProxy on the client side with \`OPTIONS /primary\` checks; ttl ${TIMING.ttl}, loop_wait ${TIMING.loopWait},
retry_timeout ${TIMING.retryTimeout}. A writer inserts a new id every 50 ms through HAProxy and records each acknowledged id; a probe
inserts on every member directly every ~100 ms.

- two writable (rounds): probe rounds in which two members both acknowledged a direct write;
- lost: acknowledged ids missing on the final primary;
- writes resume after: the longest time without an acknowledged write from the fault's start (never: none after);
- heals: one leader and two streaming replicas again, within 120 s of the fault's end, with no human action.

${markdownTable(sorted)}

Targets (pgwarden rows that ran to the end; rows with an error are listed in the table only):

${targetLines(sorted, (name) => FAULTS.some((f) => f.name === name.replace(/ \(.*\)$/, '') && f.control === true)).join('\n')}

What the rows show (written with the code, not measured by it):

- \`isolated\`, \`dcs-split-leader-minority\`: on code before 2409559 the ex-primary never rejoined. It demotes itself
  (offline) and runs as a replica, but its timeline forked off the new leader's (its own last writes and shutdown
  checkpoint are past the fork) and the divergence was only checked on a stopped instance: PostgreSQL logged "new
  timeline N forked off current database system timeline" forever. A running replica is now checked as in Patroni
  4.1.4 (after a start, a new leader, or a later leader timeline), then pg_rewind runs and it streams again.
- The offline demotion of an isolated leader lasts as long as the partition, at most wal_sender_timeout (60 s):
  PostgreSQL's fast shutdown has written its shutdown checkpoint but waits for its WAL senders to deliver it to
  standbys it cannot reach. Patroni 4.1.4 stops the same way (\`pg_ctl stop -m fast\`, then waits for the postmaster).
  No writes are accepted meanwhile.
- Synchronous mode: since b1357ec the leader writes \`/sync\` with its name and no standby as soon as synchronous
  mode is on (Patroni 4's \`_maybe_enable_synchronous_mode\`). Before, a failover in the seconds before the first
  standby was confirmed could promote a replica that did not have the last commits: one run of
  dcs-split-leader-minority/on on e1337d2 lost 101 acknowledged writes (4 more runs lost none). Now a fault in
  that window means no failover until it heals (as on Patroni 4.1.4: its isolated/on and
  dcs-split-leader-minority/on rows waited 57-58 s). Since 459f967 rows with synchronous mode on/strict start the
  fault only once a synchronous standby is in place; rows run before did not wait.
- \`sigstop-agent\`: a frozen agent cannot demote its PostgreSQL; only a watchdog prevents the rounds with two
  writable members, on Patroni as on pgwarden: the row is a control (the checker must see two writers) and
  leaves the targets. \`sigstop-agent-watchdog\` is the same fault with \`watchdog: {mode:
  required}\` on a stand-in device (below): the frozen leader's watchdog expires (ttl minus safety_margin after its
  last ping) before its lock does, so the host is reset before another member can be promoted.
- \`heals\` is checked more strictly since e1337d2: every replica's WAL receiver must stream the leader's timeline (a
  replica whose timeline forked off shows \`streaming\` in pg_stat_replication for a moment every few seconds).

Rows whose fault is marked \`(zookeeper)\` ran on a 3-node ZooKeeper 3.8 ensemble (one namespace per server,
tickTime 1 s) instead of etcd; the DCS faults then apply to its servers (\`etcd-leader-kill\`: ZooKeeper's leader).
Not covered yet: Patroni 3.0.2 beyond the rows listed.
Partitions are blackhole routes inside each namespace (no nftables/iptables/tc drop on this machine): the cut
host's own connection attempts fail at once (EINVAL), its peers' time out. The client side (writer, probe,
HAProxy) is the root namespace on the bridge address 10.213.0.1. Watchdog is off except in
\`sigstop-agent-watchdog\`: there is no softdog on this machine, so that row uses the named pipe of Patroni's
\`driver: testing\` (both implementations speak it) read by the suite (test/faults/watchdog.ts), which resets the
member's host (kill -9 of its agent and PostgreSQL, the agent started again 5 s later) when a timeout passes without
a ping; in every other row a frozen agent (sigstop-agent) leaves its PostgreSQL writable while another member is
promoted, on Patroni as on pgwarden. A row ran once unless its notes say how many runs (\`FAULT_RUNS=N\`: the median run
by writes-resume time is shown, with the fastest and slowest); between single runs, differences within one loop_wait
(2 s) are within run-to-run variation.

Faults:

${faults}
`,
  );
}

const LOCK = join(tmpdir(), 'pgwarden-faults.lock');

/** One run at a time: a second one would sweep the first one's namespaces as stale. */
function takeLock(): void {
  const holder = Number.parseInt(existsSync(LOCK) ? readFileSync(LOCK, 'utf8') : '', 10);
  if (Number.isInteger(holder) && holder !== process.pid && existsSync(`/proc/${holder}`)) {
    throw new Error(`another fault run (pid ${holder}) is active; wait for it or stop it (${LOCK})`);
  }
  writeFileSync(LOCK, String(process.pid));
  process.once('exit', () => rmSync(LOCK, { force: true }));
}

async function main(): Promise<void> {
  takeLock();
  if (process.argv[2] === '--report') {
    writeReport(readStored());
    return;
  }
  const filter = new RegExp(process.argv.slice(2).join('|') || '.');
  const rows = allRows().filter((r) => filter.test(r.id));
  if (rows.length === 0) throw new Error(`no row matches ${filter}; ids look like dcs-cut/pgwarden/on`);
  sweepStale();
  sweepStaleDisks(join(tmpdir(), 'pgwarden-faults-'));
  for (const d of readdirSync(tmpdir())) if (d.startsWith('pgwarden-faults-')) removeDir(join(tmpdir(), d));
  const commit = codeCommit();
  log(`${rows.length} row(s) on ${commit}; client side ${CLIENT_IP}`);
  let failed = 0;
  for (const row of rows) {
    const started = Date.now();
    const results: RowResult[] = [];
    for (let k = 0; k < RUNS; k++) {
      const one = await runRow(row);
      log(`${row.id}${RUNS > 1 ? ` run ${k + 1}/${RUNS}` : ''}: ${JSON.stringify(one)}`);
      results.push(one);
      if (one.error !== undefined) break;
    }
    const result = combineRuns(results);
    const seconds = Math.round((Date.now() - started) / 1000);
    log(`${row.id}: ${JSON.stringify(result)} (${seconds} s)`);
    const stored = readStored().filter((r) => r.id !== row.id);
    const date = new Date().toISOString();
    const code = `${commit} ${date.slice(11, 16)}`;
    writeReport([...stored, { ...result, code, id: row.id, date, seconds }]);
    const missed =
      result.error !== undefined ||
      (row.fault.control === true && result.doubleWritable === 0) ||
      (row.impl === 'pgwarden' &&
        row.fault.control !== true &&
        (result.doubleWritable > 0 || !result.healed || (row.sync !== 'off' && result.lost > 0)));
    if (missed) failed++;
  }
  log(`${rows.length - failed} of ${rows.length} row(s) met the targets; table in docs/faults.md`);
  process.exitCode = failed > 0 ? 1 : 0;
}

await main();
