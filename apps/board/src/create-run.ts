import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Config } from '@brandq/config';
import { enqueueRun, loadSource, nothingToDo, preflightRun, skipAlreadyProcessed, type LoadedSource, type NothingToDo } from '@brandq/enqueue';
import { BadInputError, BudgetExhaustedError, RateLimitedError, isBrandqError } from '@brandq/errors';
import { CostLedger, usdToMicros } from '@brandq/ledger';
import type { BrandQueue } from '@brandq/queue';
import { RunStore, newRunId } from '@brandq/runs';

/** `POST /api/runs`: a source and the producer's options, as JSON. */
export const createRunRequest = z
  .object({
    csv: z.string().min(1).optional(),
    sheet: z.string().min(1).optional(),
    range: z.string().min(1).default('Brands!A2:A'),
    column: z.string().min(1).optional(),
    resultColumn: z.string().min(1).optional(),
    limit: z.number().int().positive().optional(),
    run: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/).optional(),
    budget: z.number().nonnegative().optional(),
    noCache: z.boolean().default(false),
    allowPartial: z.boolean().default(false),
    force: z.boolean().default(false),
  })
  .refine((r) => Boolean(r.csv) !== Boolean(r.sheet), { message: 'give exactly one of csv or sheet' });

export interface CreateRunAnswer {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

/**
 * Creates a run the way `pnpm enqueue` does, behind the same preflight guard: 503
 * `BATCH_RATE_LIMITED` with a suggested wait while a provider is in cooldown, 402
 * `BUDGET_TOO_LOW` with the estimate when the budget cannot cover the run. A list with no
 * brand left to do (all already have results, or none is valid) creates no run and answers
 * 200 `NOTHING_TO_DO` with the message: the request is fulfilled, the source is done, as
 * the CLI exits 0 (409 would ask the client to change something it need not change).
 */
export async function createRun(deps: { redis: Redis; queue: BrandQueue; config: Config }, input: unknown): Promise<CreateRunAnswer> {
  const parsed = createRunRequest.safeParse(input);
  if (!parsed.success) {
    return { status: 400, body: { code: 'BAD_REQUEST', errors: parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`) } };
  }
  const request = parsed.data;
  const { redis, queue, config } = deps;
  const runs = new RunStore(redis);
  try {
    const loaded = await loadSource(request, config);
    if (!request.force) await skipAlreadyProcessed(runs, loaded);
    const idle = nothingToDo(loaded);
    if (idle) return nothingToDoAnswer(idle, loaded.skipped);
    const budgetMicros = usdToMicros(request.budget ?? config.BUDGET_USD);
    const estimate = await preflightRun(
      { redis, config, queue },
      { loaded, budgetMicros, noCache: request.noCache, allowPartial: request.allowPartial, refuseDuringCooldown: true },
    );
    const runId = request.run ?? newRunId();
    const outcome = await enqueueRun(
      { runs, ledger: new CostLedger(redis), queue },
      {
        runId,
        loaded,
        budgetMicros,
        attempts: config.JOB_ATTEMPTS,
        retention: { keepCompleted: config.JOB_KEEP_COMPLETED, keepFailed: config.JOB_KEEP_FAILED },
        noCache: request.noCache,
      },
    );
    if (outcome.kind === 'nothing_to_do') return nothingToDoAnswer(outcome, loaded.skipped);
    return { status: 201, body: { runId, enqueued: outcome.enqueued, added: outcome.added, total: outcome.run.total, skipped: loaded.skipped, estimate } };
  } catch (error) {
    if (error instanceof RateLimitedError) {
      const seconds = Math.max(1, Math.ceil((error.retryAfterMs ?? 1000) / 1000));
      return { status: 503, headers: { 'retry-after': String(seconds) }, body: { code: 'BATCH_RATE_LIMITED', message: error.message, retryAfterSeconds: seconds, ...error.details } };
    }
    if (error instanceof BudgetExhaustedError) return { status: 402, body: { code: 'BUDGET_TOO_LOW', message: error.message, estimate: error.details.estimate } };
    if (error instanceof BadInputError || (isBrandqError(error) && error.kind === 'bad_request')) return { status: 400, body: { code: 'BAD_INPUT', message: error.message } };
    throw error;
  }
}

function nothingToDoAnswer(idle: NothingToDo, skipped: LoadedSource['skipped']): CreateRunAnswer {
  return { status: 200, body: { code: 'NOTHING_TO_DO', message: idle.message, skipped } };
}
