import { existsSync } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { Redis, type Cluster } from 'ioredis';
import { createRedis, isClusterUrl, startRedisServer, waitForPing } from '@brandq/redis';
import { startRedisCluster } from './redis-cluster.js';

export interface TestRedis {
  url: string;
  /** Where the Redis came from, for diagnostics. */
  origin: 'TEST_REDIS_URL' | 'testcontainers' | 'redis-server' | 'redis-cluster';
  /** A `redis+cluster://` URL: clients made with createRedis(url) are ioredis Clusters. */
  cluster: boolean;
  stop(): Promise<void>;
}

function dockerEngineReachable(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');
}

/** `TEST_REDIS_CLUSTER=1`: the test files using useTestRedis run against a 3-master Redis Cluster. */
export function testRedisCluster(): boolean {
  return /^(1|true|yes)$/i.test(process.env.TEST_REDIS_CLUSTER ?? '');
}

/**
 * A real Redis for a test file: `TEST_REDIS_URL` if set (a `redis+cluster://` URL for a
 * cluster), else with `TEST_REDIS_CLUSTER=1` a throwaway 3-master cluster, else
 * testcontainers' Redis when a Docker engine is reachable, else a `redis-server` child on a
 * free port with a temp dir.
 */
export async function startTestRedis(): Promise<TestRedis> {
  const given = process.env.TEST_REDIS_URL;
  if (given) {
    await waitForPing(given, 5000);
    return { url: given, origin: 'TEST_REDIS_URL', cluster: isClusterUrl(given), stop: async () => undefined };
  }
  if (testRedisCluster()) {
    const cluster = await startRedisCluster();
    return { url: cluster.url, origin: 'redis-cluster', cluster: true, stop: () => cluster.stop() };
  }
  if (dockerEngineReachable()) {
    try {
      const { RedisContainer } = await import('@testcontainers/redis');
      const container = await new RedisContainer('redis:7-alpine').start();
      return { url: container.getConnectionUrl(), origin: 'testcontainers', cluster: false, stop: async () => void (await container.stop()) };
    } catch {
      // The socket exists but no engine answers (as on CI machines with only the client): fall through.
    }
  }
  const server = await startRedisServer();
  return { url: server.url, origin: 'redis-server', cluster: false, stop: () => server.stop() };
}

/**
 * Registers a Redis for the current test file. Call at the top level of a test file;
 * read `redis.url` inside tests. `redis.client()` gives a connection closed after the file.
 */
export function useTestRedis() {
  let handle: TestRedis | undefined;
  const clients: Redis[] = [];
  let admin: Redis | undefined;
  beforeAll(async () => {
    handle = await startTestRedis();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
    await handle?.stop();
  });
  return {
    get url(): string {
      if (!handle) throw new Error('useTestRedis: Redis is not started yet (use it inside tests or hooks)');
      return handle.url;
    },
    /** Whether this file runs against a Redis Cluster (TEST_REDIS_CLUSTER=1). */
    get cluster(): boolean {
      if (!handle) throw new Error('useTestRedis: Redis is not started yet (use it inside tests or hooks)');
      return handle.cluster;
    },
    /**
     * Empties the whole Redis between tests. On a cluster FLUSHALL reaches one master
     * only, so every master is flushed.
     */
    async flush(): Promise<void> {
      admin ??= this.client();
      const nodes = this.cluster ? (admin as unknown as Cluster).nodes('master') : [admin];
      await Promise.all(nodes.map((node) => node.flushall()));
    },
    /** A connection closed after the file; an ioredis Cluster (typed as Redis) on a cluster. */
    client(): Redis {
      const client = isClusterUrl(this.url) ? createRedis(this.url, 'worker') : new Redis(this.url, { maxRetriesPerRequest: null });
      clients.push(client);
      return client;
    },
  };
}
