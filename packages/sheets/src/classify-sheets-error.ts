import {
  BadRequestError,
  BrandqError,
  QuotaExhaustedError,
  RateLimitedError,
  TransientError,
  UnauthorizedError,
  parseRetryAfter,
} from '@brandq/errors';

interface GaxiosLike {
  status?: number;
  code?: string | number;
  message: string;
  response?: { status?: number; headers?: unknown; data?: unknown };
}

function headersRecord(headers: unknown): Record<string, string> | Headers | undefined {
  if (!headers) return undefined;
  if (headers instanceof Headers) return headers;
  if (typeof headers === 'object') return headers as Record<string, string>;
  return undefined;
}

/** Maps a failed Sheets API call (a GaxiosError) to the error model. */
export function classifySheetsError(error: unknown, what: string): BrandqError {
  if (error instanceof BrandqError) return error;
  const e = (error ?? {}) as GaxiosLike;
  const status = e.response?.status ?? e.status;
  const message = e.message ?? String(error);
  const opts = { provider: 'sheets' as const, status, cause: error };
  if (status === undefined) return new TransientError(`Google Sheets ${what} failed without a response: ${message}`, opts);
  if (status === 401 || status === 403) {
    return new UnauthorizedError(`Google Sheets ${what} refused (HTTP ${status}): check the credentials and that the sheet is shared with the service account`, opts);
  }
  if (status === 404) return new BadRequestError(`Google Sheets ${what}: spreadsheet or range not found (HTTP 404)`, opts);
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(headersRecord(e.response?.headers), message);
    return new RateLimitedError(`Google Sheets quota exceeded (HTTP 429): ${message}`, retryAfterMs === undefined ? opts : { ...opts, retryAfterMs });
  }
  if (status === 408 || status >= 500) return new TransientError(`Google Sheets server error (HTTP ${status}): ${message}`, opts);
  if (status === 402) return new QuotaExhaustedError(`Google Sheets billing problem (HTTP 402): ${message}`, opts);
  return new BadRequestError(`Google Sheets ${what} rejected (HTTP ${status}): ${message}`, opts);
}
