import { existsSync } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { Redis } from 'ioredis';
import { startRedisServer, waitForPing } from '@brandq/redis';

export interface TestRedis {
  url: string;
  /** Where the Redis came from, for diagnostics. */
  origin: 'TEST_REDIS_URL' | 'testcontainers' | 'redis-server';
  stop(): Promise<void>;
}

function dockerEngineReachable(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');
}

/**
 * A real Redis for a test file: `TEST_REDIS_URL` if set, else testcontainers' Redis when a
 * Docker engine is reachable, else a `redis-server` child on a free port with a temp dir.
 */
export async function startTestRedis(): Promise<TestRedis> {
  const given = process.env.TEST_REDIS_URL;
  if (given) {
    await waitForPing(given, 5000);
    return { url: given, origin: 'TEST_REDIS_URL', stop: async () => undefined };
  }
  if (dockerEngineReachable()) {
    try {
      const { RedisContainer } = await import('@testcontainers/redis');
      const container = await new RedisContainer('redis:7-alpine').start();
      return { url: container.getConnectionUrl(), origin: 'testcontainers', stop: async () => void (await container.stop()) };
    } catch {
      // The socket exists but no engine answers (as on CI machines with only the client): fall through.
    }
  }
  const server = await startRedisServer();
  return { url: server.url, origin: 'redis-server', stop: () => server.stop() };
}

/**
 * Registers a Redis for the current test file. Call at the top level of a test file;
 * read `redis.url` inside tests. `redis.client()` gives a connection closed after the file.
 */
export function useTestRedis() {
  let handle: TestRedis | undefined;
  const clients: Redis[] = [];
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
    client(): Redis {
      const client = new Redis(this.url, { maxRetriesPerRequest: null });
      clients.push(client);
      return client;
    },
  };
}
