import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { BadOutputError } from '@brandq/errors';
import { brandFactsJsonSchema, brandFactsSchema, type BrandFactsAnswer } from './brand-facts-schema.js';
import { classifyLlmError } from './classify-llm-error.js';
import { countPromptTokens, countSchemaTokens } from './token-count.js';

/** The structured-output format every request carries, and its tokens, counted once. */
const RESPONSE_FORMAT = { type: 'json_schema', json_schema: { name: 'brand_facts', schema: brandFactsJsonSchema, strict: true } } as const;
const SCHEMA_TOKENS = countSchemaTokens(RESPONSE_FORMAT.json_schema);

export interface LlmClientOptions {
  apiKey: string | undefined;
  baseURL: string;
  model: string;
  maxOutputTokens: number;
  timeoutMs: number;
  /** OpenRouter attribution headers, when set. */
  referer?: string | undefined;
  title?: string | undefined;
}

export interface LlmUsage {
  promptTokens: number;
  completionTokens: number;
  /** USD the provider reported (OpenRouter `usage.cost`); wins over the pricing table. */
  costUsd?: number;
}

export interface LlmAnswer {
  facts: BrandFactsAnswer;
  usage: LlmUsage;
  headers: Headers;
}

/** A completed call whose answer did not validate: the usage was still billed. */
export class LlmBadAnswer {
  constructor(
    readonly error: BadOutputError,
    readonly usage: LlmUsage,
    readonly headers: Headers,
  ) {}
}

export class LlmClient {
  private readonly client: OpenAI;

  constructor(private readonly options: LlmClientOptions) {
    const defaultHeaders: Record<string, string> = {};
    if (options.referer) defaultHeaders['HTTP-Referer'] = options.referer;
    if (options.title) defaultHeaders['X-OpenRouter-Title'] = options.title;
    // maxRetries 0: every request must pass the shared limiter; the queue owns retries.
    this.client = new OpenAI({
      apiKey: options.apiKey ?? 'missing-key',
      baseURL: options.baseURL,
      maxRetries: 0,
      timeout: options.timeoutMs,
      defaultHeaders,
    });
  }

  get model(): string {
    return this.options.model;
  }

  get maxOutputTokens(): number {
    return this.options.maxOutputTokens;
  }

  /** Input tokens of a request as the provider bills them: the messages and the response schema. */
  promptTokensOf(messages: readonly ChatCompletionMessageParam[]): number {
    return countPromptTokens(messages) + SCHEMA_TOKENS;
  }

  /**
   * One chat completion. Provider failures throw classified errors; an answer that fails
   * validation is returned as `LlmBadAnswer` because its tokens were still spent.
   */
  async extractFacts(messages: ChatCompletionMessageParam[], signal?: AbortSignal): Promise<LlmAnswer | LlmBadAnswer> {
    let completion: OpenAI.Chat.Completions.ChatCompletion;
    let headers: Headers;
    try {
      const { data, response } = await this.client.chat.completions
        .create(
          {
            model: this.options.model,
            messages,
            max_tokens: this.options.maxOutputTokens,
            temperature: 0,
            response_format: RESPONSE_FORMAT,
          },
          signal ? { signal } : {},
        )
        .withResponse();
      completion = data;
      headers = response.headers;
    } catch (error) {
      throw classifyLlmError(error);
    }
    const rawUsage = completion.usage as (OpenAI.CompletionUsage & { cost?: number }) | undefined;
    const usage: LlmUsage = {
      promptTokens: rawUsage?.prompt_tokens ?? 0,
      completionTokens: rawUsage?.completion_tokens ?? 0,
      ...(typeof rawUsage?.cost === 'number' ? { costUsd: rawUsage.cost } : {}),
    };
    const choice = completion.choices[0];
    const content = choice?.message.content ?? '';
    const bad = (message: string) =>
      new LlmBadAnswer(new BadOutputError(message, { provider: 'llm', details: { rawAnswer: content.slice(0, 4000) } }), usage, headers);
    if (choice?.finish_reason === 'length') return bad(`answer truncated at ${this.options.maxOutputTokens} output tokens`);
    let json: unknown;
    try {
      json = JSON.parse(content);
    } catch (err) {
      return bad(`answer is not valid JSON (${(err as Error).message})`);
    }
    const parsed = brandFactsSchema.safeParse(json);
    if (!parsed.success) {
      return bad(`answer does not match the schema: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ')}`);
    }
    return { facts: parsed.data, usage, headers };
  }
}
