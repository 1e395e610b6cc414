import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { startFakes, type Fakes } from '@brandq/fakes';
import { CostLedger, microsToUsd } from '@brandq/ledger';
import { scrapeMetrics } from '@brandq/metrics';
import { createRedis, getFreePort } from '@brandq/redis';
import { RunStore, type RunMeta } from '@brandq/runs';
import { spawnTs, useTestRedis, waitForExit, type SpawnedProcess } from '@brandq/testing';

/**
 * The board as a person sees it: Debian's Chromium, driven by playwright-core, against a
 * real `pnpm board` process over a Redis that a real worker filled. CI installs Chromium
 * (.ci/run) and never skips this; a developer machine without it skips, saying why.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
const haveChromium = existsSync(CHROMIUM);
const skip = !haveChromium && !process.env.CI;
if (skip) process.stderr.write(`board browser test SKIPPED: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH); CI installs it and runs this test\n`);

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const redis = useTestRedis();
const USER = 'ops';
const PASSWORD = 'board-test-pw';
const DONE_RUN = 'spring-catalog';
const QUEUED_RUN = 'autumn-catalog';
const XSS = '<img src=x onerror=alert(1)>';
const XSS_RUN = 'xss-probe';
const BRANDS = ['Board Alpha', 'Board Beta', 'Board Gamma', 'Board Delta', 'Board Epsilon', 'Board Zeta'];

let fakes: Fakes;
let dir: string;
let browser: Browser | undefined;
const procs: SpawnedProcess[] = [];

function envFor(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...fakes.env,
    REDIS_URL: redis.url,
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'warn',
    OPENAI_RPM_LIMIT: '10000',
    OPENAI_RPM_BURST: '1000',
    OPENAI_TPM_LIMIT: '10000000',
    TAVILY_RPM_LIMIT: '100000',
    TAVILY_RPM_BURST: '1000',
    ...extra,
  };
}

async function run(entry: string, args: string[], env: Record<string, string>): Promise<void> {
  const p = spawnTs(entry, args, env);
  const code = await waitForExit(p, 60_000);
  if (code !== 0) throw new Error(`${entry} ${args.join(' ')} exited ${code}:\n${p.output()}`);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  if (skip) return;
  fakes = await startFakes({ openai: { latencyMs: { min: 5, max: 30 }, seed: 61 }, tavily: { latencyMs: { min: 5, max: 20 }, seed: 62 } });
  dir = await mkdtemp(join(tmpdir(), 'brandq-board-'));
});
afterAll(async () => {
  await browser?.close();
  for (const p of procs) p.kill('SIGKILL');
  await fakes?.close();
});

describe.skipIf(skip)('pnpm board in Chromium', () => {
  it('shows the queue in Bull Board and the run with its cost on /runs behind basic auth; refuses without credentials', { timeout: 120_000 }, async () => {
    const env = envFor();
    const csv = join(dir, 'spring.csv');
    await writeFile(csv, `brand,country\n${BRANDS.map((b) => `${b},US`).join('\n')}\n`);
    await run('apps/producer/src/enqueue.ts', ['--csv', csv, '--run', DONE_RUN, '--budget', '1.00', '--no-follow'], env);
    const worker = spawnTs('apps/worker/src/main.ts', ['--concurrency', '4'], env);
    procs.push(worker);
    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    const ledger = new CostLedger(client);
    const done = await waitFor<RunMeta>('the run to complete', async () => {
      const r = await runs.getRun(DONE_RUN);
      return r?.status === 'completed' ? r : undefined;
    }, 60_000);
    expect(done).toMatchObject({ total: 6, succeeded: 6, failed: 0 });
    worker.kill('SIGTERM');
    expect(await waitForExit(worker, 30_000)).toBe(0);
    // A second run nobody works on yet: queued, running, 0 done.
    const csv2 = join(dir, 'autumn.csv');
    await writeFile(csv2, 'brand\nQueued One\nQueued Two\nQueued Three\n');
    await run('apps/producer/src/enqueue.ts', ['--csv', csv2, '--run', QUEUED_RUN, '--no-follow'], env);
    const books = await ledger.snapshot(DONE_RUN);
    const expectedCost = `$${microsToUsd(books.spentMicros).toFixed(2)} / $1.00`;

    // Markup where text belongs: a brand named like an XSS probe, from a CSV file named the
    // same (the runs page shows the source). Both must render as text, and no dialog open.
    const xssCsv = join(dir, `${XSS}.csv`);
    await writeFile(xssCsv, `brand\n"${XSS}"\n`);
    await run('apps/producer/src/enqueue.ts', ['--csv', xssCsv, '--run', XSS_RUN, '--no-follow'], env);

    const port = await getFreePort();
    const board = spawnTs('apps/board/src/main.ts', [], { ...env, BOARD_HOST: '127.0.0.1', BOARD_PORT: String(port), BOARD_USER: USER, BOARD_PASSWORD: PASSWORD, BOARD_READ_ONLY: 'true' });
    procs.push(board);
    const base = `http://127.0.0.1:${port}`;
    await waitFor('the board to listen', async () => (board.output().includes(`board: ${base}/runs`) ? true : undefined), 30_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${board.output()}`);
    });

    // Without credentials (or with wrong ones): 401 everywhere, pages and API alike.
    for (const path of ['/runs', '/api/runs', '/metrics', '/admin/queues']) {
      expect((await fetch(base + path)).status, path).toBe(401);
    }
    const basic = (user: string, pw: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });
    expect((await fetch(`${base}/api/runs`, { headers: basic(USER, 'wrong') })).status).toBe(401);

    // The aggregate /metrics agrees with Redis.
    const fleet = await scrapeMetrics(`${base}/metrics`, basic(USER, PASSWORD));
    expect(fleet.sum('brandq_fleet_cost_dollars', { run: DONE_RUN })).toBeCloseTo(microsToUsd(books.spentMicros), 9);
    expect(fleet.sum('brandq_fleet_run_brands', { run: DONE_RUN, outcome: 'succeeded' })).toBe(6);
    expect(fleet.sum('brandq_fleet_budget_remaining_dollars', { run: DONE_RUN })).toBeCloseTo(1 - microsToUsd(books.spentMicros), 6);
    expect(fleet.sum('brandq_fleet_queue_jobs', { state: 'completed' })).toBe(6);
    // Fair shares queue every job with a priority: BullMQ lists them as prioritized.
    expect(fleet.sum('brandq_fleet_queue_jobs', { state: 'waiting' }) + fleet.sum('brandq_fleet_queue_jobs', { state: 'prioritized' })).toBe(4);

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });

    // A browser without credentials is refused: the 401 challenge, which headless Chromium
    // cannot answer (the navigation then fails with ERR_INVALID_AUTH_CREDENTIALS).
    const anonymous = await browser.newContext();
    const anonPage = await anonymous.newPage();
    const [refused, navigation] = await Promise.all([
      anonPage.waitForResponse((r) => r.url() === `${base}/runs`),
      anonPage.goto(`${base}/runs`).then(
        (r) => r?.status(),
        (err: unknown) => String(err),
      ),
    ]);
    expect(refused.status()).toBe(401);
    expect(refused.headers()['www-authenticate']).toMatch(/^Basic realm="brandq"/);
    expect(String(navigation)).toMatch(/401|ERR_INVALID_AUTH_CREDENTIALS/);
    await anonymous.close();

    const context = await browser.newContext({ httpCredentials: { username: USER, password: PASSWORD }, viewport: { width: 1280, height: 640 } });
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    // The CSP must not break either page: a blocked script shows up as a console error.
    const blocked: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy/.test(message.text()) && /script/i.test(message.text())) blocked.push(message.text());
    });

    // The runs page: the run, its figures and its cost against the budget, from Redis.
    const res = await page.goto(`${base}/runs`);
    expect(res?.status()).toBe(200);
    const row = page.locator(`#runs tr[data-run="${DONE_RUN}"]`);
    await row.waitFor({ timeout: 15_000 });
    const cells = await row.locator('td').allTextContents();
    expect(cells[0]).toBe(DONE_RUN);
    expect(cells[1]).toBe('completed');
    expect(cells[2]).toContain('6/6');
    expect(cells.slice(3, 6)).toEqual(['6', '0', '0']);
    expect(cells[6]).toMatch(/^\d+\.\d\d brands\/s$/);
    expect(cells[7]).toBe(expectedCost);
    const queued = await page.locator(`#runs tr[data-run="${QUEUED_RUN}"] td`).allTextContents();
    expect(queued.slice(0, 3)).toEqual([QUEUED_RUN, 'running', ' 0/3']);
    expect(queued[7]).toBe('$0.00');
    // Shared limits per provider, read from Redis.
    await page.locator('#limits tr td', { hasText: 'llm' }).first().waitFor();
    const llmCalls = await page.locator('#limits tr', { has: page.locator('td', { hasText: /^llm$/ }) }).locator('td').nth(1).textContent();
    expect(Number(llmCalls)).toBe(books.providers.llm.calls);

    // The probe run's source is the file name with the markup in it: shown as text.
    const xssRow = page.locator(`#runs tr[data-run="${XSS_RUN}"]`);
    await xssRow.waitFor();
    expect(await xssRow.locator('td').last().textContent()).toContain(XSS);
    expect(await page.locator('#runs img').count()).toBe(0);

    const shot = join(dir, 'runs-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    // BRANDQ_UPDATE_SCREENSHOTS=1 refreshes the committed picture in docs/.
    if (process.env.BRANDQ_UPDATE_SCREENSHOTS === '1') await copyFile(shot, join(repoRoot, 'docs/runs-page.png'));

    // Bull Board: the queue, then its completed jobs, which are this run's brands.
    await page.goto(`${base}/admin/queues`);
    await page.getByText('brands', { exact: true }).first().waitFor({ timeout: 20_000 });
    await page.goto(`${base}/admin/queues/queue/brands?status=completed`);
    // Job ids are `<run>.<brand key>`; the card shows the job data (the brand, no secrets).
    const jobIds = page.getByText(new RegExp(`^${DONE_RUN}\\.board-[a-z]+-[0-9a-f]+$`));
    await jobIds.first().waitFor({ timeout: 20_000 });
    expect(await jobIds.count()).toBe(6);
    await page.getByText('"Board Alpha"').first().waitFor();
    // The probe brand in Bull Board: its name is text in the job data, never an element.
    // Queued with its fair-share priority, the job is listed under "prioritized".
    await page.goto(`${base}/admin/queues/queue/brands?status=prioritized`);
    await page.getByText(XSS, { exact: false }).first().waitFor({ timeout: 20_000 });
    expect(await page.locator('img[src="x"]').count()).toBe(0);
    await page.waitForTimeout(500);
    expect(dialogs).toEqual([]);
    expect(blocked).toEqual([]);
    if (process.env.BRANDQ_UPDATE_SCREENSHOTS === '1') await page.screenshot({ path: join(repoRoot, 'docs/bull-board.png') });

    await context.close();
    board.kill('SIGTERM');
    expect(await waitForExit(board, 15_000)).toBe(0);
    client.disconnect();
  });
});
