import { describe, expect, it } from 'vitest';
import { llmCostMicros, tierPrice, type ModelPrice } from './pricing.js';

describe('tier prices', () => {
  const price: ModelPrice = { inputPerMillion: 0.15, outputPerMillion: 0.6 };

  it('bills flex and batch at half the standard price unless the table says otherwise', () => {
    expect(tierPrice(price, 'standard')).toEqual({ inputPerMillion: 0.15, outputPerMillion: 0.6 });
    expect(tierPrice(price, 'flex')).toEqual({ inputPerMillion: 0.075, outputPerMillion: 0.3 });
    expect(tierPrice(price, 'batch')).toEqual({ inputPerMillion: 0.075, outputPerMillion: 0.3 });
    const listed: ModelPrice = { ...price, tiers: { batch: { inputPerMillion: 0.1, outputPerMillion: 0.2 } } };
    expect(tierPrice(listed, 'batch')).toEqual({ inputPerMillion: 0.1, outputPerMillion: 0.2 });
    expect(tierPrice(listed, 'flex')).toEqual({ inputPerMillion: 0.075, outputPerMillion: 0.3 });
  });

  it('costs a call at its tier in whole micro-dollars', () => {
    expect(llmCostMicros(tierPrice(price, 'standard'), 1000, 500)).toBe(450);
    expect(llmCostMicros(tierPrice(price, 'batch'), 1000, 500)).toBe(225);
  });
});
