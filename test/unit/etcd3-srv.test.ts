/** etcd3.srv / srv_suffix (src/dcs/etcd3/srv.ts) with an injected resolver, and how the configuration reaches it. */
import { describe, expect, it } from 'vitest';
import { discoverEtcdSrv, withSrvEndpoints, type SrvDeps, type SrvRecord } from '../../src/dcs/etcd3/srv.js';
import { dcsTarget } from '../../src/config/local-config.js';
import { DcsError } from '../../src/dcs/dcs.js';
import type { Etcd3Target } from '../../src/dcs/target.js';

function deps(
  records: Readonly<Record<string, readonly SrvRecord[]>>,
  members: Readonly<Record<string, unknown>> = {},
): SrvDeps & { asked: string[]; fetched: string[] } {
  const asked: string[] = [];
  const fetched: string[] = [];
  return {
    asked,
    fetched,
    resolveSrv: (name) => {
      asked.push(name);
      const r = records[name];
      return r === undefined ? Promise.reject(new Error('ENOTFOUND')) : Promise.resolve(r);
    },
    getJson: (url) => {
      fetched.push(url);
      return url in members ? Promise.resolve(members[url]) : Promise.reject(new Error('ECONNREFUSED'));
    },
  };
}

describe('discoverEtcdSrv', () => {
  it('tries the record names in Patroni order; the first that answers wins and sets the protocol', async () => {
    const d = deps({
      '_etcd-client._tcp.example.com': [
        { name: 'e1.example.com.', port: 2379 },
        { name: 'e2.example.com', port: 2479 },
      ],
      '_etcd._tcp.example.com': [{ name: 'never', port: 1 }],
    });
    expect(await discoverEtcdSrv('example.com', undefined, d)).toEqual({
      endpoints: ['http://e1.example.com:2379', 'http://e2.example.com:2479'],
      protocol: 'http',
    });
    expect(d.asked).toEqual(['_etcd-client-ssl._tcp.example.com', '_etcd-client._tcp.example.com']);
  });

  it('uses https for the -ssl records, and the suffix in every name', async () => {
    const d = deps({ '_etcd-client-ssl-prod._tcp.example.com': [{ name: 'e1', port: 2379 }] });
    expect(await discoverEtcdSrv('example.com', 'prod', d)).toEqual({
      endpoints: ['https://e1:2379'],
      protocol: 'https',
    });
  });

  it('asks a peer endpoint for the members (server records), the first peer that answers', async () => {
    const d = deps(
      {
        '_etcd-server._tcp.example.com': [
          { name: 'p1', port: 2380 },
          { name: 'p2', port: 2380 },
          { name: 'p3', port: 2380 },
        ],
      },
      {
        'http://p2:2380/members': [
          { name: 'a', clientURLs: ['http://10.0.0.1:2379'] },
          { name: 'b', clientURLs: ['http://10.0.0.2:2379', 'http://10.0.0.1:2379'] },
        ],
      },
    );
    expect(await discoverEtcdSrv('example.com', undefined, d)).toEqual({
      endpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'],
      protocol: 'http',
    });
    expect(d.fetched).toEqual(['http://p1:2380/members', 'http://p2:2380/members']);
    expect(d.asked).toHaveLength(6);
  });

  it('finds nothing when no record answers', async () => {
    const d = deps({});
    expect(await discoverEtcdSrv('example.com', undefined, d)).toBeUndefined();
    expect(d.asked).toEqual([
      '_etcd-client-ssl._tcp.example.com',
      '_etcd-client._tcp.example.com',
      '_etcd-ssl._tcp.example.com',
      '_etcd._tcp.example.com',
      '_etcd-server-ssl._tcp.example.com',
      '_etcd-server._tcp.example.com',
    ]);
  });
});

describe('withSrvEndpoints', () => {
  const target = (extra: Partial<Etcd3Target>): Etcd3Target => ({
    kind: 'etcd3',
    hosts: [],
    protocol: 'http',
    srv: 'example.com',
    ...extra,
  });

  it('replaces the hosts by the discovered endpoints', async () => {
    const d = deps({ '_etcd-client-ssl._tcp.example.com': [{ name: 'e1', port: 2379 }] });
    expect(await withSrvEndpoints(target({ hosts: ['fallback:2379'] }), d)).toMatchObject({
      hosts: ['https://e1:2379'],
      protocol: 'https',
    });
  });

  it('falls back to the configured hosts, and fails without any', async () => {
    expect((await withSrvEndpoints(target({ hosts: ['fallback:2379'] }), deps({}))).hosts).toEqual([
      'fallback:2379',
    ]);
    await expect(withSrvEndpoints(target({}), deps({}))).rejects.toThrow(DcsError);
  });

  it('leaves a target without srv alone', async () => {
    const d = deps({});
    const t: Etcd3Target = { kind: 'etcd3', hosts: ['h:2379'], protocol: 'http' };
    expect(await withSrvEndpoints(t, d)).toBe(t);
    expect(d.asked).toEqual([]);
  });
});

describe('etcd3.srv in the configuration', () => {
  const local = (etcd3: Record<string, unknown>) => ({
    source: 'n.yml',
    tree: { etcd3 },
    scope: 's',
    name: 'n',
    namespace: '/service',
  });

  it('reads srv and srv_suffix; hosts stay as the fallback', () => {
    expect(dcsTarget(local({ srv: 'example.com', srv_suffix: 'prod' }))).toMatchObject({
      hosts: [],
      srv: 'example.com',
      srvSuffix: 'prod',
    });
    expect(dcsTarget(local({ srv: 'example.com', hosts: 'a:2379' }))).toMatchObject({
      hosts: ['a:2379'],
      srv: 'example.com',
    });
  });
});
