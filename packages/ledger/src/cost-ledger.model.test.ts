import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { BudgetExhaustedError, BudgetInFlightError } from '@brandq/errors';
import { runKeys } from '@brandq/redis';
import { useTestRedis } from '@brandq/testing';
import { CostLedger, type LedgerSnapshot, type PaidProvider, type Reservation, type SettleResult } from './cost-ledger.js';

/**
 * CostLedger against a small pure model: random sequences over two runs and two providers of
 * budget changes (0 = unlimited, lowering below what is committed), reservations (0, small,
 * large), settles (0, below, equal to and above the reservation, retried), unknown outcomes,
 * releases, expiries of slow holders (settled late) and kills (holders that never come
 * back). After every step the ledger must agree with the model, and:
 *  - spent + unconfirmed + reserved never exceeds the budget except by booked overrun (or by
 *    what was already committed when the budget was lowered below it);
 *  - reserved is the sum of the live reservations, unconfirmed the sum of the unconfirmed
 *    holds, in the ledger's own hashes as in the model;
 *  - spent is the sum of the booked costs, per provider and in total;
 *  - a refusal is "in flight" exactly when reservations are in flight and spent + unconfirmed
 *    alone leave room for the call (settles can only add to them), else "exhausted".
 *  - a request of 0 holds the largest cost billed so far against a request of 0.
 * At the end every holder dies: once their reservations expire, nothing is reserved.
 */
const redis = useTestRedis();

const RUNS = ['r1', 'r2'] as const;
type RunName = (typeof RUNS)[number];
const PROVIDERS = ['tavily', 'llm'] as const satisfies readonly PaidProvider[];
type Provider = (typeof PROVIDERS)[number];
const PPM = 1_000_000;

// ---------------------------------------------------------------------------------------
// The model

type HoldState =
  /** In flight. */
  | 'live'
  /** Its holder is gone or slow: expired, but not swept yet (the next reserve of the run sweeps). */
  | 'expiring'
  /** Swept after expiry, or the outcome of its call was unknown: counted as unconfirmed spend. */
  | 'unconfirmed'
  /** Settled or released: holds nothing. */
  | 'done';

interface ModelHandle {
  run: RunName;
  provider: Provider;
  requested: number;
  held: number;
  state: HoldState;
  settled: boolean;
  /** Released (the call was not billed): the caller never settles it. */
  released: boolean;
  /** Its holder died: nobody touches it again. */
  killed: boolean;
}

interface Booking {
  run: RunName;
  provider: Provider;
  cost: number;
  overrun: number;
}

interface ModelRun {
  budget: number;
  epoch: number;
  /** What spent + unconfirmed + reserved - overrun may reach: the budget, or what was committed when it was lowered below that. */
  bound: number;
  expired: number;
  ratioPpm: Record<Provider, number>;
  /** The largest cost billed against a request of 0: what later requests of 0 hold. */
  zeroPriceBill: Record<Provider, number>;
}

interface Model {
  runs: Record<RunName, ModelRun>;
  handles: ModelHandle[];
  bookings: Booking[];
}

type Refusal = 'in_flight' | 'exhausted';

const newRun = (): ModelRun => ({ budget: 0, epoch: 0, bound: Infinity, expired: 0, ratioPpm: { tavily: 0, llm: 0 }, zeroPriceBill: { tavily: 0, llm: 0 } });
const newModel = (): Model => ({ runs: { r1: newRun(), r2: newRun() }, handles: [], bookings: [] });

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const holdsOf = (model: Model, run: RunName, states: HoldState[], provider?: Provider) =>
  model.handles.filter((h) => h.run === run && states.includes(h.state) && (provider === undefined || h.provider === provider));
const bookingsOf = (model: Model, run: RunName, provider?: Provider) =>
  model.bookings.filter((b) => b.run === run && (provider === undefined || b.provider === provider));

