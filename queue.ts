/**
 * Queues and pipes that work across worker threads and child processes:
 * Python's `multiprocessing.Queue`, `JoinableQueue`, `SimpleQueue` and
 * `Pipe`.
 *
 * Pass a queue or a pipe end in the arguments of a pool task, in a pool's
 * `initArgs` or in a {@linkcode Process}'s `args`: the worker gets a working
 * handle to the same queue. Items are copied (structured clone) when they
 * are put, so later changes by the sender are never seen.
 *
 * Between worker threads a queue is shared memory (no copy through a
 * middleman); a child process reaches it through its parent, with puts sent
 * in batches and a few items fetched ahead: what a process fetched ahead
 * and did not read goes back to the queue when its task ends, when it has
 * been left unread for a few milliseconds, or when the process dies.
 *
 * Deno permissions: none; a queue reaches workers through the pool or
 * Process that starts them, which need their own.
 *
 * @example Producer and consumer
 * ```ts
 * import { Queue } from "@multiproc/multiproc/queue";
 * import { deepEqual } from "node:assert/strict";
 *
 * const q = new Queue<string>();
 * await q.put("A");
 * q.putNowait("B");
 * q.close();
 * const seen: string[] = [];
 * for await (const item of q) seen.push(item);
 * deepEqual(seen, ["A", "B"]);
 * ```
 *
 * @module
 */
import { RecordReader, RecordWriter, UncopyableError } from "./_codec.ts";
import { isSpilled, loadSpilled } from "./_spill.ts";
import { checkTimeout } from "./_deadline.ts";
import { defineInspect } from "./_inspect.ts";
import {
  ABORTED,
  CLOSED,
  type Core,
  OK,
  Ring,
  type Status,
  type Taken,
  TIMED_OUT,
  type WaitOptions,
} from "./_ring.ts";
import {
  Adoption,
  findShareable,
  noteShareable,
  SHARE,
  type SharedForm,
} from "./_share.ts";
import { describeValue } from "./_values.ts";

/**
 * Python's `queue.Empty`: {@linkcode Queue.getNowait} found the queue empty,
 * or {@linkcode Queue.get} waited its whole `timeout`.
 *
 * @example Catch an empty queue
 * ```ts
 * import { Queue, QueueEmptyError } from "@multiproc/multiproc/queue";
 * import { throws } from "node:assert/strict";
 *
 * throws(() => new Queue().getNowait(), QueueEmptyError);
 * ```
 */
export class QueueEmptyError extends Error {
  /**
   * Makes the error.
   *
   * @param message What was empty.
   */
  constructor(message: string) {
    super(message);
    this.name = "QueueEmptyError";
  }
}

/**
 * Python's `queue.Full`: {@linkcode Queue.putNowait} found the queue full,
 * or {@linkcode Queue.put} waited its whole `timeout`.
 *
 * @example Catch a full queue
 * ```ts
 * import { Queue, QueueFullError } from "@multiproc/multiproc/queue";
 * import { throws } from "node:assert/strict";
 *
 * const q = new Queue({ maxsize: 1 });
 * q.putNowait(1);
 * throws(() => q.putNowait(2), QueueFullError);
 * ```
 */
export class QueueFullError extends Error {
  /**
   * Makes the error.
   *
   * @param message What was full.
   */
  constructor(message: string) {
    super(message);
    this.name = "QueueFullError";
  }
}

/**
 * The queue was closed: a put after {@linkcode Queue.close}, or a get once a
 * closed queue is drained (Python 3.13's `queue.ShutDown`).
 *
 * @example Catch a closed queue
 * ```ts
 * import { Queue, QueueClosedError } from "@multiproc/multiproc/queue";
 * import { rejects } from "node:assert/strict";
 *
 * const q = new Queue();
 * q.close();
 * await rejects(q.get(), QueueClosedError);
 * ```
 */
export class QueueClosedError extends Error {
  /**
   * Makes the error.
   *
   * @param message What was closed.
   */
  constructor(message: string) {
    super(message);
    this.name = "QueueClosedError";
  }
}

