import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunShares } from '@brandq/fair-share';
import { CostLedger } from '@brandq/ledger';
import { createBrandQueue, type BrandQueue } from '@brandq/queue';
import { defaultRecipe } from '@brandq/recipe';
import type { RunDetail } from '@brandq/run-service';
import { RunStore } from '@brandq/runs';
import { useTestRedis } from '@brandq/testing';
import { RunEventHub, type EventClient } from './run-detail-route.js';
import { CONTENT_SECURITY_POLICY } from './security-headers.js';
import { listenBoard } from './test-http.js';

const redis = useTestRedis();
const RUN = 'detail-route';
const SECRET = 'sk-live-abcdefgh12345678';
const auth = { authorization: `Basic ${Buffer.from('ops:pw').toString('base64')}` };
const source = { type: 'csv' as const, path: '/tmp/detail-route.csv' };

let queue: BrandQueue;
let limiterReads = 0;
const closers: (() => Promise<void>)[] = [];

async function serve(readOnly = false): Promise<string> {
  const listening = await listenBoard({
    redis: redis.client(),
    queue,
    readOnly,
    credentials: { user: 'ops', password: 'pw' },
    limiterStats: async () => {
      limiterReads += 1;
      return {};
    },
    llmLabel: 'OpenRouter',
  });
  closers.push(listening.close);
  return listening.base;
}

