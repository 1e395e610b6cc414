import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI, { BadRequestError, NotFoundError, toFile } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { RemoteFake } from '../remote.js';
import { startFakeOpenAI } from '../start.js';
import { expectedContent } from './completion.js';
import { DEFAULT_LLM_PRICING, llmCostMicros, type FakeOpenAIOptions, type FakeOpenAIServer } from './fake-openai.js';
import { countChatPromptTokens } from './tokens.js';

const MODEL = 'gpt-4o-mini';
const HALF_PRICE = { inputPerMillion: DEFAULT_LLM_PRICING.inputPerMillion / 2, outputPerMillion: DEFAULT_LLM_PRICING.outputPerMillion / 2 };
const MAX_TOKENS = 300;
const ENDED = new Set(['completed', 'failed', 'expired', 'cancelled']);
let fake: FakeOpenAIServer | undefined;

afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function start(opts: FakeOpenAIOptions = {}): Promise<{ server: FakeOpenAIServer; client: OpenAI }> {
  fake = await startFakeOpenAI(opts);
  return { server: fake, client: new OpenAI({ apiKey: 'sk-test', baseURL: fake.url, maxRetries: 0 }) };
}

function messagesFor(brand: string): OpenAI.ChatCompletionMessageParam[] {
  return [
    { role: 'system', content: 'You extract brand facts. Answer with JSON only.' },
    { role: 'user', content: `Brand: ${brand}\nSnippet: some text` },
  ];
}

/** A batch input file as brandq writes it: one chat completion per brand. */
function jsonlFor(brands: readonly string[], customId = (b: string) => `run-1:facts:${b}`): string {
  return brands
    .map((brand) =>
      JSON.stringify({
        custom_id: customId(brand),
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: MODEL, messages: messagesFor(brand), max_tokens: MAX_TOKENS },
      }),
    )
    .map((line) => `${line}\n`)
    .join('');
}

/** Enqueued tokens of one line: its prompt plus its max_tokens. */
function lineTokens(brand: string): number {
  return countChatPromptTokens(messagesFor(brand)) + MAX_TOKENS;
}

async function submit(client: OpenAI, jsonl: string, metadata: Record<string, string> = {}): Promise<OpenAI.Batch> {
  const file = await client.files.create({ file: await toFile(Buffer.from(jsonl), 'requests.jsonl'), purpose: 'batch' });
  return client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h', metadata });
}

/** Polls until the batch ends; returns it and every status seen on the way, in order. */
async function untilEnded(client: OpenAI, id: string, timeoutMs = 15_000): Promise<{ batch: OpenAI.Batch; seen: string[] }> {
  const seen: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const batch = await client.batches.retrieve(id);
    if (seen[seen.length - 1] !== batch.status) seen.push(batch.status);
    if (ENDED.has(batch.status)) return { batch, seen };
    if (Date.now() > deadline) throw new Error(`batch ${id} still ${batch.status} after ${timeoutMs} ms`);
    await sleep(15);
  }
}

/** A line of a batch output or error file. */
interface ResultLine {
  id: string;
  custom_id: string;
  /** `body` is a chat.completion on 200s, `{error}` otherwise. */
  response: { status_code: number; request_id: string; body: OpenAI.ChatCompletion } | null;
  error: { code: string; message: string } | null;
}

async function jsonLines(client: OpenAI, fileId: string | null | undefined): Promise<ResultLine[]> {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as ResultLine);
}

