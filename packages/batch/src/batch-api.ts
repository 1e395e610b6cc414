import OpenAI, { toFile } from 'openai';
import { classifyLlmError } from '@brandq/llm';

/** One line of a batch's output or error file, as OpenAI writes it. */
export interface BatchResultLine {
  custom_id: string;
  response: { status_code: number; body: unknown } | null;
  error: { code?: string | null; message?: string | null } | null;
}

export interface BatchApiOptions {
  apiKey: string | undefined;
  baseURL: string;
  timeoutMs?: number;
}

/** The metadata key a batch carries its intent under: how a new coordinator finds a batch its dead predecessor submitted. */
export const INTENT_METADATA_KEY = 'brandq_intent';

/**
 * OpenAI's Files and Batches endpoints, as the coordinator uses them; failures leave as
 * classified errors. Each method is one request (SDK retries off: the coordinator's loop
 * owns retries, and every step it retries is safe to repeat).
 */
export class BatchApi {
  private readonly client: OpenAI;

  constructor(options: BatchApiOptions) {
    this.client = new OpenAI({ apiKey: options.apiKey ?? 'missing-key', baseURL: options.baseURL, maxRetries: 0, timeout: options.timeoutMs ?? 120_000 });
  }

  async upload(jsonl: string, filename: string): Promise<string> {
    return this.call(async () => (await this.client.files.create({ file: await toFile(Buffer.from(jsonl, 'utf8'), filename), purpose: 'batch' })).id);
  }

  /** The batch a previous submission of `intentId` created, if any (newest first, the first `scan` batches). */
  async findByIntent(intentId: string, scan = 1000): Promise<OpenAI.Batches.Batch | undefined> {
    return this.call(async () => {
      let seen = 0;
      for await (const batch of this.client.batches.list({ limit: 100 })) {
        if (batch.metadata?.[INTENT_METADATA_KEY] === intentId) return batch;
        if (++seen >= scan) break;
      }
      return undefined;
    });
  }

  async create(inputFileId: string, metadata: Record<string, string>): Promise<OpenAI.Batches.Batch> {
    return this.call(() => this.client.batches.create({ input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: '24h', metadata }));
  }

  async retrieve(batchId: string): Promise<OpenAI.Batches.Batch> {
    return this.call(() => this.client.batches.retrieve(batchId));
  }

  async cancel(batchId: string): Promise<OpenAI.Batches.Batch> {
    return this.call(() => this.client.batches.cancel(batchId));
  }

  /** The lines of an output or error file. */
  async lines(fileId: string): Promise<BatchResultLine[]> {
    return this.call(async () => {
      const text = await (await this.client.files.content(fileId)).text();
      return text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as BatchResultLine);
    });
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw classifyLlmError(error);
    }
  }
}