function figures(model: Model, run: RunName) {
  const spent = sum(bookingsOf(model, run).map((b) => b.cost));
  const unconfirmed = sum(holdsOf(model, run, ['unconfirmed']).map((h) => h.held));
  const reserved = sum(holdsOf(model, run, ['live', 'expiring']).map((h) => h.held));
  const overrun = sum(bookingsOf(model, run).map((b) => b.overrun));
  return { spent, unconfirmed, reserved, overrun };
}

function modelSetBudget(model: Model, run: RunName, budget: number): number {
  const r = model.runs[run];
  const { spent, unconfirmed, reserved, overrun } = figures(model, run);
  r.budget = budget;
  r.epoch += 1;
  r.bound = budget === 0 ? Infinity : Math.max(budget, spent + unconfirmed + reserved - overrun);
  return r.epoch;
}

type ReserveOutcome = { granted: true; held: number } | { granted: false; refusal: Refusal; held: number; available: number; inFlight: number; epoch: number };

function modelReserve(model: Model, run: RunName, provider: Provider, requested: number): ReserveOutcome {
  const r = model.runs[run];
  for (const h of holdsOf(model, run, ['expiring'])) {
    h.state = 'unconfirmed';
    r.expired += 1;
  }
  const ratio = r.ratioPpm[provider];
  const held = requested === 0 ? r.zeroPriceBill[provider] : ratio > PPM ? Math.ceil((requested * ratio) / PPM) : requested;
  const { spent, unconfirmed, reserved } = figures(model, run);
  if (r.budget > 0 && spent + unconfirmed + reserved + held > r.budget) {
    const available = Math.max(0, r.budget - spent - unconfirmed - reserved);
    return { granted: false, refusal: reserved > 0 && spent + unconfirmed + held <= r.budget ? 'in_flight' : 'exhausted', held, available, inFlight: reserved, epoch: r.epoch };
  }
  model.handles.push({ run, provider, requested, held, state: 'live', settled: false, released: false, killed: false });
  return { granted: true, held };
}

function modelSettle(model: Model, h: ModelHandle, cost: number): SettleResult {
  if (h.settled) return { overrunMicros: 0, firstOverrun: false, observedRatio: 0 };
  h.settled = true;
  const r = model.runs[h.run];
  const holding = h.state !== 'done';
  const overrun = holding ? Math.max(0, cost - h.held) : 0;
  const ratioPpm = !holding ? 0 : h.requested > 0 ? Math.ceil((cost * PPM) / h.requested) : cost > 0 ? -1 : 0;
  const firstOverrun = overrun > 0 && sum(bookingsOf(model, h.run, h.provider).map((b) => b.overrun)) === 0;
  if (ratioPpm > PPM && ratioPpm > r.ratioPpm[h.provider]) r.ratioPpm[h.provider] = ratioPpm;
  if (holding && h.requested === 0 && cost > r.zeroPriceBill[h.provider]) r.zeroPriceBill[h.provider] = cost;
  h.state = 'done';
  model.bookings.push({ run: h.run, provider: h.provider, cost, overrun });
  return { overrunMicros: overrun, firstOverrun, observedRatio: ratioPpm < 0 ? Infinity : ratioPpm / PPM };
}

function modelBookUnconfirmed(h: ModelHandle): void {
  if (h.state === 'live' || h.state === 'expiring') h.state = 'unconfirmed';
}

function modelRelease(h: ModelHandle): void {
  if (h.state !== 'done') h.state = 'done';
  h.released = true;
}

function modelExpire(h: ModelHandle): void {
  if (h.state === 'live') h.state = 'expiring';
}

