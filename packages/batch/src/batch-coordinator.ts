import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type OpenAI from 'openai';
import { isBrandqError } from '@brandq/errors';
import { llmCostMicros, tierPrice, type CostLedger, type ModelPrice, type Reservation } from '@brandq/ledger';
import { brandJobId, type BrandQueue } from '@brandq/queue';
import { FleetLease, batchKeys, defineScripts, runKeys } from '@brandq/redis';
import type { RunStore } from '@brandq/runs';
import { INTENT_METADATA_KEY, type BatchApi, type BatchResultLine } from './batch-api.js';
import { groupMember, parseGroupMember } from './batch-desk.js';
import type { BatchOutcome, ParkedRequest } from './batch-request.js';

const SCRIPTS = [
  { name: 'brandqClaimBatch', file: new URL('../lua/claim-batch.lua', import.meta.url), numberOfKeys: 2 },
  { name: 'brandqResolveIntent', file: new URL('../lua/resolve-intent.lua', import.meta.url), numberOfKeys: 3 },
] as const;

interface BatchScripts {
  brandqClaimBatch(pending: string, intents: string, intentId: string, intentHead: string, ...requestIds: string[]): Promise<number>;
  brandqResolveIntent(pending: string, intents: string, outcomes: string, intentId: string, intentJson: string, back: number, ...pairs: string[]): Promise<number>;
}

/**
 * A batch as the coordinator tracks it, from the requests it claimed to the results it
 * handed back. Each state is written before the next step starts, and every step is safe
 * to repeat, so a coordinator killed anywhere is replaced by another that goes on from the
 * last state written: the budget is held before the file goes up, and the batch is created
 * only after looking for one its predecessor created (found by the intent in its metadata).
 */
export interface BatchIntent {
  id: string;
  runId: string;
  step: string;
  model: string;
  state: 'claimed' | 'reserved' | 'uploaded' | 'submitted';
  claimedAt: number;
  requests: ParkedRequest[];
  /** Request id -> its budget reservation (from `reserved` on). */
  reservations?: Record<string, Reservation>;
  fileId?: string;
  batchId?: string;
  /** The run was cancelled or ran out of budget: the batch was asked to stop. */
  cancelRequested?: boolean;
}

export interface BatchCoordinatorOptions {
  redis: Redis;
  api: BatchApi;
  runs: RunStore;
  /** A ledger whose reservations outlive a batch (up to its 24 hours). */
  ledger: CostLedger;
  queue: BrandQueue;
  priceOf(model: string): Promise<ModelPrice>;
  maxRequests: number;
  maxBytes: number;
  gatherMs: number;
  pollMs: number;
  /** The provider's batch queue limit per model: tokens in batches not yet finished. */
  queueTokens: number;
  /** Batches a request may go through before its brand fails. */
  requestAttempts: number;
  leaseMs?: number;
  logger?: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
  now?: () => number;
}

const TERMINAL: ReadonlySet<string> = new Set(['completed', 'expired', 'cancelled', 'failed']);
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * The fleet's one batch coordinator (every worker runs one; the lease holder acts): it
 * gathers each run step's parked requests into batch files (within the provider's limits
 * of requests, bytes and queued tokens), holds their budget, uploads and submits them,
 * polls them, books what the results file says they cost, hands each result back and wakes
 * its brand's job. Failed or expired requests are sent again in a later batch, up to
 * `requestAttempts` batches; a cancelled or out-of-budget run's open batches are cancelled.
 */
export class BatchCoordinator {
  private readonly redis: Redis & BatchScripts;
  private readonly lease: FleetLease;
  private readonly log: NonNullable<BatchCoordinatorOptions['logger']>;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<unknown> = Promise.resolve();
  private stopped = false;
  /** Not before this local time is another batch created (the provider's queue was full). */
  private queueFullUntil = 0;

