import { z } from 'zod';

/**
 * What a run asks of the fleet's capacity: its weight (its share is weight / the sum of the
 * weights of the runs with work) and, optionally, its own ceiling in calls per minute at
 * each provider, under the provider's own limit.
 */
export interface RunShare {
  weight: number;
  maxRpm?: number;
}

export const DEFAULT_WEIGHT = 1;
/** Weights are whole numbers up to this: a 1:1000 split is already far past what a share can show. */
export const MAX_WEIGHT = 1000;

export const weightSchema = z.coerce
  .number({ message: 'weight must be a number' })
  .int('weight must be a whole number')
  .min(1, 'weight must be at least 1')
  .max(MAX_WEIGHT, `weight must be at most ${MAX_WEIGHT}`);

export const maxRpmSchema = z.coerce
  .number({ message: 'max rpm must be a number' })
  .int('max rpm must be a whole number')
  .min(1, 'max rpm must be at least 1 (leave it out for no ceiling)')
  .max(1_000_000, 'max rpm must be at most 1000000');

/** A weight from a command line or a request, or the reason it is not one. */
export function parseWeight(raw: unknown): { ok: true; value: number } | { ok: false; message: string } {
  const parsed = weightSchema.safeParse(raw);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, message: parsed.error.issues[0]?.message ?? 'invalid weight' };
}

/** A per-run ceiling from a command line or a request, or the reason it is not one. */
export function parseMaxRpm(raw: unknown): { ok: true; value: number } | { ok: false; message: string } {
  const parsed = maxRpmSchema.safeParse(raw);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, message: parsed.error.issues[0]?.message ?? 'invalid max rpm' };
}
