import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fakes } from '@brandq/fakes';
import { CostLedger, formatCostSummary, microsToUsd } from '@brandq/ledger';
import { createRedis } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { spawnTs, useTestRedis, waitForExit, type SpawnedProcess } from '@brandq/testing';
import { enqueue, startWorkers, stopWorkers, waitForRun, workerEnv, writeBrandsCsv, startOpenFakes } from './test-support.js';

const redis = useTestRedis();
let fakes: Fakes;
let dir: string;
let workers: SpawnedProcess[] = [];
const BROKEN = 'Follow Broken';

beforeAll(async () => {
  fakes = await startOpenFakes({ openai: { latencyMs: { min: 5, max: 30 }, seed: 51 }, tavily: { latencyMs: { min: 5, max: 20 }, seed: 52 } });
  dir = await mkdtemp(join(tmpdir(), 'brandq-follow-'));
});
afterAll(async () => {
  await stopWorkers(workers);
  await fakes?.close();
});

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** Runs `status --run <id> --follow` under a pseudo-terminal (util-linux `script`), as a person would. */
function followInTerminal(runId: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const command = [process.execPath, '--import', 'tsx', '--conditions=@brandq/source', 'apps/producer/src/status.ts', '--run', runId, '--follow'].join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: repoRoot, env: { ...process.env, ...env, TERM: 'xterm' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`follow under a terminal did not end:\n${out}`));
    }, 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

const usd = (micros: number) => `$${microsToUsd(micros).toFixed(2)}`;

describe('pnpm status --run <id> --follow, captured and under a pseudo-terminal', () => {
  it('prints the fleet figures from Redis: done/total, Success/Failed, $spent/$budget and the cost summary', { timeout: 90_000 }, async () => {
    const env = workerEnv(fakes, redis.url);
    fakes.openai.injectFaults([{ status: 400, brand: BROKEN }]);
    const names = ['Follow One', 'Follow Two', 'Follow Three', 'Follow Four', 'Follow Five', BROKEN];
    await enqueue(['--csv', await writeBrandsCsv(dir, names), '--run', 'follow-run', '--budget', '0.50'], env);
    workers = startWorkers(1, env, 4);
    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    const ledger = new CostLedger(client);
    const run = await waitForRun(runs, 'follow-run', (r) => r.status === 'completed', 60_000);
    await stopWorkers(workers);
    workers = [];
    expect(run).toMatchObject({ total: 6, succeeded: 5, failed: 1 });
    const books = await ledger.snapshot('follow-run');
    expect(books.reservedMicros).toBe(0);

    const follow = spawnTs('apps/producer/src/status.ts', ['--run', 'follow-run', '--follow'], env);
    expect(await waitForExit(follow, 30_000)).toBe(0);
    const out = follow.output();
    // Not a terminal: plain lines, no carriage-return redraws or escape codes.
    expect(out).not.toContain('\r');
    expect(out).not.toContain('\u001b[');

    const progress = out.split('\n').find((l) => l.includes('Success:'));
    expect(progress, out).toBeDefined();
    const m = /^\s*(\d+)%\|[█ ]+\| (\d+)\/(\d+) \[[\d:]+<[-\d:]+, ([\d.]+) brands\/s\] Success: (\d+) \| Failed: (\d+) \| (\$[\d.]+)\/(\$[\d.]+)$/.exec(progress!);
    expect(m, progress).not.toBeNull();
    const [, pct, done, total, rate, success, failed, spent, budget] = m!;
    expect(Number(pct)).toBe(100);
    expect(Number(done)).toBe(run.succeeded + run.failed);
    expect(Number(total)).toBe(run.total);
    expect(Number(rate)).toBeGreaterThan(0);
    expect(Number(success)).toBe(run.succeeded);
    expect(Number(failed)).toBe(run.failed);
    expect(spent).toBe(usd(books.spentMicros));
    expect(budget).toBe(usd(books.budgetMicros));
    expect(budget).toBe('$0.50');

    // The closing summary is the ledger's, line for line, and its figures are the books'.
    const summary = out.slice(out.indexOf('[COST SUMMARY]')).trimEnd();
    expect(summary).toBe(formatCostSummary(books, 'OpenAI'));
    const count = (n: number) => n.toLocaleString('en-US');
    expect(summary).toContain(`Tavily: ${usd(books.providers.tavily.costMicros)} (${books.providers.tavily.calls} calls)`);
    expect(books.providers.tavily.calls).toBe(6);
    expect(summary).toContain(`OpenAI: ${usd(books.providers.llm.costMicros)} (${books.providers.llm.calls} calls)`);
    expect(summary).toContain(`Input tokens: ${count(books.providers.llm.inputTokens)}`);
    expect(summary).toContain(`Output tokens: ${count(books.providers.llm.outputTokens)}`);
    expect(summary).toContain(`Total: ${usd(books.spentMicros)}`);
    expect(summary).toContain(`Budget: ${usd(books.spentMicros)} / $0.50`);
    expect(summary).toContain(`Remaining: ${usd(books.budgetMicros - books.spentMicros)}`);

    // On a terminal the same line is drawn in place (carriage return, clear to end of line).
    const tty = await followInTerminal('follow-run', env);
    expect(tty.code, tty.out).toBe(0);
    expect(tty.out).toContain(`\r${progress}\u001b[K`);
    expect(tty.out.replace(/\r\n/g, '\n')).toContain(summary);
    client.disconnect();
  });

  it('Ctrl+C detaches from a running run without touching it', { timeout: 60_000 }, async () => {
    const env = workerEnv(fakes, redis.url);
    // No worker runs now: the run stays queued and running while it is followed.
    await enqueue(['--csv', await writeBrandsCsv(dir, ['Detach One', 'Detach Two'], 'detach.csv'), '--run', 'detach-run'], env);
    const follow = spawnTs('apps/producer/src/status.ts', ['--run', 'detach-run', '--follow'], env);
    const deadline = Date.now() + 30_000;
    while (!follow.output().includes('Success:')) {
      if (Date.now() > deadline) throw new Error(`no progress line:\n${follow.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(follow.output()).toContain('0/2');
    follow.kill('SIGINT');
    expect(await waitForExit(follow, 15_000)).toBe(0);
    expect(follow.output()).toContain('detached; workers continue. Watch again with: pnpm status --run detach-run --follow');
    expect(follow.output()).toContain('[COST SUMMARY]');
    const client = createRedis(redis.url);
    expect(await new RunStore(client).getRun('detach-run')).toMatchObject({ status: 'running', total: 2, succeeded: 0 });
    client.disconnect();
  });
});
