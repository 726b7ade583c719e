// What a submission becomes: tasks (one per call or chunk) grouped in a job
// that collects their outcomes, as CPython's pool.py has ApplyResult,
// MapResult and IMapIterator complete through one `_set`. Jobs know nothing
// of workers: they hand tasks to a `TaskRunner` (the dispatcher) and are
// told each outcome through `settle`.
import type { LongTimer } from "./_deadline.ts";
import type { AnyCore } from "./_share.ts";
import type { SubmitOptions } from "./_types.ts";
import { describeValue } from "./_values.ts";
import { type FunctionRef, MAP_CHUNK, type TaskKind } from "./_wire.ts";

/**
 * Where a task is: made but not yet in the queue (waiting for room under
 * `maxQueue`), waiting for a worker, sent to one, or ended.
 */
export type TaskState = "new" | "queued" | "running" | "done";

/**
 * How a task's values are copied when it is made: arguments of one call
 * (serialized), items of a chunk (packed when numbers), or not at all, since
 * the caller transfers them.
 */
export type CopyMode = "arguments" | "items" | "transferred";

/** Receives the outcome of the tasks of one submission. */
export interface Job {
  /** Called once per task: `ok` with its result, or not with its error. */
  settle(task: Task, ok: boolean, value: unknown): void;
}

/** What jobs need from the engine that runs their tasks. */
export interface TaskRunner {
  /** Makes a task of `values`, copied as `copy` says. */
  task(
    fn: FunctionRef,
    kind: TaskKind,
    values: unknown[],
    copy: CopyMode,
    job: Job,
    index: number,
    options: SubmitOptions | undefined,
  ): Task;
  /** Queues a task; returns a promise when it must first wait for room. */
  submit(task: Task): Promise<void> | undefined;
  /** Sends what is queued now instead of at the end of this turn. */
  flush(): void;
  /** Drops tasks not yet sent, without settling them. */
  cancel(tasks: Iterable<Task>): void;
}

/** One message's worth of work: a call, or a chunk of a map. */
export class Task<W = unknown> {
  state: TaskState = "new";
  /** The worker running it (state `"running"`). */
  worker: W | undefined = undefined;
  /** The queues and pipes its arguments hold, shared with its worker when sent. */
  cores: AnyCore[] | undefined = undefined;
  timer: LongTimer | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;
  constructor(
    readonly fn: FunctionRef,
    /** A `TaskKind`, plus `SHARED` or `SERIALIZED` for what the payload is. */
    readonly kind: number,
    public payload: unknown,
    readonly job: Job,
    readonly index: number,
    readonly options: SubmitOptions | undefined,
  ) {}

  /** Tasks with a timeout or a signal run alone, so that stopping them stops nothing else. */
  get isolated(): boolean {
    return this.options !== undefined &&
      (isLimit(this.options.timeout) || this.options.signal !== undefined);
  }
}

// `Infinity` is how a caller says "no limit" and must not arm a timer.
/** Whether a `timeout` option limits anything. */
export function isLimit(timeout: number | undefined): timeout is number {
  return timeout !== undefined && timeout !== Number.POSITIVE_INFINITY;
}

/** A job with one task: `apply`, `applyAsync`. */
export class SingleJob<T> implements Job {
  readonly promise: Promise<T>;
  #resolve!: (value: T) => void;
  #reject!: (error: unknown) => void;
  // Callbacks are Python's apply_async callback and error_callback.
  constructor(
    callback?: (result: T) => void,
    errorCallback?: (error: unknown) => void,
  ) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // The caller may never look at the result, as Python allows.
    this.promise.catch(() => {});
    if (callback || errorCallback) this.promise.then(callback, errorCallback);
  }
  // The one task's outcome is the job's.
  settle(_task: Task, ok: boolean, value: unknown): void {
    if (ok) this.#resolve(value as T);
    else this.#reject(value);
  }
}

/** A job with many chunks whose results form one array: `map`, `starmap`. */
export class MapJob implements Job {
  readonly promise: Promise<unknown[]>;
  readonly #tasks: Task[] = [];
  #chunks: unknown[][] = [];
  #left = 0;
  #runner: TaskRunner;
  #resolve!: (value: unknown[]) => void;
  #reject!: (error: unknown) => void;
  // A map fails as a whole: its runner is where the other chunks are dropped.
  constructor(runner: TaskRunner) {
    this.#runner = runner;
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.promise.catch(() => {});
  }

  // Chunks the items and submits them, waiting for room under maxQueue.
  async run(
    fn: FunctionRef,
    kind: TaskKind,
    items: unknown[],
    chunksize: number,
    options: SubmitOptions | undefined,
  ): Promise<unknown[]> {
    const chunkCount = Math.ceil(items.length / chunksize);
    this.#chunks = new Array(chunkCount);
    this.#left = chunkCount;
    if (chunkCount === 0) this.#resolve([]);
    for (let index = 0; index < chunkCount; index++) {
      const chunk = items.slice(index * chunksize, (index + 1) * chunksize);
      const task = this.#runner.task(
        fn,
        kind,
        chunk,
        "items",
        this,
        index,
        options,
      );
      this.#tasks.push(task);
      const waiting = this.#runner.submit(task);
      if (waiting) await waiting;
      // Large chunks leave as they are made, so that workers compute while
      // the rest are copied; small ones go in batches.
      if (chunk.length >= EAGER_CHUNK) this.#runner.flush();
    }
    return this.promise;
  }

  // Places a chunk's results; the first error fails the map.
  settle(task: Task, ok: boolean, value: unknown): void {
    if (this.#left === 0) return;
    if (!ok) {
      this.#left = 0;
      this.#runner.cancel(this.#tasks);
      this.#reject(value);
      return;
    }
    this.#chunks[task.index] = value as unknown[];
    if (--this.#left === 0) this.#resolve(concat(this.#chunks));
  }
}

/** `map` chunks of at least this many items are sent as soon as they are made. */
const EAGER_CHUNK = 256;

// `flat()` is much slower on large inputs.
/** Joins chunk results into one array. */
function concat(chunks: unknown[][]): unknown[] {
  if (chunks.length === 1) return chunks[0]!;
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  const all = new Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i++) all[offset + i] = chunk[i];
    offset += chunk.length;
  }
  return all;
}

