// What every Pool facade does with a call before an engine runs it: check
// the task and its options, make the job, and hand its tasks over. The
// local pool (pool.ts) and the Redis pool (redis.ts) differ only in the
// engine behind this.
import { checkTimeout } from "./_deadline.ts";
import {
  collect,
  MapJob,
  SingleJob,
  StreamJob,
  type TaskRunner,
} from "./_jobs.ts";
import type { SubmitOptions } from "./_types.ts";
import {
  type AnyFunction,
  describeFunction,
  describeValue,
  functionSource,
} from "./_values.ts";
import {
  APPLY,
  type FunctionRef,
  STARMAP_CHUNK,
  type TaskKind,
} from "./_wire.ts";

/** What a pool facade needs from its engine beyond running tasks. */
export interface PoolEngine extends TaskRunner {
  /** @throws {Error} when the pool takes no more tasks. */
  checkOpen(): void;
  /** The reference under which the engine sends an inline function's source. */
  inline(code: string): FunctionRef;
}

/** The options of a map-family call the submitter reads. */
export interface ChunkOptions extends SubmitOptions {
  chunksize?: number;
}

/** The options of an apply call the submitter reads. */
export interface CallbackOptions<T> extends SubmitOptions {
  callback?: (result: T) => void;
  errorCallback?: (error: unknown) => void;
}

/** How many workers a facade's defaults are sized for, asked at each call. */
export interface Sizing {
  /** Workers that share a map: its default chunk size gives each about four chunks. */
  workers(): number;
  /** Chunks an imap keeps in flight. */
  window(): number;
}

/** Turns pool calls into jobs on an engine. */
export class Submitter {
  readonly #engine: PoolEngine;
  readonly #sizing: Sizing;
  // The engine runs the tasks; sizing gives the defaults of map and imap.
  constructor(engine: PoolEngine, sizing: Sizing) {
    this.#engine = engine;
    this.#sizing = sizing;
  }

  // apply and applyAsync: one task, one job.
  apply<T>(
    task: string | AnyFunction,
    args: unknown[],
    options: CallbackOptions<T> | undefined,
  ): SingleJob<T> {
    this.#engine.checkOpen();
    const fn = this.#functionRef(task);
    if (!Array.isArray(args)) {
      throw new TypeError(
        `Expected the task's arguments as an array, got ${
          describeValue(args)
        }: pass [${typeof args === "string" ? JSON.stringify(args) : "arg"}]`,
      );
    }
    checkTimeout(options?.timeout);
    const job = new SingleJob<T>(options?.callback, options?.errorCallback);
    const submission = this.#engine.task(
      fn,
      APPLY,
      args,
      options?.transfer ? "transferred" : "arguments",
      job,
      0,
      options,
    );
    this.#engine.submit(submission);
    return job;
  }

  // map, mapAsync, starmap, starmapAsync: the whole input, then chunks.
  async mapAll(
    task: string | AnyFunction,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    kind: TaskKind,
    options: ChunkOptions | undefined,
  ): Promise<unknown[]> {
    this.#engine.checkOpen();
    const fn = this.#functionRef(task);
    checkTimeout(options?.timeout);
    checkPositive(options?.chunksize, "chunksize");
    const all = await collect(items);
    if (kind === STARMAP_CHUNK) checkTuples(all);
    const chunksize = options?.chunksize ??
      Math.max(1, Math.ceil(all.length / (this.#sizing.workers() * 4)));
    return new MapJob(this.#engine).run(fn, kind, all, chunksize, options);
  }

  // imap and imapUnordered: a lazy stream of chunks.
  stream(
    task: string | AnyFunction,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    ordered: boolean,
    options: ChunkOptions | undefined,
  ): AsyncGenerator<unknown, void, undefined> {
    // Checked when iteration starts, as the body of a generator runs then.
    const start = (): FunctionRef => {
      this.#engine.checkOpen();
      const fn = this.#functionRef(task);
      checkTimeout(options?.timeout);
      checkPositive(options?.chunksize, "chunksize");
      return fn;
    };
    return new StreamJob(this.#engine).results(
      start,
      items,
      options?.chunksize ?? 1,
      this.#sizing.window(),
      ordered,
      options,
    );
  }

  // A task is an export name, or a function sent by its source.
  #functionRef(task: unknown): FunctionRef {
    if (typeof task === "string") return task;
    if (typeof task !== "function") {
      const iterable = typeof task === "object" && task !== null &&
        (Symbol.iterator in task || Symbol.asyncIterator in task);
      throw new TypeError(
        `Expected the task to be an export name of the task module or a function, got ${
          describeValue(task)
        }: ${
          iterable
            ? "pass the function itself, not what calling it returned; items go in the items argument of map or imap"
            : 'pass the name of an exported function, e.g. "square", or a self-contained function, e.g. (x) => x * x'
        }`,
      );
    }
    const kind = describeFunction(task as AnyFunction);
    if (kind.endsWith("generator function")) {
      throw new TypeError(
        `Cannot run ${kind}${
          (task as AnyFunction).name ? ` ("${(task as AnyFunction).name}")` : ""
        } as a task: the generator it returns cannot be copied to the caller: return an array of the items instead (Array.from(...)), or make each item a task of imap`,
      );
    }
    return this.#engine.inline(functionSource(task as AnyFunction));
  }
}

// Counts and sizes given as options must be whole and positive.
/** @throws {RangeError} when `value` is given and is not a whole number >= 1. */
export function checkPositive(value: unknown, name: string): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Expected ${name} to be a whole number >= 1, got "${
        String(value)
      }": pass 1 or more, or leave it out`,
    );
  }
}

// Each item of starmap is spread into the task's arguments.
function checkTuples(items: unknown[]): void {
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as Partial<Iterable<unknown>> | null | undefined;
    if (typeof item?.[Symbol.iterator] === "function") continue;
    throw new TypeError(
      `Expected each item of starmap to be an array of arguments, got ${
        describeValue(items[i])
      } at index ${i}: pass [[1, 2], [3, 4]] for f(1, 2) and f(3, 4), or use map for one argument per item`,
    );
  }
}