/**
 * Python's `EOFError`: a {@linkcode Connection} was closed at the other end
 * and nothing is left to receive (or, on `send`, the other end is closed).
 *
 * @example Receive after the other end closed
 * ```ts
 * import { EOFError, Pipe } from "@multiproc/multiproc/queue";
 * import { rejects } from "node:assert/strict";
 *
 * const [a, b] = Pipe();
 * b.close();
 * await rejects(a.recv(), EOFError);
 * ```
 */
export class EOFError extends Error {
  /**
   * Makes the error.
   *
   * @param message What ended.
   */
  constructor(message: string) {
    super(message);
    this.name = "EOFError";
  }
}

/** Options of {@linkcode Queue} and {@linkcode JoinableQueue}. */
export interface QueueOptions {
  /**
   * The most items the queue holds; `put` waits while it is full. `0` means
   * no limit.
   *
   * @default {0}
   */
  maxsize?: number;
}

/** Options of a waiting put or get. */
export interface WaitingOptions {
  /**
   * How long to wait, in milliseconds, before giving up with
   * {@linkcode QueueFullError} or {@linkcode QueueEmptyError}.
   *
   * @default {undefined} (wait as long as it takes)
   */
  timeout?: number;
  /** Stops waiting; the call rejects with the signal's reason. @default {undefined} */
  signal?: AbortSignal;
}

/** Options of {@linkcode JoinableQueue.join}. */
export interface QueueJoinOptions {
  /** Stops waiting; the call rejects with the signal's reason. @default {undefined} */
  signal?: AbortSignal;
}

/** Options of {@linkcode Connection.recv}. */
export interface RecvOptions {
  /**
   * How long to wait, in milliseconds, before giving up with
   * {@linkcode QueueEmptyError}.
   *
   * @default {undefined} (wait as long as it takes)
   */
  timeout?: number;
  /** Stops waiting; the call rejects with the signal's reason. @default {undefined} */
  signal?: AbortSignal;
}

/** Options of {@linkcode Pipe}. */
export interface PipeOptions {
  /**
   * Both ends send and receive. With `false`, the first end only receives
   * and the second only sends.
   *
   * @default {true}
   */
  duplex?: boolean;
}

/** The cores of queues, for JoinableQueue's own methods. */
const coreOf = new WeakMap<object, Core>();

const scratch = new RecordWriter();
/** At most this many bytes are taken from a ring in one go by a getter. */
const TAKE_BYTES = 1 << 20;

/** Encodes one item; the bytes are valid until the next call. */
function encodeItem(item: unknown): Uint8Array {
  const held = typeof item === "object" ? findShareable(item) : undefined;
  if (held !== undefined) {
    const what = held === item
      ? describeValue(held)
      : `${describeValue(item)} holding ${describeValue(held)}`;
    throw new TypeError(
      `Cannot put ${what} into a queue or pipe: queues, pipe ends, locks, events and the other primitives travel in task and Process arguments (and initArgs), not inside items; pass it to the worker that needs it as an argument`,
    );
  }
  scratch.clear();
  try {
    scratch.add(item);
  } catch (error) {
    if (!(error instanceof UncopyableError)) throw error;
    throw new TypeError(
      `Cannot put ${
        describeValue(item)
      } into a queue: items are copied with structured clone, which cannot copy functions, symbols or class instances' methods: put plain data`,
      { cause: error.cause },
    );
  }
  return scratch.view();
}

// A large item from another process may come as a stub naming its file.
function decodeFirst(taken: Taken): unknown {
  const block = isSpilled(taken.block)
    ? loadSpilled(taken.block, !taken.lent)
    : taken.block;
  return new RecordReader(block).next();
}

function waitOptions(options: WaitingOptions | undefined): WaitOptions {
  checkTimeout(options?.timeout);
  return {
    deadline: options?.timeout === undefined
      ? undefined
      : performance.now() + options.timeout,
    signal: options?.signal,
  };
}

function checkMaxsize(maxsize: unknown): number {
  if (maxsize === undefined) return 0;
  if (
    typeof maxsize !== "number" || !Number.isInteger(maxsize) ||
    maxsize < 0 || maxsize > 0x7fffffff
  ) {
    throw new RangeError(
      `Expected maxsize to be a whole number >= 0, got "${
        String(maxsize)
      }": pass the most items the queue may hold, or 0 for no limit`,
    );
  }
  return maxsize;
}

