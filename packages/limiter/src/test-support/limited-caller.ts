/**
 * A worker process for the multi-process test: makes CALLS calls to TARGET, PARALLEL at a
 * time, each through the shared limiter (or a per-process one with STORE=memory), and
 * prints one `RESULT {...}` line.
 */
import { createRedis } from '@brandq/redis';
import { createLimiter, MemoryLimiterStore, type ProviderLimits } from '../index.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`limited-caller: ${name} is required`);
  return value;
};

const provider = env('PROVIDER');
const limits = JSON.parse(env('LIMITS')) as ProviderLimits;
const target = env('TARGET');
const calls = Number(env('CALLS'));
const parallel = Number(env('PARALLEL'));
const reserve = Number(env('RESERVE_TOKENS'));

const redis = createRedis(env('REDIS_URL'), 'client');
// STORE=memory is the negative control: each process limits only itself, as the original did.
const limiter =
  process.env.STORE === 'memory'
    ? createLimiter({ store: new MemoryLimiterStore(), providers: { [provider]: limits } })
    : createLimiter({ redis, providers: { [provider]: limits } });
let next = 0;
let ok = 0;
let limited = 0;
let waitedMs = 0;

async function loop(): Promise<void> {
  while (next < calls) {
    next += 1;
    const permit = await limiter.acquire(provider, { tokens: reserve });
    waitedMs += permit.waitedMs;
    const res = await fetch(target, { method: 'POST', headers: { 'x-reserve-tokens': String(permit.tokens), 'x-caller': String(process.pid) } });
    const body = (await res.json()) as { usedTokens?: number };
    await limiter.syncFromHeaders(provider, res.headers);
    if (res.status === 429) {
      limited += 1;
      await limiter.cooldown(provider, { retryAfterMs: Number(res.headers.get('retry-after-ms') ?? 1000) });
      await permit.settle();
    } else {
      ok += 1;
      await permit.settle({ usedTokens: body.usedTokens });
    }
  }
}

await Promise.all(Array.from({ length: parallel }, loop));
process.stdout.write(`RESULT ${JSON.stringify({ pid: process.pid, ok, limited, waitedMs: Math.round(waitedMs) })}\n`);
await limiter.close();
await redis.quit();
