import type { Redis } from 'ioredis';

/** One INFO section as name -> value. */
export async function info(redis: Redis, section: string): Promise<Map<string, string>> {
  const text = await redis.info(section);
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) fields.set(line.slice(0, i), line.slice(i + 1));
  }
  return fields;
}

/** Commands the server executed so far, including those run inside Lua scripts. */
export async function commandsProcessed(redis: Redis): Promise<number> {
  return Number((await info(redis, 'stats')).get('total_commands_processed') ?? Number.NaN);
}

/** `used_memory` in bytes. */
export async function usedMemory(redis: Redis): Promise<number> {
  return Number((await info(redis, 'memory')).get('used_memory') ?? Number.NaN);
}

export async function redisVersion(redis: Redis): Promise<string> {
  return (await info(redis, 'server')).get('redis_version') ?? 'unknown';
}
