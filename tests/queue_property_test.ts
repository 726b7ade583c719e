// Property-based tests of queues and pipes (fast-check): random
// interleavings of put, putNowait, get, getNowait and close against a model
// of a FIFO queue, here and through a worker of each backend; and random
// values sent through queues and pipes, which must arrive as structured
// clone copies them. A failure prints the shortest sequence or value found,
// and the seed that finds it again.
import { after, before, describe, test } from "node:test";
import { deepStrictEqual, equal, fail, ok } from "node:assert/strict";
import fc from "fast-check";
import { type Backend, Pipe, Pool, Queue } from "../mod.ts";
import type { Op, OpOutcome } from "./fixtures/property_tasks.ts";
import { outcomeOf } from "./fixtures/property_tasks.ts";
import { delay, fixtureUrl } from "./_helpers.ts";

type Tasks = typeof import("./fixtures/property_tasks.ts");
const tasks = fixtureUrl("property_tasks");

// ---- the model ------------------------------------------------------------

/** An operation that waits (a put on a full queue, a get on an empty one). */
interface Waiting {
  /** What a waiting put puts. */
  value: number;
  /** Set once the operation settles. */
  outcome: OpOutcome | undefined;
  promise: Promise<void>;
}

/** What the queue should hold and who should be waiting. */
interface Model {
  maxsize: number;
  items: number[];
  closed: boolean;
  puts: Waiting[];
  gets: Waiting[];
  /** Items are numbered, so that each one can be told apart. */
  next: number;
}

interface Real {
  q: Queue<number>;
  pools: Partial<Record<Backend, Pool<Tasks>>>;
}

function isFull(model: Readonly<Model>): boolean {
  return model.maxsize > 0 && model.items.length >= model.maxsize;
}

/** What putting `value` without waiting does to the model. */
function modelPut(model: Model, value: number): OpOutcome {
  if (model.closed) return "closed";
  if (isFull(model)) return "full";
  model.items.push(value);
  return "ok";
}

/** What getting without waiting does to the model. */
function modelGet(model: Model): OpOutcome {
  if (model.items.length > 0) return model.items.shift()!;
  return model.closed ? "closed" : "empty";
}

function waiting(value: number, run: () => Promise<unknown>): Waiting {
  const entry: Waiting = {
    value,
    outcome: undefined,
    promise: Promise.resolve(),
  };
  entry.promise = outcomeOf(run).then(
    (outcome) => void (entry.outcome = outcome),
    (error) => void (entry.outcome = `threw ${error}` as OpOutcome),
  );
  return entry;
}

/** The first of `list` to settle, waiting up to 2 s. */
async function firstSettled(list: Waiting[]): Promise<Waiting | undefined> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    const done = list.find((entry) => entry.outcome !== undefined);
    if (done !== undefined || Date.now() > deadline) return done;
    await delay(1);
  }
}

/**
 * Lets waiting operations finish as the model says they must: a get that
 * made room lets exactly one waiting put in, an item that arrived goes to
 * exactly one waiting get (which one is the queue's choice, as in Python:
 * wake-ups are not promised in order). Nothing else may settle.
 */
async function settle(model: Model): Promise<void> {
  for (;;) {
    if (model.puts.length > 0 && !isFull(model)) {
      const done = await firstSettled(model.puts);
      if (done === undefined) fail("a put waiting for room never got it");
      equal(done.outcome, "ok", "a waiting put that got room");
      model.puts.splice(model.puts.indexOf(done), 1);
      model.items.push(done.value);
      continue;
    }
    if (model.gets.length > 0 && model.items.length > 0) {
      const done = await firstSettled(model.gets);
      if (done === undefined) fail("a waiting get never got the item put");
      equal(done.outcome, model.items.shift(), "a waiting get's item");
      model.gets.splice(model.gets.indexOf(done), 1);
      continue;
    }
    break;
  }
  await delay(0);
  for (const entry of [...model.puts, ...model.gets]) {
    equal(entry.outcome, undefined, "an operation that should still wait");
  }
}

