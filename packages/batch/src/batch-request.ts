import type OpenAI from 'openai';

/** A batch-tier LLM request a brand's step parked for the run step's next batch. */
export interface ParkedRequest {
  /** The request's id in the batch file (`custom_id`), unique within the run. */
  customId: string;
  brandKey: string;
  step: string;
  model: string;
  /** The Chat Completions body, exactly as a standard call would send it. */
  body: OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming;
  /** What the provider's batch queue counts it as: prompt plus output cap. */
  tokens: number;
  /** Its worst-case cost at the batch price: what the budget holds while its batch is open. */
  worstCaseMicros: number;
  /** Batches it went through before this one (failed or expired lines are sent again). */
  attempt: number;
  parkedAt: number;
}

/** What a parked request came back with: the completion (booked by the coordinator), or why it failed for good. */
export type BatchOutcome =
  | { kind: 'answered'; completion: OpenAI.Chat.Completions.ChatCompletion }
  | { kind: 'failed'; reason: string; attempts: number };

/**
 * A request's id in its run's batches: the step, whether it is the step's first ask or
 * its repair (`round`), the recipe it asks for (a run switched to another recipe asks
 * anew) and the brand. The same brand asking the same thing twice (a job retried, a worker
 * killed) gets the same id, so it is parked, sent and paid for once.
 */
export function batchRequestId(step: string, round: number, recipeFingerprint: string, brandKey: string): string {
  return `${step}.${round}.${recipeFingerprint.slice(0, 12)}.${brandKey}`;
}