  constructor(private readonly options: BatchCoordinatorOptions) {
    defineScripts(options.redis, SCRIPTS);
    this.redis = options.redis as Redis & BatchScripts;
    this.log = options.logger ?? silent;
    this.now = options.now ?? Date.now;
    this.lease = new FleetLease(options.redis, batchKeys.lease, `${process.pid}:${randomUUID()}`, {
      leaseMs: options.leaseMs ?? 30_000,
      onTaken: () => this.log.info({}, 'batch coordinator: took the lease'),
      onLost: () => this.log.warn({}, 'batch coordinator: lost the lease; another worker coordinates now'),
    });
  }

  start(): void {
    if (this.timer || this.stopped) return;
    const loop = () => {
      this.pass = this.runOnce()
        .catch((err: unknown) => this.log.warn({ err: String(err) }, 'batch coordinator: pass failed; trying again'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, Math.min(this.options.pollMs, Math.max(50, this.options.gatherMs)));
        });
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.pass;
    await this.lease.release().catch(() => undefined);
  }

  /** One pass, as the lease holder: move every open batch on by one state, then gather new ones. */
  async runOnce(): Promise<void> {
    if (!this.lease.holds() && !(await this.lease.claim())) return;
    const openTokens = await this.advanceOpen();
    if (this.lease.holds()) await this.gather(openTokens);
  }

  /** Each open batch one step on; returns the tokens of the batches still open, per model. */
  private async advanceOpen(): Promise<Map<string, number>> {
    const openTokens = new Map<string, number>();
    for (const member of await this.redis.zrange(batchKeys.open, 0, -1)) {
      if (!this.lease.holds()) break;
      const { runId, step: intentId } = parseGroupMember(member);
      const intent = await this.loadIntent(runId, intentId);
      if (!intent) {
        await this.redis.zrem(batchKeys.open, member);
        continue;
      }
      try {
        const open = await this.advance(intent);
        if (open) openTokens.set(intent.model, (openTokens.get(intent.model) ?? 0) + tokensOf(intent.requests));
      } catch (err) {
        this.log.warn({ runId, intentId, err: isBrandqError(err) ? err.message : String(err) }, 'batch coordinator: batch not advanced; trying again next pass');
        openTokens.set(intent.model, (openTokens.get(intent.model) ?? 0) + tokensOf(intent.requests));
      }
    }
    return openTokens;
  }

  /** One step of one batch; false once it is collected (or dropped). */
  private async advance(intent: BatchIntent): Promise<boolean> {
    const run = await this.options.runs.getRun(intent.runId);
    const cancelled = !run || run.status === 'cancelled';
    const stopping = cancelled || run.status === 'budget_exhausted';
    if (stopping && intent.state === 'uploaded') {
      // A predecessor killed after creating the batch left it `uploaded`: the batch may run
      // at the provider. Adopt it (and cancel it below), never drop it.
      const existing = await this.options.api.findByIntent(intent.id);
      if (existing) {
        intent.batchId = existing.id;
        intent.state = 'submitted';
        await this.saveIntent(intent);
      }
    }
    if (stopping && intent.state !== 'submitted') {
      // Not sent: nothing was billed. A cancelled run's requests go; a held run's wait in the pending hash.
      await this.unclaim(intent, cancelled ? [] : intent.requests);
      return false;
    }
    switch (intent.state) {
      case 'claimed':
        return this.reserve(intent);
      case 'reserved': {
        intent.fileId = await this.options.api.upload(jsonlOf(intent.requests), `${intent.runId}-${intent.step}-${intent.id}.jsonl`);
        intent.state = 'uploaded';
        await this.saveIntent(intent);
        return true;
      }
      case 'uploaded': {
        if (this.queueFullUntil > this.now()) return true;
        const existing = await this.options.api.findByIntent(intent.id);
        // The lease may have lapsed during the lookup: a successor could be creating this batch.
        if (!existing && !this.lease.holds()) return true;
        const batch =
          existing ?? (await this.options.api.create(intent.fileId as string, { [INTENT_METADATA_KEY]: intent.id, brandq_run: intent.runId, brandq_step: intent.step }));
        intent.batchId = batch.id;
        intent.state = 'submitted';
        await this.saveIntent(intent);
        this.log.info({ runId: intent.runId, step: intent.step, batchId: batch.id, requests: intent.requests.length, adopted: existing !== undefined }, 'batch submitted');
        return true;
      }
      case 'submitted': {
        if (stopping && !intent.cancelRequested) {
          // A batch that ended meanwhile cannot be cancelled (409): it is collected as it ended.
          await this.options.api.cancel(intent.batchId as string).catch((err: unknown) => this.log.info({ batchId: intent.batchId, err: String(err) }, 'batch not cancelled'));
          intent.cancelRequested = true;
          await this.saveIntent(intent);
          this.log.info({ runId: intent.runId, batchId: intent.batchId, status: run?.status ?? 'deleted' }, 'batch cancelled: its run stopped');
        }
        const batch = await this.options.api.retrieve(intent.batchId as string);
        if (!TERMINAL.has(batch.status)) return true;
        await this.collect(intent, batch, cancelled, intent.cancelRequested === true && !cancelled);
        return false;
      }
    }
  }

