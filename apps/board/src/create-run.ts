import { z } from 'zod';
import { createRun as createRunOf, type RunServiceDeps } from '@brandq/run-service';
import { parseMaxRpm, parseWeight, type RunShare } from '@brandq/fair-share';
import { BadInputError, BudgetExhaustedError, RateLimitedError, isBrandqError } from '@brandq/errors';
import { usdToMicros } from '@brandq/ledger';
import { defaultRecipe, parseRecipe } from '@brandq/recipe';
import { redactText } from '@brandq/redact';

/**
 * `POST /api/runs`, as JSON: the CSV content itself (`csvText`) or a spreadsheet id
 * (`sheet`), and the producer's options. Never a path: the board reads no file for a client.
 */
const createRunRequest = z
  .object({
    csvText: z.string().min(1).optional(),
    sheet: z.string().regex(/^[A-Za-z0-9_-]{1,200}$/, 'expected a spreadsheet id (letters, digits, - and _)').optional(),
    range: z.string().min(1).max(200).default('Brands!A2:A'),
    column: z.string().min(1).max(200).optional(),
    resultColumn: z.string().regex(/^[A-Za-z]{1,3}$/, 'expected a column letter').optional(),
    limit: z.number().int().positive().optional(),
    run: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/, 'expected a run name: a letter or digit, then letters, digits, ., - and _').optional(),
    // In whole micro-dollars, as the ledger keeps it: a budget that rounds to 0 would mean
    // "unlimited", one past the safe integers cannot be stored.
    budget: z
      .number()
      .refine((usd) => usdToMicros(usd) >= 1 && Number.isSafeInteger(usdToMicros(usd)), 'expected a budget in USD of at least 0.000001 and below 9e9')
      .optional(),
    /** A recipe's text (YAML or JSON, as in a recipe file); the default recipe when absent. */
    recipe: z.string().min(1).max(65_536).optional(),
    noCache: z.boolean().default(false),
    allowPartial: z.boolean().default(false),
    force: z.boolean().default(false),
    /** The run's weight among the fleet's runs and its own ceiling (checked by `requestedShare`, answered as BAD_INPUT). */
    weight: z.unknown().optional(),
    maxRpm: z.unknown().optional(),
  })
  .strict()
  .refine((r) => Boolean(r.csvText) !== Boolean(r.sheet), { message: 'give exactly one of csvText (the CSV content) or sheet (a spreadsheet id)' });

/** Fields that would name a file on the board's machine: refused before anything is read. */
const PATH_FIELDS = ['csv', 'path', 'file', 'csvPath', 'csvFile'];

/** A message about the client's own input, fit to send back: redacted, and short. */
function excerpt(text: string): string {
  const safe = redactText(text);
  return safe.length > 200 ? `${safe.slice(0, 200)}…` : safe;
}

/**
 * The weight and ceiling a request asks for, by the rules `--weight` and `--max-rpm` follow,
 * or what is wrong with them. JSON numbers only (those rules coerce, as command-line values are
 * text); `maxRpm: null` is no ceiling, as leaving it out.
 */
function requestedShare(request: { weight?: unknown; maxRpm?: unknown }): { ok: true; share: Partial<RunShare> } | { ok: false; message: string } {
  const share: Partial<RunShare> = {};
  if (request.weight !== undefined) {
    const weight = typeof request.weight === 'number' ? parseWeight(request.weight) : { ok: false as const, message: 'weight must be a number' };
    if (!weight.ok) return weight;
    share.weight = weight.value;
  }
  if (request.maxRpm !== undefined && request.maxRpm !== null) {
    const maxRpm = typeof request.maxRpm === 'number' ? parseMaxRpm(request.maxRpm) : { ok: false as const, message: 'maxRpm must be a number, or null for no ceiling' };
    if (!maxRpm.ok) return maxRpm;
    share.maxRpm = maxRpm.value;
  }
  return { ok: true, share };
}