/** Opens the run's event stream and hands back each `data:` update as it comes. */
function openEvents(base: string, runId: string): Promise<{ status: number; updates: unknown[]; next: () => Promise<unknown>; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/api/runs/${runId}/events`, { headers: auth }, (res) => {
      const updates: unknown[] = [];
      const waiting: ((u: unknown) => void)[] = [];
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = event.split('\n').find((line) => line.startsWith('data: '));
          if (!data) continue;
          const update: unknown = JSON.parse(data.slice(6));
          updates.push(update);
          waiting.shift()?.(update);
        }
      });
      let seen = 0;
      resolve({
        status: res.statusCode ?? 0,
        updates,
        next: () => (seen < updates.length ? Promise.resolve(updates[seen++]) : new Promise((r) => waiting.push((u) => (seen++, r(u))))),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  queue = createBrandQueue(redis.client());
  const runs = new RunStore(redis.client());
  const ledger = new CostLedger(redis.client());
  const brands = ['Acme', 'Globex', 'Initech'].map((name, i) => ({ runId: RUN, key: name.toLowerCase(), name, rowNumber: i + 2, hints: {}, source }));
  await runs.createOrExtendRun({ id: RUN, source, sourceKey: `csv:${source.path}`, brands, skipped: [], recipe: defaultRecipe() });
  await ledger.setBudget(RUN, 5_000_000);
  await ledger.book(RUN, 'llm', { costMicros: 120_000, inputTokens: 900, outputTokens: 100 });
  const fields = { website: 'https://acme.example/', category: '=HYPERLINK("http://evil.example")', description: '<script>alert(1)</script>', country: 'US', founded_year: 1949, sources: [] };
  await runs.recordSuccess({ runId: RUN, key: 'acme', brand: 'Acme', rowNumber: 2, fields, processedAt: '2030-01-01T00:00:00.000Z' });
  await runs.recordSuccess({ runId: RUN, key: 'globex', brand: 'Globex', rowNumber: 3, fields, processedAt: '2030-01-01T00:00:01.000Z' });
  await runs.recordFailure({ runId: RUN, key: 'initech', brand: 'Initech', rowNumber: 4, kind: 'auth', reason: `HTTP 401: Incorrect API key provided: ${SECRET}`, attempts: 1, failedAt: '2030-01-01T00:00:02.000Z' });
});
afterAll(async () => {
  await Promise.all(closers.map((close) => close()));
  await queue?.close();
});

describe('GET /api/runs/:id', () => {
  it('answers the run detail: run, recipe, books, cost summary, ETA, binding, failure groups, results; secrets masked', async () => {
    const base = await serve();
    const res = await fetch(`${base}/api/runs/${RUN}?page=1&pageSize=1`, { headers: auth });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain(SECRET);
    const detail = JSON.parse(text) as RunDetail;
    expect(detail.run).toMatchObject({ id: RUN, total: 3, succeeded: 2, failed: 1, status: 'completed' });
    expect(detail.recipe.name).toBe('brand-facts');
    expect(detail.ledger).toMatchObject({ budgetMicros: 5_000_000, spentMicros: 120_000 });
    expect(detail.costSummary).toContain('OpenRouter: $0.12 (1 calls)');
    expect(detail.eta.seconds).toBe(0);
    expect(detail.binding.reason).toBe('ended');
    // Nothing left to do: no ETA to wait for, whatever its share of the fleet was.
    expect(detail.fairShare).toMatchObject({ weight: 1, maxRpm: null, etaSeconds: 0 });
    expect(detail.failures.groups).toHaveLength(1);
    expect(detail.failures.groups[0]).toMatchObject({ kind: 'auth', count: 1, latest: [{ brand: 'Initech', rowNumber: 4 }] });
    expect(detail.failures.groups[0]?.reason).toMatch(/^HTTP 401: Incorrect API key provided: /);
    expect(detail.results).toMatchObject({ page: 1, pageSize: 1, total: 2, rows: [{ row: 3, brand: 'Globex' }] });
    expect(detail.history).toEqual([]);
  });

  it("shows the run's weight, ceiling, share of the fleet's calls over the last minute and the ETA at that share", async () => {
    const runs = new RunStore(redis.client());
    const brands = ['Soylent', 'Tyrell', 'Wonka', 'Oscorp'].map((name, i) => ({ runId: 'detail-shared', key: name.toLowerCase(), name, rowNumber: i + 2, hints: {}, source }));
    await runs.createOrExtendRun({ id: 'detail-shared', source, sourceKey: 'csv:/tmp/detail-shared.csv', brands, skipped: [], recipe: defaultRecipe() });
    await runs.setShare('detail-shared', { weight: 2, maxRpm: 120 });
    // What the workers counted this minute: 3 of the fleet's 4 admitted calls were this run's; it finished one brand.
    const shares = new RunShares(redis.client());
    for (const runId of ['detail-shared', 'detail-shared', 'detail-shared', 'detail-other']) await shares.admitted(runId);
    await runs.recordSuccess({ runId: 'detail-shared', key: 'soylent', brand: 'Soylent', rowNumber: 2, fields: {}, processedAt: '2030-01-01T00:00:00.000Z' });
    await shares.finished('detail-shared');

    const base = await serve(true);
    const detail = (await (await fetch(`${base}/api/runs/detail-shared`, { headers: auth })).json()) as RunDetail;
    expect(detail.fairShare).toMatchObject({ weight: 2, maxRpm: 120, measuredShare: 0.75, calls: 3, done: 1 });
    // 3 brands open at 1 per window (the last minute's whole buckets, 55 to 60 s): about three minutes.
    expect(detail.fairShare.etaSeconds).toBeGreaterThanOrEqual(165);
    expect(detail.fairShare.etaSeconds).toBeLessThanOrEqual(181);
  });

  it('404s an unknown run and an id no run can have; 401s without credentials, read-only board or not', async () => {
    const base = await serve(true);
    expect((await fetch(`${base}/api/runs/${RUN}`, { headers: auth })).status).toBe(200);
    for (const path of ['/api/runs/no-such-run', '/api/runs/bad%20id', '/api/runs/no-such-run/export', '/api/runs/no-such-run/events']) {
      const res = await fetch(base + path, { headers: auth });
      expect(res.status, path).toBe(404);
      expect(await res.json()).toEqual({ code: 'NOT_FOUND', error: 'no such run' });
    }
    for (const path of [`/runs/${RUN}`, `/api/runs/${RUN}`, `/api/runs/${RUN}/export?format=csv`, `/api/runs/${RUN}/events`, '/run.js', '/assets/uplot.js']) {
      expect((await fetch(base + path)).status, path).toBe(401);
    }
  });
});

describe('GET /api/runs/:id/export', () => {
  it('downloads the run as it stands: CSV (BOM, formula-safe) or JSONL, as an attachment named after the run', async () => {
    const base = await serve(true);
    const csv = await fetch(`${base}/api/runs/${RUN}/export?format=csv`, { headers: auth });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(csv.headers.get('content-disposition')).toBe(`attachment; filename=${RUN}.csv`);
    const body = new TextDecoder('utf-8', { ignoreBOM: true }).decode(await csv.arrayBuffer());
    expect(body.startsWith('\uFEFFrow,brand,status,website,category,')).toBe(true);
    expect(body.split(/\r?\n/).filter(Boolean)).toHaveLength(4);
    expect(body).toContain(`'=HYPERLINK`);
    // Served to a browser: redacted like the rest of the board, and never cached.
    expect(body).toContain('Incorrect API key provided');
    expect(body).not.toContain(SECRET);
    expect(csv.headers.get('cache-control')).toBe('no-store');

    const jsonl = await fetch(`${base}/api/runs/${RUN}/export?format=jsonl`, { headers: auth });
    expect(jsonl.headers.get('content-disposition')).toBe(`attachment; filename=${RUN}.jsonl`);
    const rows = (await jsonl.text()).trim().split('\n').map((line) => JSON.parse(line) as { brand: string; status: string });
    expect(rows.map((r) => [r.brand, r.status])).toEqual([['Acme', 'success'], ['Globex', 'success'], ['Initech', 'failed']]);
    expect(JSON.stringify(rows)).not.toContain(SECRET);

    const bad = await fetch(`${base}/api/runs/${RUN}/export?format=xlsx`, { headers: auth });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ code: 'BAD_REQUEST', error: 'format must be csv or jsonl' });
  });
});