  /** Holds each request's worst case against the run's budget; the requests the budget refuses wait in the pending hash again. */
  private async reserve(intent: BatchIntent): Promise<boolean> {
    const reservations: Record<string, Reservation> = { ...intent.reservations };
    const refused: ParkedRequest[] = [];
    for (const request of intent.requests) {
      if (reservations[request.customId]) continue;
      try {
        // A deterministic id: a coordinator killed halfway reserves the same ids again, and
        // the ledger holds each once (a random id would leave the first holds to expire into spend).
        reservations[request.customId] = await this.options.ledger.reserve(intent.runId, 'llm', request.worstCaseMicros, intent.step, `${intent.id}:${request.customId}`);
      } catch (err) {
        if (!isBrandqError(err) || (err.kind !== 'budget_exhausted' && err.kind !== 'budget_in_flight')) throw err;
        // Out of budget: the run is held as a worker holds it, so it shows and a raised budget resumes it.
        if (err.kind === 'budget_exhausted') await this.options.runs.markBudgetExhausted(intent.runId, Number(err.details['budgetEpoch'] ?? 0), err.message);
        refused.push(request);
      }
    }
    const kept = intent.requests.filter((r) => !refused.includes(r));
    if (kept.length === 0) {
      await this.unclaim(intent, refused);
      return false;
    }
    // The refused requests leave the intent and go back to pending in one step.
    const reserved: BatchIntent = { ...intent, requests: kept, reservations, state: 'reserved' };
    if (!(await this.resolve(intent, reserved, refused, {}))) return false;
    Object.assign(intent, reserved);
    return true;
  }

