import type { LlmPricing } from './fake-openai.js';

/** Epoch seconds the fake's models claim to be created at: fixed so answers are deterministic. */
const CREATED = 1_721_172_741;
const CONTEXT_LENGTH = 128_000;

/** `GET /v1/models` as OpenAI answers it (what the openai SDK's `client.models.list()` pages over). */
export function openAiModelList(ids: readonly string[]): unknown {
  return {
    object: 'list',
    data: ids.map((id) => ({ id, object: 'model', created: CREATED, owned_by: ownerOf(id) })),
  };
}

/**
 * `GET /api/v1/models` as OpenRouter answers it: `pricing.prompt` and `.completion` are
 * decimal strings in USD per token ("0.0000025" = $2.50 per million), here the prices the
 * fake bills.
 */
export function openRouterModelList(prices: ReadonlyMap<string, LlmPricing>): unknown {
  return {
    data: [...prices].map(([id, pricing]) => ({
      id,
      canonical_slug: id,
      name: id,
      created: CREATED,
      description: `Fake model ${id}.`,
      context_length: CONTEXT_LENGTH,
      architecture: { modality: 'text->text', input_modalities: ['text'], output_modalities: ['text'], tokenizer: 'GPT' },
      pricing: {
        prompt: usdPerToken(pricing.inputPerMillion),
        completion: usdPerToken(pricing.outputPerMillion),
        request: '0',
        image: '0',
      },
      top_provider: { context_length: CONTEXT_LENGTH, max_completion_tokens: 16_384, is_moderated: false },
      per_request_limits: null,
      supported_parameters: ['max_tokens', 'response_format', 'structured_outputs', 'temperature'],
    })),
  };
}

/** USD per million tokens -> OpenRouter's per-token decimal string, never in exponent form. */
export function usdPerToken(perMillion: number): string {
  // 15 decimals hold a per-million price with 9 significant decimals and round away float noise.
  const fixed = (perMillion / 1_000_000).toFixed(15);
  const trimmed = fixed.replace(/0+$/, '').replace(/\.$/, '');
  return trimmed === '' || trimmed === '-0' ? '0' : trimmed;
}

function ownerOf(id: string): string {
  const slash = id.indexOf('/');
  return slash > 0 ? id.slice(0, slash) : 'openai';
}
