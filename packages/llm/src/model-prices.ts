import type { ModelPrice } from '@brandq/ledger';
import { resolveModelPrice, type ModelPriceSource } from './model-price.js';

/**
 * The prices of every model a process calls, each resolved once (the table, else the
 * provider's models endpoint). A lookup that failed is not remembered: the next one asks again.
 */
export class ModelPrices {
  private readonly resolved = new Map<string, Promise<ModelPrice>>();

  constructor(private readonly source: Omit<ModelPriceSource, 'model'>) {}

  priceOf(model: string): Promise<ModelPrice> {
    let price = this.resolved.get(model);
    if (!price) {
      price = resolveModelPrice({ ...this.source, model });
      this.resolved.set(model, price);
      price.catch(() => this.resolved.delete(model));
    }
    return price;
  }
}