  /**
   * Books and hands back what a finished batch answered. A request answered is booked from
   * the results file's usage at the batch price and its outcome stored; one that failed,
   * expired or was never reached is sent again in a later batch (up to `requestAttempts`),
   * unless its run was cancelled. Then its brand's job is woken.
   */
  private async collect(intent: BatchIntent, batch: OpenAI.Batches.Batch, runCancelled: boolean, heldForBudget: boolean): Promise<void> {
    const { api, ledger } = this.options;
    const price = tierPrice(await this.options.priceOf(intent.model), 'batch');
    const lines = new Map<string, BatchResultLine>();
    for (const fileId of [batch.output_file_id, batch.error_file_id]) {
      if (fileId) for (const line of await api.lines(fileId)) lines.set(line.custom_id, line);
    }
    const queueFull = batch.status === 'failed' && (batch.errors?.data ?? []).some((e) => e.code === 'token_limit_exceeded');
    // Lines a full provider queue or a budget hold kept from running were never tried: sent again without using an attempt.
    const notTried = queueFull || heldForBudget;
    if (queueFull) this.queueFullUntil = this.now() + this.options.gatherMs + this.options.pollMs;
    const outcomes: Record<string, string> = {};
    const again: ParkedRequest[] = [];
    for (const request of intent.requests) {
      const line = lines.get(request.customId);
      const reservation = intent.reservations?.[request.customId];
      const completion = line?.response?.status_code === 200 ? (line.response.body as OpenAI.Chat.Completions.ChatCompletion) : undefined;
      if (completion) {
        const usage = completion.usage;
        const inputTokens = usage?.prompt_tokens ?? 0;
        const outputTokens = usage?.completion_tokens ?? 0;
        if (reservation) await ledger.settle(reservation, { costMicros: llmCostMicros(price, inputTokens, outputTokens), inputTokens, outputTokens });
        outcomes[request.customId] = JSON.stringify({ kind: 'answered', completion } satisfies BatchOutcome);
        continue;
      }
      // Not answered: not billed.
      if (reservation) await ledger.release(reservation);
      if (runCancelled) continue;
      const reason = line?.error?.message ?? line?.error?.code ?? (line?.response ? `HTTP ${line.response.status_code}` : `batch ${batch.status}`);
      if (notTried || request.attempt + 1 < this.options.requestAttempts) again.push({ ...request, attempt: notTried ? request.attempt : request.attempt + 1 });
      else outcomes[request.customId] = JSON.stringify({ kind: 'failed', reason: `${reason} (in ${request.attempt + 1} batches)`, attempts: request.attempt + 1 } satisfies BatchOutcome);
    }
    // Outcomes, requests sent again and the intent's end in one step: a coordinator that lost
    // its lease meanwhile finds the intent resolved by its successor and writes nothing.
    if (!(await this.resolve(intent, undefined, again, outcomes))) {
      this.log.warn({ runId: intent.runId, batchId: batch.id }, 'batch coordinator: batch already collected by another coordinator');
      return;
    }
    await this.redis.zrem(batchKeys.open, groupMember(intent.runId, intent.id));
    await this.wake(intent.runId, intent.requests.filter((r) => outcomes[r.customId] !== undefined));
    this.log.info({ runId: intent.runId, batchId: batch.id, status: batch.status, answered: Object.keys(outcomes).length, again: again.length }, 'batch collected');
  }

  /** Gathers due run steps' parked requests into new batches, within the provider's limits. */
  private async gather(openTokens: Map<string, number>): Promise<void> {
    if (this.queueFullUntil > this.now()) return;
    const groups = await this.redis.zrange(batchKeys.groups, 0, -1, 'WITHSCORES');
    for (let i = 0; i < groups.length; i += 2) {
      const member = groups[i] as string;
      const oldest = Number(groups[i + 1]);
      const { runId, step } = parseGroupMember(member);
      const run = await this.options.runs.getRun(runId);
      // A held run's requests wait for it; an ended run's are not sent (they expire with the run).
      if (run && (run.status === 'paused' || run.status === 'budget_exhausted')) continue;
      if (run && run.status !== 'running') {
        await this.redis.zrem(batchKeys.groups, member);
        continue;
      }
      const pending = run ? await this.pendingOf(runId, step) : [];
      if (pending.length === 0) {
        await this.redis.zrem(batchKeys.groups, member);
        continue;
      }
      if (pending.length < this.options.maxRequests && this.now() - oldest < this.options.gatherMs) continue;
      const model = pending[0]?.model as string;
      const chosen: ParkedRequest[] = [];
      let bytes = 0;
      let tokens = openTokens.get(model) ?? 0;
      for (const request of pending) {
        const size = Buffer.byteLength(jsonlLine(request)) + 1;
        if (chosen.length >= this.options.maxRequests || bytes + size > this.options.maxBytes || tokens + request.tokens > this.options.queueTokens) break;
        if (request.model !== model) continue;
        chosen.push(request);
        bytes += size;
        tokens += request.tokens;
      }
      if (chosen.length === 0) continue;
      const intentId = randomUUID();
      const head: Omit<BatchIntent, 'requests'> = { id: intentId, runId, step, model, state: 'claimed', claimedAt: this.now() };
      const json = JSON.stringify(head);
      const keys = runKeys(runId);
      // Listed as open first: a claim whose intent is not listed would never be sent.
      await this.redis.zadd(batchKeys.open, this.now(), groupMember(runId, intentId));
      const claimed = await this.redis.brandqClaimBatch(keys.batchPending, keys.batchIntents, intentId, json.slice(0, -1), ...chosen.map((r) => r.customId));
      if (claimed === 0) await this.redis.zrem(batchKeys.open, groupMember(runId, intentId));
      openTokens.set(model, tokens);
      const rest = pending.filter((r) => !chosen.includes(r));
      if (rest.length === 0) await this.redis.zrem(batchKeys.groups, member);
      else await this.redis.zadd(batchKeys.groups, 'XX', Math.min(...rest.map((r) => r.parkedAt)), member);
    }
  }