/** Turns a status that is not `OK` into the error the caller sees. */
type Failure = (status: Status) => Error;

function abortReason(signal: AbortSignal | undefined): unknown {
  return signal?.reason ??
    new DOMException("The wait was aborted", "AbortError");
}

/** Gets one item from `core`: at once when one is there, else waiting as asked. */
function getFrom(
  core: Core,
  options: WaitingOptions | undefined,
  fail: Failure,
): Promise<unknown> {
  const now = core.tryTake(1, TAKE_BYTES);
  if (now !== undefined && now !== CLOSED) {
    return Promise.resolve(decodeFirst(now));
  }
  return waitForItem(core, options, fail);
}

async function waitForItem(
  core: Core,
  options: WaitingOptions | undefined,
  fail: Failure,
): Promise<unknown> {
  const wait = waitOptions(options);
  const taken = await core.take(1, TAKE_BYTES, wait);
  if (typeof taken === "number") {
    if (taken === ABORTED) throw abortReason(options?.signal);
    throw fail(taken);
  }
  return decodeFirst(taken);
}

/** Takes one item now, or throws what `fail` makes of its absence. */
function getNowFrom(core: Core, fail: Failure): unknown {
  const taken = core.tryTake(1, TAKE_BYTES);
  if (taken === undefined) throw fail(TIMED_OUT);
  if (taken === CLOSED) throw fail(CLOSED);
  return decodeFirst(taken);
}

/** Yields items until `core` is closed and drained. */
async function* itemsOf<T>(core: Core): AsyncGenerator<T, void, undefined> {
  for (;;) {
    const now = core.tryTake(1, TAKE_BYTES);
    if (now === CLOSED) return;
    if (now !== undefined) {
      yield decodeFirst(now) as T;
      continue;
    }
    const taken = await core.take(1, TAKE_BYTES, {});
    if (typeof taken === "number") return;
    yield decodeFirst(taken) as T;
  }
}

const queueFailure: Failure = (status) =>
  status === CLOSED
    ? new QueueClosedError(
      "The queue is closed and has no items left: stop getting once it is closed (for await ends by itself)",
    )
    : new QueueEmptyError(
      "The queue is empty: wait with get(), or give get() a longer timeout",
    );

/** Puts one item without waiting, or throws why it could not. */
function putNow(core: Core, item: unknown): void {
  const status = core.tryPut(encodeItem(item), 1);
  if (status !== OK) throw putFailure(status);
}

function putFailure(status: Status): Error {
  return status === CLOSED
    ? new QueueClosedError(
      "Cannot put into a closed queue: put all items before calling close()",
    )
    : new QueueFullError(
      "The queue is full: wait with put(), give put() a longer timeout, or raise maxsize",
    );
}

/**
 * A first-in, first-out queue that threads and processes share: Python's
 * `multiprocessing.Queue`. Any number of producers and consumers; each
 * producer's items arrive in the order it put them.
 *
 * @typeParam T The items.
 *
 * @example Hand work to a pool
 * ```ts
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { Queue } from "@multiproc/multiproc/queue";
 * import { deepEqual } from "node:assert/strict";
 *
 * const results = new Queue<number>();
 * await using pool = new Pool({ processes: 2 });
 * await pool.starmap(
 *   async (q: Queue<number>, x: number) => await q.put(x * x),
 *   [[results, 2], [results, 3]],
 * );
 * const got = [await results.get(), await results.get()].sort((a, b) => a - b);
 * deepEqual(got, [4, 9]);
 * ```
 */
export class Queue<T = unknown> implements AsyncIterable<T> {
  /** The shared state; private to this package. */
  readonly #core: Core;

