import OpenAI from 'openai';
import { ConfigError } from '@brandq/errors';
import type { ModelPrice } from '@brandq/ledger';

export interface ModelPriceSource {
  model: string;
  baseURL: string;
  apiKey: string | undefined;
  /** `LLM_PRICING`: wins when it names the model. */
  table: Readonly<Record<string, ModelPrice>>;
  timeoutMs?: number;
}

/** One entry of OpenRouter's `GET /api/v1/models`: prices are strings, USD per token. */
interface ListedModel {
  id: string;
  pricing?: { prompt?: unknown; completion?: unknown };
}

/**
 * The price a model's calls are reserved at. The table first; otherwise the provider's own
 * models endpoint (OpenRouter lists `pricing.prompt` / `pricing.completion` per token), asked
 * once when the process starts. A model priced nowhere is refused: reserving its calls at 0
 * would let a run spend past its budget before the first bill arrived.
 */
export async function resolveModelPrice(source: ModelPriceSource): Promise<ModelPrice> {
  const listed = source.table[source.model];
  if (listed) return listed;
  const hint = `add it to LLM_PRICING, e.g. {"${source.model}":{"inputPerMillion":0.15,"outputPerMillion":0.6}}`;
  let models: ListedModel[];
  try {
    const client = new OpenAI({ apiKey: source.apiKey ?? 'missing-key', baseURL: source.baseURL, maxRetries: 1, timeout: source.timeoutMs ?? 15_000 });
    models = [];
    for await (const model of client.models.list()) models.push(model as unknown as ListedModel);
  } catch (error) {
    throw new ConfigError(`no price for model "${source.model}": LLM_PRICING does not list it and ${source.baseURL}/models could not be read (${(error as Error).message}); ${hint}`, { cause: error });
  }
  const found = models.find((m) => m.id === source.model);
  const perToken = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? Number(v) : Number.NaN);
  const input = perToken(found?.pricing?.prompt);
  const output = perToken(found?.pricing?.completion);
  if (!found || !(input >= 0) || !(output >= 0)) {
    throw new ConfigError(`no price for model "${source.model}": neither LLM_PRICING nor ${source.baseURL}/models gives one; ${hint}`);
  }
  return { inputPerMillion: input * 1_000_000, outputPerMillion: output * 1_000_000 };
}