  private async pendingOf(runId: string, step: string): Promise<ParkedRequest[]> {
    const all = Object.values(await this.redis.hgetall(runKeys(runId).batchPending)).map((raw) => JSON.parse(raw) as ParkedRequest);
    return all.filter((r) => r.step === step).sort((a, b) => a.parkedAt - b.parkedAt);
  }

  /** Gives an unsent intent's requests back: `back` to the pending hash (the rest dropped), its budget released. */
  private async unclaim(intent: BatchIntent, back: ParkedRequest[]): Promise<void> {
    for (const reservation of Object.values(intent.reservations ?? {})) await this.options.ledger.release(reservation);
    await this.resolve(intent, undefined, back, {});
    await this.redis.zrem(batchKeys.open, groupMember(intent.runId, intent.id));
  }

  /**
   * Rewrites the intent (`next`) or ends it (undefined), puts `back` in the pending hash and
   * hands `outcomes` back, in one step (resolve-intent.lua); false when the intent was gone.
   * The run step is then marked as having parked requests (a mark lost to a crash is set
   * again by the brand's job when it looks again).
   */
  private async resolve(intent: BatchIntent, next: BatchIntent | undefined, back: readonly ParkedRequest[], outcomes: Record<string, string>): Promise<boolean> {
    const keys = runKeys(intent.runId);
    const at = this.now();
    const backPairs = back.flatMap((request) => [request.customId, JSON.stringify({ ...request, parkedAt: at })]);
    const outcomePairs = Object.entries(outcomes).flat();
    const done = await this.redis.brandqResolveIntent(keys.batchPending, keys.batchIntents, keys.batchOutcomes, intent.id, next ? JSON.stringify(next) : '', back.length, ...backPairs, ...outcomePairs);
    if (done === 0) return false;
    for (const step of new Set(back.map((r) => r.step))) await this.redis.zadd(batchKeys.groups, 'NX', at, groupMember(intent.runId, step));
    return true;
  }

  /** Wakes the brands whose requests have an outcome: their jobs wait delayed until then. */
  private async wake(runId: string, requests: ParkedRequest[]): Promise<void> {
    for (const brandKey of new Set(requests.map((r) => r.brandKey))) {
      const job = await this.options.queue.getJob(brandJobId(runId, brandKey));
      if (job && (await job.getState()) === 'delayed') await job.promote().catch(() => undefined);
    }
  }

  private async loadIntent(runId: string, intentId: string): Promise<BatchIntent | undefined> {
    const raw = await this.redis.hget(runKeys(runId).batchIntents, intentId);
    return raw === null ? undefined : (JSON.parse(raw) as BatchIntent);
  }

  private async saveIntent(intent: BatchIntent): Promise<void> {
    await this.redis.hset(runKeys(intent.runId).batchIntents, intent.id, JSON.stringify(intent));
  }
}

function jsonlLine(request: ParkedRequest): string {
  return JSON.stringify({ custom_id: request.customId, method: 'POST', url: '/v1/chat/completions', body: request.body });
}

function jsonlOf(requests: readonly ParkedRequest[]): string {
  return `${requests.map(jsonlLine).join('\n')}\n`;
}

function tokensOf(requests: readonly ParkedRequest[]): number {
  return requests.reduce((sum, r) => sum + r.tokens, 0);
}