function expectedSnapshot(model: Model, run: RunName) {
  const r = model.runs[run];
  const { spent, unconfirmed, reserved, overrun } = figures(model, run);
  const provider = (p: Provider) => ({
    calls: bookingsOf(model, run, p).length,
    costMicros: sum(bookingsOf(model, run, p).map((b) => b.cost)),
    unconfirmedMicros: sum(holdsOf(model, run, ['unconfirmed'], p).map((h) => h.held)),
    unconfirmedCalls: holdsOf(model, run, ['unconfirmed'], p).length,
    overrunMicros: sum(bookingsOf(model, run, p).map((b) => b.overrun)),
    priceRatio: r.ratioPpm[p] / PPM,
  });
  return {
    budgetMicros: r.budget,
    budgetEpoch: r.epoch,
    spentMicros: spent,
    unconfirmedMicros: unconfirmed,
    reservedMicros: reserved,
    overrunMicros: overrun,
    expiredReservations: r.expired,
    providers: { tavily: provider('tavily'), llm: provider('llm') },
  };
}

// ---------------------------------------------------------------------------------------
// The real ledger, and the checks after every step

interface Real {
  ledger: CostLedger;
  client: Redis;
  /** Run ids of this sequence, so sequences never share keys. */
  ids: Record<RunName, string>;
  /** The reservation behind each model handle, by the same index. */
  reservations: Reservation[];
}

async function hashTotal(client: Redis, key: string): Promise<number> {
  return sum((await client.hvals(key)).map(Number));
}

/** The budget property itself, from the real figures alone. */
function assertWithinBudget(snap: LedgerSnapshot, bound: number): void {
  const committed = snap.spentMicros + snap.unconfirmedMicros + snap.reservedMicros;
  expect(committed, 'spent + unconfirmed + reserved beyond the budget and the booked overrun').toBeLessThanOrEqual(bound + snap.overrunMicros);
  expect(snap.spentMicros + snap.unconfirmedMicros).toBeLessThanOrEqual(bound + snap.overrunMicros);
}

async function check(model: Model, real: Real): Promise<void> {
  for (const run of RUNS) {
    const keys = runKeys(real.ids[run]);
    const snap = await real.ledger.snapshot(real.ids[run]);
    expect(snap).toMatchObject(expectedSnapshot(model, run));
    assertWithinBudget(snap, model.runs[run].bound);
    // The counters agree with the ledger's own records of each hold.
    expect(await hashTotal(real.client, keys.reservationAmounts)).toBe(snap.reservedMicros);
    expect(await hashTotal(real.client, keys.unconfirmedReservations)).toBe(snap.unconfirmedMicros);
    expect(snap.providers.tavily.costMicros + snap.providers.llm.costMicros + snap.providers.sheets.costMicros).toBe(snap.spentMicros);
  }
}

// ---------------------------------------------------------------------------------------
// Commands

type Command = fc.AsyncCommand<Model, Real>;

/** Handles a command may pick: alive, and for a settle also not released. */
const eligible = (model: Readonly<Model>, forSettle = false) =>
  model.handles.flatMap((h, i) => (!h.killed && !(forSettle && h.released) ? [i] : []));

abstract class HandleCommand implements Command {
  constructor(readonly pick: number) {}
  protected readonly forSettle: boolean = false;
  check = (model: Readonly<Model>) => eligible(model, this.forSettle).length > 0;
  protected target(model: Model): number {
    const options = eligible(model, this.forSettle);
    return options[this.pick % options.length] as number;
  }
  abstract run(model: Model, real: Real): Promise<void>;
}

class SetBudget implements Command {
  constructor(
    readonly name: RunName,
    readonly micros: number,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const epoch = await real.ledger.setBudget(real.ids[this.name], this.micros);
    expect(epoch).toBe(modelSetBudget(model, this.name, this.micros));
    await check(model, real);
  }
  toString = () => `setBudget(${this.name}, ${this.micros})`;
}

