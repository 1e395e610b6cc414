import { existsSync } from 'node:fs';
import { copyFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Fakes } from '@brandq/fakes';
import { createBrandQueue, type BrandQueue } from '@brandq/queue';
import { createRedis, getFreePort } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { spawnTs, useTestRedis, waitForExit, type SpawnedProcess } from '@brandq/testing';
import { enqueue, startOpenFakes, startWorkers, stopWorkers, waitFor, waitForRun, workerEnv, writeBrandsCsv } from '../../worker/src/test-support.js';

/**
 * The run page as an operator uses it: Chromium (playwright-core) on a real `pnpm board`,
 * real worker processes on the fakes. Skipped only on a machine without Chromium (CI has it).
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
const skip = !existsSync(CHROMIUM) && !process.env.CI;
if (skip) process.stderr.write(`run page browser test SKIPPED: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)\n`);

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const redis = useTestRedis();
const USER = 'ops';
const PASSWORD = 'run-page-pw';
const LONG_RUN = 'operator-long';
const HELD_RUN = 'operator-held';
const BROKEN = 'Broken Brand Co';
/** A brand whose LLM answer is markup: the page must show it as text. */
const MARKUP = 'Markup Brand Co';
const XSS = '<img src=x onerror=alert(1)>';
const BRANDS = [...Array.from({ length: 58 }, (_, i) => `Console Brand ${i + 1}`), MARKUP, BROKEN];

let fakes: Fakes;
let dir: string;
let browser: Browser | undefined;
let queue: BrandQueue;
const procs: SpawnedProcess[] = [];
let workers: SpawnedProcess[] = [];

beforeAll(async () => {
  if (skip) return;
  // Slow enough answers that one worker slot takes half a minute over the run: the charts
  // get new buckets (10 s each) while the page is open.
  const answers = { [MARKUP]: JSON.stringify({ website: null, category: XSS, description: XSS, country: null, founded_year: null, sources: [] }) };
  fakes = await startOpenFakes({ openai: { latencyMs: { min: 300, max: 500 }, seed: 71, answers }, tavily: { latencyMs: { min: 50, max: 150 }, seed: 72 } });
  dir = await mkdtemp(join(tmpdir(), 'brandq-run-page-'));
});
afterAll(async () => {
  await browser?.close();
  await stopWorkers(workers);
  for (const p of procs) p.kill('SIGKILL');
  await queue?.close();
  await fakes?.close();
});

const points = (page: Page, chart: string) => page.locator(`#${chart}`).getAttribute('data-points').then(Number);