  /**
   * Makes an empty queue.
   *
   * @param options `maxsize`.
   * @throws {RangeError} when `maxsize` is not a whole number >= 0.
   */
  constructor(options?: QueueOptions);
  // A worker rebuilds a queue it received around its core: see _revivers.ts.
  constructor(options?: QueueOptions | Adoption) {
    this.#core = options instanceof Adoption
      ? options.cores[0]!
      : Ring.create(checkMaxsize(options?.maxsize));
    coreOf.set(this, this.#core);
    noteShareable();
  }

  /** @internal */
  [SHARE](): SharedForm {
    return { type: this.#type(), cores: [this.#core], options: {} };
  }

  #type(): string {
    return this instanceof JoinableQueue ? "JoinableQueue" : "Queue";
  }

  /**
   * Puts an item at the end, waiting while the queue is full. The item is
   * copied now.
   *
   * @param item The item: any structured-cloneable value.
   * @param options `timeout` (then {@linkcode QueueFullError}) and `signal`.
   * @returns A promise that resolves once the item is in the queue.
   * @throws {TypeError} (as a rejection) when the item cannot be copied.
   * @throws {QueueClosedError} (as a rejection) after {@linkcode Queue.close}.
   * @throws {QueueFullError} (as a rejection) when still full after `timeout`.
   *
   * @example Wait for room
   * ```ts
   * import { Queue, QueueFullError } from "@multiproc/multiproc/queue";
   * import { rejects } from "node:assert/strict";
   *
   * const q = new Queue<number>({ maxsize: 1 });
   * await q.put(1);
   * await rejects(q.put(2, { timeout: 10 }), QueueFullError);
   * ```
   */
  async put(item: T, options?: WaitingOptions): Promise<void> {
    const block = encodeItem(item);
    const wait = waitOptions(options);
    const status = this.#core.tryPut(block, 1, { canWait: true });
    if (status === OK) return;
    if (status === CLOSED) throw putFailure(status);
    // The core copies the block if it must wait.
    const waited = await this.#core.put(block, 1, wait);
    if (waited === ABORTED) throw abortReason(options?.signal);
    if (waited !== OK) throw putFailure(waited);
  }

  /**
   * Puts an item without waiting.
   *
   * @param item The item: any structured-cloneable value.
   * @throws {QueueFullError} when the queue is full.
   * @throws {QueueClosedError} after {@linkcode Queue.close}.
   * @throws {TypeError} when the item cannot be copied.
   *
   * @example Put without waiting
   * ```ts
   * import { Queue } from "@multiproc/multiproc/queue";
   * import { equal } from "node:assert/strict";
   *
   * const q = new Queue<string>();
   * q.putNowait("B");
   * equal(q.qsize(), 1);
   * ```
   */
  putNowait(item: T): void {
    putNow(this.#core, item);
  }

  /**
   * Takes the first item, waiting while the queue is empty.
   *
   * @param options `timeout` (then {@linkcode QueueEmptyError}) and `signal`.
   * @returns The item.
   * @throws {QueueEmptyError} (as a rejection) when still empty after `timeout`.
   * @throws {QueueClosedError} (as a rejection) once closed and drained.
   *
   * @example Get with a timeout
   * ```ts
   * import { Queue, QueueEmptyError } from "@multiproc/multiproc/queue";
   * import { equal, rejects } from "node:assert/strict";
   *
   * const q = new Queue<string>();
   * await q.put("A");
   * equal(await q.get(), "A");
   * await rejects(q.get({ timeout: 10 }), QueueEmptyError);
   * ```
   */
  get(options?: WaitingOptions): Promise<T> {
    return getFrom(this.#core, options, queueFailure) as Promise<T>;
  }

  /**
   * Takes the first item without waiting. In a child process this sees
   * the items it has fetched ahead, and asks for more when there are none.
   *
   * @returns The item.
   * @throws {QueueEmptyError} when the queue is empty.
   * @throws {QueueClosedError} once closed and drained.
   *
   * @example Get without waiting
   * ```ts
   * import { Queue } from "@multiproc/multiproc/queue";
   * import { equal } from "node:assert/strict";
   *
   * const q = new Queue<string>();
   * q.putNowait("B");
   * equal(q.getNowait(), "B");
   * ```
   */
  getNowait(): T {
    return getNowFrom(this.#core, queueFailure) as T;
  }

  /**
   * The number of items in the queue (approximate when other threads or
   * processes use it at the same time, as in Python).
   *
   * @returns How many items wait.
   *
   * @example Count
   * ```ts
   * import { Queue } from "@multiproc/multiproc/queue";
   * import { equal } from "node:assert/strict";
   *
   * const q = new Queue();
   * q.putNowait(1);
   * equal(q.qsize(), 1);
   * ```
   */
  qsize(): number {
    return this.#core.qsize();
  }

  /**
   * Whether the queue is empty (approximate, as `qsize`).
   *
   * @returns `true` when no item waits.
   *
   * @example Empty
   * ```ts
   * import { Queue } from "@multiproc/multiproc/queue";
   * import { equal } from "node:assert/strict";
   *
   * equal(new Queue().empty(), true);
   * ```
   */
  empty(): boolean {
    return this.#core.qsize() === 0;
  }

  /**
   * Whether the queue is full (approximate, as `qsize`); never for a queue
   * without `maxsize`.
   *
   * @returns `true` when a put would wait.
   *
   * @example Full
   * ```ts
   * import { Queue } from "@multiproc/multiproc/queue";
   * import { equal } from "node:assert/strict";
   *
   * const q = new Queue({ maxsize: 1 });
   * q.putNowait(1);
   * equal(q.full(), true);
   * ```
   */
  full(): boolean {
    const maxsize = this.#core.maxsize;
    return maxsize > 0 && this.#core.qsize() >= maxsize;
  }

  /**
   * Closes the queue for everyone: puts then fail with
   * {@linkcode QueueClosedError}; getters drain what is left, then get
   * {@linkcode QueueClosedError}, and `for await` ends. Waiting putters and
   * getters wake. Closing twice does nothing.
   *
   * Across processes, getters first wait for the items of processes that
   * may still be sending some (those that put in the last 20 ms or in a task
   * still running), but not for a process that is busy with other work.
   * A `put` that resolved before the close is always drained first; a
   * `putNowait` made in another process at the same moment may land just
   * after getters were told the queue is closed (`getNowait` still finds it).
   *
   * @example Close, then drain
   * ```ts
   * import { Queue, QueueClosedError } from "@multiproc/multiproc/queue";
   * import { equal, rejects } from "node:assert/strict";
   *
   * const q = new Queue<number>();
   * q.putNowait(1);
   * q.close();
   * await rejects(q.put(2), QueueClosedError);
   * equal(await q.get(), 1);
   * await rejects(q.get(), QueueClosedError);
   * ```
   */
  close(): void {
    this.#core.close();
  }

  /**
   * Whether {@linkcode Queue.close} was called (here or in another thread or
   * process that holds this queue).
   *
   * @returns `true` once closed.
   *
   * @example Closed
   * ```ts
   * import { Queue } from "@multiproc/multiproc/queue";
   * import { equal } from "node:assert/strict";
   *
   * const q = new Queue();
   * q.close();
   * equal(q.closed, true);
   * ```
   */
  get closed(): boolean {
    return this.#core.closed();
  }

  static {
    defineInspect(this, (queue) => ({
      qsize: queue.qsize(),
      maxsize: queue.#core.maxsize,
      closed: queue.closed,
    }));
  }

  /**
   * Yields items as they come until the queue is closed and drained.
   *
   * @returns An async iterator over the items.
   *
   * @example Iterate
   * ```ts
   * import { Queue } from "@multiproc/multiproc/queue";
   * import { deepEqual } from "node:assert/strict";
   *
   * const q = new Queue<number>();
   * q.putNowait(1);
   * q.putNowait(2);
   * q.close();
   * deepEqual(await Array.fromAsync(q), [1, 2]);
   * ```
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return itemsOf<T>(this.#core);
  }
}

/**
 * A {@linkcode Queue} that counts unfinished items: Python's
 * `multiprocessing.JoinableQueue`. Every put adds one; each consumer calls
 * {@linkcode JoinableQueue.taskDone} when it has dealt with an item, and
 * {@linkcode JoinableQueue.join} waits until all are done.
 *
 * @typeParam T The items.
 *
 * @example Wait until every item is dealt with
 * ```ts
 * import { JoinableQueue } from "@multiproc/multiproc/queue";
 * import { equal } from "node:assert/strict";
 *
 * const q = new JoinableQueue<number>();
 * await q.put(1);
 * await q.put(2);
 * let sum = 0;
 * (async () => {
 *   for (;;) {
 *     sum += await q.get();
 *     q.taskDone();
 *   }
 * })();
 * await q.join();
 * equal(sum, 3);
 * ```
 */
export class JoinableQueue<T = unknown> extends Queue<T> {
  /**
   * Marks one item gotten from the queue as dealt with.
   *
   * @throws {RangeError} when called more times than items were put (in a
   * child process: more times than it got items).
   *
   * @example One call too many
   * ```ts
   * import { JoinableQueue } from "@multiproc/multiproc/queue";
   * import { throws } from "node:assert/strict";
   *
   * const q = new JoinableQueue();
   * throws(() => q.taskDone(), RangeError);
   * ```
   */
  taskDone(): void {
    if (!coreOf.get(this)!.taskDone()) {
      throw new RangeError(
        "Cannot call taskDone() more times than items were put: call it once per item you got",
      );
    }
  }

  /**
   * Waits until every item put has been marked done.
   *
   * @param options A `signal` to stop waiting.
   * @returns A promise that resolves when no item is unfinished.
   * @throws {unknown} the signal's reason (as a rejection) when it aborts.
   *
   * @example Join with nothing put
   * ```ts
   * import { JoinableQueue } from "@multiproc/multiproc/queue";
   *
   * await new JoinableQueue().join();
   * ```
   */
  async join(options?: QueueJoinOptions): Promise<void> {
    const status = await coreOf.get(this)!.join({ signal: options?.signal });
    if (status === ABORTED) throw abortReason(options?.signal);
  }
}

/**
 * The cheapest queue: unbounded, with `put`, `get`, `empty` and `close`
 * only (Python's `multiprocessing.SimpleQueue`).
 *
 * @typeParam T The items.
 *
 * @example Put and get
 * ```ts
 * import { SimpleQueue } from "@multiproc/multiproc/queue";
 * import { equal } from "node:assert/strict";
 *
 * const q = new SimpleQueue<string>();
 * q.put("A");
 * equal(await q.get(), "A");
 * equal(q.empty(), true);
 * ```
 */
export class SimpleQueue<T = unknown> implements AsyncIterable<T> {
  readonly #core: Core;

  /** Makes an empty queue. */
  constructor();
  // A worker rebuilds a queue it received around its core: see _revivers.ts.
  constructor(adoption?: Adoption) {
    this.#core = adoption?.cores[0] ?? Ring.create(0);
    noteShareable();
  }

  static {
    defineInspect(this, (queue) => ({
      qsize: queue.#core.qsize(),
      closed: queue.#core.closed(),
    }));
  }

  /** @internal */
  [SHARE](): SharedForm {
    return { type: "SimpleQueue", cores: [this.#core], options: {} };
  }

  /**
   * Puts an item at the end; never waits. The item is copied now.
   *
   * @param item The item: any structured-cloneable value.
   * @throws {TypeError} when the item cannot be copied.
   * @throws {QueueClosedError} after {@linkcode SimpleQueue.close}.
   *
   * @example Put
   * ```ts
   * import { SimpleQueue } from "@multiproc/multiproc/queue";
   * import { equal } from "node:assert/strict";
   *
   * const q = new SimpleQueue<number>();
   * q.put(1);
   * equal(q.empty(), false);
   * ```
   */
  put(item: T): void {
    putNow(this.#core, item);
  }

  /**
   * Takes the first item, waiting while the queue is empty.
   *
   * @param options `timeout` (then {@linkcode QueueEmptyError}) and `signal`.
   * @returns The item.
   * @throws {QueueClosedError} (as a rejection) once closed and drained.
   *
   * @example Get
   * ```ts
   * import { SimpleQueue } from "@multiproc/multiproc/queue";
   * import { equal } from "node:assert/strict";
   *
   * const q = new SimpleQueue<number>();
   * q.put(7);
   * equal(await q.get(), 7);
   * ```
   */
  get(options?: WaitingOptions): Promise<T> {
    return getFrom(this.#core, options, queueFailure) as Promise<T>;
  }

  /**
   * Whether the queue is empty (approximate when shared).
   *
   * @returns `true` when no item waits.
   *
   * @example Empty
   * ```ts
   * import { SimpleQueue } from "@multiproc/multiproc/queue";
   * import { equal } from "node:assert/strict";
   *
   * equal(new SimpleQueue().empty(), true);
   * ```
   */
  empty(): boolean {
    return this.#core.qsize() === 0;
  }

  /**
   * Closes the queue for everyone, as {@linkcode Queue.close} does.
   *
   * @example Close
   * ```ts
   * import { SimpleQueue } from "@multiproc/multiproc/queue";
   * import { deepEqual } from "node:assert/strict";
   *
   * const q = new SimpleQueue<number>();
   * q.put(1);
   * q.close();
   * deepEqual(await Array.fromAsync(q), [1]);
   * ```
   */
  close(): void {
    this.#core.close();
  }

  /**
   * Yields items as they come until the queue is closed and drained.
   *
   * @returns An async iterator over the items.
   *
   * @example Iterate
   * ```ts
   * import { SimpleQueue } from "@multiproc/multiproc/queue";
   * import { deepEqual } from "node:assert/strict";
   *
   * const q = new SimpleQueue<string>();
   * q.put("x");
   * q.close();
   * deepEqual(await Array.fromAsync(q), ["x"]);
   * ```
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return itemsOf<T>(this.#core);
  }
}

const eofFailure: Failure = (status) =>
  status === CLOSED
    ? new EOFError(
      "The other end of the pipe is closed and nothing is left to receive",
    )
    : new QueueEmptyError(
      "Nothing arrived within the timeout: wait longer, or check poll() first",
    );

/**
 * One end of a {@linkcode Pipe}: Python's `multiprocessing.connection.Connection`.
 *
 * @typeParam T The values sent and received.
 *
 * @example Send and receive
 * ```ts
 * import { Pipe } from "@multiproc/multiproc/queue";
 * import { equal } from "node:assert/strict";
 *
 * const [a, b] = Pipe<string>();
 * a.send("ping");
 * equal(await b.recv(), "ping");
 * ```
 */
export class Connection<T = unknown> implements AsyncIterable<T> {
  readonly #incoming: Core | undefined;
  readonly #outgoing: Core | undefined;

  /**
   * Connections come from {@linkcode Pipe}.
   *
   * @throws {TypeError} when called directly.
   */
  constructor();
  // Pipe() and a worker (_revivers.ts) hand each end its cores.
  constructor(adoption?: Adoption) {
    if (!(adoption instanceof Adoption)) {
      throw new TypeError(
        "Cannot make a Connection directly: call Pipe() to get two connected ends",
      );
    }
    [this.#incoming, this.#outgoing] = adoption.cores;
    noteShareable();
  }

  // Python's Connection has readable, writable and closed; a close by
  // either end closes the pipe.
  static {
    defineInspect(this, (end) => ({
      readable: end.#incoming !== undefined,
      writable: end.#outgoing !== undefined,
      closed: [end.#incoming, end.#outgoing].some((core) => core?.closed()),
    }));
  }

  /** @internal */
  [SHARE](): SharedForm {
    const cores = [this.#incoming, this.#outgoing].filter((core) =>
      core !== undefined
    );
    return {
      type: "Connection",
      cores,
      options: {
        incoming: this.#incoming !== undefined,
        outgoing: this.#outgoing !== undefined,
      },
    };
  }

  #receiving(): Core {
    if (this.#incoming === undefined) {
      throw new TypeError(
        "Cannot receive on the sending end of a one-way pipe: receive on the first end of Pipe({ duplex: false })",
      );
    }
    return this.#incoming;
  }

  /**
   * Sends a value to the other end; never waits. The value is copied now.
   *
   * @param value Any structured-cloneable value.
   * @throws {TypeError} when the value cannot be copied, or on the
   * receiving end of a one-way pipe.
   * @throws {EOFError} when either end was closed.
   *
   * @example Send
   * ```ts
   * import { Pipe } from "@multiproc/multiproc/queue";
   * import { deepEqual } from "node:assert/strict";
   *
   * const [a, b] = Pipe();
   * a.send({ n: 1 });
   * deepEqual(await b.recv(), { n: 1 });
   * ```
   */
  send(value: T): void {
    if (this.#outgoing === undefined) {
      throw new TypeError(
        "Cannot send on the receiving end of a one-way pipe: send on the second end of Pipe({ duplex: false })",
      );
    }
    const block = encodeItem(value);
    if (this.#outgoing.tryPut(block, 1) !== OK) {
      throw new EOFError(
        "Cannot send: the pipe is closed: send before either end calls close()",
      );
    }
  }

  /**
   * Receives the next value, waiting until one comes.
   *
   * @param options `timeout` (then {@linkcode QueueEmptyError}) and `signal`.
   * @returns The value.
   * @throws {EOFError} (as a rejection) once the other end is closed and
   * nothing is left.
   * @throws {TypeError} on the sending end of a one-way pipe.
   *
   * @example Receive with a timeout
   * ```ts
   * import { Pipe, QueueEmptyError } from "@multiproc/multiproc/queue";
   * import { rejects } from "node:assert/strict";
   *
   * const [a] = Pipe();
   * await rejects(a.recv({ timeout: 10 }), QueueEmptyError);
   * ```
   */
  recv(options?: RecvOptions): Promise<T> {
    return getFrom(this.#receiving(), options, eofFailure) as Promise<T>;
  }

  /**
   * Whether a value (or the end of the pipe) is there to receive, waiting
   * up to `timeout` ms for one. In a child process a value found this way is
   * fetched ahead, so the next `recv` gets it at once.
   *
   * @param timeout How long to wait, in milliseconds.
   * @returns `true` when `recv` would not wait.
   * @throws {RangeError} for a negative timeout.
   *
   * @example Poll
   * ```ts
   * import { Pipe } from "@multiproc/multiproc/queue";
   * import { equal } from "node:assert/strict";
   *
   * const [a, b] = Pipe();
   * equal(await b.poll(), false);
   * a.send(1);
   * equal(await b.poll(), true);
   * ```
   */
  async poll(timeout = 0): Promise<boolean> {
    checkTimeout(timeout);
    const core = this.#receiving();
    const taken = await core.take(1, TAKE_BYTES, {
      deadline: performance.now() + timeout,
    });
    if (taken === CLOSED) return true;
    if (typeof taken === "number") return false;
    core.unget(taken.block, taken.count);
    return true;
  }

  /**
   * Closes this end: the other end receives what was sent, then
   * {@linkcode EOFError}; sending either way fails.
   *
   * @example Close
   * ```ts
   * import { EOFError, Pipe } from "@multiproc/multiproc/queue";
   * import { equal, rejects } from "node:assert/strict";
   *
   * const [a, b] = Pipe();
   * a.send(1);
   * a.close();
   * equal(await b.recv(), 1);
   * await rejects(b.recv(), EOFError);
   * ```
   */
  close(): void {
    this.#outgoing?.close();
    this.#incoming?.close();
  }

  /**
   * Yields values until the other end is closed and nothing is left.
   *
   * @returns An async iterator over the values.
   *
   * @example Iterate
   * ```ts
   * import { Pipe } from "@multiproc/multiproc/queue";
   * import { deepEqual } from "node:assert/strict";
   *
   * const [a, b] = Pipe<number>();
   * a.send(1);
   * a.send(2);
   * a.close();
   * deepEqual(await Array.fromAsync(b), [1, 2]);
   * ```
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return itemsOf<T>(this.#receiving());
  }
}

/**
 * Makes a pipe: two connected {@linkcode Connection}s, Python's
 * `multiprocessing.Pipe`. What one end sends, the other receives.
 *
 * @typeParam T The values sent.
 * @param options `duplex`: with `false` the first end only receives and the
 * second only sends.
 * @returns The two ends.
 *
 * @example One-way pipe
 * ```ts
 * import { Pipe } from "@multiproc/multiproc/queue";
 * import { equal } from "node:assert/strict";
 *
 * const [reader, writer] = Pipe<string>({ duplex: false });
 * writer.send("hello");
 * equal(await reader.recv(), "hello");
 * ```
 */
export function Pipe<T = unknown>(
  options?: PipeOptions,
): [Connection<T>, Connection<T>] {
  const toFirst = Ring.create(0);
  if (options?.duplex === false) {
    return [connection(toFirst, undefined), connection(undefined, toFirst)];
  }
  const toSecond = Ring.create(0);
  return [connection(toFirst, toSecond), connection(toSecond, toFirst)];
}

/** A pipe end around its cores: what `Pipe()` and a worker make. */
function connection<T>(
  incoming: Core | undefined,
  outgoing: Core | undefined,
): Connection<T> {
  const Adopting = Connection as unknown as new (
    adoption: Adoption,
  ) => Connection<T>;
  return new Adopting(new Adoption([incoming, outgoing]));
}
