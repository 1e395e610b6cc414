import { describe, expect, it } from 'vitest';
import { clusterNodeUrls, createRedis, isCluster, isClusterUrl, parseClusterUrl } from './connection.js';
import { redactUrl } from './redis-server.js';

describe('Redis Cluster addresses', () => {
  it('parses redis+cluster:// seed lists, with credentials and TLS', () => {
    expect(isClusterUrl('redis+cluster://127.0.0.1:7000')).toBe(true);
    expect(isClusterUrl('rediss+cluster://h:1')).toBe(true);
    expect(isClusterUrl('redis://127.0.0.1:6379')).toBe(false);
    expect(parseClusterUrl('redis+cluster://127.0.0.1:7000,127.0.0.1:7001')).toEqual({
      nodes: [{ host: '127.0.0.1', port: 7000 }, { host: '127.0.0.1', port: 7001 }],
      tls: false,
    });
    expect(parseClusterUrl('rediss+cluster://app:p%40ss@10.0.0.1:7000,[::1]:7001/')).toEqual({
      nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '::1', port: 7001 }],
      username: 'app',
      password: 'p@ss',
      tls: true,
    });
    expect(() => parseClusterUrl('redis+cluster://127.0.0.1')).toThrow(/expected host:port/);
    expect(() => parseClusterUrl('redis+cluster://')).toThrow(/redis\+cluster:\/\//);
  });

  it('gives each seed as a single-node URL, and redacts the password in messages', () => {
    expect(clusterNodeUrls('redis+cluster://:secret@a:1,b:2')).toEqual(['redis://:secret@a:1', 'redis://:secret@b:2']);
    expect(redactUrl('redis+cluster://:secret@a:1,b:2')).toBe('redis+cluster://:***@a:1,b:2');
  });

  it('createRedis returns an ioredis Cluster for a cluster URL and a plain client otherwise', () => {
    const cluster = createRedis('redis+cluster://127.0.0.1:1', 'client', { lazyConnect: true });
    const single = createRedis('redis://127.0.0.1:1', 'client', { lazyConnect: true });
    cluster.on('error', () => undefined);
    single.on('error', () => undefined);
    expect(isCluster(cluster)).toBe(true);
    expect(isCluster(single)).toBe(false);
    cluster.disconnect();
    single.disconnect();
  });
});
