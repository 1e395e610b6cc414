import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { BrandJobData } from '@brandq/queue';
import { runKeyList, runKeys } from '@brandq/redis';
import { useTestRedis } from '@brandq/testing';
import { RunStore } from './run-store.js';
import type { RunStatus } from './run-types.js';

/**
 * RunStore against a small pure model: random sequences of creating and extending runs of
 * one source (also from several producers at once, and while a worker records an
 * outcome), outcomes (with duplicates), resumes,
 * budget changes, late and current budget refusals and pauses. After every step the store
 * must agree with the model, and no run may be `running` with every brand done.
 */
const redis = useTestRedis();

const UNIVERSE = ['a', 'b', 'c', 'd', 'e', 'f'];
const RUNS = ['r1', 'r2'] as const;
type RunName = (typeof RUNS)[number];

interface ModelRun {
  brands: Set<string>;
  outcomes: Map<string, 'success' | 'failure'>;
  status: RunStatus;
  epoch: number;
}

interface Model {
  runs: Partial<Record<RunName, ModelRun>>;
}

interface Real {
  store: RunStore;
  client: Redis;
  /** Run ids and source key of this sequence, so sequences never share keys. */
  ids: Record<RunName, string>;
  sourceKey: string;
}

const processed = (run: ModelRun) => run.outcomes.size;
const settle = (run: ModelRun) => {
  if (run.status === 'running' || run.status === 'completed') run.status = processed(run) >= run.brands.size ? 'completed' : 'running';
};

function jobs(real: Real, name: RunName, keys: string[]): BrandJobData[] {
  return keys.map((key, i) => ({ runId: real.ids[name], key, name: key.toUpperCase(), rowNumber: i + 2, hints: {}, source: { type: 'csv', path: '/model.csv' } }));
}

async function check(model: Model, real: Real): Promise<void> {
  for (const name of RUNS) {
    const expected = model.runs[name];
    const meta = await real.store.getRun(real.ids[name]);
    if (!expected) {
      expect(meta).toBeUndefined();
      continue;
    }
    const succeeded = [...expected.outcomes.values()].filter((o) => o === 'success').length;
    expect(meta).toMatchObject({ status: expected.status, total: expected.brands.size, succeeded, failed: expected.outcomes.size - succeeded });
    // Never stuck: running means some brand of the run still has no outcome.
    if (meta?.status === 'running') expect(meta.succeeded + meta.failed).toBeLessThan(meta.total);
    // Retention: an ended run expires, a running or held one is kept whole.
    if (expected.status === 'completed' || expected.status === 'cancelled') expect(await real.client.pttl(runKeys(real.ids[name]).meta)).toBeGreaterThan(0);
    else {
      const ttls = await Promise.all(runKeyList(real.ids[name]).map((key) => real.client.pttl(key)));
      expect(ttls.filter((ttl) => ttl !== -2 && ttl !== -1)).toEqual([]);
    }
  }
  // Every success of the source is found, in a run that holds it.
  const found = await real.store.resultsOfSource(real.sourceKey, UNIVERSE);
  const succeededSomewhere = UNIVERSE.filter((key) => RUNS.some((name) => model.runs[name]?.outcomes.get(key) === 'success'));
  expect([...found.keys()].sort()).toEqual(succeededSomewhere);
  for (const [key, runId] of found) {
    const name = RUNS.find((n) => real.ids[n] === runId) as RunName;
    expect(model.runs[name]?.outcomes.get(key)).toBe('success');
  }
}

type Command = fc.AsyncCommand<Model, Real>;

class CreateOrExtend implements Command {
  constructor(
    readonly name: RunName,
    readonly lists: string[][],
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    // One list: one producer; several lists: producers on the same run at once.
    await Promise.all(this.lists.map((keys) => real.store.createOrExtendRun({ id: real.ids[this.name], source: { type: 'csv', path: '/model.csv' }, sourceKey: real.sourceKey, brands: jobs(real, this.name, keys), skipped: [] })));
    const run = (model.runs[this.name] ??= { brands: new Set(), outcomes: new Map(), status: 'running', epoch: 0 });
    for (const key of this.lists.flat()) run.brands.add(key);
    settle(run);
    await check(model, real);
  }
  toString = () => `createOrExtend(${this.name}, ${JSON.stringify(this.lists)})`;
}

class Outcome implements Command {
  constructor(
    readonly name: RunName,
    readonly key: string,
    readonly outcome: 'success' | 'failure',
  ) {}
  check = (model: Readonly<Model>) => model.runs[this.name]?.brands.has(this.key) === true;
  async run(model: Model, real: Real) {
    const run = model.runs[this.name] as ModelRun;
    const base = { runId: real.ids[this.name], key: this.key, brand: this.key.toUpperCase(), rowNumber: 2 };
    const answer =
      this.outcome === 'success'
        ? await real.store.recordSuccess({ ...base, processedAt: 'now', fields: {} })
        : await real.store.recordFailure({ ...base, kind: 'transient', reason: 'HTTP 500', attempts: 4, failedAt: 'now' });
    const final = run.outcomes.get(this.key) === 'success';
    expect(answer.recorded).toBe(!final);
    if (!final) run.outcomes.set(this.key, this.outcome);
    if (run.status === 'running' && processed(run) >= run.brands.size) run.status = 'completed';
    await check(model, real);
  }
  toString = () => `${this.outcome}(${this.name}, ${this.key})`;
}

