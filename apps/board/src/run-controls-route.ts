import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { parseMaxRpm, parseWeight } from '@brandq/fair-share';
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
/**
 * A JSON number that `parse` (the rules the command line uses too) takes. A number first: those
 * rules coerce, as command-line values are text, and `true` or `"2"` is no number in a body.
 */
function shareNumber(message: string, parse: (raw: unknown) => { ok: true; value: number } | { ok: false; message: string }) {
  return z.number({ message }).superRefine((n, ctx) => {
    const parsed = parse(n);
    if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.message });
  });
}

const shareRequest = z
  .object({
    weight: shareNumber('weight must be a number', parseWeight).optional(),
    maxRpm: shareNumber('maxRpm must be a number, or null to lift the ceiling', parseMaxRpm).nullable().optional(),
  })
  .strict()
  .refine((r) => r.weight !== undefined || r.maxRpm !== undefined, { message: 'give weight, maxRpm (null lifts the ceiling) or both' });

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
 * `{kind?, reason?}`, `/share` `{weight?, maxRpm?}` (`maxRpm: null` lifts the run's
 * ceiling). Each answers `{ run, history }`, or `{ code, error }`: 404 for an unknown run,
 * 400 for a malformed body, budget, weight or ceiling, 409 when the run's status does not allow
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
  mount('share', shareRequest, (runId, share, by) => controls.share(runId, share, by));
}

/** A read-only board changes no run: refused before the body is read. */
function refuseOnReadOnly(readOnly: boolean) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    if (readOnly) res.status(405).json({ code: 'READ_ONLY', error: 'the board is read-only (BOARD_READ_ONLY=true): runs cannot be paused, resumed, cancelled, re-budgeted, retried or re-weighted from it' });
    else next();
  };
}
