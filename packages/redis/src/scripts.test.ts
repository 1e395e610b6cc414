import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from './redis-server.js';
import { defineScripts } from './scripts.js';

// @brandq/testing builds on this package, so the server comes from it directly.
let server: RedisServerHandle;
let client: Redis;
beforeAll(async () => {
  server = await startRedisServer();
  client = new Redis(server.url);
});
afterAll(async () => {
  client.disconnect();
  await server.stop();
});

describe('defineScripts', () => {
  it('inlines `-- @include` files, relative to the including script, once per load', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'brandq-lua-'));
    await mkdir(join(dir, 'include'));
    await writeFile(join(dir, 'include', 'twice.lua'), 'local function twice(n) return n * 2 end\n');
    await writeFile(join(dir, 'main.lua'), '#!lua\n-- @include include/twice.lua\nreturn twice(tonumber(ARGV[1]))\n');
    defineScripts(client, [{ name: 'brandqTestTwice', file: pathToFileURL(join(dir, 'main.lua')), numberOfKeys: 0 }]);
    await expect((client as Redis & { brandqTestTwice(n: number): Promise<number> }).brandqTestTwice(21)).resolves.toBe(42);
  });

  it('refuses an include cycle with the chain of files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'brandq-lua-'));
    await writeFile(join(dir, 'a.lua'), '-- @include b.lua\n');
    await writeFile(join(dir, 'b.lua'), '-- @include a.lua\n');
    expect(() => defineScripts(client, [{ name: 'brandqTestCycle', file: pathToFileURL(join(dir, 'a.lua')), numberOfKeys: 0 }])).toThrow(/include cycle/);
  });
});
