import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { cacheKeys } from '@brandq/redis';
import { useTestRedis } from '@brandq/testing';
import { FillScripts, type CacheKeys } from './fill-scripts.js';

const redis = useTestRedis();

/**
 * The reference model of one cache key: its value and the token holding its fill lock.
 * Each step's rules are the specification the Lua scripts are checked against.
 */
interface KeyModel {
  value: string | undefined;
  lock: string | undefined;
}

interface RealKey {
  client: Redis;
  scripts: FillScripts;
  keys: CacheKeys;
}

type FillCommand = fc.AsyncCommand<KeyModel, RealKey>;

/** After every step: Redis holds exactly what the model says. */
async function expectSameState(model: KeyModel, real: RealKey): Promise<void> {
  const [value, lock] = await Promise.all([real.client.get(real.keys.value), real.client.get(real.keys.lock)]);
  expect({ value, lock }).toEqual({ value: model.value ?? null, lock: model.lock ?? null });
}

/** Lets Redis expire a key for real (a 1 ms TTL), as when a lock or a value outlives its TTL. */
async function expireNow(client: Redis, key: string): Promise<void> {
  await client.pexpire(key, 1);
  while ((await client.exists(key)) === 1) await new Promise((r) => setTimeout(r, 2));
}

class Claim implements FillCommand {
  constructor(readonly token: string) {}
  check = () => true;
  async run(model: KeyModel, real: RealKey): Promise<void> {
    const reply = await real.scripts.getOrClaim(real.keys, this.token, 60_000);
    // The value first (a finished fill is never paid again), then a free lock, else wait.
    if (model.value !== undefined) expect(reply).toEqual([1, model.value]);
    else if (model.lock === undefined) {
      expect(reply).toEqual([2]);
      model.lock = this.token;
    } else expect(reply).toEqual([0]);
    await expectSameState(model, real);
  }
  toString = () => `claim(${this.token})`;
}

class Renew implements FillCommand {
  constructor(readonly token: string) {}
  check = () => true;
  async run(model: KeyModel, real: RealKey): Promise<void> {
    const reply = await real.scripts.renew(real.keys, this.token, 60_000);
    // Only the holder extends its lock; a lapsed lock is reported, never re-taken.
    expect(reply).toBe(model.lock === this.token ? 1 : model.lock === undefined ? 0 : -1);
    await expectSameState(model, real);
  }
  toString = () => `renew(${this.token})`;
}

class Store implements FillCommand {
  constructor(
    readonly token: string,
    readonly json: string,
  ) {}
  check = () => true;
  async run(model: KeyModel, real: RealKey): Promise<void> {
    const reply = await real.scripts.storeAndRelease(real.keys, this.json, 60, this.token);
    if (model.lock === this.token) {
      expect(reply).toBe(1);
      model.value = this.json;
      model.lock = undefined;
    } else if (model.lock !== undefined || model.value !== undefined) {
      // Fenced: a newer filler's claim or value is never overwritten.
      expect(reply).toBe(0);
    } else {
      expect(reply).toBe(2);
      model.value = this.json;
    }
    await expectSameState(model, real);
  }
  toString = () => `store(${this.token}, ${this.json})`;
}

class Release implements FillCommand {
  constructor(readonly token: string) {}
  check = () => true;
  async run(model: KeyModel, real: RealKey): Promise<void> {
    const reply = await real.scripts.release(real.keys, this.token);
    expect(reply).toBe(model.lock === this.token ? 1 : 0);
    if (model.lock === this.token) model.lock = undefined;
    await expectSameState(model, real);
  }
  toString = () => `release(${this.token})`;
}

class LockLapses implements FillCommand {
  check = (model: Readonly<KeyModel>) => model.lock !== undefined;
  async run(model: KeyModel, real: RealKey): Promise<void> {
    await expireNow(real.client, real.keys.lock);
    model.lock = undefined;
    await expectSameState(model, real);
  }
  toString = () => 'lock lapses';
}

class ValueExpires implements FillCommand {
  check = (model: Readonly<KeyModel>) => model.value !== undefined;
  async run(model: KeyModel, real: RealKey): Promise<void> {
    await expireNow(real.client, real.keys.value);
    model.value = undefined;
    await expectSameState(model, real);
  }
  toString = () => 'value expires';
}

const token = fc.constantFrom('filler-a', 'filler-b', 'filler-c');
const commands = fc.commands(
  [
    token.map((t) => new Claim(t)),
    token.map((t) => new Renew(t)),
    fc.tuple(token, fc.nat(9)).map(([t, n]) => new Store(t, JSON.stringify(`answer ${n}`))),
    token.map((t) => new Release(t)),
    fc.constant(new LockLapses()),
    fc.constant(new ValueExpires()),
  ],
  { maxCommands: 30 },
);

describe('FillScripts against the reference model of a cache key', () => {
  it('claims, renews, stores and releases exactly as the model says, for any interleaving of fillers', async () => {
    const client = redis.client();
    const scripts = new FillScripts(client);
    let run = 0;
    // 150 sequences of up to 30 steps among 3 fillers: a few seconds against a real Redis.
    await fc.assert(
      fc.asyncProperty(commands, async (sequence) => {
        const real = { client, scripts, keys: cacheKeys('llm', `model-${run++}`) };
        await fc.asyncModelRun(() => ({ model: { value: undefined, lock: undefined }, real }), sequence);
      }),
      { numRuns: 150, verbose: 1 },
    );
  });
});
