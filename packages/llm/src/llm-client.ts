import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { BadOutputError } from '@brandq/errors';
import { classifyLlmError } from './classify-llm-error.js';
import { countPromptTokens, countSchemaTokens } from './token-count.js';

/** Strict structured output: the JSON schema the answer must follow (generated from a recipe step). */
export interface JsonSchemaFormat {
  type: 'json_schema';
  json_schema: { name: string; schema: Record<string, unknown>; strict: true };
}

/** One structured-output request: what a recipe's LLM step sends. */
export interface LlmRequest {
  messages: readonly ChatCompletionMessageParam[];
  model: string;
  maxOutputTokens: number;
  temperature: number;
  responseFormat: JsonSchemaFormat;
  /** `flex`: OpenAI's Flex processing (half price, slower, may be refused for capacity). Absent: standard. */
  serviceTier?: 'flex';
}

export interface LlmClientOptions {
  apiKey: string | undefined;
  baseURL: string;
  /** The model of steps that name none. */
  model: string;
  /** The output cap of steps that set none. */
  maxOutputTokens: number;
  timeoutMs: number;
  /** A Flex request's timeout: Flex answers more slowly (OpenAI suggests 15 minutes). */
  flexTimeoutMs?: number;
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

/** A completed call whose content is JSON: what it says is checked by the step that asked. */
export interface LlmAnswer {
  json: unknown;
  usage: LlmUsage;
  headers: Headers;
}

/** A completed call whose answer is unusable: the usage was still billed. */
export class LlmBadAnswer {
  constructor(
    readonly error: BadOutputError,
    readonly usage: LlmUsage,
    readonly headers: Headers,
  ) {}

  static of(message: string, rawAnswer: string, usage: LlmUsage, headers: Headers): LlmBadAnswer {
    return new LlmBadAnswer(new BadOutputError(message, { provider: 'llm', details: { rawAnswer: rawAnswer.slice(0, 4000) } }), usage, headers);
  }
}

/** Tokens of each response schema, counted once per schema object. */
const SCHEMA_TOKENS = new WeakMap<JsonSchemaFormat, number>();

/** Input tokens of a request as the provider bills them: the messages and the response schema. */
export function requestPromptTokens(messages: readonly ChatCompletionMessageParam[], format: JsonSchemaFormat): number {
  let schema = SCHEMA_TOKENS.get(format);
  if (schema === undefined) {
    schema = countSchemaTokens(format.json_schema);
    SCHEMA_TOKENS.set(format, schema);
  }
  return countPromptTokens(messages) + schema;
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
  promptTokensOf(messages: readonly ChatCompletionMessageParam[], format: JsonSchemaFormat): number {
    return requestPromptTokens(messages, format);
  }

  /**
   * One chat completion with structured output. Provider failures throw classified errors;
   * an answer cut at the output cap, or not JSON, is returned as `LlmBadAnswer` because its
   * tokens were still spent.
   */
  async complete(request: LlmRequest, signal?: AbortSignal): Promise<LlmAnswer | LlmBadAnswer> {
    let completion: OpenAI.Chat.Completions.ChatCompletion;
    let headers: Headers;
    try {
      const flex = request.serviceTier === 'flex' && this.options.flexTimeoutMs !== undefined ? { timeout: this.options.flexTimeoutMs } : {};
      const { data, response } = await this.client.chat.completions.create(chatRequestBody(request), { ...(signal ? { signal } : {}), ...flex }).withResponse();
      completion = data;
      headers = response.headers;
    } catch (error) {
      throw classifyLlmError(error);
    }
    return answerOf(completion, request, headers);
  }
}

/** The Chat Completions body of a request: what a call sends, and what a batch file's line carries. */
export function chatRequestBody(request: LlmRequest): OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming {
  return {
    model: request.model,
    messages: [...request.messages],
    max_tokens: request.maxOutputTokens,
    temperature: request.temperature,
    response_format: request.responseFormat,
    ...(request.serviceTier ? { service_tier: request.serviceTier } : {}),
  };
}

/**
 * What a chat completion answered: its JSON, or an unusable answer (cut at the output cap,
 * not JSON) whose tokens were billed all the same. One reading for a call and a batch line.
 */
export function answerOf(completion: OpenAI.Chat.Completions.ChatCompletion, request: Pick<LlmRequest, 'maxOutputTokens'>, headers: Headers): LlmAnswer | LlmBadAnswer {
  const rawUsage = completion.usage as (OpenAI.CompletionUsage & { cost?: number }) | undefined;
  const usage: LlmUsage = {
    promptTokens: rawUsage?.prompt_tokens ?? 0,
    completionTokens: rawUsage?.completion_tokens ?? 0,
    ...(typeof rawUsage?.cost === 'number' ? { costUsd: rawUsage.cost } : {}),
  };
  const choice = completion.choices[0];
  const content = choice?.message.content ?? '';
  if (choice?.finish_reason === 'length') return LlmBadAnswer.of(`answer truncated at ${request.maxOutputTokens} output tokens`, content, usage, headers);
  try {
    return { json: JSON.parse(content) as unknown, usage, headers };
  } catch (err) {
    return LlmBadAnswer.of(`answer is not valid JSON (${(err as Error).message})`, content, usage, headers);
  }
}
