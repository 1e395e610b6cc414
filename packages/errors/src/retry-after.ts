/**
 * How long a provider asked us to wait, from whichever signal it sent. Order of trust:
 * `retry-after-ms`, `retry-after` (seconds or an HTTP date), OpenAI's "Please try again in
 * 26.604s" message, then the rate-limit reset headers. Undefined when none is present.
 */
export type HeaderLookup = { get(name: string): string | null } | Record<string, string | string[] | undefined>;

function header(headers: HeaderLookup | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Record<string, string | string[] | undefined>;
  const value = record[name] ?? record[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Parses OpenAI-style durations such as `12ms`, `1s`, `6m0s`, `1h2m3.5s`. */
export function parseDuration(text: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let matched = false;
  for (const m of text.matchAll(re)) {
    matched = true;
    const n = Number(m[1]);
    const unit = m[2];
    total += unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n * 3_600_000;
  }
  return matched ? Math.ceil(total) : undefined;
}

export function parseRetryAfter(
  headers: HeaderLookup | undefined,
  message?: string,
  nowMs: number = Date.now(),
): number | undefined {
  return explicitRetryAfter(headers, nowMs) ?? impliedRetryAfter(headers, message, nowMs);
}

/**
 * Only what the provider said explicitly about this answer: `retry-after-ms` or
 * `retry-after`. The right reading for a 5xx, where OpenAI's `x-ratelimit-reset-*` headers
 * describe the rate window, not when the server will be back.
 */
export function explicitRetryAfter(headers: HeaderLookup | undefined, nowMs: number = Date.now()): number | undefined {
  const ms = header(headers, 'retry-after-ms');
  if (ms !== undefined && ms.trim() !== '' && Number.isFinite(Number(ms))) return Math.max(0, Math.ceil(Number(ms)));

  const ra = header(headers, 'retry-after');
  if (ra !== undefined && ra.trim() !== '') {
    if (/^\s*\d+(\.\d+)?\s*$/.test(ra)) return Math.max(0, Math.ceil(Number(ra) * 1000));
    const date = Date.parse(ra);
    if (Number.isFinite(date)) return Math.max(0, date - nowMs);
  }
  return undefined;
}

/** The waits a 429 implies: OpenAI's message, then the reset of the exhausted window. */
function impliedRetryAfter(headers: HeaderLookup | undefined, message: string | undefined, nowMs: number): number | undefined {

  if (message) {
    const m = /try again in\s+((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)/i.exec(message);
    if (m?.[1]) return parseDuration(m[1]);
  }

  // Reset headers say when a window refills: the exhausted one is the wait that matters.
  const dims = (['requests', 'tokens'] as const)
    .map((dim) => ({
      exhausted: header(headers, `x-ratelimit-remaining-${dim}`)?.trim() === '0',
      resetMs: parseDuration(header(headers, `x-ratelimit-reset-${dim}`) ?? ''),
    }))
    .filter((d): d is { exhausted: boolean; resetMs: number } => d.resetMs !== undefined);
  const exhausted = dims.filter((d) => d.exhausted);
  if (exhausted.length > 0) return Math.max(...exhausted.map((d) => d.resetMs));
  if (dims.length > 0) return Math.min(...dims.map((d) => d.resetMs));

  const epochReset = header(headers, 'x-ratelimit-reset');
  if (epochReset !== undefined && /^\d+$/.test(epochReset.trim())) {
    const n = Number(epochReset);
    // OpenRouter sends epoch milliseconds; some providers send epoch seconds.
    const atMs = n > 1e12 ? n : n * 1000;
    return Math.max(0, atMs - nowMs);
  }
  return undefined;
}