describe.skipIf(skip)('the run page in Chromium', () => {
  it('charts a run as it goes, pauses and resumes it, retries its failures, and lifts a budget hold', { timeout: 240_000 }, async () => {
    // One attempt per brand: the scripted 500 fails its brand at once.
    const env = workerEnv(fakes, redis.url, { JOB_ATTEMPTS: '1' });
    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    queue = createBrandQueue(client);
    fakes.openai.injectFaults([{ status: 500, brand: BROKEN }]);
    await enqueue(['--csv', await writeBrandsCsv(dir, BRANDS, 'long.csv'), '--run', LONG_RUN, '--budget', '2'], env);
    workers = startWorkers(1, env, 1);

    const port = await getFreePort();
    const board = spawnTs('apps/board/src/main.ts', [], { ...env, BOARD_HOST: '127.0.0.1', BOARD_PORT: String(port), BOARD_USER: USER, BOARD_PASSWORD: PASSWORD });
    procs.push(board);
    const base = `http://127.0.0.1:${port}`;
    await waitFor('the board to listen', async () => board.output().includes(`board: ${base}/runs`), 30_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${board.output()}`);
    });

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const context = await browser.newContext({ httpCredentials: { username: USER, password: PASSWORD }, viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    const blocked: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy/.test(message.text())) blocked.push(message.text());
    });

    // From the runs list to the run's page.
    await page.goto(`${base}/runs`);
    await page.locator(`#runs a[href="/runs/${LONG_RUN}"]`).click();
    await page.waitForURL(`${base}/runs/${LONG_RUN}`);
    await page.locator('#status', { hasText: 'running' }).waitFor({ timeout: 20_000 });
    expect(await page.locator('body').getAttribute('data-live')).toBe('events');

    // The charts grow while the run goes: a new bucket every 10 s.
    await waitFor('a first point', async () => (await points(page, 'chart-done')) > 0, 30_000);
    const first = await points(page, 'chart-done');
    await waitFor('the charts to grow', async () => (await points(page, 'chart-done')) > first, 40_000);
    expect(await points(page, 'chart-spend')).toBeGreaterThan(first);
    expect(await points(page, 'chart-waits')).toBeGreaterThan(first);
    expect(await page.locator('#chart-done canvas').count()).toBe(1);
    expect(await page.locator('#eta').textContent()).toMatch(/^about \d+ (s|min) at \d+\.\d brands\/min$/);

    // Pause: the workers stop taking its brands; calls in flight finish, then nothing is sent.
    await page.locator('#pause').click();
    await page.locator('#status', { hasText: 'paused' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#binding').getAttribute('data-reason')).toBe('paused');
    await waitFor('calls in flight to finish', async () => (await queue.getActiveCount()) === 0, 30_000);
    const callsWhenPaused = fakes.openai.ledger.length;
    const held = await runs.getRun(LONG_RUN);
    expect(held?.status).toBe('paused');
    expect((held?.succeeded ?? 0) + (held?.failed ?? 0)).toBeLessThan(BRANDS.length);
    // Watched for three seconds (more than a worker's poll of the queue): not one more call.
    await new Promise((r) => setTimeout(r, 3000));
    expect(fakes.openai.ledger.length).toBe(callsWhenPaused);
    expect(await runs.getRun(LONG_RUN)).toMatchObject({ status: 'paused', succeeded: held?.succeeded });

    // Resume: it goes on to the end; the scripted 500 failed one brand.
    await page.locator('#resume').click();
    await waitFor('calls to start again', async () => fakes.openai.ledger.length > callsWhenPaused, 30_000);
    const done = await waitForRun(runs, LONG_RUN, (r) => r.status === 'completed', 90_000);
    expect(done).toMatchObject({ succeeded: BRANDS.length - 1, failed: 1 });

    // The failure group, and "retry these": the brand goes again and succeeds.
    const group = page.locator('#failures tbody tr[data-kind]');
    await group.waitFor({ timeout: 10_000 });
    expect(await group.locator('td').nth(2).textContent()).toBe('1');
    expect(await group.locator('td').nth(3).textContent()).toContain(BROKEN);
    await group.locator('button', { hasText: 'Retry these' }).click();
    const retried = await waitForRun(runs, LONG_RUN, (r) => r.status === 'completed' && r.failed === 0, 30_000);
    expect(retried.succeeded).toBe(BRANDS.length);
    await page.locator('#failures tbody', { hasText: 'no failed brands' }).waitFor({ timeout: 10_000 });
    await page.locator('#history li', { hasText: 'retry' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#history li').allTextContents()).toEqual(
      expect.arrayContaining([expect.stringContaining(`${USER} · pause`), expect.stringContaining(`${USER} · resume`)]),
    );
    // The latest results, newest first, and the export as it stands.
    expect(await page.locator('#results tbody tr').count()).toBe(20);
    await page.locator('#results-page', { hasText: `page 1 of 3 (${BRANDS.length} results, newest first)` }).waitFor({ timeout: 10_000 });
    // The answer made of markup is shown as text, on whichever page it is.
    const markup = page.locator('#results tbody tr', { hasText: MARKUP });
    let shown = 1;
    for (; (await markup.count()) === 0 && shown < 3; shown++) {
      await page.locator('#older').click();
      await page.locator('#results-page', { hasText: `page ${shown + 1} of 3` }).waitFor();
    }
    expect(await markup.locator('td').nth(3).textContent()).toBe(XSS);
    expect(await page.locator('#results img').count()).toBe(0);
    // Back to the first page one step at a time, each step waited for (the page refreshes meanwhile).
    for (; shown > 1; shown--) {
      await page.locator('#newer').click();
      await page.locator('#results-page', { hasText: `page ${shown - 1} of 3` }).waitFor();
    }
    expect(await page.locator('#newer').isDisabled()).toBe(true);
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download-csv').click()]);
    expect(download.suggestedFilename()).toBe(`${LONG_RUN}.csv`);

    const shot = join(dir, 'run-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    // BRANDQ_UPDATE_SCREENSHOTS=1 refreshes the committed picture in docs/.
    if (process.env.BRANDQ_UPDATE_SCREENSHOTS === '1') await copyFile(shot, join(repoRoot, 'docs/run-page.png'));

    // A run held for its budget: a search costs more than all of it.
    await enqueue(['--csv', await writeBrandsCsv(dir, ['Held One', 'Held Two', 'Held Three'], 'held.csv'), '--run', HELD_RUN, '--budget', '0.005', '--allow-partial'], env);
    await waitForRun(runs, HELD_RUN, (r) => r.status === 'budget_exhausted', 30_000);
    await page.goto(`${base}/runs/${HELD_RUN}`);
    await page.locator('#binding[data-reason="budget"]').waitFor({ timeout: 10_000 });
    await page.locator('#budget').fill('1');
    await page.locator('#set-budget').click();
    expect(await waitForRun(runs, HELD_RUN, (r) => r.status === 'completed', 60_000)).toMatchObject({ succeeded: 3, failed: 0 });
    await page.locator('#status', { hasText: 'completed' }).waitFor({ timeout: 10_000 });

    expect(dialogs).toEqual([]);
    expect(blocked).toEqual([]);
    await context.close();
    board.kill('SIGTERM');
    expect(await waitForExit(board, 15_000)).toBe(0);
    client.disconnect();
  });
});