// ---- commands ---------------------------------------------------------------

type QueueCommand = fc.AsyncCommand<Model, Real>;

class PutNowait implements QueueCommand {
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    const value = model.next++;
    const got = await outcomeOf(() => real.q.putNowait(value));
    equal(got, modelPut(model, value), `putNowait(${value})`);
    await settle(model);
  }
  toString = (): string => "putNowait";
}

class Put implements QueueCommand {
  /** `undefined`: wait as long as it takes. */
  constructor(readonly timeout: number | undefined) {}
  // Two waiting puts at most keep runs short.
  check = (model: Readonly<Model>): boolean =>
    this.timeout !== undefined || model.puts.length < 2;
  async run(model: Model, real: Real): Promise<void> {
    const value = model.next++;
    if (!model.closed && isFull(model) && this.timeout === undefined) {
      model.puts.push(waiting(value, () => real.q.put(value)));
    } else {
      const got = await outcomeOf(() =>
        real.q.put(value, { timeout: this.timeout })
      );
      equal(got, modelPut(model, value), `put(${value})`);
    }
    await settle(model);
  }
  toString = (): string => `put(timeout ${this.timeout})`;
}

class GetNowait implements QueueCommand {
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    const got = await outcomeOf(() => real.q.getNowait());
    equal(got, modelGet(model), "getNowait()");
    await settle(model);
  }
  toString = (): string => "getNowait";
}

class Get implements QueueCommand {
  constructor(readonly timeout: number | undefined) {}
  check = (model: Readonly<Model>): boolean =>
    this.timeout !== undefined || model.gets.length < 2;
  async run(model: Model, real: Real): Promise<void> {
    if (
      !model.closed && model.items.length === 0 && this.timeout === undefined
    ) {
      model.gets.push(waiting(-1, () => real.q.get()));
    } else {
      const got = await outcomeOf(() => real.q.get({ timeout: this.timeout }));
      equal(got, modelGet(model), "get()");
    }
    await settle(model);
  }
  toString = (): string => `get(timeout ${this.timeout})`;
}

class Close implements QueueCommand {
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    real.q.close();
    model.closed = true;
    // Whoever waits gives up: no room or item can come any more.
    for (const entry of [...model.puts, ...model.gets]) {
      const done = await firstSettled([entry]);
      equal(
        done?.outcome,
        "closed",
        "a waiting operation when the queue closed",
      );
    }
    model.puts = [];
    model.gets = [];
    await settle(model);
  }
  toString = (): string => "close";
}

class Sizes implements QueueCommand {
  check = (): boolean => true;
  run(model: Model, real: Real): Promise<void> {
    equal(real.q.qsize(), model.items.length, "qsize()");
    equal(real.q.empty(), model.items.length === 0, "empty()");
    equal(real.q.full(), isFull(model), "full()");
    equal(real.q.closed, model.closed, "closed");
    return Promise.resolve();
  }
  toString = (): string => "sizes";
}

/**
 * A worker runs a few operations in a row on the same queue. Only where
 * the outcome is certain: nobody waits here meanwhile, and a get that
 * should find nothing waits 20 ms (in a child process, an item may be on
 * its way; there `getNowait` and `qsize` are as approximate as Python's).
 */
class Remote implements QueueCommand {
  constructor(readonly backend: Backend, readonly kinds: Op["kind"][]) {}
  check = (model: Readonly<Model>): boolean =>
    model.puts.length === 0 && model.gets.length === 0;
  async run(model: Model, real: Real): Promise<void> {
    const ops: Op[] = [];
    const expected: OpOutcome[] = [];
    for (const kind of this.kinds) {
      if (kind === "put" || kind === "putNowait") {
        const value = model.next++;
        const outcome = modelPut(model, value);
        expected.push(outcome);
        ops.push({ kind, value, timeout: outcome === "full" ? 20 : 2_000 });
      } else if (kind === "get" || kind === "getNowait") {
        const outcome = modelGet(model);
        expected.push(outcome);
        ops.push({ kind, timeout: outcome === "empty" ? 20 : 2_000 });
      } else if (kind === "close") {
        model.closed = true;
        expected.push("ok");
        ops.push({ kind });
      } else {
        expected.push(model.items.length);
        ops.push({ kind });
      }
    }
    const got = await real.pools[this.backend]!.apply("runOps", [real.q, ops]);
    deepStrictEqual(got, expected, `${this.backend} worker ran ${this}`);
    await settle(model);
  }
  toString = (): string => `${this.backend}[${this.kinds.join(",")}]`;
}

