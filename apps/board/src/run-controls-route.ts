import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { assertSafeId } from '@brandq/redis';
import { redactValue } from '@brandq/redact';
import { RunControlRefused, type RunControlled, type RunControlRefusal } from '@brandq/run-service';
import type { BoardOptions } from './board-app.js';

/** A control's body is a few small fields. */
const CONTROL_BODY_LIMIT = '10kb';

const noFields = z.object({}).strict();
const budgetRequest = z.object({ budgetUsd: z.number() }).strict();
const retryRequest = z
  .object({ group: z.string().regex(/^[0-9a-f]{24}$/, 'expected a failure group id').optional(), kind: z.string().min(1).max(200).optional(), reason: z.string().min(1).max(10_000).optional() })
  .strict();

const REFUSAL_STATUS: Record<RunControlRefusal, number> = {
  RUN_NOT_FOUND: 404,
  INVALID_BUDGET: 400,
  RUN_STATE: 409,
  BUDGET_STILL_EXHAUSTED: 409,
  NO_FAILURES: 409,
};

/**
 * The run controls, as JSON routes the run's page calls: `POST /api/runs/:id/pause`,
 * `/resume`, `/cancel` (body `{}` or none), `/budget` `{budgetUsd}`, `/retry`
 * `{kind?, reason?}`. Each answers `{ run, history }`, or `{ code, error }`: 404 for an
 * unknown run, 400 for a malformed body or budget, 409 when the run's status does not allow
 * it, 405 on a read-only board (as every write of the board). Same-origin JSON writes and basic auth are the board's
 * (board-app.ts); `by` in the history is the basic-auth user, else `anonymous`.
 * Not mounted without `options.runControls`.
 */
export function mountRunControls(app: Express, options: BoardOptions): void {
  const controls = options.runControls;
  if (!controls) return;

  function mount<T>(action: string, body: z.ZodType<T>, control: (runId: string, body: T, by: string) => Promise<RunControlled>): void {
    app.post(`/api/runs/:id/${action}`, refuseOnReadOnly(options.readOnly), express.json({ limit: CONTROL_BODY_LIMIT }), async (req: Request, res: Response, next: NextFunction) => {
      const runId = String(req.params.id);
      try {
        assertSafeId(runId, 'run id');
      } catch {
        res.status(404).json({ code: 'NOT_FOUND', error: 'no such run' });
        return;
      }
      const parsed = body.safeParse(req.body ?? {});
      if (!parsed.success) {
        res.status(400).json({ code: 'BAD_REQUEST', error: parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ') });
        return;
      }
      const by = typeof res.locals.user === 'string' ? res.locals.user : 'anonymous';
      try {
        res.json(redactValue(await control(runId, parsed.data, by)));
      } catch (error) {
        if (!(error instanceof RunControlRefused)) {
          next(error);
          return;
        }
        const code = error.code === 'RUN_NOT_FOUND' ? 'NOT_FOUND' : error.code;
        res.status(REFUSAL_STATUS[error.code]).json(redactValue({ code, error: error.message }));
      }
    });
  }

  mount('pause', noFields, (runId, _body, by) => controls.pause(runId, by));
  mount('resume', noFields, (runId, _body, by) => controls.resume(runId, by));
  mount('cancel', noFields, (runId, _body, by) => controls.cancel(runId, by));
  mount('budget', budgetRequest, (runId, { budgetUsd }, by) => controls.budget(runId, budgetUsd, by));
  mount('retry', retryRequest, (runId, group, by) => controls.retry(runId, group, by));
}

/** A read-only board changes no run: refused before the body is read. */
function refuseOnReadOnly(readOnly: boolean) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    if (readOnly) res.status(405).json({ code: 'READ_ONLY', error: 'the board is read-only (BOARD_READ_ONLY=true): runs cannot be paused, resumed, cancelled, re-budgeted or retried from it' });
    else next();
  };
}
