import { redactText } from './redact-text.js';

/** A URL (Redis, a provider base URL) fit to print: its password shows as `***`. */
export function redactUrl(url: string): string {
  return redactText(url);
}
