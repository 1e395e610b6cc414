import express, { type Express } from 'express';
import type { Redis } from 'ioredis';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { BrandQueue } from '@brandq/queue';
import { basicAuth } from './basic-auth.js';
import { redactSecrets } from './redact.js';
import { RUNS_PAGE } from './runs-page.js';
import { runsOverview } from './runs-overview.js';
import type { CreateRunAnswer } from './create-run.js';

export interface BoardOptions {
  redis: Redis;
  queue: BrandQueue;
  readOnly: boolean;
  credentials?: { user: string; password: string } | undefined;
  /** Shared limiter statistics per provider, read from Redis. */
  limiterStats: () => Promise<Record<string, unknown>>;
  /** Prometheus text for the aggregate view. */
  metrics: () => Promise<{ contentType: string; body: string }>;
  /** `POST /api/runs`: creates a run behind the preflight guard; absent = not offered. */
  createRun?: (body: unknown) => Promise<CreateRunAnswer>;
}

/** Job data as shown in Bull Board: secret-looking fields and text are masked. */
export const redactJobData = redactSecrets;

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function createBoardApp(options: BoardOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  if (options.credentials) app.use(basicAuth(options.credentials.user, options.credentials.password));

  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath('/admin/queues');
  const adapter = new BullMQAdapter(options.queue, { readOnlyMode: options.readOnly, displayName: 'brands' });
  adapter.setFormatter('data', redactSecrets);
  adapter.setFormatter('returnValue', redactSecrets);
  createBullBoard({ queues: [adapter], serverAdapter });
  if (options.readOnly) {
    // Bull Board answers 405 on a read-only queue's own write routes, but "pause all" and
    // "resume all" just skip it: refuse every write here, whatever the Bull Board version.
    app.use('/admin/queues/api', (req, res, next) => {
      if (WRITE_METHODS.has(req.method)) res.status(405).json({ error: 'the board is read-only (BOARD_READ_ONLY=true)' });
      else next();
    });
  }
  // Everything Bull Board's API answers (job data, failure reasons, stack traces, logs,
  // options) goes out through the redactor: credentials never reach the browser.
  app.use('/admin/queues/api', (_req, res, next) => {
    const json = res.json.bind(res);
    res.json = (body: unknown) => json(redactSecrets(body));
    next();
  });
  app.use('/admin/queues', serverAdapter.getRouter());

  app.get('/', (_req, res) => res.redirect('/runs'));
  app.get('/runs', (_req, res) => res.type('html').send(RUNS_PAGE));
  app.get('/api/runs', async (_req, res, next) => {
    try {
      res.json(await runsOverview(options.redis));
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
  app.post('/api/runs', express.json({ limit: '64kb' }), async (req, res, next) => {
    if (options.readOnly || !options.createRun) {
      res.status(405).json({ error: 'creating runs is disabled on a read-only board' });
      return;
    }
    try {
      const answer = await options.createRun(req.body);
      for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
      res.status(answer.status).json(answer.body);
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
  return app;
}