/** A producer extends the run while a worker records an outcome: the end state does not depend on their order. */
class ExtendWhileRecording implements Command {
  constructor(
    readonly name: RunName,
    readonly list: string[],
    readonly key: string,
  ) {}
  check = (model: Readonly<Model>) => model.runs[this.name]?.brands.has(this.key) === true;
  async run(model: Model, real: Real) {
    const runId = real.ids[this.name];
    await Promise.all([
      real.store.createOrExtendRun({ id: runId, source: { type: 'csv', path: '/model.csv' }, sourceKey: real.sourceKey, brands: jobs(real, this.name, this.list), skipped: [] }),
      real.store.recordSuccess({ runId, key: this.key, brand: this.key.toUpperCase(), rowNumber: 2, processedAt: 'now', fields: {} }),
    ]);
    const run = model.runs[this.name] as ModelRun;
    for (const key of this.list) run.brands.add(key);
    run.outcomes.set(this.key, 'success');
    settle(run);
    await check(model, real);
  }
  toString = () => `extendWhileRecording(${this.name}, ${JSON.stringify(this.list)}, success ${this.key})`;
}

class Resume implements Command {
  constructor(
    readonly name: RunName,
    readonly retryFailed: boolean,
  ) {}
  check = (model: Readonly<Model>) => model.runs[this.name] !== undefined;
  async run(model: Model, real: Real) {
    const run = model.runs[this.name] as ModelRun;
    const failed = [...run.outcomes].filter(([, o]) => o === 'failure').map(([key]) => key);
    const answer = await real.store.reopen(real.ids[this.name], this.retryFailed ? failed : []);
    if (this.retryFailed) for (const key of failed) run.outcomes.delete(key);
    run.status = processed(run) >= run.brands.size ? 'completed' : 'running';
    expect(answer).toEqual({ reopened: this.retryFailed ? failed.length : 0, status: run.status });
    await check(model, real);
  }
  toString = () => `resume(${this.name}, retryFailed=${this.retryFailed})`;
}

class ChangeBudget implements Command {
  constructor(readonly name: RunName) {}
  check = (model: Readonly<Model>) => model.runs[this.name] !== undefined;
  async run(model: Model, real: Real) {
    // What CostLedger.setBudget does to the epoch (this package does not depend on the ledger).
    await real.client.hincrby(runKeys(real.ids[this.name]).ledger, 'budget_epoch', 1);
    (model.runs[this.name] as ModelRun).epoch += 1;
    await check(model, real);
  }
  toString = () => `changeBudget(${this.name})`;
}

class RefuseBudget implements Command {
  /** `lag` 0: a refusal under the budget in force; 1 or more: computed under an older one. */
  constructor(
    readonly name: RunName,
    readonly lag: number,
  ) {}
  check = (model: Readonly<Model>) => model.runs[this.name] !== undefined;
  async run(model: Model, real: Real) {
    const run = model.runs[this.name] as ModelRun;
    const held = await real.store.markBudgetExhausted(real.ids[this.name], run.epoch - this.lag, 'budget reached');
    const expected = run.status === 'running' && this.lag === 0;
    expect(held).toBe(expected);
    if (expected) run.status = 'budget_exhausted';
    await check(model, real);
  }
  toString = () => `refuseBudget(${this.name}, lag=${this.lag})`;
}

class Pause implements Command {
  constructor(readonly name: RunName) {}
  check = (model: Readonly<Model>) => model.runs[this.name]?.status === 'running';
  async run(model: Model, real: Real) {
    await real.store.setStatus(real.ids[this.name], 'paused', 'quota');
    (model.runs[this.name] as ModelRun).status = 'paused';
    await check(model, real);
  }
  toString = () => `pause(${this.name})`;
}

const runName = fc.constantFrom(...RUNS);
const brandKey = fc.constantFrom(...UNIVERSE);
const list = fc.uniqueArray(brandKey, { minLength: 1, maxLength: UNIVERSE.length });
const commands = fc.commands(
  [
    fc.tuple(runName, fc.array(list, { minLength: 1, maxLength: 3 })).map(([n, lists]) => new CreateOrExtend(n, lists)),
    fc.tuple(runName, brandKey, fc.constantFrom('success' as const, 'failure' as const)).map(([n, k, o]) => new Outcome(n, k, o)),
    fc.tuple(runName, list, brandKey).map(([n, l, k]) => new ExtendWhileRecording(n, l, k)),
    fc.tuple(runName, fc.boolean()).map(([n, r]) => new Resume(n, r)),
    runName.map((n) => new ChangeBudget(n)),
    fc.tuple(runName, fc.integer({ min: 0, max: 2 })).map(([n, lag]) => new RefuseBudget(n, lag)),
    runName.map((n) => new Pause(n)),
  ],
  { maxCommands: 60, size: 'large' },
);

describe('RunStore against its model', () => {
  it('agrees with the model after every step of random sequences, and never leaves a run running with nothing open', async () => {
    const client = redis.client();
    const store = new RunStore(client, { retentionDays: 1 });
    let sequence = 0;
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        sequence += 1;
        const real: Real = { store, client, ids: { r1: `model-${sequence}-r1`, r2: `model-${sequence}-r2` }, sourceKey: `csv:/model/${sequence}` };
        await fc.asyncModelRun(() => ({ model: { runs: {} }, real }), cmds);
      }),
      { numRuns: 300, verbose: fc.VerbosityLevel.Verbose },
    );
  }, 120_000);
});
