import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Express, Request, Response } from 'express';
import { RunShares } from '@brandq/fair-share';
import { CostLedger } from '@brandq/ledger';
import type { LimiterStats } from '@brandq/limiter';
import { redactText, redactValue } from '@brandq/redact';
import { recentRatePerMinute, runDetail, writeExport, type LimiterLook, type RunDetail } from '@brandq/run-service';
import { RunStore, RunTimeline } from '@brandq/runs';
import { chartTimeline, type ChartTimeline } from './run-timeline-route.js';
import type { BoardOptions } from './board-app.js';
import { RUN_PAGE, RUN_SCRIPT } from './run-page.js';

/** How often the shared poller of a run reads Redis and pushes to the run's open pages. */
export const RUN_EVENTS_EVERY_MS = 2000;
/** The limiter waits that bind "now" are those counted since a look at least this old. */
const LIMITER_LOOK_MS = 2000;
/** Same rule as the run ids Redis keys accept (packages/redis assertSafeId): anything else is no run. */
const RUN_ID = /^[A-Za-z0-9_.-]{1,100}$/;

const uplotFile = (name: string) => readFileSync(createRequire(import.meta.url).resolve(`uplot/dist/${name}`), 'utf8');

/**
 * The page of one run and what it reads: `/runs/:id` (+ `/run.js`, uPlot at `/assets/uplot.*`),
 * `GET /api/runs/:id` (the run detail), `/api/runs/:id/export?format=csv|jsonl` and
 * `/api/runs/:id/events` (server-sent events from one shared poller per run).
 */
export function mountRunDetail(app: Express, options: BoardOptions): void {
  const runs = new RunStore(options.redis);
  const ledger = new CostLedger(options.redis);
  const timelines = new RunTimeline(options.redis);
  const shares = new RunShares(options.redis);
  const lookAtLimiter = limiterLooks(options.limiterStats as () => Promise<Record<string, LimiterStats>>);
  /** The detail (its ETA from the timeline's recent rate, its fair share from the fleet's last minute) and the timeline the charts draw. */
  const runNow = async (runId: string, page?: { page?: number; pageSize?: number }): Promise<{ detail: RunDetail; timeline: ChartTimeline } | undefined> => {
    const timeline = await timelines.read(runId);
    const detail = await runDetail({ runs, ledger }, runId, {
      ...page,
      llmLabel: options.llmLabel ?? 'LLM',
      ...(options.pricing ? { pricing: options.pricing } : {}),
      limiter: await lookAtLimiter(),
      ratePerMinute: recentRatePerMinute(timeline, Date.now()),
      fleet: await shares.measure(),
    });
    if (!detail) return undefined;
    return { detail, timeline: chartTimeline(timeline, detail.run, detail.ledger) };
  };
  const hub = new RunEventHub(async (runId) => {
    const now = await runNow(runId);
    return now ? redactValue(now) : undefined;
  }, RUN_EVENTS_EVERY_MS, options.reportError);

  const uplotScript = uplotFile('uPlot.iife.min.js');
  const uplotStyle = uplotFile('uPlot.min.css');
  app.get('/assets/uplot.js', (_req, res) => res.type('text/javascript').setHeader('Cache-Control', 'max-age=86400').send(uplotScript));
  app.get('/assets/uplot.css', (_req, res) => res.type('text/css').setHeader('Cache-Control', 'max-age=86400').send(uplotStyle));
  app.get('/run.js', (_req, res) => res.type('text/javascript').send(RUN_SCRIPT));
  app.get('/runs/:id', (_req, res) => res.type('html').send(RUN_PAGE));

  app.get('/api/runs/:id', async (req, res, next) => {
    try {
      const runId = knownRunId(req, res);
      if (!runId) return;
      const now = await runNow(runId, { page: numberParam(req.query.page), pageSize: numberParam(req.query.pageSize) });
      if (now) res.json(redactValue(now.detail));
      else noSuchRun(res);
    } catch (err) {
      next(err);
    }
  });

  app.get('/api/runs/:id/export', async (req, res, next) => {
    try {
      const runId = knownRunId(req, res);
      if (!runId) return;
      const format = req.query.format ?? 'csv';
      if (format !== 'csv' && format !== 'jsonl') {
        res.status(400).json({ code: 'BAD_REQUEST', error: 'format must be csv or jsonl' });
        return;
      }
      if (!(await runs.getRun(runId))) {
        noSuchRun(res);
        return;
      }
      res.type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8');
      res.attachment(`${runId}.${format}`);
      res.setHeader('Cache-Control', 'no-store');
      // Served to a browser: redacted like every answer of the board (a failure reason can quote a key).
      await writeExport(runs, runId, `.${format}`, res, { redact: redactText });
      res.end();
    } catch (err) {
      next(err);
    }
  });

  app.get('/api/runs/:id/events', async (req, res, next) => {
    // Before any await: a client gone while the run is looked up must never leave a poller behind.
    let gone = false;
    res.on('close', () => {
      gone = true;
    });
    try {
      const runId = knownRunId(req, res);
      if (!runId) return;
      if (!(await runs.getRun(runId))) {
        noSuchRun(res);
        return;
      }
      if (gone || res.destroyed) return;
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' });
      // How long a browser waits before reconnecting a dropped stream.
      res.write(`retry: ${RUN_EVENTS_EVERY_MS}\n\n`);
      hub.join(runId, res);
      res.on('close', () => hub.leave(runId, res));
    } catch (err) {
      next(err);
    }
  });
}

