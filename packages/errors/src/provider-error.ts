/**
 * One error model for everything that can go wrong around a brand. Each failure is
 * classified once, where it happens (the provider clients, the input reader, the budget),
 * and the rest of the code matches on `kind` or the class, never on message text.
 */
export type Provider = 'llm' | 'tavily' | 'sheets';

export type FailureKind =
  | 'rate_limited'
  | 'transient'
  | 'quota_exhausted'
  | 'unauthorized'
  | 'bad_request'
  | 'bad_output'
  | 'bad_input'
  | 'budget_exhausted'
  | 'budget_in_flight'
  | 'limiter_unavailable'
  | 'run_throttled'
  | 'capacity_unavailable'
  | 'batch_parked'
  | 'config';

export interface BrandqErrorOptions {
  provider?: Provider;
  status?: number;
  /** How long the provider asked us to wait before the next request, when it said so. */
  retryAfterMs?: number;
  cause?: unknown;
  details?: Record<string, unknown>;
  /**
   * The request may have reached the provider and been billed, but no answer says so (a
   * timeout or a connection dropped after sending): the money is booked as unconfirmed.
   */
  outcomeUnknown?: boolean;
  /** The provider's response headers (its rate-limit state), kept out of job data and logs. */
  headers?: Headers | Record<string, string>;
}

export abstract class BrandqError extends Error {
  abstract readonly kind: FailureKind;
  /** Whether another attempt of the same job can succeed without a human acting first. */
  abstract readonly retryable: boolean;
  readonly provider: Provider | undefined;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  readonly details: Record<string, unknown>;
  readonly outcomeUnknown: boolean;
  declare readonly headers: Headers | Record<string, string> | undefined;

  constructor(message: string, options: BrandqErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.provider = options.provider;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details ?? {};
    this.outcomeUnknown = options.outcomeUnknown ?? false;
    // Not enumerable: headers never travel into job data, logs or Bull Board.
    Object.defineProperty(this, 'headers', { value: options.headers, enumerable: false });
  }

  /** A plain object for job data, logs and Bull Board: no stack, no secrets. */
  toJSON(): Record<string, unknown> {
    return {
      kind: this.kind,
      message: this.message,
      provider: this.provider,
      status: this.status,
      retryAfterMs: this.retryAfterMs,
      ...this.details,
    };
  }
}

export class RateLimitedError extends BrandqError {
  readonly kind = 'rate_limited' as const;
  readonly retryable = true;
}

export class TransientError extends BrandqError {
  readonly kind = 'transient' as const;
  readonly retryable = true;
}

/** Billing or credits are gone: retrying brand by brand only burns time, the run must pause. */
export class QuotaExhaustedError extends BrandqError {
  readonly kind = 'quota_exhausted' as const;
  readonly retryable = false;
}

export class UnauthorizedError extends BrandqError {
  readonly kind = 'unauthorized' as const;
  readonly retryable = false;
}

export class BadRequestError extends BrandqError {
  readonly kind = 'bad_request' as const;
  readonly retryable = false;
}

/** The provider answered, but the answer is unusable (schema mismatch, truncated JSON). */
export class BadOutputError extends BrandqError {
  readonly kind = 'bad_output' as const;
  readonly retryable = false;
}

/** The brand or the source row itself is unusable. */
export class BadInputError extends BrandqError {
  readonly kind = 'bad_input' as const;
  readonly retryable = false;
}

export class BudgetExhaustedError extends BrandqError {
  readonly kind = 'budget_exhausted' as const;
  readonly retryable = false;
}

/**
 * The budget cannot cover the next call only because of reservations still in flight: they
 * settle or expire soon, so the job waits and tries again; the run is not out of budget.
 */
export class BudgetInFlightError extends BrandqError {
  readonly kind = 'budget_in_flight' as const;
  readonly retryable = true;
}

/**
 * The run is at its own ceiling (`--max-rpm`): not a failure, the job waits `retryAfterMs`
 * with its worker slot given back, so a capped run never holds the slots other runs need.
 */
export class RunThrottledError extends BrandqError {
  readonly kind = 'run_throttled' as const;
  readonly retryable = true;
}

/**
 * A Flex request refused for capacity ("429 Resource Unavailable"): not a rate limit (no
 * fleet cooldown, no header sync) and not billed; retried with backoff, or after the run's
 * `--flex-fallback-after` at the standard tier.
 */
export class CapacityUnavailableError extends BrandqError {
  readonly kind = 'capacity_unavailable' as const;
  readonly retryable = true;
}

/**
 * A batch-tier LLM step is waiting for its batch: the request is queued for the fleet's
 * batch coordinator, and the job waits (delayed, its worker slot given back) until the
 * coordinator hands the result back and wakes it.
 */
export class BatchParkedError extends BrandqError {
  readonly kind = 'batch_parked' as const;
  readonly retryable = true;
}

/** The shared limiter's store cannot be reached: we fail closed rather than admit blindly. */
export class LimiterUnavailableError extends BrandqError {
  readonly kind = 'limiter_unavailable' as const;
  readonly retryable = true;
}

export class ConfigError extends BrandqError {
  readonly kind = 'config' as const;
  readonly retryable = false;
}

export function isBrandqError(err: unknown): err is BrandqError {
  return err instanceof BrandqError;
}
