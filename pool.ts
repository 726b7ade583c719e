/**
 * Python's `multiprocessing.Pool` for Deno and Node: a pool of workers —
 * worker threads, or child processes of the same runtime — that run tasks
 * from a module (named by export, type-checked) or self-contained functions.
 *
 * Tasks are batched to the workers and their results batched back, so tiny
 * tasks cost little; long tasks are handed out one at a time, so the load
 * stays even. A worker that dies mid-task fails that task alone and is
 * replaced. Timeouts are in milliseconds.
 *
 * Deno permissions: the worker backend needs `--allow-read` for this
 * package's files and the task module (Deno reads a worker's modules from
 * disk); the process backend needs `--allow-run` and `--allow-env` (it starts
 * `deno` with this process's environment), and no read access: each child
 * gets this process's permissions, or fewer with the `permissions` option,
 * which sandboxes untrusted tasks. A missing permission rejects with Deno's
 * `NotCapable` error naming the flag to add.
 *
 * ```ts
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { deepEqual } from "node:assert/strict";
 *
 * await using pool = new Pool({ processes: 2 });
 * deepEqual(await pool.map((x: number) => x * x, [1, 2, 3]), [1, 4, 9]);
 * ```
 *
 * @module
 */
import { checkTimeout, TIMED_OUT, waitAtMost } from "./_deadline.ts";
import type { Dispatcher } from "./_dispatcher.ts";
import { TimeoutError } from "./_errors.ts";
import { bare, defineInspect, marker } from "./_inspect.ts";
import { startLocalEngine } from "./_local_engine.ts";
import { Submitter } from "./_submit.ts";
import type { AnyFunction } from "./_values.ts";
import { MAP_CHUNK, STARMAP_CHUNK } from "./_wire.ts";
import type {
  Backend,
  PermissionGrant,
  PoolOptions,
  SubmitOptions,
  TaskFunction,
  WorkerPermissions,
  WorkerPermissionsObject,
} from "./_types.ts";

export { TimeoutError, WorkerExitError } from "./_errors.ts";
export type { WorkerExitErrorOptions } from "./_errors.ts";
export type {
  Backend,
  PermissionGrant,
  PoolOptions,
  SubmitOptions,
  TaskFunction,
  WorkerPermissions,
  WorkerPermissionsObject,
};

/** The tasks of a pool without a module type: any name, any arguments. */
export type UntypedTasks = Record<string, TaskFunction>;

/** The export names of `M` that are functions: the task names of a pool. */
export type TaskName<M> =
  & {
    [K in keyof M]: M[K] extends TaskFunction ? K : never;
  }[keyof M]
  & string;

/** The argument tuple of task `K` of `M`. */
export type TaskArgs<M, K extends keyof M> = M[K] extends
  (...args: infer A) => unknown ? A : never;

/** The awaited result of task `K` of `M`. */
export type TaskResult<M, K extends keyof M> = M[K] extends
  (...args: never[]) => infer R ? Awaited<R> : never;

/** Options of {@linkcode Pool.applyAsync}. */
export interface ApplyAsyncOptions<T> extends SubmitOptions {
  /** Called with the result when the task succeeds. @default {undefined} */
  callback?: (result: T) => void;
  /** Called with the error when the task fails. @default {undefined} */
  errorCallback?: (error: unknown) => void;
}

/** Options of the `map` family. */
export interface MapOptions extends Omit<SubmitOptions, "transfer"> {
  /**
   * How many items one task carries. `map` defaults to Python's choice (the
   * items split into about four chunks per worker); `imap` to 1.
   *
   * @default {see above}
   */
  chunksize?: number;
}

/** Options of {@linkcode AsyncResult.get} and {@linkcode AsyncResult.wait}. */
export interface GetOptions {
  /** Milliseconds to wait; `Infinity` (or leaving it out) waits without limit. @default {undefined} */
  timeout?: number;
}

/** What {@linkcode Pool.stats} reports. */
export interface PoolStats {
  /** The backend. */
  backend: Backend;
  /** The number of workers the pool keeps. */
  processes: number;
  /** Workers started so far, replacements included. */
  workersStarted: number;
  /** Tasks waiting for a worker. */
  queued: number;
  /** Tasks sent to workers and not finished. */
  running: number;
  /** Tasks finished successfully. */
  completed: number;
  /** Tasks that failed (threw, timed out, were aborted or lost their worker). */
  failed: number;
  /** `"running"`, `"closed"` or `"terminated"`. */
  state: "running" | "closed" | "terminated";
}