function knownRunId(req: Request, res: Response): string | undefined {
  const runId = String(req.params.id);
  if (RUN_ID.test(runId)) return runId;
  noSuchRun(res);
  return undefined;
}

function noSuchRun(res: Response): void {
  res.status(404).json({ code: 'NOT_FOUND', error: 'no such run' });
}

function numberParam(value: unknown): number | undefined {
  const n = Number(value);
  return typeof value === 'string' && Number.isFinite(n) ? n : undefined;
}

/**
 * The limiter statistics now and at a look at least LIMITER_LOOK_MS older: the counters are
 * cumulative for the fleet, so what binds now is what grew in between.
 */
function limiterLooks(read: () => Promise<Record<string, LimiterStats>>): () => Promise<LimiterLook> {
  let latest: { at: number; stats: Record<string, LimiterStats> } | undefined;
  let before: Record<string, LimiterStats> | undefined;
  return async () => {
    const now = await read();
    const at = Date.now();
    if (!latest || at - latest.at >= LIMITER_LOOK_MS) {
      before = latest?.stats;
      latest = { at, stats: now };
    }
    return { now, before };
  };
}

/** Where a stream's updates go: an open `text/event-stream` answer. */
export interface EventClient {
  write(chunk: string): unknown;
  readonly destroyed?: boolean;
}

interface RunStream {
  clients: Set<EventClient>;
  timer: NodeJS.Timeout;
  /** The last update pushed, for a page that joins between two polls. */
  last?: string;
  busy: boolean;
}

/**
 * One poller per run however many pages follow it: a run's first page starts it, its last
 * page to leave stops it, and each poll reads Redis once and pushes the same update to all.
 */
export class RunEventHub {
  private readonly streams = new Map<string, RunStream>();

  constructor(
    private readonly read: (runId: string) => Promise<unknown>,
    private readonly everyMs: number,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  /** Runs with a poller now (for the tests and the curious). */
  get polledRuns(): string[] {
    return [...this.streams.keys()];
  }

  join(runId: string, client: EventClient): void {
    let stream = this.streams.get(runId);
    if (!stream) {
      const timer = setInterval(() => void this.poll(runId), this.everyMs);
      // A poller never keeps the board's process alive on its own.
      timer.unref();
      stream = { clients: new Set(), timer, busy: false };
      this.streams.set(runId, stream);
      void this.poll(runId);
    } else if (stream.last) {
      client.write(stream.last);
    }
    stream.clients.add(client);
  }

  leave(runId: string, client: EventClient): void {
    const stream = this.streams.get(runId);
    if (!stream) return;
    stream.clients.delete(client);
    if (stream.clients.size > 0) return;
    clearInterval(stream.timer);
    this.streams.delete(runId);
  }

  private async poll(runId: string): Promise<void> {
    const stream = this.streams.get(runId);
    // A poll slower than the interval is not stacked on: the next tick after it goes.
    if (!stream || stream.busy) return;
    stream.busy = true;
    try {
      const update = await this.read(runId);
      if (update === undefined) return;
      stream.last = `data: ${JSON.stringify(update)}\n\n`;
      for (const client of stream.clients) {
        // A client whose connection broke leaves at once, not when its close event comes.
        if (client.destroyed) this.leave(runId, client);
        else client.write(stream.last);
      }
    } catch (error) {
      this.onError(error);
    } finally {
      stream.busy = false;
    }
  }
}
