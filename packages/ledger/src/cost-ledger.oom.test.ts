import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServerHandle } from '@brandq/redis';
import { CostLedger } from './cost-ledger.js';

/**
 * A Redis of its own: this file fills it up to its `maxmemory`, which no other test may share.
 * `noeviction` is how brandq's Redis runs (BullMQ requires it): a full Redis refuses writes.
 */
let server: RedisServerHandle;
let client: Redis;

beforeAll(async () => {
  server = await startRedisServer({ args: ['--maxmemory-policy', 'noeviction'] });
  client = new Redis(server.url, { maxRetriesPerRequest: null });
});

afterAll(async () => {
  await client?.quit();
  await server?.stop();
});

async function usedMemory(): Promise<number> {
  const info = await client.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1]);
}

describe('CostLedger in a full Redis', () => {
  it('keeps retrying a booking refused with OOM until memory is freed, and books it once', async () => {
    const retries: Error[] = [];
    const ledger = new CostLedger(client, 60_000, 20_000, (error) => retries.push(error));
    const held = await ledger.reserve('ledger-oom', 'llm', 5_000);

    // Full: a filler written over a connection of its own (closing it frees its 4 MB query
    // buffer), then the limit set halfway down the filler.
    const filler = 4_000_000;
    const filling = new Redis(server.url);
    await filling.set('filler', 'x'.repeat(filler));
    await filling.quit();
    await client.config('SET', 'maxmemory', String((await usedMemory()) - filler / 2));
    await expect(client.set('probe', '1')).rejects.toThrow(/^OOM/);

    const settled = ledger.settle(held, { costMicros: 4_000, inputTokens: 100 });
    const outcome = settled.then(() => 'settled', () => 'failed');
    while (retries.length < 2 && (await Promise.race([outcome, new Promise((r) => setTimeout(r, 20, 'pending'))])) === 'pending');
    expect(retries.length).toBeGreaterThanOrEqual(2);
    await client.del('filler');
    await expect(settled).resolves.toMatchObject({ overrunMicros: 0 });

    expect(retries.every((e) => /^OOM/.test(e.message))).toBe(true);
    expect(await ledger.snapshot('ledger-oom')).toMatchObject({ spentMicros: 4_000, reservedMicros: 0 });
    expect((await ledger.snapshot('ledger-oom')).providers.llm).toMatchObject({ calls: 1, inputTokens: 100 });
  });
});