const localCommands = [
  fc.constant(new PutNowait()),
  fc.constantFrom(new Put(undefined), new Put(5)),
  fc.constant(new GetNowait()),
  fc.constantFrom(new Get(undefined), new Get(5)),
  fc.constant(new Close()),
  fc.constant(new Sizes()),
];

function remoteCommand(backend: Backend): fc.Arbitrary<QueueCommand> {
  // In a child process these two are approximate, as in Python.
  const kinds: Op["kind"][] = backend === "worker"
    ? ["put", "putNowait", "get", "getNowait", "close", "qsize"]
    : ["put", "putNowait", "get", "close"];
  return fc.array(fc.constantFrom(...kinds), { minLength: 1, maxLength: 6 })
    .map((chosen) => new Remote(backend, chosen));
}

/** Runs the commands on a fresh queue of `maxsize` and its model. */
async function runModel(
  maxsize: number,
  commands: Iterable<QueueCommand>,
  pools: Real["pools"],
): Promise<void> {
  const model: Model = {
    maxsize,
    items: [],
    closed: false,
    puts: [],
    gets: [],
    next: 0,
  };
  const real: Real = { q: new Queue<number>({ maxsize }), pools };
  try {
    await fc.asyncModelRun(() => ({ model, real }), commands);
  } finally {
    // Nobody may be left waiting on a queue the test forgets.
    real.q.close();
    await Promise.all([...model.puts, ...model.gets].map((w) => w.promise));
  }
}

const maxsizes = fc.integer({ min: 0, max: 4 });

/**
 * Bounds a property's time, runs and shrinking together: a failure found is
 * still reported (with the smallest case found by then), and the file stays
 * quick even when a property fails or the machine is busy.
 */
function timeLimit(ms: number): fc.Parameters<unknown> {
  return { interruptAfterTimeLimit: ms };
}

describe("Queue against a model of a FIFO queue", () => {
  test("in one thread: put, putNowait, get, getNowait, close, waiting and not", async () => {
    await fc.assert(
      fc.asyncProperty(
        maxsizes,
        fc.commands(localCommands, { maxCommands: 40 }),
        (maxsize, commands) => runModel(maxsize, commands, {}),
      ),
      { numRuns: 150, ...timeLimit(6_000) },
    );
  });

  for (const backend of ["worker", "process"] as Backend[]) {
    describe(`with a ${backend} worker`, () => {
      let pool: Pool<Tasks>;
      before(() => {
        pool = new Pool<Tasks>(tasks, { processes: 1, backend });
      });
      after(() => pool.terminate());

      test("operations here and in the worker, interleaved", async () => {
        await fc.assert(
          fc.asyncProperty(
            maxsizes,
            fc.commands([...localCommands, remoteCommand(backend)], {
              maxCommands: 25,
            }),
            (maxsize, commands) =>
              runModel(maxsize, commands, { [backend]: pool }),
          ),
          { numRuns: 40, ...timeLimit(6_000) },
        );
      });
    });
  }
});

// ---- values -----------------------------------------------------------------

const utf16Unit = fc.integer({ min: 0, max: 0xffff }).map((unit) =>
  String.fromCharCode(unit)
);

/**
 * Any value structured clone can copy: nested objects, arrays (sparse too),
 * maps, sets, dates, typed arrays, bigints, boxed primitives, -0 and NaN,
 * strings of any UTF-16 units (lone surrogates too), and bytes, plain and
 * as views into a larger buffer.
 */