describe('fake OpenAI Files and Batches through the openai SDK', () => {
  it('runs a batch round trip: upload, create, validating -> in_progress -> finalizing -> completed, output and error files, billed at the batch price', async () => {
    const { server, client } = await start({ batchDelayMs: 1500 });
    const brands = ['Acme', 'Globex', 'Initech', 'Hooli', 'Umbrella'];
    const jsonl = jsonlFor(brands);
    server.injectBatchLineFailures({ customIds: ['run-1:facts:Hooli'], status: 500 });

    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl), 'facts.jsonl'), purpose: 'batch' });
    expect(file).toMatchObject({ object: 'file', purpose: 'batch', filename: 'facts.jsonl', bytes: Buffer.byteLength(jsonl), status: 'processed' });
    expect(file.id).toMatch(/^file-/);
    expect(await client.files.retrieve(file.id)).toEqual(file);
    expect(await (await client.files.content(file.id)).text()).toBe(jsonl);

    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { run: 'run-1', step: 'facts' },
    });
    expect(created).toMatchObject({ object: 'batch', status: 'validating', input_file_id: file.id, completion_window: '24h', metadata: { run: 'run-1', step: 'facts' } });
    expect(created.id).toMatch(/^batch_/);
    expect(created.expires_at).toBe(created.created_at + 24 * 3600);

    const { batch, seen } = await untilEnded(client, created.id);
    expect(seen).toEqual(['validating', 'in_progress', 'finalizing', 'completed']);
    expect(batch.request_counts).toEqual({ total: 5, completed: 4, failed: 1 });
    expect(batch.model).toBe(MODEL);
    expect(batch.completed_at).toBeGreaterThanOrEqual(batch.created_at);

    const output = await jsonLines(client, batch.output_file_id);
    expect(output.map((l) => l.custom_id)).toEqual(['run-1:facts:Acme', 'run-1:facts:Globex', 'run-1:facts:Initech', 'run-1:facts:Umbrella']);
    for (const line of output) {
      const brand = String(line.custom_id).split(':')[2] ?? '';
      expect(line.id).toMatch(/^batch_req_/);
      expect(line.error).toBeNull();
      expect(line.response).toMatchObject({ status_code: 200, request_id: expect.stringMatching(/^req_/) });
      expect(line.response?.body).toMatchObject({ object: 'chat.completion', model: MODEL, service_tier: 'default' });
      expect(line.response?.body.choices[0]?.message.content).toBe(expectedContent({ brand, urls: [] }));
    }
    const errors = await jsonLines(client, batch.error_file_id);
    expect(errors).toEqual([
      {
        id: expect.stringMatching(/^batch_req_/),
        custom_id: 'run-1:facts:Hooli',
        response: {
          status_code: 500,
          request_id: expect.stringMatching(/^req_/),
          body: { error: { message: expect.any(String), type: 'server_error', param: null, code: null } },
        },
        error: null,
      },
    ]);
    const outputFile = await client.files.retrieve(batch.output_file_id ?? '');
    expect(outputFile).toMatchObject({ purpose: 'batch_output', filename: `${batch.id}_output.jsonl` });

    // Ground truth: one ledger entry per line run, billed at half price except the failed one.
    const lines = server.ledger.filter((e) => e.tier === 'batch');
    expect(lines.map((e) => [e.customId, e.brand, e.status, e.billed, e.batchId])).toEqual(
      brands.map((b) => [`run-1:facts:${b}`, b, b === 'Hooli' ? 500 : 200, b !== 'Hooli', batch.id]),
    );
    for (const e of lines.filter((x) => x.billed)) {
      expect(e.costMicros).toBe(llmCostMicros(HALF_PRICE, e.promptTokens ?? -1, e.completionTokens ?? -1));
      expect(e.promptTokens).toBe(countChatPromptTokens(messagesFor(e.brand ?? '')));
      expect(e.admitted).toBe(false); // outside the synchronous rpm/tpm windows
    }
    const billed = lines.reduce((sum, e) => sum + e.costMicros, 0);
    expect(server.ledger.tierTotals().batch).toMatchObject({ requests: 5, paidCalls: 4, billedMicros: billed });
    expect(batch.usage).toMatchObject({
      input_tokens: lines.filter((e) => e.billed).reduce((s, e) => s + (e.promptTokens ?? 0), 0),
      output_tokens: lines.filter((e) => e.billed).reduce((s, e) => s + (e.completionTokens ?? 0), 0),
    });
    expect(server.ledger.batches()).toEqual([
      expect.objectContaining({
        id: batch.id,
        inputFileId: file.id,
        metadata: { run: 'run-1', step: 'facts' },
        lineCount: 5,
        customIds: brands.map((b) => `run-1:facts:${b}`),
        status: 'completed',
        completed: 4,
        failed: 1,
        billedMicros: billed,
        enqueuedTokens: brands.reduce((s, b) => s + lineTokens(b), 0),
        outputFileId: batch.output_file_id,
        errorFileId: batch.error_file_id,
      }),
    ]);

    // The same truth over HTTP, for multi-process tests.
    const remote = await new RemoteFake(server.url).ledger();
    expect(remote.batches()).toEqual(server.ledger.batches());
    expect(remote.tierTotals()).toEqual(server.ledger.tierTotals());
  });

  it('lists batches newest first with limit/after pages, so a restarted client finds its batch by metadata', async () => {
    const { client } = await start({ batchDelayMs: 60_000 });
    const ids: string[] = [];
    for (const step of ['a', 'b', 'c']) ids.push((await submit(client, jsonlFor([`Brand ${step}`]), { run: 'run-7', step })).id);

    const firstPage = await client.batches.list({ limit: 2 });
    expect(firstPage.data.map((b) => b.id)).toEqual([ids[2], ids[1]]);
    expect(firstPage.has_more).toBe(true);
    const all: OpenAI.Batch[] = [];
    for await (const b of client.batches.list({ limit: 2 })) all.push(b);
    expect(all.map((b) => b.id)).toEqual([...ids].reverse());
    expect(all.find((b) => b.metadata?.['run'] === 'run-7' && b.metadata['step'] === 'b')?.id).toBe(ids[1]);
    const lastPage = await client.batches.list({ limit: 2, after: ids[1] });
    expect(lastPage.data.map((b) => b.id)).toEqual([ids[0]]);
    expect(lastPage.has_more).toBe(false);
  });

  it('fails a batch that would pass the model\'s enqueued-token limit with token_limit_exceeded, and admits it once the queue drains', async () => {
    const first = ['Acme', 'Globex'];
    const second = ['Initech', 'Hooli'];
    const held = first.reduce((s, b) => s + lineTokens(b), 0);
    const wanted = second.reduce((s, b) => s + lineTokens(b), 0);
    const { server, client } = await start({ batchDelayMs: 400, batchEnqueuedTokenLimit: held + wanted - 1, organization: 'org-q' });

    const running = await submit(client, jsonlFor(first));
    const refused = await submit(client, jsonlFor(second));
    expect(refused.status).toBe('validating');
    const { batch } = await untilEnded(client, refused.id);
    expect(batch.status).toBe('failed');
    expect(batch.failed_at).toEqual(expect.any(Number));
    expect(batch.errors?.data).toEqual([
      {
        code: 'token_limit_exceeded',
        message: `Enqueued token limit reached for gpt-4o-mini in organization org-q. Limit: ${(held + wanted - 1).toLocaleString('en-US')} enqueued tokens. Please try again once some in_progress batches have been completed.`,
        line: null,
        param: null,
      },
    ]);
    expect(batch.output_file_id).toBeNull();
    expect(server.ledger.batches().find((b) => b.id === refused.id)).toMatchObject({ status: 'failed', errorCodes: ['token_limit_exceeded'], enqueuedTokens: 0 });
    expect(server.ledger.filter((e) => e.batchId === refused.id)).toEqual([]);

    expect((await untilEnded(client, running.id)).batch.status).toBe('completed');
    const retried = await submit(client, jsonlFor(second));
    expect((await untilEnded(client, retried.id)).batch.status).toBe('completed');
    // A failed batch ran nothing: submitting its lines again is no double submission.
    expect(server.ledger.batchCustomIdsInSeveralBatches()).toEqual([]);
    expect(server.ledger.batchIdsByCustomId().get('run-1:facts:Hooli')).toEqual([refused.id, retried.id]);
  });

  it('expires a batch: the lines run are in the output and billed, the rest in the error file as batch_expired', async () => {
    const { server, client } = await start({ batchDelayMs: 500 });
    const brands = ['A1', 'A2', 'A3', 'A4', 'A5'];
    server.injectBatchExpiry({ afterLines: 2 });
    const { batch } = await untilEnded(client, (await submit(client, jsonlFor(brands))).id);

    expect(batch.status).toBe('expired');
    expect(batch.expired_at).toEqual(expect.any(Number));
    expect(batch.request_counts).toEqual({ total: 5, completed: 2, failed: 3 });
    expect((await jsonLines(client, batch.output_file_id)).map((l) => l.custom_id)).toEqual(['run-1:facts:A1', 'run-1:facts:A2']);
    const errors = await jsonLines(client, batch.error_file_id);
    expect(errors.map((l) => [l.custom_id, l.response, l.error?.code])).toEqual(
      ['A3', 'A4', 'A5'].map((b) => [`run-1:facts:${b}`, null, 'batch_expired']),
    );
    expect(server.ledger.filter((e) => e.tier === 'batch').map((e) => [e.customId, e.billed])).toEqual([
      ['run-1:facts:A1', true],
      ['run-1:facts:A2', true],
    ]);

    // A running batch can also be expired on demand (over HTTP too).
    const slow = await submit(client, jsonlFor(['B1']));
    server.configure({ batchDelayMs: 60_000 });
    const slower = await submit(client, jsonlFor(['B2']));
    expect(await new RemoteFake(server.url).expireBatch(slower.id)).toBe(true);
    expect((await client.batches.retrieve(slower.id)).status).toBe('expired');
    expect((await untilEnded(client, slow.id)).batch.status).toBe('completed');
    expect(server.expireBatch(slow.id)).toBe(false);
  });

  it('cancels a batch: cancelling -> cancelled, an output file of the lines that ran, the rest never billed', async () => {
    const { server, client } = await start({ batchDelayMs: 4000 });
    const brands = Array.from({ length: 10 }, (_, i) => `C${i}`);
    const created = await submit(client, jsonlFor(brands));
    let running = await client.batches.retrieve(created.id);
    while ((running.request_counts?.completed ?? 0) < 2) {
      await sleep(15);
      running = await client.batches.retrieve(created.id);
    }
    const cancelling = await client.batches.cancel(created.id);
    expect(cancelling.status).toBe('cancelling');
    expect(cancelling.cancelling_at).toEqual(expect.any(Number));
    const ranBeforeCancel = cancelling.request_counts?.completed ?? -1;

    const { batch } = await untilEnded(client, created.id);
    expect(batch.status).toBe('cancelled');
    expect(batch.cancelled_at).toEqual(expect.any(Number));
    expect(batch.request_counts?.completed).toBe(ranBeforeCancel);
    expect(ranBeforeCancel).toBeLessThan(brands.length);
    const output = await jsonLines(client, batch.output_file_id);
    expect(output.map((l) => l.custom_id)).toEqual(brands.slice(0, ranBeforeCancel).map((b) => `run-1:facts:${b}`));
    expect(batch.error_file_id).toBeNull();
    const billed = server.ledger.filter((e) => e.tier === 'batch' && e.billed);
    expect(billed.map((e) => e.customId)).toEqual(output.map((l) => l.custom_id));
    expect(server.ledger.batches()[0]).toMatchObject({ status: 'cancelled', billedMicros: billed.reduce((s, e) => s + e.costMicros, 0) });

    const again = (await client.batches.cancel(created.id).catch((err: unknown) => err)) as { status?: number };
    expect(again.status).toBe(409);
  });

  it('fails validation as OpenAI reports it: too many requests, too many bytes, duplicate custom_id, wrong url', async () => {
    const { server, client } = await start({ batchDelayMs: 50, batchMaxRequests: 2 });
    const codes = async (jsonl: string) => (await untilEnded(client, (await submit(client, jsonl)).id)).batch;

    const tooMany = await codes(jsonlFor(['X1', 'X2', 'X3']));
    expect(tooMany.status).toBe('failed');
    expect(tooMany.errors?.data?.map((e) => [e.code, e.line])).toEqual([['too_many_tasks', null]]);
    expect(tooMany.request_counts).toEqual({ total: 0, completed: 0, failed: 0 });

    server.configure({ batchMaxBytes: 100 });
    expect((await codes(jsonlFor(['X1']))).errors?.data?.map((e) => e.code)).toEqual(['file_too_large']);

    server.configure({ batchMaxBytes: 200_000_000 });
    const duplicate = await codes(jsonlFor(['D', 'D']));
    expect(duplicate.errors?.data?.map((e) => [e.code, e.line, e.param])).toEqual([['duplicate_custom_id', 2, 'custom_id']]);
    const wrongUrl = await codes(`{"custom_id":"u","method":"POST","url":"/v1/embeddings","body":{"model":"m"}}\nnot json\n`);
    expect(wrongUrl.errors?.data?.map((e) => [e.code, e.line])).toEqual([
      ['url_mismatch', 1],
      ['invalid_json_line', 2],
    ]);
    expect(server.ledger.filter((e) => e.tier === 'batch')).toEqual([]);
    expect(server.ledger.batches().map((b) => b.status)).toEqual(['failed', 'failed', 'failed', 'failed']);
  });

  it('accepts an upload streamed from disk, as the SDK sends an fs.ReadStream (chunked multipart)', async () => {
    const { client } = await start();
    const dir = await mkdtemp(join(tmpdir(), 'fake-openai-upload-'));
    try {
      const jsonl = jsonlFor(Array.from({ length: 200 }, (_, i) => `Streamed ${i}`));
      const path = join(dir, 'streamed.jsonl');
      await writeFile(path, jsonl);
      const file = await client.files.create({ file: createReadStream(path), purpose: 'batch' });
      expect(file).toMatchObject({ filename: 'streamed.jsonl', bytes: Buffer.byteLength(jsonl) });
      expect(await (await client.files.content(file.id)).text()).toBe(jsonl);
      const listed = await client.files.list({ purpose: 'batch' });
      expect(listed.data.map((f) => f.id)).toEqual([file.id]);
      expect(await client.files.delete(file.id)).toEqual({ id: file.id, object: 'file', deleted: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('answers OpenAI errors for unknown ids and bad create requests', async () => {
    const { client } = await start();
    await expect(client.batches.retrieve('batch_nope')).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.files.retrieve('file-nope')).rejects.toBeInstanceOf(NotFoundError);
    const noFile = (await client.batches
      .create({ input_file_id: 'file-nope', endpoint: '/v1/chat/completions', completion_window: '24h' })
      .catch((e: unknown) => e)) as BadRequestError;
    expect(noFile).toBeInstanceOf(BadRequestError);
    expect(noFile.param).toBe('input_file_id');
    const notJsonl = (await client.files.create({ file: await toFile(Buffer.from('{}'), 'data.csv'), purpose: 'batch' }).catch((e: unknown) => e)) as BadRequestError;
    expect(notJsonl).toBeInstanceOf(BadRequestError);
    expect(notJsonl.message).toContain('Must be .jsonl');
    const userData = await client.files.create({ file: await toFile(Buffer.from('x'), 'x.jsonl'), purpose: 'user_data' });
    const wrongPurpose = (await client.batches
      .create({ input_file_id: userData.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
      .catch((e: unknown) => e)) as BadRequestError;
    expect(wrongPurpose.message).toContain("purpose 'batch'");
  });

  it('takes the batch delay, failures and expiries at runtime over /__fake/config and the control routes', async () => {
    const { server, client } = await start({ batchDelayMs: 60_000 });
    const remote = new RemoteFake(server.url);
    await remote.configure({ batchDelayMs: 100 });
    await remote.injectBatchLineFailures({ count: 1, status: 400, code: 'invalid_prompt', message: 'Injected.' });
    const { batch } = await untilEnded(client, (await submit(client, jsonlFor(['R1', 'R2']))).id, 5000);
    expect(batch.status).toBe('completed');
    const [failed] = await jsonLines(client, batch.error_file_id);
    expect(failed).toMatchObject({ custom_id: 'run-1:facts:R1', response: { status_code: 400, body: { error: { code: 'invalid_prompt', message: 'Injected.' } } } });

    await remote.injectBatchExpiry({ afterLines: 0 });
    const expired = (await untilEnded(client, (await submit(client, jsonlFor(['R3']))).id, 5000)).batch;
    expect(expired.status).toBe('expired');
    expect(expired.output_file_id).toBeNull();
    const summary = await remote.summary();
    expect(summary.batches.map((b) => b.status)).toEqual(['completed', 'expired']);
    expect(summary.batchCustomIdsBilledTwice).toEqual([]);
    expect(summary.byTier.batch).toMatchObject({ requests: 2, paidCalls: 1 });

    await remote.reset();
    expect(server.ledger.batches()).toEqual([]);
    await expect(client.batches.retrieve(batch.id)).rejects.toBeInstanceOf(NotFoundError);
  });
});