class Reserve implements Command {
  constructor(
    readonly name: RunName,
    readonly provider: Provider,
    readonly micros: number,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const expected = modelReserve(model, this.name, this.provider, this.micros);
    const answer = await real.ledger.reserve(real.ids[this.name], this.provider, this.micros).catch((e: unknown) => e);
    if (expected.granted) {
      expect(answer).toMatchObject({ runId: real.ids[this.name], provider: this.provider, micros: expected.held, requestedMicros: this.micros });
      real.reservations.push(answer as Reservation);
    } else if (expected.refusal === 'in_flight') {
      expect(answer).toBeInstanceOf(BudgetInFlightError);
      expect((answer as BudgetInFlightError).details).toEqual({ neededMicros: expected.held, availableMicros: expected.available, inFlightMicros: expected.inFlight });
    } else {
      expect(answer).toBeInstanceOf(BudgetExhaustedError);
      expect((answer as BudgetExhaustedError).details).toEqual({ neededMicros: expected.held, availableMicros: expected.available, budgetEpoch: expected.epoch });
    }
    await check(model, real);
  }
  toString = () => `reserve(${this.name}, ${this.provider}, ${this.micros})`;
}

/** A cost relative to what the reservation holds: how far off the configured price was. */
type CostSpec = { kind: 'zero' } | { kind: 'held' } | { kind: 'scaled'; percent: number } | { kind: 'absolute'; micros: number };

function costOf(spec: CostSpec, held: number): number {
  switch (spec.kind) {
    case 'zero':
      return 0;
    case 'held':
      return held;
    case 'scaled':
      return Math.floor((held * spec.percent) / 100);
    case 'absolute':
      return spec.micros;
  }
}

class Settle extends HandleCommand {
  protected override readonly forSettle = true;
  constructor(
    pick: number,
    readonly cost: CostSpec,
  ) {
    super(pick);
  }
  async run(model: Model, real: Real) {
    const i = this.target(model);
    const h = model.handles[i] as ModelHandle;
    const cost = costOf(this.cost, h.held);
    const expected = modelSettle(model, h, cost);
    expect(await real.ledger.settle(real.reservations[i] as Reservation, { costMicros: cost })).toEqual(expected);
    await check(model, real);
  }
  override toString = () => `settle(#${this.pick}, ${JSON.stringify(this.cost)})`;
}

class BookUnconfirmed extends HandleCommand {
  async run(model: Model, real: Real) {
    const i = this.target(model);
    modelBookUnconfirmed(model.handles[i] as ModelHandle);
    await real.ledger.bookUnconfirmed(real.reservations[i] as Reservation);
    await check(model, real);
  }
  override toString = () => `bookUnconfirmed(#${this.pick})`;
}

class Release extends HandleCommand {
  async run(model: Model, real: Real) {
    const i = this.target(model);
    modelRelease(model.handles[i] as ModelHandle);
    await real.ledger.release(real.reservations[i] as Reservation);
    await check(model, real);
  }
  override toString = () => `release(#${this.pick})`;
}

/** Its expiry passes: through Redis, as time would (the score in the past), no backdoor in the ledger. */
async function expireInRedis(real: Real, reservation: Reservation): Promise<void> {
  await real.client.zadd(runKeys(reservation.runId).reservations, 'XX', 0, reservation.id);
}

/** The holder is slow: its reservation expires, and it may still settle late. */
class Expire extends HandleCommand {
  async run(model: Model, real: Real) {
    const i = this.target(model);
    modelExpire(model.handles[i] as ModelHandle);
    await expireInRedis(real, real.reservations[i] as Reservation);
    await check(model, real);
  }
  override toString = () => `expire(#${this.pick})`;
}

/** The holder dies: its reservation expires and nobody settles it. */
class Kill extends HandleCommand {
  async run(model: Model, real: Real) {
    const i = this.target(model);
    const h = model.handles[i] as ModelHandle;
    modelExpire(h);
    h.killed = true;
    await expireInRedis(real, real.reservations[i] as Reservation);
    await check(model, real);
  }
  override toString = () => `kill(#${this.pick})`;
}