const cloneable: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({
    maxDepth: 3,
    maxKeys: 5,
    withBigInt: true,
    withBoxedValues: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withSparseArray: true,
    withTypedArray: true,
    stringUnit: "binary",
  }),
  // Any UTF-16 code units: a lone surrogate in one string of three or so.
  fc.string({ unit: utf16Unit }),
  fc.double(),
  fc.integer(),
  fc.uint8Array({ maxLength: 64 }),
  fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(64)).map((
    [bytes, start],
  ) => bytes.subarray(Math.min(start, bytes.length))),
);

const batches = fc.array(cloneable, { minLength: 1, maxLength: 8 });

/** `value` as it must arrive: what structured clone makes of it. */
function cloned(value: unknown): unknown {
  return structuredClone(value);
}

// Bun's deepStrictEqual tells apart maps whose keys are equal objects (two
// `new Boolean(false)` keys): compare maps and sets as lists of entries.
/** `value` with every map and set turned into its entries, in order. */
function entriesOf(value: unknown): unknown {
  if (value instanceof Map) {
    return { map: [...value].map(([k, v]) => [entriesOf(k), entriesOf(v)]) };
  }
  if (value instanceof Set) return { set: [...value].map(entriesOf) };
  if (Array.isArray(value)) return value.map(entriesOf);
  if (
    typeof value === "object" && value !== null &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, entriesOf(v)]),
    );
  }
  return value;
}

/** Asserts that `actual` is what structured clone makes of `value`. */
function arrivedAs(actual: unknown, value: unknown): void {
  deepStrictEqual(entriesOf(actual), entriesOf(cloned(value)));
}

describe("values arrive as structured clone copies them", () => {
  // A fresh queue or pipe per run: a run that fails midway leaves items
  // behind, which must not look like the next run's failure.
  test("through a Queue", async () => {
    await fc.assert(
      fc.asyncProperty(batches, async (values) => {
        const q = new Queue<unknown>();
        for (const value of values) await q.put(value);
        for (const value of values) {
          arrivedAs(await q.get(), value);
        }
        ok(q.empty());
      }),
      { numRuns: 200, ...timeLimit(3_000) },
    );
  });

  test("through a Pipe", async () => {
    await fc.assert(
      fc.asyncProperty(batches, async (values) => {
        const [left, right] = Pipe<unknown>();
        for (const value of values) left.send(value);
        for (const value of values) {
          arrivedAs(await right.recv(), value);
        }
        left.close();
      }),
      { numRuns: 200, ...timeLimit(3_000) },
    );
  });

  for (const backend of ["worker", "process"] as Backend[]) {
    describe(`there and back through a ${backend} worker`, () => {
      let pool: Pool<Tasks>;
      before(() => {
        pool = new Pool<Tasks>(tasks, { processes: 1, backend });
      });
      after(() => pool.terminate());

      test("a Queue", async () => {
        await fc.assert(
          fc.asyncProperty(batches, async (values) => {
            const there = new Queue<unknown>();
            const back = new Queue<unknown>();
            for (const value of values) await there.put(value);
            await pool.apply("echoQueue", [there, back, values.length]);
            for (const value of values) {
              arrivedAs(await back.get(), value);
            }
          }),
          { numRuns: 30, ...timeLimit(3_000) },
        );
      });

      test("a Pipe", async () => {
        await fc.assert(
          fc.asyncProperty(batches, async (values) => {
            const [here, far] = Pipe<unknown>();
            const echoing = pool.apply("echoPipe", [far, values.length]);
            try {
              for (const value of values) here.send(value);
              for (const value of values) {
                arrivedAs(await here.recv(), value);
              }
            } finally {
              // The worker is free for the next run, whatever this one found.
              await echoing;
              here.close();
            }
          }),
          { numRuns: 30, ...timeLimit(3_000) },
        );
      });
    });
  }
});
