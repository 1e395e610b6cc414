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
