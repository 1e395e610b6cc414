import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pings, startRedisServer } from './redis-server.js';
import { runKeys, limiterKeys } from './keys.js';

describe('startRedisServer', () => {
  it('starts a private server that answers and is gone after stop', async () => {
    const server = await startRedisServer();
    const client = new Redis(server.url);
    await client.set('k', 'v');
    expect(await client.get('k')).toBe('v');
    client.disconnect();
    await server.stop();
    expect(await pings(server.url, 300)).toBe(false);
  });

  it('reports a missing binary as a clear error', async () => {
    await expect(startRedisServer({ binary: 'no-such-redis-server-binary' })).rejects.toThrow(/cannot start redis-server/);
  });
});

describe('keys', () => {
  it('puts every key of a run and of a limiter in one hash tag', () => {
    const tags = (keys: Record<string, string>) => new Set(Object.values(keys).map((k) => /\{[^}]+\}/.exec(k)?.[0]));
    expect(tags(runKeys('run-1'))).toEqual(new Set(['{run:run-1}']));
    expect(tags(limiterKeys('llm'))).toEqual(new Set(['{limiter:llm}']));
  });

  it('rejects ids that would break key or job id syntax', () => {
    expect(() => runKeys('a:b')).toThrow(/invalid run id/);
    expect(() => runKeys('')).toThrow(/invalid run id/);
  });
});