const runName = fc.constantFrom(...RUNS);
const provider = fc.constantFrom(...PROVIDERS);
const budget = fc.oneof(
  { arbitrary: fc.constant(0), weight: 1 },
  { arbitrary: fc.integer({ min: 1, max: 8_000 }), weight: 2 },
  { arbitrary: fc.integer({ min: 8_000, max: 60_000 }), weight: 3 },
);
const amount = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 5_000, max: 40_000 }));
const pick = fc.nat({ max: 1_000 });
const cost = fc.oneof(
  fc.constant<CostSpec>({ kind: 'zero' }),
  fc.constant<CostSpec>({ kind: 'held' }),
  fc.integer({ min: 1, max: 300 }).map((percent): CostSpec => ({ kind: 'scaled', percent })),
  fc.integer({ min: 1, max: 20_000 }).map((micros): CostSpec => ({ kind: 'absolute', micros })),
);
const commands = fc.commands(
  [
    fc.tuple(runName, budget).map(([r, b]) => new SetBudget(r, b)),
    fc.tuple(runName, budget).map(([r, b]) => new SetBudget(r, b)),
    fc.tuple(runName, provider, amount).map(([r, p, a]) => new Reserve(r, p, a)),
    fc.tuple(runName, provider, amount).map(([r, p, a]) => new Reserve(r, p, a)),
    fc.tuple(runName, provider, amount).map(([r, p, a]) => new Reserve(r, p, a)),
    fc.tuple(pick, cost).map(([i, c]) => new Settle(i, c)),
    fc.tuple(pick, cost).map(([i, c]) => new Settle(i, c)),
    pick.map((i) => new BookUnconfirmed(i)),
    pick.map((i) => new Release(i)),
    pick.map((i) => new Expire(i)),
    pick.map((i) => new Kill(i)),
  ],
  { maxCommands: 60, size: 'max' },
);

/** Every holder still alive dies, and each run sweeps: no reservation outlives its holder. */
async function everyHolderDies(model: Model, real: Real): Promise<void> {
  for (const [i, h] of model.handles.entries()) {
    if (h.killed) continue;
    modelExpire(h);
    h.killed = true;
    await expireInRedis(real, real.reservations[i] as Reservation);
  }
  for (const run of RUNS) {
    // A request of 0 sweeps; it may hold the largest bill seen for one, so it is given back.
    const expected = modelReserve(model, run, 'llm', 0);
    const answer = await real.ledger.reserve(real.ids[run], 'llm', 0).catch((e: unknown) => e);
    if (expected.granted) {
      expect((answer as Reservation).micros).toBe(expected.held);
      modelRelease(model.handles.at(-1)!);
      await real.ledger.release(answer as Reservation);
      real.reservations.push(answer as Reservation);
    } else expect(answer).toBeInstanceOf(BudgetExhaustedError);
    expect((await real.ledger.snapshot(real.ids[run])).reservedMicros).toBe(0);
  }
  await check(model, real);
}

describe('CostLedger against its model', () => {
  it('agrees with the model after every step of random sequences, and keeps the budget', async () => {
    const client = redis.client();
    const ledger = new CostLedger(client);
    let sequence = 0;
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        sequence += 1;
        const model = newModel();
        const real: Real = { ledger, client, ids: { r1: `model-${sequence}-r1`, r2: `model-${sequence}-r2` }, reservations: [] };
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        await everyHolderDies(model, real);
      }),
      { numRuns: 300, verbose: fc.VerbosityLevel.Verbose },
    );
  }, 120_000);
});

type Outcome = 'settle' | 'unconfirmed' | 'late-settle' | 'release' | 'killed';
interface WorkerStep {
  provider: Provider;
  micros: number;
  /** The real cost, in percent of what the reservation holds. */
  percent: number;
  outcome: Outcome;
}

