import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunShares } from '@brandq/fair-share';
import type { Fakes } from '@brandq/fakes';
import { createRedis } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { spawnTs, useTestRedis, waitForExit } from '@brandq/testing';
import { startOpenFakes, waitFor, workerEnv } from '../../worker/src/test-support.js';

const redis = useTestRedis();
let dir: string;
let fakes: Fakes;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'brandq-cli-'));
  fakes = await startOpenFakes();
});
afterAll(() => fakes?.close());

/** `brandq <args>` as a real process, through the same entry point as the `brandq` bin. */
async function brandq(args: string[], env: Record<string, string> = {}, entry = 'apps/producer/src/brandq.ts') {
  const proc = spawnTs(entry, args, { REDIS_URL: redis.url, ...fakes.env, ...env });
  const code = await waitForExit(proc, 120_000);
  return { code, output: proc.output() };
}

async function csv(name: string, brands: string[]): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `brand\n${brands.map((b) => `${b}\n`).join('')}`);
  return path;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const COMMANDS = ['enqueue', 'run', 'status', 'export', 'failed', 'checkpoint', 'worker', 'board'];

describe('brandq: help, version and usage mistakes', () => {
  it('answers --help on every command and --version with 0, and usage mistakes with 2 and brandq\'s own message', { timeout: 180_000 }, async () => {
    const [version, ...helps] = await Promise.all([brandq(['--version']), ...COMMANDS.map((c) => brandq([c, '--help']))]);
    expect(version).toMatchObject({ code: 0 });
    expect(version.output.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    helps.forEach((help, i) => {
      expect(help.code).toBe(0);
      expect(help.output).toContain(`Usage: brandq ${COMMANDS[i]}`);
      expect(help.output).toMatch(/Exit codes:[\s\S]*3 +a followed run ended held/);
    });

    const [budget, xlsx, unknown, alias, worker, board] = await Promise.all([
      brandq(['enqueue', '--csv', 'x.csv', '--budget', '-3']),
      brandq(['export', '--run', 'r', '--out', join(dir, 'results.xlsx')]),
      brandq(['status', '--nope']),
      // The old entry points stay as aliases (pnpm status, pnpm worker, pnpm board), --help included.
      brandq(['--help'], {}, 'apps/producer/src/status.ts'),
      brandq(['--help'], {}, 'apps/worker/src/main.ts'),
      brandq(['--help'], {}, 'apps/board/src/main.ts'),
    ]);
    expect(worker).toMatchObject({ code: 0, output: expect.stringContaining('usage: brandq worker') });
    expect(board).toMatchObject({ code: 0, output: expect.stringContaining('usage: brandq board') });
    expect(board.output).not.toMatch(/listening|board started/i);
    expect(budget.code).toBe(2);
    expect(budget.output).toMatch(/^error: --budget must be a number of dollars, 0 or more, got "-3"/);
    expect(xlsx.code).toBe(2);
    expect(xlsx.output).toMatch(/cannot export to .*results\.xlsx: supported formats are \.csv, \.jsonl/);
    expect(existsSync(join(dir, 'results.xlsx'))).toBe(false);
    expect(unknown.code).toBe(2);
    expect(unknown.output).toMatch(/unknown option '--nope'/);
    expect(alias.code).toBe(0);
    expect(alias.output).toContain('Usage: brandq status');
  });
});

describe('brandq: the rough edges of a first hour', () => {
  it('refuses an empty CSV, says "0 new" on a repeat, names the sheet credentials and tells a missing run from a usage mistake', { timeout: 180_000 }, async () => {
    const empty = await csv('empty.csv', []);
    const two = await csv('two.csv', ['Acme', 'Globex']);
    const [refused, noCredentials, missingRun] = await Promise.all([
      brandq(['enqueue', '--csv', empty, '--run', 'empty-run', '--no-follow']),
      brandq(['enqueue', '--sheet', 'some-sheet', '--no-follow'], { GOOGLE_SHEETS_ACCESS_TOKEN: '', GOOGLE_APPLICATION_CREDENTIALS: '' }),
      brandq(['status', '--run', 'nope']),
    ]);
    expect(refused.code).toBe(1);
    expect(refused.output).toMatch(/^error: no brands in .*empty\.csv\s*$/);
    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    expect(await runs.getRun('empty-run')).toBeUndefined();
    expect(noCredentials.code).toBe(1);
    expect(noCredentials.output).toMatch(/^error: .*GOOGLE_APPLICATION_CREDENTIALS.*GOOGLE_SHEETS_ACCESS_TOKEN/);
    expect(missingRun.code).toBe(1);
    expect(missingRun.output).toMatch(/^error: run nope not found\s*$/);

    const first = await brandq(['enqueue', '--csv', two, '--run', 'twice', '--no-follow']);
    expect(first.output).toContain('run twice: 2 brands enqueued, 0 rows skipped');
    const again = await brandq(['enqueue', '--csv', two, '--run', 'twice', '--no-follow']);
    expect(again.code).toBe(0);
    expect(again.output).toContain('run twice: 0 new, 2 already queued (run total 2)');
    client.disconnect();
  });

  it('exports with a UTF-8 BOM (or without, --no-bom), and refuses a missing folder in one line', { timeout: 180_000 }, async () => {
    const source = await csv('accents.csv', ['Café Ñandú', 'Zoë']);
    expect((await brandq(['enqueue', '--csv', source, '--run', 'accents', '--no-follow'])).code).toBe(0);
    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    for await (const b of runs.brands('accents')) {
      await runs.recordSuccess({ runId: 'accents', key: b.key, brand: b.name, rowNumber: b.rowNumber, processedAt: 'now', fields: { category: 'café' } });
    }
    const withBom = join(dir, 'with-bom.csv');
    const withoutBom = join(dir, 'without-bom.csv');
    const [bom, noBom, missing] = await Promise.all([
      brandq(['export', '--run', 'accents', '--out', withBom]),
      brandq(['export', '--run', 'accents', '--out', withoutBom, '--no-bom']),
      brandq(['export', '--run', 'accents', '--out', join(dir, 'no-such-folder', 'x.csv')]),
    ]);
    expect([bom.code, noBom.code]).toEqual([0, 0]);
    const bytes = await readFile(withBom);
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(bytes.toString('utf8')).toContain('Café Ñandú');
    const plain = await readFile(withoutBom, 'utf8');
    expect(plain.startsWith('row,brand,status')).toBe(true);
    expect(missing.code).toBe(1);
    expect(missing.output).toMatch(/^error: cannot write .*x\.csv: the folder .*no-such-folder does not exist\s*$/);
    client.disconnect();
  });
});

describe('brandq: machine-readable output and exit codes', () => {
  it('prints JSON for status, failed and the preflight estimate, and --follow exits 3 on a held run', { timeout: 180_000 }, async () => {
    const source = await csv('json.csv', ['Initech', 'Umbrella', 'Hooli']);
    expect((await brandq(['enqueue', '--csv', source, '--run', 'json-run', '--no-follow'])).code).toBe(0);
    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    for await (const b of runs.brands('json-run')) {
      await runs.recordFailure({ runId: 'json-run', key: b.key, brand: b.name, rowNumber: b.rowNumber, kind: 'bad_input', reason: 'no such brand', attempts: 1, failedAt: 'now' });
      break;
    }
    await runs.setStatus('json-run', 'paused', 'quota exhausted');

    const [dry, one, all, failed, held] = await Promise.all([
      brandq(['enqueue', '--csv', source, '--budget', '5', '--dry-run', '--json', '--force']),
      brandq(['status', '--run', 'json-run', '--json']),
      brandq(['status', '--json']),
      brandq(['failed', '--run', 'json-run', '--json']),
      brandq(['status', '--run', 'json-run', '--follow']),
    ]);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.output)).toMatchObject({ brands: 3, budgetMicros: 5_000_000, estimatedCostMicros: expect.any(Number), binding: expect.any(String) });
    expect(JSON.parse(one.output)).toMatchObject({ run: { id: 'json-run', total: 3, failed: 1, status: 'paused' }, ledger: { spentMicros: 0 } });
    expect((JSON.parse(all.output) as { runs: { id: string }[] }).runs.map((r) => r.id)).toContain('json-run');
    expect(JSON.parse(failed.output)).toMatchObject({ runId: 'json-run', failures: [{ kind: 'bad_input', reason: 'no such brand' }] });
    expect(held.code).toBe(3);
    expect(held.output).toContain('[PAUSED] quota exhausted');

    await runs.setStatus('json-run', 'completed');
    expect((await brandq(['status', '--run', 'json-run', '--follow'])).code).toBe(0);

    // enqueue --follow too: the run it follows ends out of budget, and it exits 3.
    const following = spawnTs('apps/producer/src/brandq.ts', ['enqueue', '--csv', await csv('follow.csv', ['Vandelay']), '--run', 'follow-held', '--follow'], { REDIS_URL: redis.url, ...fakes.env });
    await waitFor('the run created', async () => (await runs.getRun('follow-held')) !== undefined, 60_000);
    await runs.setStatus('follow-held', 'budget_exhausted', 'budget reached');
    expect(await waitForExit(following, 60_000)).toBe(3);
    expect(following.output()).toContain('[BUDGET] Budget limit reached');
    client.disconnect();
  });
});

