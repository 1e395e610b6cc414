import { parseMaxRpm, parseWeight } from '@brandq/fair-share';
import { LLM_TIERS, type LlmTier } from '@brandq/ledger';
import { UsageError } from './usage-error.js';

/*
 * Option parsers for commander: the value arrives as typed (so `--budget -3` is a value, not a
 * missing argument) and brandq's own message says what is wrong with it (exit 2).
 */

export function dollars(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`${flag} must be a number of dollars, 0 or more, got "${value}"`);
    return n;
  };
}

export function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} must be a positive integer, got "${value}"`);
    return n;
  };
}

const DURATION_UNITS_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 };

/** A duration such as `30d`, `12h`, `1d12h` or `90m`, in ms. */
export function duration(flag: string) {
  return (value: string): number => {
    const text = value.trim();
    if (!/^(\d+(\.\d+)?[dhms])+$/.test(text)) throw new UsageError(`${flag} must be a duration such as 30d, 12h, 1d12h or 90m, got "${value}"`);
    let ms = 0;
    for (const m of text.matchAll(/(\d+(?:\.\d+)?)([dhms])/g)) ms += Number(m[1]) * (DURATION_UNITS_MS[m[2] as string] as number);
    return Math.round(ms);
  };
}

/** A number flag's text for the shared rules, which coerce: an empty value would read as 0, and it is no number. */
const numberText = (value: string): unknown => (value.trim() === '' ? Number.NaN : value);

/** A run's weight among the fleet's runs (`--weight`), by the rules the HTTP API follows too. */
export function weight(flag: string) {
  return (value: string): number => {
    const parsed = parseWeight(numberText(value));
    if (!parsed.ok) throw new UsageError(`${flag}: ${parsed.message}, got "${value}"`);
    return parsed.value;
  };
}

/** A run's own ceiling in calls per minute at each provider (`--max-rpm` of a new run). */
export function maxRpm(flag: string) {
  return (value: string): number => {
    const parsed = parseMaxRpm(numberText(value));
    if (!parsed.ok) throw new UsageError(`${flag}: ${parsed.message}, got "${value}"`);
    return parsed.value;
  };
}

/**
 * A new ceiling for a run (`brandq runs set --max-rpm`): calls per minute, or `none` to lift
 * it (the word itself: commander stores a parser's null as an empty string).
 */
export function maxRpmOrNone(flag: string) {
  return (value: string): number | 'none' => {
    if (value.trim().toLowerCase() === 'none') return 'none';
    const parsed = parseMaxRpm(numberText(value));
    if (!parsed.ok) throw new UsageError(`${flag} must be calls per minute (a whole number from 1) or none to lift the ceiling, got "${value}"`);
    return parsed.value;
  };
}

/** An LLM tier (`--llm-tier`). */
export function llmTier(flag: string) {
  return (value: string): LlmTier => {
    const tier = value.trim().toLowerCase();
    if (!(LLM_TIERS as readonly string[]).includes(tier)) throw new UsageError(`${flag} must be one of ${LLM_TIERS.join(', ')}, got "${value}"`);
    return tier as LlmTier;
  };
}
