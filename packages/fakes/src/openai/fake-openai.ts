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
import type { LedgerEntry } from '../server/ledger.js';
import { Prng } from '../server/prng.js';
import { BatchApi } from './batch-api.js';
import type { BatchExpiry, BatchLineFailure, BatchOptions } from './batches.js';
import { badContent, completeContent, expectedContent, type CompletionText } from './completion.js';
import { openAiModelList, openRouterModelList } from './models-list.js';
import { llmErrorReply, llmFaultError, maskKey, type LlmError, type LlmFlavor } from './openai-errors.js';
import { readPrompt, type PromptFacts } from './prompt.js';
import { answerSchemaOf, expectedAnswer } from './schema-answer.js';
import {
  DEFAULT_FLEX_MODELS,
  flexUnavailableError,
  flexUnsupportedError,
  readServiceTier,
  tierPricing,
  type LlmPricing,
  type LlmTier,
  type TierPricingOptions,
} from './tiers.js';
import { countChatPromptTokens, countResponseFormatTokens, type ChatMessageInput } from './tokens.js';

export type { LlmPricing } from './tiers.js';

export interface FakeOpenAIOptions extends FakeServerOptions, TierPricingOptions, BatchOptions {
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
  /**
   * Models served with `service_tier: "flex"` (default DEFAULT_FLEX_MODELS, which holds
   * gpt-4o-mini); a flex request for another model answers OpenAI's 400 (param `service_tier`).
   * The OpenRouter flavor ignores `service_tier`.
   */
  flexModels?: string[];
  /**
   * Share (0..1) of flex requests refused for capacity with OpenAI's 429 Resource Unavailable
   * (see `flexUnavailableError`), drawn from its own seeded PRNG; `injectFlexShortage(n)`
   * refuses the next n flex requests. Neither is billed nor counted in the rpm/tpm windows.
   */
  flexUnavailableRate?: number;
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
  tier: LlmTier;
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
  /** Files and Batches endpoints (OpenAI flavor only). */
  private readonly batchApi: BatchApi;
  /** Flex requests still to refuse for capacity (`injectFlexShortage`). */
  private flexShortages = 0;
  /** Draws `flexUnavailableRate`, apart from the latency/fault PRNG so its sequence stays as it was. */
  private flexPrng: Prng;

  constructor(options: FakeOpenAIOptions = {}) {
    super('openai', options);
    this.flexPrng = flexPrngFor(options.seed);
    this.batchApi = new BatchApi({
      ledger: this.ledger,
      batchOptions: () => this.options,
      organization: () => this.options.organization ?? 'org-fake',
      enqueuedTokens: (body) => this.enqueuedTokens(body),
      answerLine: (body, entry, failure) => this.answerBatchLine(body, entry, failure),
    });
  }

  override configure(partial: Partial<FakeOpenAIOptions>): void {
    super.configure(partial);
    if (partial.seed !== undefined) this.flexPrng = flexPrngFor(partial.seed);
  }

  /** Refuses the next `count` flex requests with 429 Resource Unavailable (unbilled, outside the rpm/tpm windows). */
  injectFlexShortage(count = 1): void {
    this.flexShortages += Math.max(0, Math.floor(count));
  }

  get pendingFlexShortages(): number {
    return this.flexShortages;
  }

  /** Makes batch lines fail into the error file: given custom_ids, or the next `count` lines. */
  injectBatchLineFailures(failure: BatchLineFailure): void {
    this.batchApi.batches.injectLineFailures(failure);
  }

  /** Makes the next batch created expire after `afterLines` lines (default 0). */
  injectBatchExpiry(expiry: BatchExpiry = {}): void {
    this.batchApi.batches.injectExpiry(expiry);
  }

  /** Expires a running batch now; false when it is cancelling, ended or unknown. */
  expireBatch(batchId: string): boolean {
    return this.batchApi.batches.expire(batchId);
  }