export interface CreateRunAnswer {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

/**
 * Creates a run the way `brandq enqueue` does (the run service's `createRun`), behind the
 * same preflight guard: 503 `BATCH_RATE_LIMITED` with a suggested wait while a provider is
 * in cooldown, 402 `BUDGET_TOO_LOW` with the estimate when the budget cannot cover the run,
 * 400 `BAD_INPUT` for a source without a brand, a recipe that does not validate (each
 * problem named with its step and field) or a `weight` / `maxRpm` out of their rules. A
 * list whose brands all have results already creates no run and answers 200
 * `NOTHING_TO_DO` with the message: the request is fulfilled, the source is done, as the
 * CLI exits 0.
 */
export async function createRun(deps: RunServiceDeps, input: unknown): Promise<CreateRunAnswer> {
  if (input !== null && typeof input === 'object' && PATH_FIELDS.some((field) => field in input)) {
    // Named, not echoed: whatever the field held stays unread and unrepeated.
    return {
      status: 400,
      body: { code: 'SERVER_PATH_REFUSED', error: 'the HTTP API never reads files on the server: send the CSV content as "csvText", or a spreadsheet id as "sheet"' },
    };
  }
  const parsed = createRunRequest.safeParse(input);
  if (!parsed.success) {
    return { status: 400, body: { code: 'BAD_REQUEST', errors: parsed.error.issues.map((i) => excerpt(`${i.path.join('.') || '(body)'}: ${i.message}`)) } };
  }
  const request = parsed.data;
  const share = requestedShare(request);
  if (!share.ok) return { status: 400, body: { code: 'BAD_INPUT', message: share.message } };
  const { config } = deps;
  // A run started from a browser spends real money: it needs a ceiling (0 means none).
  const budgetUsd = request.budget ?? (usdToMicros(config.BUDGET_USD) >= 1 ? config.BUDGET_USD : undefined);
  if (budgetUsd === undefined) {
    return {
      status: 400,
      body: { code: 'BUDGET_REQUIRED', error: 'a run created over HTTP needs a budget: send "budget" (USD, above 0), or set BUDGET_USD above 0 for the board' },
    };
  }
  try {
    const recipe = request.recipe === undefined ? defaultRecipe() : parseRecipe(request.recipe, 'the recipe in the request');
    const outcome = await createRunOf(deps, {
      source: request.csvText
        ? { csvText: request.csvText, column: request.column, limit: request.limit }
        : { sheet: request.sheet, range: request.range, column: request.column, resultColumn: request.resultColumn, limit: request.limit },
      runId: request.run,
      budgetMicros: usdToMicros(budgetUsd),
      recipe,
      noCache: request.noCache,
      force: request.force,
      allowPartial: request.allowPartial,
      refuseDuringCooldown: true,
      share: share.share,
    });
    if (outcome.kind === 'nothing_to_do') return { status: 200, body: { code: 'NOTHING_TO_DO', message: outcome.message, skipped: outcome.skipped } };
    if (outcome.kind === 'estimated') return { status: 200, body: { estimate: outcome.estimate, skipped: outcome.skipped } };
    const { runId, enqueued, added, total, skipped, estimate } = outcome;
    return { status: 201, body: { runId, recipe: recipe.name, enqueued, added, total, skipped, estimate } };
  } catch (error) {
    if (error instanceof RateLimitedError) {
      const seconds = Math.max(1, Math.ceil((error.retryAfterMs ?? 1000) / 1000));
      return { status: 503, headers: { 'retry-after': String(seconds) }, body: { code: 'BATCH_RATE_LIMITED', message: excerpt(error.message), retryAfterSeconds: seconds, ...error.details } };
    }
    if (error instanceof BudgetExhaustedError) return { status: 402, body: { code: 'BUDGET_TOO_LOW', message: excerpt(error.message), estimate: error.details.estimate } };
    if (error instanceof BadInputError || (isBrandqError(error) && error.kind === 'bad_request')) return { status: 400, body: { code: 'BAD_INPUT', message: excerpt(error.message) } };
    // The sheet could not be read (Google unreachable, the board's credentials refused): the
    // board's upstream failed, not the request.
    if (isBrandqError(error)) return { status: 502, body: { code: 'SOURCE_UNAVAILABLE', message: excerpt(error.message) } };
    throw error;
  }
}
