import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeSheets, type FakeSheetsServer } from '@brandq/fakes';
import { CostLedger } from '@brandq/ledger';
import { createRedis } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { spawnTs, useTestRedis, waitForExit } from '@brandq/testing';

const redis = useTestRedis();
let dir: string;
let sheets: FakeSheetsServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'brandq-cli-'));
  sheets = await startFakeSheets();
});
afterAll(() => sheets.close());

async function run(entry: string, args: string[], env: Record<string, string> = {}) {
  const proc = spawnTs(entry, args, { REDIS_URL: redis.url, GOOGLE_SHEETS_ROOT_URL: sheets.url, GOOGLE_SHEETS_ACCESS_TOKEN: 'test', ...env });
  const code = await waitForExit(proc, 60_000);
  return { code, output: proc.output() };
}

describe('the producer CLI on bad input', () => {
  it('reports a missing file, a missing column and an unknown sheet as one readable line each', async () => {
    const missing = await run('apps/producer/src/enqueue.ts', ['--csv', join(dir, 'nope.csv'), '--no-follow']);
    expect(missing.code).toBe(1);
    expect(missing.output).toMatch(/^error: CSV file not found: .*nope\.csv\s*$/);

    const noColumn = join(dir, 'no-column.csv');
    await writeFile(noColumn, 'company,country\nAcme,US\n');
    const column = await run('apps/producer/src/enqueue.ts', ['--csv', noColumn, '--no-follow']);
    expect(column.code).toBe(1);
    expect(column.output).toMatch(/^error: .*brand column.*company.*country/s);
    expect(column.output).not.toMatch(/\n\s+at /);

    const sheet = await run('apps/producer/src/enqueue.ts', ['--sheet', 'no-such-sheet', '--no-follow']);
    expect(sheet.code).toBe(1);
    expect(sheet.output).toMatch(/^error: Google Sheets read of Brands!A2:A: spreadsheet or range not found/);
  });

  it('names the bad variable of a bad configuration, and usage mistakes exit 2', async () => {
    const csv = join(dir, 'ok.csv');
    await writeFile(csv, 'brand\nAcme\n');
    const bad = await run('apps/producer/src/enqueue.ts', ['--csv', csv, '--no-follow'], { OPENAI_TPM_HEADROOM: 'lots' });
    expect(bad.code).toBe(1);
    expect(bad.output).toMatch(/OPENAI_TPM_HEADROOM: expected a number, got "lots"/);

    const usage = await run('apps/producer/src/enqueue.ts', ['--resume', '--force', '--csv', csv]);
    expect(usage.code).toBe(2);
    expect(usage.output).toMatch(/--resume and --force conflict/);
  });
});

describe('the preflight guard', () => {
  it('prints the estimate on --dry-run and refuses a run the budget cannot cover unless --allow-partial', async () => {
    const csv = join(dir, 'preflight.csv');
    await writeFile(csv, `brand\n${Array.from({ length: 20 }, (_, i) => `Preflight Brand ${i}`).join('\n')}\n`);
    const dry = await run('apps/producer/src/enqueue.ts', ['--csv', csv, '--budget', '0.05', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.output).toMatch(/\[PREFLIGHT\][\s\S]*Brands: 20 \(cached: 0 searches, 0 answers\)[\s\S]*Cost: up to \$0\.\d\d \(budget \$0\.05\)[\s\S]*binding limit: /);
    expect(dry.output).toContain('(dry run: nothing enqueued)');

    const refused = await run('apps/producer/src/enqueue.ts', ['--csv', csv, '--budget', '0.05', '--run', 'too-poor', '--no-follow']);
    expect(refused.code).toBe(1);
    expect(refused.output).toMatch(/^error: the estimated cost \$0\.\d\d is above the budget \$0\.05/);
    const client = createRedis(redis.url);
    expect(await new RunStore(client).getRun('too-poor')).toBeUndefined();

    const partial = await run('apps/producer/src/enqueue.ts', ['--csv', csv, '--budget', '0.05', '--run', 'partial', '--allow-partial', '--no-follow']);
    expect(partial.code).toBe(0);
    expect((await new RunStore(client).getRun('partial'))?.total).toBe(20);
    client.disconnect();
  });
});

describe('runs from a sheet and the run commands', () => {
  it('reads a sheet with values.get, validates its rows and writes a checkpoint in the original shape', async () => {
    sheets.setSheet('sheet-cli', 'Brands', [['brand'], ['Acme'], [''], ['acme '], ['Globex']]);
    const enqueued = await run('apps/producer/src/enqueue.ts', ['--sheet', 'sheet-cli', '--range', 'Brands!A2:A', '--run', 'cli-run', '--no-follow']);
    expect(enqueued.code).toBe(0);
    expect(enqueued.output).toContain('run cli-run: 2 brands enqueued, 2 rows skipped');
    expect(enqueued.output).toMatch(/Row 3: brand name is empty/);
    expect(enqueued.output).toMatch(/Row 4: "acme" duplicates row 2/);

    const client = createRedis(redis.url);
    await new CostLedger(client).book('cli-run', 'tavily', { costMicros: 16_000, credits: 2 });
    const out = join(dir, 'checkpoint.json');
    expect((await run('apps/producer/src/checkpoint.ts', ['--run', 'cli-run', '--out', out])).code).toBe(0);
    const doc = JSON.parse(await readFile(out, 'utf8')) as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual(expect.arrayContaining(['timestamp', 'reason', 'processed_count', 'results', 'cost_summary']));
    expect(doc).toMatchObject({ processed_count: 0, results: { success: [], failed: [] }, cost_summary: { total_cost: 0.016, tavily_cost: 0.016 } });
    expect((doc.results as { skipped: unknown[] }).skipped).toHaveLength(2);

    const status = await run('apps/producer/src/status.ts', ['--run', 'cli-run']);
    expect(status.output).toContain('[COST SUMMARY]');
    expect(status.output).toContain('Tavily: $0.02 (1 calls)');
    expect((await new RunStore(client).getRun('cli-run'))?.total).toBe(2);
    client.disconnect();
  });
});

describe('repeat runs of a source', () => {
  it('creates no run when every brand already has a result, says so and exits 0', async () => {
    const csv = join(dir, 'repeat.csv');
    await writeFile(csv, 'brand\nAcme\nGlobex\n\n');
    const first = await run('apps/producer/src/enqueue.ts', ['--csv', csv, '--run', 'repeat-cli', '--no-follow']);
    expect(first.code).toBe(0);
    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    for await (const b of runs.brands('repeat-cli')) {
      await runs.recordSuccess({ runId: 'repeat-cli', key: b.key, brand: b.name, rowNumber: b.rowNumber, processedAt: 'now', fields: {} });
    }

    const again = await run('apps/producer/src/enqueue.ts', ['--csv', csv, '--run', 'repeat-cli-2', '--no-follow']);
    expect(again.code).toBe(0);
    expect(again.output).toContain('nothing to do: all 2 brands already have results in run repeat-cli (use --force to redo)');
    expect(await runs.getRun('repeat-cli-2')).toBeUndefined();
    expect(await runs.latestRunForSource(`csv:${csv}`)).toBe('repeat-cli');
    client.disconnect();
  });
});

