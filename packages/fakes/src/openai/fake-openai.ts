import {
  FakeServer,
  type Admission,
  type FakeServerOptions,
  type ProviderCall,
  type RateLimitDecision,
  type Reply,
  type RequestContext,
  type RouteResult,
  type ServeOptions,
} from '../server/fake-server.js';
import { formatResetDuration, formatTryAgainIn } from '../server/durations.js';
import type { StatusFault } from '../server/faults.js';
import { isRecord } from '../server/http-io.js';
import { badContent, completeContent, expectedContent, type CompletionText } from './completion.js';
import { openAiModelList, openRouterModelList } from './models-list.js';
import { llmErrorReply, llmFaultError, maskKey, type LlmFlavor } from './openai-errors.js';
import { readPrompt, type PromptFacts } from './prompt.js';
import { answerSchemaOf, expectedAnswer } from './schema-answer.js';
import { countChatPromptTokens, countResponseFormatTokens, type ChatMessageInput } from './tokens.js';

/** USD per million tokens (= micro-dollars per token). */
export interface LlmPricing {
  inputPerMillion: number;
  outputPerMillion: number;
}

export interface FakeOpenAIOptions extends FakeServerOptions {
  /**
   * Tokens admitted per window, counted at admission the way OpenAI counts them: the
   * prompt (messages + `response_format` schema) plus the request's output cap
   * (`max_completion_tokens`, else `max_tokens`, else `defaultMaxTokens`), whatever the
   * answer then uses.
   */
  tpm?: number;
  /** Output cap the TPM window counts for a request that sets no max_tokens (default 4096). */
  defaultMaxTokens?: number;
  /** 'openrouter': usage.cost in answers, OpenRouter error shape, no x-ratelimit-* on successes. */
  flavor?: LlmFlavor;
  /** Price billed for models not in `prices` (default DEFAULT_LLM_PRICING). */
  pricing?: LlmPricing;
  /**
   * Price billed per model id, e.g. `{ 'openai/gpt-4o': { inputPerMillion: 2.5, outputPerMillion: 10 } }`,
   * so a test can make the provider bill more than brandq's table says. The models endpoints
   * list these (plus DEFAULT_MODELS) with the price the fake bills. `/__fake/config` replaces the whole map.
   */
  prices?: Record<string, LlmPricing>;
  /** Organization named in 429 messages. */
  organization?: string;
  /**
   * Scripted answers: brand (the prompt's `Brand:` line) -> the exact assistant content,
   * billed and cut at max_tokens like any answer. For hostile-output tests (formulas,
   * scripts, huge text); brands not listed get the normal deterministic answer.
   */
  answers?: Record<string, string>;
}

export const DEFAULT_LLM_PRICING: LlmPricing = { inputPerMillion: 0.15, outputPerMillion: 0.6 };
/** Models the models endpoints always list (billed at `pricing` unless `prices` says otherwise). */
export const DEFAULT_MODELS: readonly string[] = ['gpt-4o-mini', 'openai/gpt-4o-mini'];
/** Output cap counted at admission for a request without max_tokens (the fake's choice; OpenAI's depends on the model). */
export const DEFAULT_MAX_TOKENS = 4096;
const DEFAULT_RPM = 10_000;
const DEFAULT_TPM = 10_000_000;
const CHAT_PATHS = new Set(['/v1/chat/completions', '/chat/completions', '/api/v1/chat/completions']);
const OPENAI_MODELS_PATHS = new Set(['/v1/models', '/models']);
/** OpenRouter serves its model list (with prices) without an API key. */
const OPENROUTER_MODELS_PATH = '/api/v1/models';

interface ChatCall extends ProviderCall {
  model: string;
  prompt: PromptFacts;
  /** Billed prompt tokens: messages + schema. */
  promptTokens: number;
  schemaTokens: number;
  maxTokens: number | null;
  /** The normal answer, computed up front because its size is what the TPM window charges. */
  answer: CompletionText;
}

/** Micro-dollars for a call: price per million tokens in USD equals micro-dollars per token. */
export function llmCostMicros(pricing: LlmPricing, promptTokens: number, completionTokens: number): number {
  return Math.round(promptTokens * pricing.inputPerMillion + completionTokens * pricing.outputPerMillion);
}

/**
 * OpenAI-compatible (and OpenRouter-flavoured) chat completions. A `json_schema`
 * response_format is answered with `expectedAnswer` (exactly the schema's properties);
 * without one the answer is `expectedContent` (brand facts).
 */
export class FakeOpenAIServer extends FakeServer<FakeOpenAIOptions, ChatCall> {
  constructor(options: FakeOpenAIOptions = {}) {
    super('openai', options);
  }

