import type { RateLimitSnapshot } from './types.js';

export type HeaderSource = { get(name: string): string | null } | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Record<string, string | string[] | undefined>;
  const value = record[name] ?? Object.entries(record).find(([k]) => k.toLowerCase() === name)?.[1];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Parses OpenAI-style reset durations (`12ms`, `1s`, `6m0s`, `1h2m3.5s`) and plain
 * seconds (`2`, `0.5`, as some compatible vendors send).
 */
export function parseResetDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed) * 1000);
  let total = 0;
  let rest = trimmed;
  const part = /^(\d+(?:\.\d+)?)(ms|h|m|s)/;
  if (rest === '') return undefined;
  while (rest !== '') {
    const m = part.exec(rest);
    if (!m) return undefined;
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n * 3_600_000;
    rest = rest.slice(m[0].length);
  }
  return Math.ceil(total);
}

function count(text: string | undefined): number | undefined {
  if (text === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(text)) return undefined;
  return Math.floor(Number(text));
}

/** Reads `x-ratelimit-remaining-requests/tokens` and `x-ratelimit-reset-requests/tokens`. */
export function parseRateLimitHeaders(headers: HeaderSource): RateLimitSnapshot {
  const snapshot: RateLimitSnapshot = {};
  const remainingRequests = count(header(headers, 'x-ratelimit-remaining-requests'));
  const remainingTokens = count(header(headers, 'x-ratelimit-remaining-tokens'));
  const resetRequests = header(headers, 'x-ratelimit-reset-requests');
  const resetTokens = header(headers, 'x-ratelimit-reset-tokens');
  if (remainingRequests !== undefined) snapshot.remainingRequests = remainingRequests;
  if (remainingTokens !== undefined) snapshot.remainingTokens = remainingTokens;
  const rr = resetRequests === undefined ? undefined : parseResetDuration(resetRequests);
  const rt = resetTokens === undefined ? undefined : parseResetDuration(resetTokens);
  if (rr !== undefined) snapshot.resetRequestsMs = rr;
  if (rt !== undefined) snapshot.resetTokensMs = rt;
  return snapshot;
}
