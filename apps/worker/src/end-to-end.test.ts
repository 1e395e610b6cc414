import { mkdtemp, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedFacts, startFakes, type Fakes } from '@brandq/fakes';
import { normalizeBrandKey } from '@brandq/input';
import { CostLedger } from '@brandq/ledger';
import { createRedis } from '@brandq/redis';
import { RunStore, type BrandResult } from '@brandq/runs';
import { spawnTs, useTestRedis, waitForExit, type SpawnedProcess } from '@brandq/testing';

const redis = useTestRedis();
/** Tavily's limit as configured and as the fake grants it (the fake's default is 1,000 a minute, below the burst of 50). */
const TAVILY_RPM = 6000;
const BRANDS = Array.from({ length: 50 }, (_, i) => `E2E Brand ${String(i + 1).padStart(2, '0')}`);

let fakes: Fakes;
let dir: string;
const workers: SpawnedProcess[] = [];

beforeAll(async () => {
  fakes = await startFakes({ openai: { latencyMs: { min: 5, max: 40 }, seed: 3 }, tavily: { rpm: TAVILY_RPM, latencyMs: { min: 5, max: 20 }, seed: 4 } });
  dir = await mkdtemp(join(tmpdir(), 'brandq-e2e-'));
});

afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await fakes?.close();
});

async function waitForRun(runs: RunStore, runId: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await runs.getRun(runId);
    if (run && run.status !== 'running') return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} still ${run?.status} after ${timeoutMs} ms: ${JSON.stringify(run)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('a CSV run end to end: producer + two worker processes + fakes + Redis', () => {
  it('gives every valid brand exactly one result matching the fake, reports bad rows, and calls each provider once per brand', async () => {
    const rows = ['brand,country', ...BRANDS.map((b) => `${b},US`)];
    rows.splice(5, 0, ',US'); // row 6: empty name
    rows.splice(10, 0, '  e2e brand 01 ,US'); // row 11: duplicate of row 2
    rows.splice(20, 0, `${'x'.repeat(201)},US`); // row 21: too long
    const csv = join(dir, 'brands.csv');
    await writeFile(csv, `${rows.join('\n')}\n`);

    const env = { ...fakes.env, REDIS_URL: redis.url, LOG_FORMAT: 'json', LOG_LEVEL: 'warn', OPENAI_RPM_LIMIT: '6000', OPENAI_RPM_BURST: '50', OPENAI_TPM_LIMIT: '1000000', TAVILY_RPM_LIMIT: String(TAVILY_RPM), TAVILY_RPM_BURST: '50' };
    const enqueue = spawnTs('apps/producer/src/enqueue.ts', ['--csv', csv, '--run', 'e2e-run', '--no-follow'], env);
    expect(await waitForExit(enqueue, 60_000)).toBe(0);
    expect(enqueue.output()).toContain('run e2e-run: 50 brands enqueued, 3 rows skipped');
    expect(enqueue.output()).toMatch(/skipped: Row 6: .*empty/i);
    expect(enqueue.output()).toMatch(/skipped: Row 11: .*duplicates row 2/i);
    expect(enqueue.output()).toMatch(/skipped: Row 21: .*200/);

    workers.push(spawnTs('apps/worker/src/main.ts', ['--concurrency', '4'], env), spawnTs('apps/worker/src/main.ts', ['--concurrency', '4'], env));
    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    const run = await waitForRun(runs, 'e2e-run', 90_000);
    expect(run).toMatchObject({ status: 'completed', total: 50, succeeded: 50, failed: 0, skipped: 3 });

    const results: BrandResult[] = [];
    for await (const r of runs.results('e2e-run')) results.push(r);
    expect(results.map((r) => r.brand).sort()).toEqual([...BRANDS].sort());
    for (const r of results) {
      expect(r.key).toBe(normalizeBrandKey(r.brand));
      const expected = expectedFacts(r.brand);
      expect({ website: r.fields.website, category: r.fields.category, description: r.fields.description, country: r.fields.country, founded_year: r.fields.founded_year }).toEqual({
        ...expected,
        website: expected.website === null ? null : new URL(expected.website).toString(),
      });
      expect(r.fields.sources).not.toHaveLength(0);
    }

    // Paid calls as the providers counted them (their own ledgers, not brandq's results hash,
    // which is keyed by brand and could not show a second call): with no fault and no kill,
    // exactly one search and one LLM call per brand, and no paid call without a brand.
    const everyBrandOnce = new Map(BRANDS.map((b) => [b, 1]));
    expect(fakes.openai.ledger.paidCallsByBrand()).toEqual(everyBrandOnce);
    expect(fakes.tavily.ledger.paidCallsByBrand()).toEqual(everyBrandOnce);
    expect(fakes.openai.ledger.summary().paidCalls).toBe(BRANDS.length);
    expect(fakes.tavily.ledger.summary().paidCalls).toBe(BRANDS.length);
    expect(fakes.openai.ledger.length).toBe(50);
    expect(fakes.tavily.ledger.length, JSON.stringify(fakes.tavily.ledger.summary().byStatus)).toBe(50);
    // Booked = billed, to the micro-dollar, per provider: every call was confirmed and booked.
    const money = await new CostLedger(client).snapshot('e2e-run');
    expect(money.providers.llm).toMatchObject({ calls: BRANDS.length, costMicros: fakes.openai.ledger.billedMicros(), unconfirmedCalls: 0, unconfirmedMicros: 0 });
    expect(money.providers.tavily).toMatchObject({ calls: BRANDS.length, costMicros: fakes.tavily.ledger.billedMicros(), unconfirmedCalls: 0, unconfirmedMicros: 0 });
    expect(money.reservedMicros).toBe(0);

    const out = join(dir, 'results.csv');
    const exported = spawnTs('apps/producer/src/export.ts', ['--run', 'e2e-run', '--out', out], env);
    expect(await waitForExit(exported, 30_000)).toBe(0);
    const csvOut = await readFile(out, 'utf8');
    expect(csvOut.split('\r\n').filter(Boolean)).toHaveLength(51);

    for (const w of workers) w.kill('SIGTERM');
    for (const w of workers) expect(await waitForExit(w, 30_000)).toBe(0);
    client.disconnect();
  });
});
