import express, { type Express } from 'express';
import type { Redis } from 'ioredis';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { BrandQueue } from '@brandq/queue';
import { basicAuth } from './basic-auth.js';
import { RUNS_PAGE } from './runs-page.js';
import { runsOverview } from './runs-overview.js';

export interface BoardOptions {
  redis: Redis;
  queue: BrandQueue;
  readOnly: boolean;
  credentials?: { user: string; password: string } | undefined;
  /** Shared limiter statistics per provider, read from Redis. */
  limiterStats: () => Promise<Record<string, unknown>>;
  /** Prometheus text for the aggregate view. */
  metrics: () => Promise<{ contentType: string; body: string }>;
}

const SECRET_KEY = /key|token|secret|password|authorization/i;

/** Job data as shown in Bull Board: anything named like a secret is masked. */
export function redactJobData(data: unknown): unknown {
  if (Array.isArray(data)) return data.map(redactJobData);
  if (data && typeof data === 'object') {
    return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, SECRET_KEY.test(k) ? '[REDACTED]' : redactJobData(v)]));
  }
  return data;
}

export function createBoardApp(options: BoardOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  if (options.credentials) app.use(basicAuth(options.credentials.user, options.credentials.password));

  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath('/admin/queues');
  const adapter = new BullMQAdapter(options.queue, { readOnlyMode: options.readOnly, displayName: 'brands' });
  adapter.setFormatter('data', redactJobData);
  createBullBoard({ queues: [adapter], serverAdapter });
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