  /** Clears ledger (with its batches), limiter windows, queued faults, files, batches and their injections. */
  override reset(): void {
    super.reset();
    this.batchApi.reset();
    this.flexShortages = 0;
  }

  override async close(): Promise<void> {
    this.batchApi.batches.stop();
    await super.close();
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

  protected override maxRequestBytes(method: string, path: string): number {
    return BatchApi.maxRequestBytes(method, path) ?? super.maxRequestBytes(method, path);
  }

  protected async route(ctx: RequestContext): Promise<RouteResult<ChatCall>> {
    if (ctx.method === 'GET' && ctx.url.pathname === OPENROUTER_MODELS_PATH) {
      return { reply: { status: 200, body: openRouterModelList(this.modelPrices()) } };
    }
    if (ctx.method === 'GET' && OPENAI_MODELS_PATHS.has(ctx.url.pathname)) {
      return { reply: { status: 200, body: openAiModelList([...this.modelPrices().keys()]) } };
    }
    if (this.flavor === 'openai' && BatchApi.handles(ctx.url.pathname)) {
      const reply = await this.batchApi.route(ctx);
      if (reply) return { reply };
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
    const parsed = this.parseChat(body, ctx.entry, null);
    if ('reply' in parsed || parsed.call.tier !== 'flex') return parsed;
    // A capacity shortage is decided before the limiter: it is not a rate limit and counts in no window.
    if (!this.takeFlexShortage()) return parsed;
    ctx.entry.subject = parsed.call.subject;
    ctx.entry.brand = parsed.call.brand;
    return { reply: llmErrorReply(this.flavor, flexUnavailableError(parsed.call.model)) };
  }

  /**
   * Reads a chat completion request into `entry` (model, schema name, tier). `batchTier` is
   * set for a batch line: its tier is `batch` whatever its body says.
   */
  private parseChat(body: Record<string, unknown>, entry: LedgerEntry, batchTier: 'batch' | null): RouteResult<ChatCall> {
    const model = body['model'];
    if (typeof model !== 'string' || model === '') return { reply: this.missing('model') };
    entry.model = model;
    const schemaName = schemaNameOf(body['response_format']);
    if (schemaName !== undefined) entry.schemaName = schemaName;
    const tier = this.tierOf(body, model, batchTier);
    if ('error' in tier) return { reply: llmErrorReply(this.flavor, tier.error) };
    entry.tier = tier.tier;
    if (tier.refused) return { reply: llmErrorReply(this.flavor, tier.refused) };
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
      call: { subject: prompt.brand, brand: prompt.brand, model, tier: tier.tier, prompt, promptTokens, schemaTokens, maxTokens, answer },
    };
  }

  /** The request's tier; `refused` when it asks flex of a model without it. OpenRouter ignores `service_tier`. */
  private tierOf(
    body: Record<string, unknown>,
    model: string,
    batchTier: 'batch' | null,
  ): { tier: LlmTier; refused?: LlmError } | { error: LlmError } {
    if (batchTier !== null) return { tier: batchTier };
    if (this.flavor === 'openrouter') return { tier: 'standard' };
    const asked = readServiceTier(body['service_tier']);
    if ('error' in asked) return asked;
    if (asked.tier === 'flex' && !(this.options.flexModels ?? DEFAULT_FLEX_MODELS).includes(model)) {
      return { tier: 'flex', refused: flexUnsupportedError(model) };
    }
    return { tier: asked.tier };
  }

  private takeFlexShortage(): boolean {
    if (this.flexShortages > 0) {
      this.flexShortages--;
      return true;
    }
    const rate = this.options.flexUnavailableRate ?? 0;
    return rate > 0 && this.flexPrng.next() < rate;
  }

  /** A batch line: the same answer as a chat request, billed at the batch price; or the injected failure. */
  private answerBatchLine(body: Record<string, unknown>, entry: LedgerEntry, failure: LlmError | null): { status: number; body: unknown } {
    const parsed = this.parseChat(body, entry, 'batch');
    if ('reply' in parsed) return lineError(parsed.reply, entry);
    const { call } = parsed;
    entry.subject = call.subject;
    entry.brand = call.brand;
    if (failure) return lineError(llmErrorReply(this.flavor, failure), entry);
    return { status: 200, body: this.completion(call, call.answer, entry) };
  }

  /** Tokens a batch line holds in the enqueued-token queue: prompt with schema plus the output cap. */
  private enqueuedTokens(body: Record<string, unknown>): number {
    const messages = body['messages'];
    const prompt = Array.isArray(messages) && messages.every(isMessage) ? countChatPromptTokens(messages) : 0;
    const cap = readMaxTokens(body) ?? this.options.defaultMaxTokens ?? DEFAULT_MAX_TOKENS;
    return prompt + countResponseFormatTokens(body['response_format']) + cap;
  }

  /** Counted at admission as the prompt plus the output cap, not what the answer will use. */
  protected admission(call: ChatCall): Admission {
    const outputCap = call.maxTokens ?? this.options.defaultMaxTokens ?? DEFAULT_MAX_TOKENS;
    return { bucket: 'default', rpm: this.rpm, tpm: this.tpm, tokens: call.promptTokens + outputCap };
  }

  protected serve(call: ChatCall, ctx: RequestContext, opts: ServeOptions): Reply {
    const answer = opts.badContent ? completeContent(badContent(call.prompt, opts.badContent), call.maxTokens) : call.answer;
    return { status: 200, body: this.completion(call, answer, ctx.entry) };
  }

  /** The chat.completion body, with `entry` filled in and billed at the call's tier price. */
  private completion(call: ChatCall, answer: CompletionText, entry: LedgerEntry): Record<string, unknown> {
    const costMicros = llmCostMicros(this.tierPriceOf(call.model, call.tier), call.promptTokens, answer.completionTokens);
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
      // OpenAI names the tier that served the request ("default" for auto/default/absent).
      ...(this.flavor === 'openai' ? { service_tier: call.tier === 'flex' ? 'flex' : 'default' } : {}),
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

  /** The price the fake bills for `model` (standard tier). */
  priceOf(model: string): LlmPricing {
    return this.options.prices?.[model] ?? this.options.pricing ?? DEFAULT_LLM_PRICING;
  }

  /** The price the fake bills for `model` in `tier` (flex and batch: half of `priceOf` unless configured). */
  tierPriceOf(model: string, tier: LlmTier): LlmPricing {
    return tierPricing(this.priceOf(model), model, tier, this.options);
  }

  protected override control(method: string, path: string, body: unknown): Reply | null {
    const record = isRecord(body) ? body : {};
    if (method === 'POST' && path === '/__fake/flex-shortage') {
      this.injectFlexShortage(typeof record['count'] === 'number' ? record['count'] : 1);
      return { status: 200, body: { pendingFlexShortages: this.flexShortages } };
    }
    if (method === 'POST' && path === '/__fake/batch-failures') {
      this.injectBatchLineFailures(record as BatchLineFailure);
      return { status: 200, body: this.batchApi.batches.pendingInjections };
    }
    if (method === 'POST' && path === '/__fake/batch-expiry') {
      this.injectBatchExpiry(record as BatchExpiry);
      return { status: 200, body: this.batchApi.batches.pendingInjections };
    }
    const expire = /^\/__fake\/batches\/([^/]+)\/expire$/.exec(path);
    if (method === 'POST' && expire?.[1] !== undefined) {
      return { status: 200, body: { expired: this.expireBatch(decodeURIComponent(expire[1])) } };
    }
    return null;
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

/** A batch line answered with an error: its status and body go to the error file. */
function lineError(reply: Reply, entry: LedgerEntry): { status: number; body: unknown } {
  entry.errorCode = reply.errorCode ?? null;
  return { status: reply.status, body: reply.body };
}

function flexPrngFor(seed: number | undefined): Prng {
  // A fixed offset keeps the flex draws apart from the main PRNG's sequence for the same seed.
  return new Prng((seed ?? 1) + 0x5f1e);
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