describe('CostLedger under concurrent workers', () => {
  it('keeps the budget and the books with workers reserving, settling, timing out and dying in parallel from several clients', async () => {
    const clients = [redis.client(), redis.client(), redis.client(), redis.client()];
    const ledgers = clients.map((c) => new CostLedger(c));
    const budgetMicros = 60_000;
    const step = fc.record<WorkerStep>({
      provider,
      micros: fc.integer({ min: 0, max: 6_000 }),
      percent: fc.integer({ min: 0, max: 180 }),
      outcome: fc.constantFrom<Outcome>('settle', 'settle', 'unconfirmed', 'late-settle', 'release', 'killed'),
    });
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(step, { minLength: 5, maxLength: 25 }), { minLength: 4, maxLength: 10 }), async (workers) => {
        round += 1;
        const runId = `parallel-${round}`;
        await ledgers[0]!.setBudget(runId, budgetMicros);
        const costs: number[] = [];
        const overruns: Record<Provider, number[]> = { tavily: [], llm: [] };
        const firstOverruns: Record<Provider, number> = { tavily: 0, llm: 0 };
        const unconfirmed: number[] = [];
        const book = (p: Provider, cost: number, result: SettleResult) => {
          costs.push(cost);
          overruns[p].push(result.overrunMicros);
          if (result.firstOverrun) firstOverruns[p] += 1;
        };

        let sampling = true;
        const sampler = (async () => {
          while (sampling) {
            assertWithinBudget(await ledgers[0]!.snapshot(runId), budgetMicros);
            await new Promise((r) => setTimeout(r, 1));
          }
        })();
        await Promise.all(
          workers.map(async (plan, w) => {
            const ledger = ledgers[w % ledgers.length] as CostLedger;
            for (const s of plan) {
              let reservation: Reservation;
              for (;;) {
                try {
                  reservation = await ledger.reserve(runId, s.provider, s.micros);
                  break;
                } catch (error) {
                  // Others' calls in flight: they settle or are released soon, then try again.
                  if (error instanceof BudgetInFlightError) await new Promise((r) => setTimeout(r, 1));
                  else if (error instanceof BudgetExhaustedError) return;
                  else throw error;
                }
              }
              const cost = Math.floor((reservation.micros * s.percent) / 100);
              switch (s.outcome) {
                case 'settle':
                  book(s.provider, cost, await ledger.settle(reservation, { costMicros: cost }));
                  break;
                case 'unconfirmed':
                  await ledger.bookUnconfirmed(reservation);
                  unconfirmed.push(reservation.micros);
                  break;
                case 'late-settle':
                  await ledger.bookUnconfirmed(reservation);
                  book(s.provider, cost, await ledger.settle(reservation, { costMicros: cost }));
                  break;
                case 'release':
                  await ledger.release(reservation);
                  break;
                case 'killed':
                  // The worker dies holding it: its expiry passes and nobody settles.
                  await clients[0]!.zadd(runKeys(runId).reservations, 'XX', 0, reservation.id);
                  unconfirmed.push(reservation.micros);
                  return;
              }
            }
          }),
        );
        sampling = false;
        await sampler;

        // The next reservation sweeps the dead workers' reservations into unconfirmed spend.
        const sweep = await ledgers[0]!.reserve(runId, 'llm', 0).catch((e: unknown) => e);
        if (!(sweep instanceof BudgetExhaustedError)) await ledgers[0]!.release(sweep as Reservation);
        const snap = await ledgers[0]!.snapshot(runId);
        assertWithinBudget(snap, budgetMicros);
        expect(snap).toMatchObject({ spentMicros: sum(costs), unconfirmedMicros: sum(unconfirmed), reservedMicros: 0 });
        for (const p of PROVIDERS) {
          expect(snap.providers[p].overrunMicros).toBe(sum(overruns[p]));
          // The caller warns once per run and provider, whichever worker overran first.
          expect(firstOverruns[p]).toBe(snap.providers[p].overrunMicros > 0 ? 1 : 0);
        }
        expect(snap.overrunMicros).toBe(sum(overruns.tavily) + sum(overruns.llm));
      }),
      { numRuns: 10, verbose: fc.VerbosityLevel.Verbose },
    );
  }, 60_000);
});
