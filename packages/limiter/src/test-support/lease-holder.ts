/**
 * A process that takes HOLD permits and keeps them (renewing the leases) until it is
 * killed: the crash test SIGKILLs it and checks the fleet gets the capacity back.
 */
import { createRedis } from '@brandq/redis';
import { createLimiter, type ProviderLimits } from '../index.js';

const provider = process.env.PROVIDER ?? 'llm';
const limits = JSON.parse(process.env.LIMITS ?? '{}') as ProviderLimits;
const hold = Number(process.env.HOLD ?? '1');

const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', 'client');
const limiter = createLimiter({ redis, providers: { [provider]: limits } });
const permits = [];
for (let i = 0; i < hold; i++) permits.push(await limiter.acquire(provider));
process.stdout.write(`HOLDING ${permits.map((p) => p.id).join(',')}\n`);
// Stay alive like a worker stuck in a long call; the permits' renew timers are unref'd.
setInterval(() => undefined, 60_000);