describe('GET /api/runs/:id/events', () => {
  it('streams the detail to every open page from one poll: three pages, one read of Redis per update', async () => {
    const base = await serve();
    const before = limiterReads;
    const pages = await Promise.all([1, 2, 3].map(() => openEvents(base, RUN)));
    expect(pages.map((p) => p.status)).toEqual([200, 200, 200]);
    // Two updates reach every page.
    for (const page of pages) {
      const first = (await page.next()) as { detail: { run: { id: string } } };
      expect(first.detail.run.id).toBe(RUN);
      await page.next();
    }
    // Each poll reads the limiter once, whatever the number of pages (a page joining between
    // polls gets the last update at once): reads <= updates a page got, + the first poll.
    const reads = limiterReads - before;
    expect(reads).toBeLessThanOrEqual(Math.max(...pages.map((p) => p.updates.length)) + 1);
    expect(reads).toBeLessThan(pages.reduce((n, p) => n + p.updates.length, 0));
    for (const page of pages) page.close();
  });
});

describe('GET /api/runs/:id/events, a client that leaves at once', () => {
  it('leaves no poller behind: a page closed while its run is looked up stops nothing from stopping', async () => {
    const base = await serve();
    // Requests whose sockets close right after sending them, a few ms apart: some leave while
    // the board still looks the run up.
    const { port } = new URL(base);
    for (let delayMs = 0; delayMs < 10; delayMs++) {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write(`GET /api/runs/${RUN}/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${auth.authorization}\r\n\r\n`);
        setTimeout(() => socket.destroy(), delayMs);
      });
      socket.on('error', () => undefined);
    }
    await new Promise((r) => setTimeout(r, 500));
    const before = limiterReads;
    // Two poll intervals: a leaked poller would read the limiter (once per poll) meanwhile.
    await new Promise((r) => setTimeout(r, 4_500));
    expect(limiterReads - before).toBe(0);
  });
});

describe('the run page', () => {
  it('is a static page under the CSP, loading its script and uPlot from the board itself', async () => {
    const base = await serve();
    const page = await fetch(`${base}/runs/${RUN}`, { headers: auth });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    const html = await page.text();
    expect(html).toContain('<script src="/assets/uplot.js"></script>');
    expect(html).toContain('<script src="/run.js"></script>');
    expect(html).not.toMatch(/<script>/);
    // The run's fair share among its facts, and the weight among its controls (POST /api/runs/<id>/share).
    expect(html).toContain('<dd id="fair-share">');
    expect(html).toMatch(/<input type="number" id="weight"[^>]*>[\s\S]*<button type="button" id="set-weight">/);
    const uplot = await fetch(`${base}/assets/uplot.js`, { headers: auth });
    expect(uplot.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await uplot.text()).toMatch(/uPlot/);
    expect((await fetch(`${base}/assets/uplot.css`, { headers: auth })).headers.get('content-type')).toMatch(/^text\/css/);
    expect((await fetch(`${base}/run.js`, { headers: auth })).headers.get('content-type')).toMatch(/^text\/javascript/);
  });
});

describe('RunEventHub', () => {
  /** A page: what it was sent. */
  const client = (): EventClient & { got: string[] } => {
    const got: string[] = [];
    return { got, write: (chunk: string) => got.push(chunk) };
  };

  it('polls each followed run once for all its pages, hands a late page the last update, and stops with the last page', async () => {
    const reads: string[] = [];
    let answered!: () => void;
    const firstPolls = new Promise<void>((resolve) => (answered = resolve));
    const hub = new RunEventHub(async (runId) => {
      reads.push(runId);
      if (reads.length === 2) setImmediate(answered);
      return { runId, n: reads.length };
    }, 60_000);
    const [a1, a2, a3, b1] = [client(), client(), client(), client()];
    hub.join('a', a1);
    hub.join('a', a2);
    hub.join('a', a3);
    hub.join('b', b1);
    await firstPolls;
    expect(reads.sort()).toEqual(['a', 'b']);
    expect(hub.polledRuns.sort()).toEqual(['a', 'b']);
    for (const c of [a1, a2, a3]) expect(c.got).toEqual([`data: ${JSON.stringify({ runId: 'a', n: 1 })}\n\n`]);
    const late = client();
    hub.join('a', late);
    expect(late.got).toEqual(a1.got);
    for (const c of [a1, a2, a3, late]) hub.leave('a', c);
    expect(hub.polledRuns).toEqual(['b']);
    hub.leave('b', b1);
    expect(hub.polledRuns).toEqual([]);
  });
});
