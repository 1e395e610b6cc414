/**
 * Socket errors that happen before a request is written: the provider never saw it, so it
 * cannot have been billed. Every other failure without an answer (a timeout, a reset, a
 * body cut off) may have been billed.
 */
const NEVER_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_INVALID_URL']);

/** True when `error` (or an error in its `cause` chain) says the request never left this machine. */
export function wasNeverSent(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 8; depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NEVER_SENT_CODES.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
