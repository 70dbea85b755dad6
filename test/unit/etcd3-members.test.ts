/**
 * etcd member discovery's pure part (src/dcs/etcd3/members.ts) and how the `etcd3` section selects it
 * (src/config/local-config.ts): `use_proxies`, `proxy`, and `discovery_srv`/`srv_domain` as older names of `srv`.
 * The requests themselves run against a real etcd cluster in test/integration/etcd3-discovery.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { dcsTarget } from '../../src/config/local-config.js';
import type { ConfigTree } from '../../src/config/tree.js';
import {
  clientUrlsOf,
  discoveryStep,
  membersLifetimeMs,
  orderedEndpoints,
  unionByAddress,
  type DiscoveryState,
} from '../../src/dcs/etcd3/members.js';

describe('discoveryStep', () => {
  const base: DiscoveryState = { discover: true, needsReload: false, updatedMs: 1000, lifetimeMs: 300_000 };
  it.each([
    [
      'use_proxies: never asks etcd',
      { discover: false, needsReload: true, updatedMs: undefined },
      2000,
      'none',
    ],
    ['nothing learnt yet: reload', { updatedMs: undefined }, 2000, 'reload'],
    ['the last reload failed: reload', { needsReload: true }, 2000, 'reload'],
    ['a fresh list: nothing to do', {}, 1000 + 300_000, 'none'],
    ['a list past its lifetime: refresh', {}, 1001 + 300_000, 'refresh'],
    ['marked out of date (-Infinity): refresh', { updatedMs: -Infinity }, 2000, 'refresh'],
  ] as const)('%s', (_name, override, now, step) => {
    expect(discoveryStep({ ...base, ...override }, now)).toBe(step);
  });

  it('a list lives ttl x 10 seconds, as in Patroni', () => {
    expect(membersLifetimeMs(30)).toBe(300_000);
    expect(membersLifetimeMs(0)).toBe(10_000);
  });
});

describe('clientUrlsOf', () => {
  it('takes every client URL once, skipping members without any (not started yet)', () => {
    const answer = {
      header: { cluster_id: '1' },
      members: [
        { ID: '1', name: 'a', clientURLs: ['http://10.0.0.1:2379', 'http://a:2379'] },
        { ID: '2', name: '', peerURLs: ['http://10.0.0.2:2380'] },
        { ID: '3', name: 'c', clientURLs: ['http://10.0.0.3:2379', 'http://10.0.0.1:2379', 7, ''] },
      ],
    };
    expect(clientUrlsOf(answer)).toEqual(['http://10.0.0.1:2379', 'http://a:2379', 'http://10.0.0.3:2379']);
  });

  it.each([[undefined], [null], ['text'], [{}], [{ members: 'x' }], [{ members: [null, 1] }]])(
    'names nothing in %j',
    (answer) => {
      expect(clientUrlsOf(answer)).toEqual([]);
    },
  );
});

describe('orderedEndpoints and unionByAddress', () => {
  it('keeps the endpoint in use first and shuffles the rest', () => {
    const urls = ['http://a:2379', 'http://b:2379', 'http://c:2379'];
    expect(orderedEndpoints(urls, 'http://b:2379', () => 0)).toEqual([
      'http://b:2379',
      'http://c:2379',
      'http://a:2379',
    ]);
    expect(orderedEndpoints(urls, 'http://b:2379', () => 0.99)).toEqual([
      'http://b:2379',
      'http://a:2379',
      'http://c:2379',
    ]);
  });

  it('shuffles everything when the endpoint in use is no longer listed', () => {
    const urls = ['http://a:2379', 'http://b:2379'];
    const out = orderedEndpoints(urls, '127.0.0.1:2379', () => 0);
    expect(out).toEqual(['http://b:2379', 'http://a:2379']);
    expect([...out].sort()).toEqual(urls);
  });

  it('adds what the second list has that the first lacks, once, by address', () => {
    const e = (label: string, hostname: string, port = 2379, https = false) => ({
      label,
      hostname,
      port,
      https,
    });
    const out = unionByAddress(
      [e('http://a:2379', 'a'), e('b:2379', 'b')],
      [
        e('a:2379', 'a'),
        e('https://a:2379', 'a', 2379, true),
        e('c:2379', 'c'),
        e('c:2379', 'c'),
        e('b:2380', 'b', 2380),
      ],
    );
    expect(out.map((x) => x.label)).toEqual([
      'http://a:2379',
      'b:2379',
      'https://a:2379',
      'c:2379',
      'b:2380',
    ]);
  });
});

describe('the etcd3 section: member discovery and SRV names', () => {
  const target = (etcd3: ConfigTree) =>
    dcsTarget({ source: 'node.yml', tree: { etcd3 }, namespace: '/service', scope: 'demo' });

  it.each([
    ['hosts alone: discovery (Patroni default)', { hosts: 'e1:2379' }, undefined],
    ['use_proxies: false', { hosts: 'e1:2379', use_proxies: false }, undefined],
    ['use_proxies: true', { hosts: 'e1:2379', use_proxies: true }, true],
    // Patroni passes the value on as it is: a non-empty string is true.
    ["use_proxies: 'false' (a string)", { hosts: 'e1:2379', use_proxies: 'false' }, true],
    ['proxy implies use_proxies', { proxy: 'http://p:2379' }, true],
  ] as const)('%s', (_name, etcd3, useProxies) => {
    const t = target(etcd3);
    expect(t.kind).toBe('etcd3');
    expect(t.kind === 'etcd3' ? t.useProxies : 'zookeeper').toBe(useProxies);
  });

  it('proxy wins over hosts, url over host', () => {
    expect(target({ proxy: 'http://p:2379', hosts: 'e1:2379' })).toMatchObject({ hosts: ['p:2379'] });
    expect(target({ url: 'https://u:2400', host: 'h:2379' })).toMatchObject({
      hosts: ['u:2400'],
      protocol: 'https',
    });
  });

  it.each([
    ['srv', { srv: 'a.example' }, 'a.example'],
    ['discovery_srv', { discovery_srv: 'b.example' }, 'b.example'],
    ['srv_domain', { srv_domain: 'c.example' }, 'c.example'],
    ['srv_domain wins over discovery_srv and srv', { srv: 'a', discovery_srv: 'b', srv_domain: 'c' }, 'c'],
    ['discovery_srv wins over srv', { srv: 'a', discovery_srv: 'b' }, 'b'],
  ] as const)('%s names the SRV domain', (_name, etcd3, srv) => {
    expect(target(etcd3)).toMatchObject({ kind: 'etcd3', srv, hosts: [] });
  });

  it('SRV with hosts keeps them as the fallback; a proxy disables SRV', () => {
    expect(target({ srv_domain: 'x.example', hosts: ['e1:2379'] })).toMatchObject({
      srv: 'x.example',
      hosts: ['e1:2379'],
    });
    expect(target({ srv: 'x.example', proxy: 'http://p:2379' })).not.toHaveProperty('srv');
  });
});
