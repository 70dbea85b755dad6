/**
 * patroni.dynamic.json (Patroni's save_cache/_load_cache): read at start, used until the DCS has a configuration,
 * written as Python's json.dump writes it when the configuration changed, once the data directory is initialized.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../src/config/agent-config.js';
import { ConfigFiles } from '../../src/postgres/config-files.js';
import { DynamicCache, canonicalJson } from '../../src/postgres/dynamic-cache.js';
import { InstanceState } from '../../src/postgres/instance-state.js';
import { LocalSession } from '../../src/postgres/local-session.js';

const dir = mkdtempSync(join(tmpdir(), 'pgwarden-dyn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function logSink(): {
  lines: string[];
  log: { info(t: string): void; warning(t: string): void; error(t: string): void };
} {
  const lines: string[] = [];
  return {
    lines,
    log: {
      info: (t) => lines.push(t),
      warning: (t) => lines.push(t),
      error: (t) => lines.push(`ERROR ${t}`),
    },
  };
}

describe('DynamicCache', () => {
  it('writes Python json.dump text once per change, with the data directory file mode', () => {
    const data = join(dir, 'save');
    mkdirSync(data, { mode: 0o700 });
    chmodSync(data, 0o700);
    const { log, lines } = logSink();
    const cache = new DynamicCache(() => data, log);
    expect(cache.loaded).toBeUndefined();
    cache.save(); // nothing in effect yet: no file
    expect(existsSync(join(data, 'patroni.dynamic.json'))).toBe(false);
    cache.set({ ttl: 30, postgresql: { parameters: { max_connections: 101 }, use_slots: true } });
    cache.save();
    const path = join(data, 'patroni.dynamic.json');
    expect(readFileSync(path, 'utf8')).toBe(
      '{"ttl": 30, "postgresql": {"parameters": {"max_connections": 101}, "use_slots": true}}',
    );
    expect(statSync(path).mode & 0o777).toBe(0o600);
    // The same configuration with keys in another order is no change: the file is not rewritten.
    writeFileSync(path, 'sentinel');
    cache.set({ postgresql: { use_slots: true, parameters: { max_connections: 101 } }, ttl: 30 });
    cache.save();
    expect(readFileSync(path, 'utf8')).toBe('sentinel');
    chmodSync(data, 0o750);
    cache.set({ ttl: 40 });
    cache.save();
    expect(readFileSync(path, 'utf8')).toBe('{"ttl": 40}');
    expect(statSync(path).mode & 0o777).toBe(0o640);
    expect(readdirSync(data)).toEqual(['patroni.dynamic.json']); // no temporary file left
    expect(lines).toEqual([]);
  });

  it('reads the file at start; a broken one is logged and ignored', () => {
    const data = join(dir, 'load');
    mkdirSync(data);
    writeFileSync(join(data, 'patroni.dynamic.json'), '{"loop_wait": 5}');
    expect(new DynamicCache(() => data, logSink().log).loaded).toEqual({ loop_wait: 5 });
    writeFileSync(join(data, 'patroni.dynamic.json'), '[1]');
    const { log, lines } = logSink();
    expect(new DynamicCache(() => data, log).loaded).toBeUndefined();
    expect(lines).toEqual([
      `ERROR Exception when loading file: ${join(data, 'patroni.dynamic.json')}: not a JSON object`,
    ]);
  });

  it('compares configurations regardless of key order', () => {
    expect(canonicalJson({ b: [1, { y: 1, x: 2 }], a: null })).toBe(
      canonicalJson({ a: null, b: [1, { x: 2, y: 1 }] }),
    );
  });
});

describe('ConfigFiles with a cached dynamic configuration', () => {
  function files(data: string): { files: ConfigFiles; state: InstanceState } {
    const yml = join(dir, `${data.replace(/\W/g, '_')}.yml`);
    writeFileSync(
      yml,
      [
        'scope: demo',
        'name: pg0',
        'etcd3: {hosts: 127.0.0.1:2379}',
        'restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}',
        'bootstrap: {dcs: {ttl: 20}}',
        'postgresql:',
        '  listen: 127.0.0.1:5432',
        '  connect_address: 127.0.0.1:5432',
        `  data_dir: ${data}`,
        '  authentication: {superuser: {username: postgres}, replication: {username: rep}}',
      ].join('\n'),
    );
    const { config } = loadAgentConfig(yml, {});
    const state = new InstanceState('replica');
    const session = new LocalSession(() => ({ host: '/tmp', port: 1, user: 'x', database: 'postgres' }));
    const f = new ConfigFiles(config, {
      log: logSink().log,
      state,
      session,
      standbyNames: (p) => p,
    });
    return { files: f, state };
  }

  it('uses the cache, not bootstrap.dcs, until the DCS has a configuration; caches what the DCS says', () => {
    const data = join(dir, 'files1');
    mkdirSync(data);
    writeFileSync(join(data, 'PG_VERSION'), '15\n');
    writeFileSync(join(data, 'patroni.dynamic.json'), '{"ttl": 45, "loop_wait": 7}');
    const { files: f } = files(data);
    expect(f.localDynamicConfig()).toEqual({ ttl: 45, loop_wait: 7 });
    expect(f.dynamicConfig).toEqual({ ttl: 45, loop_wait: 7 });
    f.dynamicConfigChanged({ ttl: 50 });
    f.saveDynamicCache();
    expect(readFileSync(join(data, 'patroni.dynamic.json'), 'utf8')).toBe('{"ttl": 50}');
  });

  it('without a cache bootstrap.dcs is in effect and cached, but not into an uninitialized data directory', () => {
    const data = join(dir, 'files2');
    mkdirSync(data);
    const { files: f, state } = files(data);
    expect(f.localDynamicConfig()).toEqual({ ttl: 20 });
    state.role = 'uninitialized';
    f.saveDynamicCache();
    expect(existsSync(join(data, 'patroni.dynamic.json'))).toBe(false);
    writeFileSync(join(data, 'PG_VERSION'), '15\n');
    state.role = 'master';
    f.saveDynamicCache();
    expect(readFileSync(join(data, 'patroni.dynamic.json'), 'utf8')).toBe('{"ttl": 20}');
  });
  // config.py `_adjust_recovery_parameters` and `build_recovery_params`: a restore_command among the dynamic
  // parameters goes to the recovery section of a standby, with or without an upstream (nostream).
  it('a restore_command of the dynamic parameters is a recovery setting of every standby', () => {
    const data = join(dir, 'files3');
    mkdirSync(data);
    writeFileSync(join(data, 'PG_VERSION'), '15\n');
    const { files: f } = files(data);
    f.dynamicConfigChanged({
      postgresql: { parameters: { restore_command: 'cp /arch/%f %p', work_mem: '8MB' } },
    });
    const recoverySection = (): string => {
      const text = readFileSync(join(data, 'postgresql.conf'), 'utf8');
      const at = text.indexOf('# recovery.conf');
      return at < 0 ? '' : text.slice(at);
    };
    f.write({});
    expect(recoverySection()).toContain("restore_command = 'cp /arch/%f %p'");
    expect(recoverySection()).toContain("recovery_target_timeline = 'latest'");
    expect(recoverySection()).not.toContain('primary_conninfo');
    expect(readFileSync(join(data, 'postgresql.conf'), 'utf8')).toContain("work_mem = '8MB'");
    f.write({ primary: { name: 'pg1', host: '127.0.0.1', port: 5433 } });
    expect(recoverySection()).toContain("restore_command = 'cp /arch/%f %p'");
    expect(recoverySection()).toContain('primary_conninfo');
    f.write(undefined);
    expect(recoverySection()).toBe('');
    expect(readFileSync(join(data, 'postgresql.conf'), 'utf8')).not.toContain('restore_command');
  });
});