/**
 * A job that streams chunk results to an iterator: `imap`, `imapUnordered`.
 * It pulls input lazily, keeps at most `window` chunks in flight, and yields
 * in input order or in arrival order.
 */
export class StreamJob implements Job {
  readonly #pending = new Set<Task>();
  /** Settled chunks: by index (ordered) or in arrival order (unordered). */
  readonly #settled = new Map<number, { ok: boolean; value: unknown }>();
  readonly #arrivals: number[] = [];
  #wake: (() => void) | undefined;
  #runner: TaskRunner;
  // The runner receives the chunks and drops the pending ones on exit.
  constructor(runner: TaskRunner) {
    this.#runner = runner;
  }

  // Files a chunk's outcome and wakes the iterator.
  settle(task: Task, ok: boolean, value: unknown): void {
    this.#pending.delete(task);
    this.#settled.set(task.index, { ok, value });
    this.#arrivals.push(task.index);
    this.#wake?.();
  }

  // The body of imap: pull, submit, yield, and clean up however it ends;
  // `start` checks the call, on the first pull as a generator's body runs.
  async *results(
    start: () => FunctionRef,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    chunksize: number,
    window: number,
    ordered: boolean,
    options: SubmitOptions | undefined,
  ): AsyncGenerator<unknown, void, undefined> {
    const fn = start();
    const source = iteratorOf(items);
    let submitted = 0;
    let yielded = 0;
    let exhausted = false;
    try {
      while (true) {
        while (
          !exhausted && this.#pending.size + this.#settled.size < window
        ) {
          const pulled = pull(source, chunksize);
          const chunk = Array.isArray(pulled) ? pulled : await pulled;
          if (chunk.length < chunksize) exhausted = true;
          if (chunk.length === 0) break;
          const next = this.#runner.task(
            fn,
            MAP_CHUNK,
            chunk,
            "items",
            this,
            submitted++,
            options,
          );
          this.#pending.add(next);
          const waiting = this.#runner.submit(next);
          if (waiting) await waiting;
        }
        if (yielded === submitted && exhausted) return;
        const key = ordered ? yielded : this.#arrivals[0];
        const outcome = key === undefined ? undefined : this.#settled.get(key);
        if (outcome === undefined) {
          await new Promise<void>((resolve) => this.#wake = resolve);
          continue;
        }
        this.#settled.delete(key!);
        if (!ordered) this.#arrivals.shift();
        yielded++;
        if (!outcome.ok) throw outcome.value;
        yield* outcome.value as unknown[];
      }
    } finally {
      this.#runner.cancel([...this.#pending]);
      if (!exhausted) await source.iterator.return?.();
    }
  }
}

/** A sync or async iterator, told apart once. */
export type AnyIterator =
  | { sync: true; iterator: Iterator<unknown> }
  | { sync: false; iterator: AsyncIterator<unknown> };

// Items may come as any iterable, sync or async; anything else is refused
// with a message that says what to pass.
/** The iterator of `items`. */
export function iteratorOf(
  items: Iterable<unknown> | AsyncIterable<unknown>,
): AnyIterator {
  // Primitives other than null and undefined have properties to look up.
  const candidate = items as
    | Partial<
      AsyncIterable<unknown> & Iterable<unknown>
    >
    | null
    | undefined;
  const asyncIterator = candidate?.[Symbol.asyncIterator];
  if (typeof asyncIterator === "function") {
    return { sync: false, iterator: asyncIterator.call(items) };
  }
  const iterator = candidate?.[Symbol.iterator];
  if (typeof iterator === "function") {
    return { sync: true, iterator: iterator.call(items) };
  }
  throw new TypeError(
    `Expected the items as an iterable or async iterable (an array, a Set, a generator…), got ${
      describeValue(items)
    }: pass the items in an array or another iterable${
      typeof items === "number" ? `, e.g. [${items}]` : ""
    }`,
  );
}

// A sync source is read without a promise per chunk, which costs imap.
/** Pulls up to `count` items: at once from a sync iterator, else as a promise. */
export function pull(
  source: AnyIterator,
  count: number,
): unknown[] | Promise<unknown[]> {
  const chunk: unknown[] = [];
  if (source.sync) {
    while (chunk.length < count) {
      const next = source.iterator.next();
      if (next.done) break;
      chunk.push(next.value);
    }
    return chunk;
  }
  const iterator = source.iterator;
  return (async () => {
    while (chunk.length < count) {
      const next = await iterator.next();
      if (next.done) break;
      chunk.push(next.value);
    }
    return chunk;
  })();
}

// map reads its whole input before chunking it.
/** All the items, as an array (the same array when given one). */
export async function collect(
  items: Iterable<unknown> | AsyncIterable<unknown>,
): Promise<unknown[]> {
  if (Array.isArray(items)) return items;
  const all = pull(iteratorOf(items), Number.POSITIVE_INFINITY);
  return Array.isArray(all) ? all : await all;
}