/**
 * The pending result of {@linkcode Pool.applyAsync} (and `mapAsync`,
 * `starmapAsync`): Python's `AsyncResult`. It is awaitable.
 *
 * @typeParam T The task's result.
 *
 * @example Get with a timeout
 * ```ts
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { equal } from "node:assert/strict";
 *
 * await using pool = new Pool({ processes: 1 });
 * const result = pool.applyAsync((x: number) => x * x, [20]);
 * equal(await result.get({ timeout: 5000 }), 400);
 * equal(result.ready(), true);
 * equal(result.successful(), true);
 * ```
 */
export class AsyncResult<T> implements PromiseLike<T> {
  #promise: Promise<T>;
  #state: "pending" | "fulfilled" | "rejected" = "pending";
  #outcome: unknown = undefined;

  /**
   * Wraps `promise`; made by the pool, not by users.
   *
   * @param promise The outcome.
   */
  constructor(promise: Promise<T>) {
    this.#promise = promise;
    promise.then(
      (value) => {
        this.#state = "fulfilled";
        this.#outcome = value;
      },
      (error) => {
        this.#state = "rejected";
        this.#outcome = error;
      },
    );
  }

  // Printed as Node prints a promise: AsyncResult { 16 }, { <pending> }.
  static {
    defineInspect(
      this,
      (result) =>
        result.#state === "pending"
          ? marker("<pending>")
          : result.#state === "fulfilled"
          ? bare(result.#outcome)
          : marker("<rejected>", result.#outcome),
    );
  }

  /**
   * Waits for the result.
   *
   * @param options A `timeout` in milliseconds.
   * @returns The task's result.
   * @throws {TimeoutError} when `timeout` passes first; the task runs on and the pool stays usable.
   * @throws The task's own error when it failed.
   *
   * @example Wait at most ten seconds
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 1 });
   * equal(await pool.applyAsync(() => "done").get({ timeout: 10_000 }), "done");
   * ```
   */
  async get(options: GetOptions = {}): Promise<T> {
    checkTimeout(options.timeout);
    const outcome = await waitAtMost(this.#promise, options.timeout);
    if (outcome === TIMED_OUT) {
      throw new TimeoutError(
        `The result was not ready within ${options.timeout} ms`,
      );
    }
    return outcome;
  }

  /**
   * Waits until the result is ready or `timeout` passes, without throwing.
   *
   * @param options A `timeout` in milliseconds.
   *
   * @example Wait, then look
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 1 });
   * const result = pool.applyAsync(() => 1);
   * await result.wait();
   * equal(result.ready(), true);
   * ```
   */
  async wait(options: GetOptions = {}): Promise<void> {
    checkTimeout(options.timeout);
    await waitAtMost(this.#promise.catch(() => {}), options.timeout);
  }

  /**
   * Whether the task has finished.
   *
   * @returns `true` once it succeeded or failed.
   *
   * @example Not yet
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 1 });
   * const result = pool.applyAsync(() => 1);
   * equal(result.ready(), false);
   * await result;
   * ```
   */
  ready(): boolean {
    return this.#state !== "pending";
  }

  /**
   * Whether the task finished without an error.
   *
   * @returns `true` when it succeeded.
   * @throws {Error} when the task has not finished yet, as in Python.
   *
   * @example A failed task
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 1 });
   * const result = pool.applyAsync(() => { throw new Error("no"); });
   * await result.wait();
   * equal(result.successful(), false);
   * ```
   */
  successful(): boolean {
    if (this.#state === "pending") {
      throw new Error(
        "The result is not ready: check ready() first, or await wait()",
      );
    }
    return this.#state === "fulfilled";
  }

  /**
   * Makes the result awaitable: `await result` is `await result.get()`.
   *
   * @param onfulfilled Called with the result.
   * @param onrejected Called with the error.
   * @returns A promise of what the callback returns.
   *
   * @example Await it
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 1 });
   * equal(await pool.applyAsync(() => 42), 42);
   * ```
   */
  then<A = T, B = never>(
    onfulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.#promise.then(onfulfilled, onrejected);
  }
}

/** imap keeps this many chunks per worker in flight unless maxQueue says otherwise. */
const IMAP_WINDOW_PER_WORKER = 128;
/** The parameters of a task call: its arguments (optional when it takes none), then options. */
export type ApplyParams<A extends unknown[], O> = [] extends A
  ? [args?: A, options?: O]
  : [args: A, options?: O];

/**
 * A pool of workers: Python's `multiprocessing.Pool`.
 *
 * Tasks are the exports of a module given by URL (typed with
 * `Pool<typeof import("./tasks.ts")>`), or self-contained functions, sent by
 * their source. Arguments and results are copied (structured clone).
 * `await using` terminates the pool at the end of the scope, like Python's
 * `with Pool() as pool:`. An idle pool does not keep the program alive.
 *
 * What a task leaves behind: a promise it left rejected with no handler is
 * logged to stderr ("Unhandled rejection in a task of worker PoolWorker-N")
 * and the worker goes on, as a Python pool worker does; no task fails for
 * it. An exception thrown outside any task's call, from a timer or an event
 * handler a task set up, ends its worker as it ends any Node or Deno
 * program (piscina does the same), since it may have left the worker's
 * state half-changed: the task running on that worker then fails with
 * {@linkcode WorkerExitError}, the tasks waiting for it run elsewhere, and
 * the worker is replaced.
 *
 * The module can be the main program itself: guard the main code with
 * `isMainModule(import.meta)` (from `process.ts`) so that workers, which
 * import it for its tasks, do not run it again.
 *
 * @typeParam M The task module's type: `typeof import("./tasks.ts")`.
 *
 * @example Inline functions
 * ```ts
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { deepEqual } from "node:assert/strict";
 *
 * await using pool = new Pool({ processes: 2 });
 * deepEqual(await pool.map((x: number) => x * x, [1, 2, 3]), [1, 4, 9]);
 * deepEqual(await pool.starmap((a: number, b: number) => a + b, [[1, 2], [3, 4]]), [3, 7]);
 * ```
 *
 * @example Close, then join
 * ```ts
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { deepEqual } from "node:assert/strict";
 *
 * const pool = new Pool({ processes: 2, backend: "process" });
 * const results = [1, 2, 3].map((i) => pool.applyAsync((x: number) => x * 2, [i]));
 * pool.close();
 * await pool.join();
 * deepEqual(await Promise.all(results), [2, 4, 6]);
 * ```
 */
export class Pool<M extends object = UntypedTasks> implements AsyncDisposable {
  #processes: number;
  #backend: Backend;
  #engine: Dispatcher;
  #submitter: Submitter;

  /**
   * Starts the workers.
   *
   * @param module The task module: a URL, a `file:` URL string, or a path.
   * Leave it out (or pass the options first) for inline functions only.
   * @param options The pool's options.
   * @throws {RangeError} when `processes`, `maxTasksPerChild` or `maxQueue` is not a whole number >= 1, or `processes` is over 256 and the number of CPUs.
   * @throws {RangeError} when `permissions` grants more than this process has.
   * @throws {TypeError} when `backend`, the initializer or `permissions` is
   * invalid, or `permissions` asks for a sandbox this runtime or backend
   * cannot give.
   * @throws {Error} when a worker cannot be started at all, e.g. Deno's
   * `NotCapable` naming the `--allow-*` flag this process lacks.
   */
  constructor(module?: string | URL | PoolOptions, options: PoolOptions = {}) {
    if (typeof module === "object" && !(module instanceof URL)) {
      options = module;
      module = undefined;
    }
    const local = startLocalEngine(module, options);
    this.#engine = local.engine;
    this.#processes = local.processes;
    this.#backend = local.backend;
    const processes = this.#processes;
    const window = options.maxQueue ?? processes * IMAP_WINDOW_PER_WORKER;
    this.#submitter = new Submitter(this.#engine, {
      workers: () => processes,
      window: () => window,
    });
  }

  /**
   * Runs one task and waits for its result: Python's `apply`.
   *
   * @param task An export name of the module, or a self-contained function.
   * @param params The arguments (an array; optional for tasks without any), then options.
   * @returns The task's result.
   * @throws The task's error (same built-in class, or an `Error` with its name), {@linkcode TimeoutError}, {@linkcode WorkerExitError}, or the signal's reason.
   * @throws {TypeError} when an argument cannot be copied.
   *
   * @example Apply
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 1 });
   * equal(await pool.apply((a: number, b: number) => a * b, [6, 7]), 42);
   * ```
   */
  apply<K extends TaskName<M>>(
    task: K,
    ...params: ApplyParams<TaskArgs<M, K>, SubmitOptions>
  ): Promise<TaskResult<M, K>>;
  /**
   * Runs a self-contained function (sent by its source) as one task: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param params The arguments, then options.
   * @returns The function's result.
   */
  apply<A extends unknown[], R>(
    task: (...args: A) => R,
    ...params: ApplyParams<A, SubmitOptions>
  ): Promise<Awaited<R>>;
  apply(
    task: string | AnyFunction,
    args: unknown[] = [],
    options?: SubmitOptions,
  ): Promise<unknown> {
    try {
      return this.#submitter.apply(task, args, options).promise;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Submits one task and returns at once: Python's `apply_async`.
   *
   * @param task An export name of the module, or a self-contained function.
   * @param params The arguments (an array; optional for tasks without any), then options with `callback` and `errorCallback`.
   * @returns The pending result.
   * @throws {TypeError} when an argument cannot be copied.
   * @throws {Error} when the pool is closed or terminated.
   *
   * @example Thirteen tasks, then their results
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 2 });
   * const results = Array.from({ length: 13 }, (_, i) => pool.applyAsync((n: number) => n * 2, [i]));
   * deepEqual(await Promise.all(results.map((r) => r.get())), [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]);
   * ```
   */
  applyAsync<K extends TaskName<M>>(
    task: K,
    ...params: ApplyParams<
      TaskArgs<M, K>,
      ApplyAsyncOptions<TaskResult<M, K>>
    >
  ): AsyncResult<TaskResult<M, K>>;
  /**
   * Submits a self-contained function (sent by its source) as one task: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param params The arguments, then options with `callback` and `errorCallback`.
   * @returns The pending result.
   */
  applyAsync<A extends unknown[], R>(
    task: (...args: A) => R,
    ...params: ApplyParams<A, ApplyAsyncOptions<Awaited<R>>>
  ): AsyncResult<Awaited<R>>;
  applyAsync(
    task: string | AnyFunction,
    args: unknown[] = [],
    // deno-lint-ignore no-explicit-any
    options?: ApplyAsyncOptions<any>,
  ): AsyncResult<unknown> {
    return new AsyncResult(this.#submitter.apply(task, args, options).promise);
  }

  /**
   * Applies `task` to every item and returns the results in order: Python's
   * `map`. Fails with the first error; the chunks not yet started are dropped.
   *
   * @param task An export name of the module, or a self-contained function of one argument.
   * @param items The items: any iterable or async iterable (read whole first).
   * @param options `chunksize`, `timeout` and `signal` (per chunk).
   * @returns The results, in the order of the items.
   * @throws The first task error, {@linkcode TimeoutError}, {@linkcode WorkerExitError}, or the signal's reason.
   *
   * @example Map
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 2 });
   * deepEqual(await pool.map((x: number) => x * x, [1, 2, 3]), [1, 4, 9]);
   * ```
   */
  map<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>[0]> | AsyncIterable<TaskArgs<M, K>[0]>,
    options?: MapOptions,
  ): Promise<TaskResult<M, K>[]>;
  /**
   * Applies a self-contained function to every item: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param items The items.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The results, in order.
   */
  map<T, R>(
    task: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): Promise<Awaited<R>[]>;
  map(
    task: string | AnyFunction,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    options?: MapOptions,
  ): Promise<unknown[]> {
    return this.#submitter.mapAll(task, items, MAP_CHUNK, options);
  }

  /**
   * Like {@linkcode Pool.map}, but returns at once: Python's `map_async`.
   *
   * @param task An export name of the module, or a self-contained function of one argument.
   * @param items The items.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The pending list of results.
   *
   * @example Map in the background
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 2 });
   * const result = pool.mapAsync((x: number) => x + 1, [1, 2]);
   * deepEqual(await result.get(), [2, 3]);
   * ```
   */
  mapAsync<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>[0]> | AsyncIterable<TaskArgs<M, K>[0]>,
    options?: MapOptions,
  ): AsyncResult<TaskResult<M, K>[]>;
  /**
   * Applies a self-contained function to every item, returning at once: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param items The items.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The pending list of results.
   */
  mapAsync<T, R>(
    task: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): AsyncResult<Awaited<R>[]>;
  mapAsync(
    task: string | AnyFunction,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    options?: MapOptions,
  ): AsyncResult<unknown[]> {
    return new AsyncResult(
      this.#submitter.mapAll(task, items, MAP_CHUNK, options),
    );
  }

