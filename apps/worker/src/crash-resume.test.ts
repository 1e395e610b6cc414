import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakes, type Fakes } from '@brandq/fakes';
import { createRedis } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { spawnTs, useTestRedis, waitForExit, type SpawnedProcess } from '@brandq/testing';
import { enqueue, startWorkers, stopWorkers, waitForRun, workerEnv, writeBrandsCsv } from './test-support.js';

const redis = useTestRedis();
let fakes: Fakes;
let dir: string;
const workers: SpawnedProcess[] = [];

beforeAll(async () => {
  fakes = await startFakes({ openai: { latencyMs: { min: 30, max: 120 }, seed: 5 }, tavily: { latencyMs: { min: 10, max: 40 }, seed: 6 } });
  dir = await mkdtemp(join(tmpdir(), 'brandq-crash-'));
});
afterAll(async () => {
  await stopWorkers(workers);
  await fakes?.close();
});

describe('a worker killed with SIGKILL mid-run', () => {
  it('loses nothing: after --resume every brand has exactly one result', { timeout: 240_000 }, async () => {
    const names = Array.from({ length: 60 }, (_, i) => `Crash Brand ${i + 1}`);
    const csv = await writeBrandsCsv(dir, names);
    const env = workerEnv(fakes, redis.url);
    await enqueue(['--csv', csv, '--run', 'crash-run'], env);
    const [victim, survivor] = startWorkers(2, env, 6);
    workers.push(victim!, survivor!);

    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    await waitForRun(runs, 'crash-run', (r) => r.succeeded >= 10, 60_000);
    victim!.kill('SIGKILL');
    expect(await waitForExit(victim!, 10_000)).toBe('SIGKILL');

    await enqueue(['--resume', '--csv', csv], env);
    workers.push(...startWorkers(1, env, 6));
    const run = await waitForRun(runs, 'crash-run', (r) => r.status === 'completed', 120_000);
    expect(run).toMatchObject({ total: 60, succeeded: 60, failed: 0 });

    const out = join(dir, 'crash.jsonl');
    expect(await waitForExit(spawnTs('apps/producer/src/export.ts', ['--run', 'crash-run', '--out', out], env), 30_000)).toBe(0);
    const rows = (await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { brand: string; status: string });
    expect(rows.map((r) => r.brand).sort()).toEqual([...names].sort());
    expect(rows.every((r) => r.status === 'success')).toBe(true);
    client.disconnect();
  });
});