describe('brandq runs', () => {
  it('lists runs as JSON, and prunes ended runs only with --yes, leaving running ones', { timeout: 180_000 }, async () => {
    const source = await csv('retention.csv', ['Soylent', 'Tyrell']);
    const other = await csv('retention-running.csv', ['Wayne']);
    await Promise.all([
      brandq(['enqueue', '--csv', source, '--run', 'old-run', '--no-follow']),
      brandq(['enqueue', '--csv', other, '--run', 'still-running', '--no-follow']),
    ]);
    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    await runs.setStatus('old-run', 'completed');

    const [list, dry] = await Promise.all([brandq(['runs', 'list', '--json']), brandq(['runs', 'prune', '--older-than', '0s', '--json'])]);
    expect(list.code).toBe(0);
    const listed = (JSON.parse(list.output) as { runs: { run: { id: string }; ended: boolean }[] }).runs;
    expect(listed.find((l) => l.run.id === 'old-run')).toMatchObject({ ended: true });
    expect(listed.find((l) => l.run.id === 'still-running')).toMatchObject({ ended: false });
    // Other tests' ended runs share this Redis: only which runs are in, and which are not, is the point.
    const report = JSON.parse(dry.output) as { dryRun: boolean; runs: { id: string }[] };
    expect(report.dryRun).toBe(true);
    expect(report.runs.map((r) => r.id)).toContain('old-run');
    expect(report.runs.map((r) => r.id)).not.toContain('still-running');
    expect(await runs.getRun('old-run')).toBeDefined();

    const pruned = await brandq(['runs', 'prune', '--older-than', '0s', '--yes']);
    expect(pruned.code).toBe(0);
    expect(pruned.output).toMatch(/deleted \d+ runs? ended before/);
    expect(await runs.getRun('old-run')).toBeUndefined();
    expect(await runs.getRun('still-running')).toBeDefined();
    client.disconnect();
  });
});