  /**
   * Like {@linkcode Pool.map}, with each item an argument tuple: Python's
   * `starmap`.
   *
   * @param task An export name of the module, or a self-contained function.
   * @param items The argument tuples.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The results, in order.
   *
   * @example Starmap
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 2 });
   * deepEqual(await pool.starmap(Math.max, [[1, 5], [7, 2]]), [5, 7]);
   * ```
   */
  starmap<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>> | AsyncIterable<TaskArgs<M, K>>,
    options?: MapOptions,
  ): Promise<TaskResult<M, K>[]>;
  /**
   * Applies a self-contained function to every argument tuple: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param items The argument tuples.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The results, in order.
   */
  starmap<A extends unknown[], R>(
    task: (...args: A) => R,
    items: Iterable<A> | AsyncIterable<A>,
    options?: MapOptions,
  ): Promise<Awaited<R>[]>;
  starmap(
    task: string | AnyFunction,
    items: Iterable<unknown[]> | AsyncIterable<unknown[]>,
    options?: MapOptions,
  ): Promise<unknown[]> {
    return this.#submitter.mapAll(task, items, STARMAP_CHUNK, options);
  }

  /**
   * Like {@linkcode Pool.starmap}, but returns at once: Python's
   * `starmap_async`.
   *
   * @param task An export name of the module, or a self-contained function.
   * @param items The argument tuples.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The pending list of results.
   *
   * @example Starmap in the background
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 2 });
   * deepEqual(await pool.starmapAsync((a: number, b: number) => a - b, [[3, 1]]), [2]);
   * ```
   */
  starmapAsync<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>> | AsyncIterable<TaskArgs<M, K>>,
    options?: MapOptions,
  ): AsyncResult<TaskResult<M, K>[]>;
  /**
   * Applies a self-contained function to every argument tuple, returning at once: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param items The argument tuples.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The pending list of results.
   */
  starmapAsync<A extends unknown[], R>(
    task: (...args: A) => R,
    items: Iterable<A> | AsyncIterable<A>,
    options?: MapOptions,
  ): AsyncResult<Awaited<R>[]>;
  starmapAsync(
    task: string | AnyFunction,
    items: Iterable<unknown[]> | AsyncIterable<unknown[]>,
    options?: MapOptions,
  ): AsyncResult<unknown[]> {
    return new AsyncResult(
      this.#submitter.mapAll(task, items, STARMAP_CHUNK, options),
    );
  }

  /**
   * Applies `task` to every item, yielding results in order as they come:
   * Python's `imap`. Input is pulled lazily (sync, async, even infinite
   * iterables), with a bounded number of chunks in flight; leaving the loop
   * early drops what is pending.
   *
   * @param task An export name of the module, or a self-contained function of one argument.
   * @param items The items.
   * @param options `chunksize` (default 1), `timeout` and `signal`.
   * @returns An async iterator of results.
   * @throws The task error at the position of the failed item.
   *
   * @example Ordered results from an infinite input
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { deepEqual } from "node:assert/strict";
   *
   * function* naturals() { for (let i = 0; ; i++) yield i; }
   * await using pool = new Pool({ processes: 2 });
   * const squares: number[] = [];
   * for await (const y of pool.imap((x: number) => x * x, naturals())) {
   *   squares.push(y);
   *   if (squares.length === 5) break;
   * }
   * deepEqual(squares, [0, 1, 4, 9, 16]);
   * ```
   */
  imap<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>[0]> | AsyncIterable<TaskArgs<M, K>[0]>,
    options?: MapOptions,
  ): AsyncGenerator<TaskResult<M, K>, void, undefined>;
  /**
   * Streams a self-contained function over the items, in order: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param items The items.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns An async iterator of results.
   */
  imap<T, R>(
    task: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): AsyncGenerator<Awaited<R>, void, undefined>;
  imap(
    task: string | AnyFunction,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    options?: MapOptions,
  ): AsyncGenerator<unknown, void, undefined> {
    return this.#submitter.stream(task, items, true, options);
  }

  /**
   * Like {@linkcode Pool.imap}, but yields results as they finish, in any
   * order: Python's `imap_unordered`.
   *
   * @param task An export name of the module, or a self-contained function of one argument.
   * @param items The items.
   * @param options `chunksize` (default 1), `timeout` and `signal`.
   * @returns An async iterator of results.
   *
   * @example As they finish
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 2 });
   * const results: number[] = [];
   * for await (const y of pool.imapUnordered((x: number) => x * x, [1, 2, 3])) results.push(y);
   * deepEqual(results.sort((a, b) => a - b), [1, 4, 9]);
   * ```
   */
  imapUnordered<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>[0]> | AsyncIterable<TaskArgs<M, K>[0]>,
    options?: MapOptions,
  ): AsyncGenerator<TaskResult<M, K>, void, undefined>;
  /**
   * Streams a self-contained function over the items, as they finish: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param items The items.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns An async iterator of results.
   */
  imapUnordered<T, R>(
    task: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): AsyncGenerator<Awaited<R>, void, undefined>;
  imapUnordered(
    task: string | AnyFunction,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    options?: MapOptions,
  ): AsyncGenerator<unknown, void, undefined> {
    return this.#submitter.stream(task, items, false, options);
  }

  /**
   * Stops taking tasks; the queued ones still run. Then {@linkcode Pool.join}
   * waits for them.
   *
   * @example Close and join
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { rejects } from "node:assert/strict";
   *
   * const pool = new Pool({ processes: 1 });
   * pool.close();
   * await pool.join();
   * await rejects(pool.apply(() => 1), /closed/);
   * ```
   */
  close(): void {
    this.#engine.close();
  }

  /**
   * Waits for the queued tasks to finish and every worker to exit. Call
   * {@linkcode Pool.close} or {@linkcode Pool.terminate} first.
   *
   * @throws {Error} when the pool is still running.
   *
   * @example Join after close
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * const pool = new Pool({ processes: 1 });
   * const result = pool.applyAsync(() => 5);
   * pool.close();
   * await pool.join();
   * equal(await result, 5);
   * ```
   */
  async join(): Promise<void> {
    if (this.#engine.counts().state === "running") {
      throw new Error(
        "Cannot join a running pool: call close() or terminate() first",
      );
    }
    await this.#engine.exited();
  }

  /**
   * Stops every worker now; what is queued or running rejects. Resolves
   * once the workers are gone.
   *
   * @example Terminate
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { rejects } from "node:assert/strict";
   *
   * const pool = new Pool({ processes: 1 });
   * const slow = pool.apply(() => new Promise((r) => setTimeout(r, 10_000)));
   * await pool.terminate();
   * await rejects(slow, /terminated/);
   * ```
   */
  async terminate(): Promise<void> {
    this.#engine.terminate();
    await this.join();
  }

  /**
   * Terminates the pool, as Python's `with Pool() as pool:` does on exit.
   *
   * @example Scoped pool
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * {
   *   await using pool = new Pool({ processes: 1 });
   *   equal(await pool.apply(() => 1), 1);
   * }
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.terminate();
  }

  /**
   * What the pool is doing.
   *
   * @returns Counts of workers and tasks.
   *
   * @example Count completed tasks
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 2 });
   * await pool.map((x: number) => x, [1, 2, 3], { chunksize: 1 });
   * equal(pool.stats().completed, 3);
   * ```
   */
  stats(): PoolStats {
    return {
      backend: this.#backend,
      processes: this.#processes,
      ...this.#engine.counts(),
    };
  }
  // Printed with what stats() tells at a glance.
  static {
    defineInspect(this, (pool) => {
      const stats = pool.stats();
      return {
        backend: stats.backend,
        processes: stats.processes,
        state: stats.state,
        running: stats.running,
        queued: stats.queued,
      };
    });
  }
}
