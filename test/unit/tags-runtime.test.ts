/**
 * Tags as Patroni 4.1.4 reads them: no validation at start, evaluation at run time (tags.py): boolean tags are
 * Python truthy (the string 'false' is true), priorities parsed leniently, nofailover/nosync over a contradicting
 * priority with a warning; the member key carries the tags as written.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../src/config/agent-config.js';

const dir = mkdtempSync(join(tmpdir(), 'pgwarden-tags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(tags: string): ReturnType<typeof loadAgentConfig> {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(
    path,
    [
      'scope: demo',
      'name: pg0',
      'etcd3: {hosts: 127.0.0.1:2379}',
      'restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}',
      'postgresql:',
      '  listen: 127.0.0.1:5432',
      '  connect_address: 127.0.0.1:5432',
      '  data_dir: /tmp/none',
      '  authentication: {superuser: {username: postgres}, replication: {username: rep}}',
      `tags: ${tags}`,
    ].join('\n'),
  );
  return loadAgentConfig(path, {});
}

describe('tags given as strings (Patroni 4.1.4 accepts them at start)', () => {
  it("'true' strings are true, priorities from strings; published as written", () => {
    const { config, warnings } = load(
      "{nofailover: 'true', clonefrom: 'true', sync_priority: '0', noloadbalance: 'false', nostream: 'false'}",
    );
    expect(config.tags).toMatchObject({
      nofailover: true,
      failoverPriority: 0,
      clonefrom: true,
      nosync: true, // sync_priority 0
      syncPriority: 0,
      noloadbalance: true, // Python truthiness: a non-empty string
      nostream: false, // parse_bool
    });
    expect(config.memberTags).toMatchObject({ nofailover: 'true', clonefrom: 'true', sync_priority: '0' });
    expect(warnings).toEqual([]);
  });

  it("failover_priority '1' is priority 1; a negative or zero priority means nofailover", () => {
    expect(load("{failover_priority: '1'}").config.tags).toMatchObject({
      nofailover: false,
      failoverPriority: 1,
    });
    expect(load('{failover_priority: 3}').config.tags).toMatchObject({
      nofailover: false,
      failoverPriority: 3,
    });
    expect(load('{failover_priority: -1}').config.tags).toMatchObject({
      nofailover: true,
      failoverPriority: -1, // as tags.py: the priority as written, nofailover derived from it
    });
    expect(load('{}').config.tags).toMatchObject({
      nofailover: false,
      failoverPriority: 1,
      clonefrom: false,
    });
  });

  it('nofailover wins over a contradicting failover_priority, with a warning', () => {
    const { config, warnings } = load(
      '{nofailover: true, failover_priority: 2, nosync: false, sync_priority: 0}',
    );
    expect(config.tags).toMatchObject({ nofailover: true, failoverPriority: 0, nosync: false });
    expect(warnings).toEqual([
      'Conflicting configuration between nofailover: True and failover_priority: 2. Defaulting to nofailover: True',
      'Conflicting configuration between nosync: False and sync_priority: 0. Defaulting to nosync: False',
    ]);
    expect(load('{nofailover: false, failover_priority: 2}').warnings).toEqual([]);
  });
});

describe('nostream and sync_priority (Patroni 4.1.4 runs with them)', () => {
  it.each([
    ["{nostream: 'true', sync_priority: '2'}", { nostream: true, syncPriority: 2, nosync: false }],
    ['{nostream: yes, sync_priority: 3}', { nostream: true, syncPriority: 3, nosync: false }],
    ["{nostream: 'off'}", { nostream: false, syncPriority: 1, nosync: false }],
    ['{nostream: 2}', { nostream: false, syncPriority: 1, nosync: false }],
    ["{nosync: true, sync_priority: '2'}", { nostream: false, syncPriority: 0, nosync: true }],
  ])('%s starts and reads as tags.py', (tags, want) => {
    const { config } = load(tags);
    expect(config.tags).toMatchObject(want);
  });

  it('a reloaded nostream reaches the HA core', async () => {
    const { PostgresNode } = await import('../../src/agent/node.js');
    const quiet = { info: () => undefined, warning: () => undefined, error: () => undefined };
    const node = new PostgresNode(load('{}').config, quiet);
    expect(node.self.tags.nostream).toBeUndefined();
    node.updateConfig(load("{nostream: 'true'}").config);
    expect(node.self.tags.nostream).toBe(true);
    node.updateConfig(load('{nostream: false}').config);
    expect(node.self.tags.nostream).toBeUndefined();
    await node.close();
  });
});

describe('tags take effect on reload for the HA core (PostgresNode.self)', () => {
  it('a reloaded nofailover: false over failover_priority 0 lets the member promote', async () => {
    const { PostgresNode } = await import('../../src/agent/node.js');
    const quiet = { info: () => undefined, warning: () => undefined, error: () => undefined };
    const node = new PostgresNode(load('{failover_priority: 0}').config, quiet);
    expect(node.self.tags).toMatchObject({ nofailover: true, failoverPriority: 0 });
    node.updateConfig(load('{failover_priority: 0, nofailover: false}').config);
    expect(node.self.tags).toMatchObject({ nofailover: false, failoverPriority: 0 });
    node.updateConfig(load('{nofailover: true, failover_priority: 1}').config);
    expect(node.self.tags).toMatchObject({ nofailover: true, failoverPriority: 0 });
    await node.close();
  });
});
