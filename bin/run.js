#!/usr/bin/env node
// oclif entry. dist/cli.cjs is one bundle holding oclif, the commands and what they use (scripts/build.mjs), loaded
// with V8's code cache (load-cli.js): start-up reads two files and compiles little.

// `pgwarden agent CONFIG` (the daemon) starts without oclif: its heap then holds the agent only. Anything else
// given to `agent` (--help, a bad flag) goes through oclif, which explains it.
const argv = process.argv.slice(2);
if (argv[0] === 'agent') {
  // The daemon spends its time waiting on sockets and timers, running little JavaScript: V8's baseline and
  // optimizing compilers (Sparkplug, TurboFan) would keep ~6 MiB of their own code and output resident for no
  // measurable gain in CPU (agent-footprint.test.ts). Set before any agent code is loaded; tiering reads them.
  // V8's memory reducer, once the heap grew after start-up, waits for a quiet moment (30-240 s after start in an
  // idle 3-member cluster) and then runs three full mark-compacts in a row: on 2026-12-07 (--trace-gc, ZooKeeper)
  // the first took the heap from ~10.5 to 7.7 MB, the next two freed 0-0.6 MB, and the three cost ~110 ms of CPU,
  // the bursts agent-footprint's window caught on one agent or another. One is enough: ~40 ms, RSS +1 MiB.
  const v8 = await import('node:v8');
  v8.setFlagsFromString('--no-opt --no-sparkplug --memory-reducer-single-gc');
  const { plainAgentConfigArg, runAgentProcess } = await import('../dist/agent.js');
  const configPath = plainAgentConfigArg(argv.slice(1));
  if (configPath !== undefined) await runAgentProcess(configPath);
}
const { loadCli } = await import('./load-cli.js');
const { execute } = loadCli().exports;

// patronictl takes its global options before the command (`patronictl -c f.yml list`); oclif wants them after
// the command name, so move a leading run of them there. They move under their long names: after the name, `query`
// reads -c as its SQL and -d as its database, as patronictl's query does.
const WITH_VALUE = new Set(['-c', '--config-file', '-d', '--dcs-url', '--dcs']);
const FLAGS = new Set(['-k', '--insecure']);
const LONG = { '-c': '--config-file', '-d': '--dcs-url', '-k': '--insecure' };
const long = (a) => {
  const [name, ...value] = a.split('=');
  return [LONG[name] ?? name, ...value].join('=');
};

function reorder(argv) {
  const globals = [];
  let i = 0;
  while (i < argv.length) {
    const a = argv[i];
    const name = a.split('=', 1)[0];
    if (WITH_VALUE.has(name) && !a.includes('=')) {
      if (i + 1 >= argv.length) break;
      globals.push(long(a), argv[i + 1]);
      i += 2;
    } else if (WITH_VALUE.has(name) || FLAGS.has(a)) {
      globals.push(long(a));
      i += 1;
    } else break;
  }
  if (globals.length === 0 || i >= argv.length || argv[i].startsWith('-')) return argv;
  return [argv[i], ...globals, ...argv.slice(i + 1)];
}

await execute({ args: reorder(argv), dir: import.meta.url });