describe('brandq: several runs on one fleet', () => {
  it('refuses a bad --weight or --max-rpm as a usage mistake (exit 2), creating nothing', { timeout: 120_000 }, async () => {
    const source = await csv('bad-share.csv', ['Acme']);
    const [zero, fraction, rpm, none, resumed, empty] = await Promise.all([
      brandq(['enqueue', '--csv', source, '--run', 'bad-weight', '--weight', '0', '--no-follow']),
      brandq(['run', '--csv', source, '--run', 'bad-weight', '--weight', '1.5']),
      brandq(['enqueue', '--csv', source, '--run', 'bad-weight', '--max-rpm', 'lots', '--no-follow']),
      brandq(['runs', 'set', 'bad-weight', '--max-rpm', '0']),
      brandq(['enqueue', '--resume', '--run', 'bad-weight', '--weight', '2', '--no-follow']),
      brandq(['runs', 'set', 'bad-weight']),
    ]);
    expect(zero).toMatchObject({ code: 2, output: expect.stringMatching(/^error: --weight: weight must be at least 1, got "0"/) });
    expect(fraction).toMatchObject({ code: 2, output: expect.stringMatching(/^error: --weight: weight must be a whole number, got "1.5"/) });
    expect(rpm).toMatchObject({ code: 2, output: expect.stringMatching(/^error: --max-rpm: max rpm must be a number, got "lots"/) });
    expect(none).toMatchObject({ code: 2, output: expect.stringMatching(/^error: --max-rpm must be calls per minute .* or none to lift the ceiling, got "0"/) });
    expect(resumed).toMatchObject({ code: 2, output: expect.stringMatching(/^error: --weight and --max-rpm go with a new run .* brandq runs set <run-id>/) });
    expect(empty).toMatchObject({ code: 2, output: expect.stringMatching(/^error: give --weight <n>, --max-rpm <n\|none> or both/) });
    const client = createRedis(redis.url);
    expect(await new RunStore(client).getRun('bad-weight')).toBeUndefined();
    client.disconnect();
  });

  it('creates a run with --weight and --max-rpm, changes them with brandq runs set (in its history), and status shows weight, ceiling, share and ETA', { timeout: 120_000 }, async () => {
    const source = await csv('weighted.csv', ['Alpha', 'Bravo', 'Charlie', 'Delta', 'Echo']);
    const created = await brandq(['enqueue', '--csv', source, '--run', 'weighted', '--weight', '3', '--max-rpm', '60', '--no-follow']);
    expect(created.code, created.output).toBe(0);
    expect(created.output).toContain('run weighted: weight 3, at most 60 calls/min at each provider');
    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    expect(await runs.getRun('weighted')).toMatchObject({ weight: 3, maxRpm: 60 });

    const [set, missing] = await Promise.all([brandq(['runs', 'set', 'weighted', '--weight', '5', '--max-rpm', 'none']), brandq(['runs', 'set', 'no-such-run', '--weight', '2'])]);
    expect(set.code, set.output).toBe(0);
    expect(set.output).toMatch(/^run weighted: weight 5, no ceiling of its own; 5 queued jobs take their new place/);
    const run = await runs.getRun('weighted');
    expect(run?.weight).toBe(5);
    expect(run?.maxRpm).toBeUndefined();
    const [entry] = await runs.history('weighted');
    expect(entry).toMatchObject({ action: 'share', by: expect.stringMatching(/^(.+ \(cli\)|cli)$/), details: { from: { weight: 3, maxRpm: 60 }, weight: 5, maxRpm: null, retagged: 5 } });
    expect(missing).toMatchObject({ code: 1, output: expect.stringMatching(/^error: run no-such-run not found\s*$/) });

    // What workers count as they go: 30 calls admitted for it, 2 of its brands finished, this minute.
    const shares = new RunShares(client);
    for (let i = 0; i < 30; i++) await shares.admitted('weighted');
    for (const b of ['alpha', 'bravo']) {
      await runs.recordSuccess({ runId: 'weighted', key: b, brand: b, rowNumber: 2, processedAt: 'now', fields: {} });
      await shares.finished('weighted');
    }
    const [one, json, all] = await Promise.all([brandq(['status', '--run', 'weighted']), brandq(['status', '--run', 'weighted', '--json']), brandq(['status'])]);
    expect(one.code).toBe(0);
    // 3 brands open at 2 per minute or so: about a minute and a half.
    expect(one.output).toMatch(/\n {2}share: weight 5; \d+% of the fleet's calls over the last minute, ETA 0[01]:\d\d at that share\n/);
    expect(JSON.parse(json.output)).toMatchObject({ fairShare: { weight: 5, maxRpm: null, calls: 30, done: 2, measuredShare: expect.any(Number), etaSeconds: expect.any(Number) } });
    expect((JSON.parse(json.output) as { fairShare: { measuredShare: number } }).fairShare.measuredShare).toBeGreaterThan(0);
    expect(all.output).toMatch(/^weighted .*\n {2}share: weight 5; \d+% of the fleet's calls over the last minute, ETA \d\d:\d\d at that share$/m);

    // A run that ended takes no share, and says so (exit 1, as a run not found).
    await runs.setStatus('weighted', 'completed');
    const ended = await brandq(['runs', 'set', 'weighted', '--weight', '2']);
    expect(ended).toMatchObject({ code: 1, output: expect.stringMatching(/^error: run weighted is .*only a run that still has brands to do takes a share\s*$/) });
    expect((await runs.getRun('weighted'))?.weight).toBe(5);
    client.disconnect();
  });
});

describe('brandq run', () => {
  it('starts 2 workers, runs the list to the end, exports out/<run>.csv, and leaves no process behind', { timeout: 240_000 }, async () => {
    const names = Array.from({ length: 12 }, (_, i) => `Fleet Brand ${i}`);
    const source = await csv('fleet.csv', names);
    const runId = `fleet-${Date.now()}`;
    const exportPath = join('out', `${runId}.csv`);
    try {
      const result = await brandq(['run', '--csv', source, '--workers', '2', '--concurrency', '4', '--run', runId], workerEnv(fakes, redis.url));
      expect(result.code, result.output).toBe(0);
      expect(result.output).toContain(`wrote 12 rows to ${exportPath}`);
      const pids = (/\(pids (\d+), (\d+)\)/.exec(result.output) ?? []).slice(1).map(Number);
      expect(pids).toHaveLength(2);
      for (const pid of pids) expect(isAlive(pid)).toBe(false);
      const exported = (await readFile(join(process.cwd(), exportPath), 'utf8')).replace(/^\uFEFF/, '').trim().split('\r\n');
      expect(exported).toHaveLength(13);
      expect(exported.slice(1).every((line) => line.includes(',success,'))).toBe(true);
      const client = createRedis(redis.url);
      expect((await new RunStore(client).getRun(runId))?.status).toBe('completed');
      client.disconnect();
    } finally {
      await rm(join(process.cwd(), exportPath), { force: true });
      await rm(join(process.cwd(), 'out', `${runId}.workers.log`), { force: true });
    }
  });

  it('ends with an error naming the workers\' log when every worker died, instead of waiting forever', { timeout: 180_000 }, async () => {
    // A port the workers cannot bind: each exits at start-up, brandq itself binds nothing.
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as AddressInfo).port;
    const source = await csv('dead-fleet.csv', ['Cyberdyne']);
    const runId = `dead-fleet-${Date.now()}`;
    try {
      const result = await brandq(['run', '--csv', source, '--workers', '2', '--run', runId], { ...workerEnv(fakes, redis.url), METRICS_PORT: String(port), METRICS_HOST: '127.0.0.1' });
      expect(result.code).toBe(1);
      expect(result.output).toContain(`error: every worker exited before run ${runId} ended: see out/${runId}.workers.log`);
    } finally {
      taken.close();
      await rm(join(process.cwd(), 'out', `${runId}.workers.log`), { force: true });
    }
  });

  it('stops its workers on Ctrl+C and exits 130', { timeout: 180_000 }, async () => {
    const slow = await startOpenFakes({ openai: { latencyMs: { min: 3000, max: 4000 } } });
    const source = await csv('interrupted.csv', Array.from({ length: 40 }, (_, i) => `Slow Brand ${i}`));
    const runId = `interrupted-${Date.now()}`;
    try {
      const proc = spawnTs('apps/producer/src/brandq.ts', ['run', '--csv', source, '--workers', '2', '--run', runId], { ...workerEnv(slow, redis.url), SHUTDOWN_GRACE_SECONDS: '2' });
      const pids = await waitFor('workers started', async () => (/\(pids (\d+), (\d+)\)/.exec(proc.output()) ?? undefined)?.slice(1).map(Number), 60_000);
      await waitFor('a brand call in flight', async () => slow.openai.ledger.entries().length > 0, 60_000);
      proc.kill('SIGINT');
      expect(await waitForExit(proc, 30_000)).toBe(130);
      expect(proc.output()).toContain('stopping the workers');
      for (const pid of pids) expect(isAlive(pid)).toBe(false);
    } finally {
      await slow.close();
      await rm(join(process.cwd(), 'out', `${runId}.workers.log`), { force: true });
    }
  });
});
