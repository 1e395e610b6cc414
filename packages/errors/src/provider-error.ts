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
  | 'limiter_unavailable'
  | 'config';

export interface BrandqErrorOptions {
  provider?: Provider;
  status?: number;
  /** How long the provider asked us to wait before the next request, when it said so. */
  retryAfterMs?: number;
  cause?: unknown;
  details?: Record<string, unknown>;
}

export abstract class BrandqError extends Error {
  abstract readonly kind: FailureKind;
  /** Whether another attempt of the same job can succeed without a human acting first. */
  abstract readonly retryable: boolean;
  readonly provider: Provider | undefined;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  readonly details: Record<string, unknown>;

  constructor(message: string, options: BrandqErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.provider = options.provider;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details ?? {};
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
