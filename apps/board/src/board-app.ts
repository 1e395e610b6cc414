import express, { type Express } from 'express';
import type { Redis } from 'ioredis';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { ModelPrice } from '@brandq/ledger';
import type { BrandQueue } from '@brandq/queue';
import { redactValue } from '@brandq/redact';
import type { RunControls } from '@brandq/run-service';
import { requireAllowedHost } from './allowed-hosts.js';
import { basicAuth } from './basic-auth.js';
import { jsonErrors, notFound } from './json-errors.js';
import { mountRunControls } from './run-controls-route.js';
import { mountRunDetail } from './run-detail-route.js';
import { mountRunTimeline } from './run-timeline-route.js';
import { RUNS_PAGE, RUNS_SCRIPT } from './runs-page.js';
import { runsOverview } from './runs-overview.js';
import { isWrite, sameOriginWrites } from './same-origin-writes.js';
import { securityHeaders } from './security-headers.js';
import type { CreateRunAnswer } from './create-run.js';

export interface BoardOptions {
  redis: Redis;
  queue: BrandQueue;
  readOnly: boolean;
  credentials?: { user: string; password: string } | undefined;
  /** The `Host` values this board answers to (boardHosts); anything else gets 421. */
  isAllowedHost: (host: string) => boolean;
  /** Shared limiter statistics per provider, read from Redis. */
  limiterStats: () => Promise<Record<string, unknown>>;
  /** Prometheus text for the aggregate view. */
  metrics: () => Promise<{ contentType: string; body: string }>;
  /** `POST /api/runs`: creates a run behind the preflight guard; absent = not offered. */
  createRun?: (body: unknown) => Promise<CreateRunAnswer>;
  /** Where unexpected errors go (the log); the client only hears "internal server error". */
  reportError?: (error: unknown) => void;
  /** Pause, resume, cancel, budget, retry and share (weight, ceiling) a run (`runControls` of the run service); absent = not offered. */
  runControls?: RunControls | undefined;
  /** The LLM provider's name in cost summaries (`llmLabelFor(OPENAI_BASE_URL)`); default `LLM`. */
  llmLabel?: string;
  /** Standard prices and the default model, for what a cheaper tier saved in cost summaries. */
  pricing?: { table: Readonly<Record<string, ModelPrice>>; defaultModel: string };
}

/** `POST /api/runs` carries the CSV text itself: this much, and a 413 that says so beyond it. */
const CREATE_RUN_BODY_LIMIT = '1mb';
/** Bull Board's own writes carry a few small fields (a job to add, data to update). */
const BULL_BOARD_BODY_LIMIT = '100kb';

export function createBoardApp(options: BoardOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(securityHeaders());
  app.use(requireAllowedHost(options.isAllowedHost));
  app.use(sameOriginWrites());
  if (options.credentials) app.use(basicAuth(options.credentials.user, options.credentials.password));

  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath('/admin/queues');
  const adapter = new BullMQAdapter(options.queue, { readOnlyMode: options.readOnly, displayName: 'brands' });
  createBullBoard({ queues: [adapter], serverAdapter });
  if (options.readOnly) {
    // Bull Board answers 405 on a read-only queue's own write routes, but "pause all" and
    // "resume all" just skip it: refuse every write here, whatever the Bull Board version.
    app.use('/admin/queues/api', (req, res, next) => {
      if (isWrite(req.method)) res.status(405).json({ code: 'READ_ONLY', error: 'the board is read-only (BOARD_READ_ONLY=true)' });
      else next();
    });
  }
  // Parsed here, so a malformed or oversized body meets our JSON errors (which never quote
  // it) instead of Bull Board's, which echo the parser's message and with it part of the body.
  app.use('/admin/queues/api', express.json({ limit: BULL_BOARD_BODY_LIMIT }));
  // Everything Bull Board's API answers (job data, ids, failure reasons, stack traces, logs,
  // options) goes out through the redactor as one value, so a brand whose name is masked has
  // its key slug masked in the job id too.
  app.use('/admin/queues/api', (_req, res, next) => {
    const json = res.json.bind(res);
    res.json = (body: unknown) => json(redactValue(body));
    next();
  });
  const bullBoard = serverAdapter.getRouter() as Express;
  // Bull Board serves through an Express app of its own, which names itself on every answer.
  bullBoard.disable('x-powered-by');
  app.use('/admin/queues', bullBoard);

  app.get('/', (_req, res) => res.redirect('/runs'));
  app.get('/runs', (_req, res) => res.type('html').send(RUNS_PAGE));
  app.get('/runs.js', (_req, res) => res.type('text/javascript').send(RUNS_SCRIPT));
  app.get('/api/runs', async (_req, res, next) => {
    try {
      res.json(redactValue(await runsOverview(options.redis)));
    } catch (err) {
      next(err);
    }
  });
  app.get('/api/limits', async (_req, res, next) => {
    try {
      res.json(await options.limiterStats());
    } catch (err) {
      next(err);
    }
  });
  app.post('/api/runs', express.json({ limit: CREATE_RUN_BODY_LIMIT }), async (req, res, next) => {
    if (options.readOnly || !options.createRun) {
      res.status(405).json({ code: 'READ_ONLY', error: 'creating runs is disabled on a read-only board' });
      return;
    }
    try {
      const answer = await options.createRun(req.body);
      for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
      res.status(answer.status).json(redactValue(answer.body));
    } catch (err) {
      next(err);
    }
  });
  app.get('/metrics', async (_req, res, next) => {
    try {
      const { contentType, body } = await options.metrics();
      res.type(contentType).send(body);
    } catch (err) {
      next(err);
    }
  });
  mountRunDetail(app, options);
  mountRunControls(app, options);
  mountRunTimeline(app, options);
  app.use(notFound());
  app.use(jsonErrors(options.reportError ?? (() => undefined)));
  return app;
}