  private get flavor(): LlmFlavor {
    return this.options.flavor ?? 'openai';
  }

  private get rpm(): number {
    return this.options.rpm ?? DEFAULT_RPM;
  }

  private get tpm(): number {
    return this.options.tpm ?? DEFAULT_TPM;
  }

  /** baseURL for the openai SDK (OpenRouter's `/api/v1` prefix is accepted too). */
  get url(): string {
    return `${this.origin}/v1`;
  }

  protected authorize(ctx: RequestContext): Reply | null {
    if (ctx.method === 'GET' && ctx.url.pathname === OPENROUTER_MODELS_PATH) return null;
    const header = ctx.headers.authorization ?? '';
    const key = header.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : '';
    if (key === '') {
      return this.error(401, {
        message: this.flavor === 'openrouter' ? 'No auth credentials found' : "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        code: null,
      });
    }
    const expected = this.options.apiKey;
    if (expected !== undefined && key !== expected) {
      return this.error(401, {
        message:
          this.flavor === 'openrouter'
            ? 'User not found.'
            : `Incorrect API key provided: ${maskKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
        code: 'invalid_api_key',
      });
    }
    return null;
  }

  protected route(ctx: RequestContext): RouteResult<ChatCall> {
    if (ctx.method === 'GET' && ctx.url.pathname === OPENROUTER_MODELS_PATH) {
      return { reply: { status: 200, body: openRouterModelList(this.modelPrices()) } };
    }
    if (ctx.method === 'GET' && OPENAI_MODELS_PATHS.has(ctx.url.pathname)) {
      return { reply: { status: 200, body: openAiModelList([...this.modelPrices().keys()]) } };
    }
    if (ctx.method !== 'POST' || !CHAT_PATHS.has(ctx.url.pathname)) {
      return { reply: this.error(404, { message: `Invalid URL (${ctx.method} ${ctx.url.pathname})`, code: null }) };
    }
    const body = ctx.body;
    if (ctx.bodyInvalid || !isRecord(body)) {
      return {
        reply: this.error(400, {
          message: 'We could not parse the JSON body of your request. (HINT: This likely means you aren\'t using your HTTP library correctly.)',
          code: null,
        }),
      };
    }
    const model = body['model'];
    if (typeof model !== 'string' || model === '') return { reply: this.missing('model') };
    ctx.entry.model = model;
    const schemaName = schemaNameOf(body['response_format']);
    if (schemaName !== undefined) ctx.entry.schemaName = schemaName;
    const messages = body['messages'];
    if (!Array.isArray(messages) || messages.length === 0 || !messages.every(isMessage)) {
      return { reply: this.missing('messages') };
    }
    if (body['stream'] === true) {
      return { reply: this.error(400, { message: 'The fake does not support stream: true.', code: null, param: 'stream' }) };
    }
    const maxTokens = readMaxTokens(body);
    const prompt = readPrompt(messages);
    const schemaTokens = countResponseFormatTokens(body['response_format']);
    const promptTokens = countChatPromptTokens(messages) + schemaTokens;
    const scripted = prompt.brand === null ? undefined : this.options.answers?.[prompt.brand];
    const answerSchema = answerSchemaOf(body['response_format']);
    const content =
      scripted ?? (answerSchema === null ? expectedContent(prompt) : JSON.stringify(expectedAnswer(answerSchema, messages)));
    const answer = completeContent(content, maxTokens);
    return {
      call: { subject: prompt.brand, brand: prompt.brand, model, prompt, promptTokens, schemaTokens, maxTokens, answer },
    };
  }

  /** Counted at admission as the prompt plus the output cap, not what the answer will use. */
  protected admission(call: ChatCall): Admission {
    const outputCap = call.maxTokens ?? this.options.defaultMaxTokens ?? DEFAULT_MAX_TOKENS;
    return { bucket: 'default', rpm: this.rpm, tpm: this.tpm, tokens: call.promptTokens + outputCap };
  }

  protected serve(call: ChatCall, ctx: RequestContext, opts: ServeOptions): Reply {
    const answer = opts.badContent ? completeContent(badContent(call.prompt, opts.badContent), call.maxTokens) : call.answer;
    const { entry } = ctx;
    const costMicros = llmCostMicros(this.priceOf(call.model), call.promptTokens, answer.completionTokens);
    entry.promptTokens = call.promptTokens;
    entry.schemaTokens = call.schemaTokens;
    entry.completionTokens = answer.completionTokens;
    entry.finishReason = answer.finishReason;
    entry.costMicros = costMicros;
    const usage: Record<string, number> = {
      prompt_tokens: call.promptTokens,
      completion_tokens: answer.completionTokens,
      total_tokens: call.promptTokens + answer.completionTokens,
    };
    if (this.flavor === 'openrouter') usage['cost'] = costMicros / 1_000_000;
    return {
      status: 200,
      body: {
        id: `${this.flavor === 'openrouter' ? 'gen' : 'chatcmpl'}-fake${entry.id}`,
        object: 'chat.completion',
        created: Math.floor(entry.at / 1000),
        model: call.model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: answer.content, refusal: null },
            logprobs: null,
            finish_reason: answer.finishReason,
          },
        ],
        usage,
      },
    };
  }

  protected statusFaultReply(fault: StatusFault, call: ChatCall, retryAfterMs: number | null): Reply {
    const message = this.rateLimitMessage(call.model, 'requests', this.rpm, this.windowState('default', Date.now()).requestsUsed, 1, retryAfterMs ?? 1000);
    return llmErrorReply(this.flavor, llmFaultError(this.flavor, fault, message));
  }

  protected rateLimitReply(d: RateLimitDecision, call: ChatCall): Reply {
    if (this.flavor === 'openrouter') {
      const reply = this.error(429, { message: 'Rate limit exceeded', code: 'rate_limit_exceeded', metadata: { error_type: 'rate_limit_exceeded' } });
      return {
        ...reply,
        headers: {
          'x-ratelimit-limit': String(d.limit),
          'x-ratelimit-remaining': '0',
          'x-ratelimit-reset': String(Date.now() + d.retryAfterMs),
        },
      };
    }
    return this.error(429, {
      message: this.rateLimitMessage(call.model, d.type, d.limit, d.used, d.requested, d.retryAfterMs),
      type: d.type,
      code: 'rate_limit_exceeded',
    });
  }

  protected override answerHeaders(_call: ChatCall | null, now: number): Record<string, string> {
    // OpenRouter sends no x-ratelimit-* on ordinary answers.
    if (this.flavor === 'openrouter') return {};
    const w = this.windowState('default', now);
    return {
      'x-ratelimit-limit-requests': String(this.rpm),
      'x-ratelimit-limit-tokens': String(this.tpm),
      'x-ratelimit-remaining-requests': String(Math.max(0, this.rpm - w.requestsUsed)),
      'x-ratelimit-remaining-tokens': String(Math.max(0, this.tpm - w.tokensUsed)),
      'x-ratelimit-reset-requests': formatResetDuration(w.requestsResetMs),
      'x-ratelimit-reset-tokens': formatResetDuration(w.tokensResetMs),
    };
  }

  /** The price the fake bills for `model`. */
  priceOf(model: string): LlmPricing {
    return this.options.prices?.[model] ?? this.options.pricing ?? DEFAULT_LLM_PRICING;
  }

  /** Every listed model with the price it bills. */
  private modelPrices(): Map<string, LlmPricing> {
    const ids = new Set([...DEFAULT_MODELS, ...Object.keys(this.options.prices ?? {})]);
    return new Map([...ids].map((id) => [id, this.priceOf(id)]));
  }

  private rateLimitMessage(
    model: string,
    type: 'requests' | 'tokens',
    limit: number,
    used: number,
    requested: number,
    waitMs: number,
  ): string {
    const what = type === 'requests' ? 'requests per min (RPM)' : 'tokens per min (TPM)';
    const org = this.options.organization ?? 'org-fake';
    return `Rate limit reached for ${model} in organization ${org} on ${what}: Limit ${limit}, Used ${used}, Requested ${requested}. Please try again in ${formatTryAgainIn(waitMs)}.`;
  }

  private missing(param: string): Reply {
    return this.error(400, { message: `Missing required parameter: '${param}'.`, code: 'missing_required_parameter', param });
  }

  private error(
    status: number,
    e: { message: string; code: string | null; type?: string; param?: string; metadata?: Record<string, unknown> },
  ): Reply {
    return llmErrorReply(this.flavor, {
      status,
      message: e.message,
      type: e.type ?? 'invalid_request_error',
      code: e.code,
      param: e.param ?? null,
      ...(e.metadata ? { metadata: e.metadata } : {}),
    });
  }
}

function isMessage(value: unknown): value is ChatMessageInput {
  return isRecord(value) && typeof value['role'] === 'string';
}

function readMaxTokens(body: Record<string, unknown>): number | null {
  const value = body['max_completion_tokens'] ?? body['max_tokens'];
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.floor(value) : null;
}

/** The name of a json_schema response format, if the request has one. */
function schemaNameOf(format: unknown): string | undefined {
  if (format === null || typeof format !== 'object') return undefined;
  const schema = (format as { json_schema?: { name?: unknown } }).json_schema;
  return typeof schema?.name === 'string' ? schema.name : undefined;
}
