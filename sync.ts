/**
 * Python's synchronization primitives and shared memory, across worker
 * threads and child processes: {@linkcode Lock}, {@linkcode RLock},
 * {@linkcode Semaphore}, {@linkcode BoundedSemaphore}, {@linkcode Event},
 * {@linkcode Condition}, {@linkcode Barrier}, {@linkcode Value} and
 * {@linkcode SharedArray}.
 *
 * Pass a primitive in the arguments of a pool task, in a pool's `initArgs`
 * or in a {@linkcode Process}'s `args`, on either backend: the worker gets a
 * working handle to the same primitive. Between worker threads a primitive
 * is shared memory and `Atomics`; a child process reaches it through its
 * parent. Waiting never spins (`Atomics.waitAsync`), waiters are served
 * first in, first out, and an idle primitive keeps no program alive.
 *
 * Better than Python: a lock, `RLock` or semaphore held by a thread or
 * process that dies is released, and the next holder learns it from
 * {@linkcode Lock.ownerDied} (or {@linkcode Held.ownerDied}), so it can
 * repair what the dead owner left half done (a robust mutex). A barrier
 * breaks when a worker dies while waiting at it (killed, crashed, timed
 * out): the others get {@linkcode BrokenBarrierError} instead of waiting
 * forever. A worker that only was given it breaks nothing when it ends.
 *
 * "Owner" means a thread or a process: every async function of one thread
 * holds a lock as that thread, as in Python every call of one thread does.
 *
 * Deno permissions: none; a primitive reaches workers through the pool or
 * Process that starts them, which need their own.
 *
 * @example Python's `with lock:`
 * ```ts
 * import { Lock } from "@multiproc/multiproc/sync";
 * import { equal } from "node:assert/strict";
 *
 * const lock = new Lock();
 * {
 *   await using _held = await lock.hold();
 *   equal(lock.locked(), true);
 * }
 * equal(lock.locked(), false);
 * ```
 *
 * @module
 */
import { checkTimeout } from "./_deadline.ts";
import { TimeoutError } from "./_errors.ts";
import { threadToken } from "./_liveness.ts";
import { Adoption, noteShareable, SHARE, type SharedForm } from "./_share.ts";
import {
  ABORTED,
  BARRIER,
  BOUNDED_SEMAPHORE,
  BROKEN,
  CONDITION,
  EVENT,
  LAST,
  LOCK,
  NOT_HELD,
  OVER_BOUND,
  OVER_MAX,
  OWNER_DIED,
  RLOCK,
  SEMAPHORE,
  SyncCore,
  type SyncOps,
  type SyncWait,
  TIMED_OUT,
} from "./_sync_core.ts";
import { defineInspect } from "./_inspect.ts";

/** Options of a wait: {@linkcode Lock.acquire}, {@linkcode Event.wait} and the like. */
export interface AcquireOptions {
  /**
   * How long to wait, in milliseconds; `0` tries once without waiting.
   *
   * @default {undefined} (wait as long as it takes)
   */
  timeout?: number;
  /** Stops waiting; the call rejects with the signal's reason. @default {undefined} */
  signal?: AbortSignal;
}

/**
 * A hold on a lock or semaphore, from {@linkcode Lock.hold}: releases it
 * when disposed, as Python's `with lock:` does at the end of its block.
 */
export interface Held extends AsyncDisposable, Disposable {
  /** Whether the lock was taken over from an owner that died holding it. */
  readonly ownerDied: boolean;
  /** Releases the hold; a second call does nothing. */
  release(): void;
}

// Waits travel as deadlines, so retries inside keep to one timeout.
function waitOf(options: AcquireOptions | undefined): SyncWait {
  checkTimeout(options?.timeout);
  return {
    deadline: options?.timeout === undefined
      ? undefined
      : performance.now() + options.timeout,
    signal: options?.signal,
  };
}

// A promise is truthy and finishes later: a callback here must be synchronous.
function refuseThenable(result: unknown, what: string): void {
  if (
    result === null ||
    (typeof result !== "object" && typeof result !== "function") ||
    typeof (result as { then?: unknown }).then !== "function"
  ) return;
  // Its rejection is ours to report, not an unhandled one.
  (result as PromiseLike<unknown>).then(undefined, () => {});
  throw new TypeError(
    `Cannot use ${what} that returned a promise: pass a synchronous function`,
  );
}

// An abort rejects with the signal's reason, as queues do.
function abortReason(signal: AbortSignal | undefined): unknown {
  return signal?.reason ??
    new DOMException("The wait was aborted", "AbortError");
}

// checkTimeout throws; the fast path must leave that to a rejection.
function validTimeout(timeout: number | undefined): boolean {
  return timeout === undefined || timeout >= 0;
}

/** What an uncontended acquire returns: one promise for all. */
const ACQUIRED_NOW: Promise<boolean> = Promise.resolve(true);

// Every primitive reaches it from its own #core.
function acquireResult(
  got: number,
  options: AcquireOptions | undefined,
): { acquired: boolean; ownerDied: boolean } {
  if (got === ABORTED) throw abortReason(options?.signal);
  return { acquired: got > 0, ownerDied: got === OWNER_DIED };
}

// The Held of hold(): releases once.
function heldBy(release: () => void, ownerDied: boolean): Held {
  let released = false;
  const once = (): void => {
    if (released) return;
    released = true;
    release();
  };
  return {
    ownerDied,
    release: once,
    [Symbol.dispose]: once,
    [Symbol.asyncDispose]: (): Promise<void> => {
      once();
      return Promise.resolve();
    },
  };
}

// hold() has no boolean to return: a timeout is an error.
function holdTimedOut(what: string, timeout: number | undefined): TimeoutError {
  return new TimeoutError(
    `Cannot hold the ${what}: still held by another owner after "${timeout}" ms; wait longer, or use acquire({ timeout }), which resolves false`,
  );
}

/** The core a primitive was made with, or the one a worker received. */
function coreFrom(
  adoption: unknown,
  make: () => SyncOps,
): SyncOps {
  noteShareable();
  return adoption instanceof Adoption ? adoption.cores[0] as SyncOps : make();
}

/**
 * Python's `multiprocessing.Lock`: one owner at a time, served first in,
 * first out. Only its owner may release it. If the owner (a thread or a
 * process) dies holding it, it is released and the next owner finds
 * {@linkcode Lock.ownerDied} set.
 *
 * A process worker holds it on lease: after an acquire that found nobody
 * waiting, its acquires and releases stay in the process (no round trip to
 * the parent) until another owner waits; the lease then goes back at the
 * process's next release, and waiters are served in order. While a process
 * holds the lease, {@linkcode Lock.locked} elsewhere is `true`, and a process
 * killed holding it counts as a dead owner.
 *
 * @example Mutual exclusion across worker threads
 * ```ts
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { Lock, Value } from "@multiproc/multiproc/sync";
 * import { equal } from "node:assert/strict";
 *
 * const lock = new Lock();
 * const total = new Value("i32", 0);
 * await using pool = new Pool({ processes: 2, backend: "worker" });
 * await pool.map(async ([lock, total]: [Lock, Value<"i32">]) => {
 *   await using _held = await lock.hold();
 *   total.value += 1;
 * }, [[lock, total], [lock, total], [lock, total]]);
 * equal(total.value, 3);
 * ```
 */
export class Lock {
  readonly #core: SyncOps;
  #ownerDied = false;

  /** Makes an unlocked lock. */
  constructor();
  // A worker rebuilds a lock it received around its core: see _revivers.ts.
  constructor(adoption?: Adoption) {
    this.#core = coreFrom(
      adoption,
      () => SyncCore.create(this instanceof RLock ? RLOCK : LOCK),
    );
  }

  /** @internal */
  [SHARE](): SharedForm {
    return {
      type: this instanceof RLock ? "RLock" : "Lock",
      cores: [this.#core],
      options: {},
    };
  }

  /**
   * Takes the lock, waiting while another owner holds it (Python's
   * `acquire(timeout=…)`). After `true`, {@linkcode Lock.ownerDied} says
   * whether the previous owner died holding it.
   *
   * @param options `timeout` (`0`: do not wait) and `signal`.
   * @returns `true` once held, `false` when `timeout` passed first.
   * @throws {RangeError} for a negative `timeout`.
   * @throws The signal's reason (as a rejection) when it aborts first.
   *
   * @example Give up after a while
   * ```ts
   * import { Lock } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const lock = new Lock();
   * equal(await lock.acquire(), true);
   * equal(await lock.acquire({ timeout: 10 }), false);
   * lock.release();
   * equal(await lock.acquire({ timeout: 0 }), true);
   * lock.release();
   * ```
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    // Free and nobody waiting: no wait, and no promise of its own. (A bad
    // timeout takes the other path, which rejects.)
    if (!options?.signal?.aborted && validTimeout(options?.timeout)) {
      const got = this.#core.tryAcquire(threadToken());
      if (got > 0) {
        this.#ownerDied = got === OWNER_DIED;
        return ACQUIRED_NOW;
      }
    }
    return this.#acquire(options);
  }

  // The waiting path: a slot here, or a request to the parent.
  async #acquire(options: AcquireOptions | undefined): Promise<boolean> {
    const got = await this.#core.acquire(threadToken(), waitOf(options));
    const { acquired, ownerDied } = acquireResult(got, options);
    if (acquired) this.#ownerDied = ownerDied;
    return acquired;
  }

  /**
   * Releases the lock (one level of an {@linkcode RLock}).
   *
   * @throws {Error} when this thread or process does not hold it.
   *
   * @example Release what was acquired
   * ```ts
   * import { Lock } from "@multiproc/multiproc/sync";
   * import { throws } from "node:assert/strict";
   *
   * const lock = new Lock();
   * await lock.acquire();
   * lock.release();
   * throws(() => lock.release(), /does not hold it/);
   * ```
   */
  release(): void {
    if (this.#core.release(threadToken(), 1) === NOT_HELD) {
      const kind = this instanceof RLock ? "RLock" : "lock";
      throw new Error(
        `Cannot release the ${kind}: this thread or process does not hold it; call release() once for each acquire() that resolved true`,
      );
    }
  }

  /**
   * Takes the lock and returns a hold that releases it when disposed:
   * Python's `with lock:` is `await using _held = await lock.hold()`.
   *
   * @param options `timeout` and `signal`.
   * @returns The hold; its `ownerDied` says whether the previous owner died holding the lock.
   * @throws {TimeoutError} (as a rejection) when `timeout` passes first.
   * @throws The signal's reason (as a rejection) when it aborts first.
   *
   * @example A block that holds the lock
   * ```ts
   * import { Lock } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const lock = new Lock();
   * {
   *   await using held = await lock.hold({ timeout: 1000 });
   *   equal(held.ownerDied, false);
   * }
   * equal(lock.locked(), false);
   * ```
   */
  async hold(options?: AcquireOptions): Promise<Held> {
    if (!await this.acquire(options)) {
      throw holdTimedOut(
        this instanceof RLock ? "RLock" : "lock",
        options?.timeout,
      );
    }
    return heldBy(() => this.release(), this.#ownerDied);
  }

  /**
   * Whether any owner holds the lock. In a process worker, as the parent
   * last reported it (this process's own holds are always known).
   *
   * @returns `true` while held.
   *
   * @example Held or not
   * ```ts
   * import { Lock } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const lock = new Lock();
   * equal(lock.locked(), false);
   * await lock.acquire();
   * equal(lock.locked(), true);
   * lock.release();
   * ```
   */
  locked(): boolean {
    return this.#core.held(undefined);
  }

  /**
   * Whether the last successful {@linkcode Lock.acquire} through this handle
   * took the lock over from an owner (a thread or process) that died
   * holding it: what it guarded may be half updated. Read it right after
   * acquiring.
   *
   * @example Check after acquiring
   * ```ts
   * import { Lock } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const lock = new Lock();
   * await lock.acquire();
   * equal(lock.ownerDied, false);
   * lock.release();
   * ```
   */
  get ownerDied(): boolean {
    return this.#ownerDied;
  }

  // Printed with its state, as queues are.
  static {
    defineInspect(this, (lock) => ({ locked: lock.locked() }));
  }
}

/**
 * Python's `multiprocessing.RLock`: a lock that its owner (a thread or a
 * process) may take again; it is free once released as many times as it
 * was acquired. Every async function of one thread is the same owner.
 *
 * @example Re-entering
 * ```ts
 * import { RLock } from "@multiproc/multiproc/sync";
 * import { equal } from "node:assert/strict";
 *
 * const lock = new RLock();
 * await lock.acquire();
 * equal(await lock.acquire({ timeout: 0 }), true);
 * lock.release();
 * equal(lock.locked(), true);
 * lock.release();
 * equal(lock.locked(), false);
 * ```
 */
export class RLock extends Lock {}

/**
 * Python's `multiprocessing.Semaphore`: a counter that `acquire` takes one
 * from, waiting at zero, and `release` gives back to. Units held by a
 * thread or process that dies are given back, and the next to get one finds
 * {@linkcode Semaphore.ownerDied} set.
 *
 * @example At most two at a time
 * ```ts
 * import { Semaphore } from "@multiproc/multiproc/sync";
 * import { equal } from "node:assert/strict";
 *
 * const slots = new Semaphore(2);
 * await slots.acquire();
 * await slots.acquire();
 * equal(await slots.acquire({ timeout: 10 }), false);
 * slots.release();
 * equal(slots.getValue(), 1);
 * ```
 */
export class Semaphore {
  readonly #core: SyncOps;
  #ownerDied = false;

  /**
   * Makes a semaphore.
   *
   * @param value The start value.
   * @throws {RangeError} when `value` is not a whole number >= 0.
   */
  constructor(value?: number);
  // A worker rebuilds a semaphore it received around its core.
  constructor(value: number | Adoption = 1) {
    const bounded = this instanceof BoundedSemaphore;
    this.#core = coreFrom(value, () => {
      const start = checkCount(value, "semaphore with value", 0);
      return SyncCore.create(
        bounded ? BOUNDED_SEMAPHORE : SEMAPHORE,
        start,
        start,
      );
    });
  }

  /** @internal */
  [SHARE](): SharedForm {
    return {
      type: this instanceof BoundedSemaphore ? "BoundedSemaphore" : "Semaphore",
      cores: [this.#core],
      options: {},
    };
  }

  /**
   * Takes one unit, waiting while there is none.
   *
   * @param options `timeout` (`0`: do not wait) and `signal`.
   * @returns `true` once taken, `false` when `timeout` passed first.
   * @throws {RangeError} for a negative `timeout`.
   * @throws The signal's reason (as a rejection) when it aborts first.
   *
   * @example Try without waiting
   * ```ts
   * import { Semaphore } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const none = new Semaphore(0);
   * equal(await none.acquire({ timeout: 0 }), false);
   * ```
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    // Free and nobody waiting: no wait, and no promise of its own. (A bad
    // timeout takes the other path, which rejects.)
    if (!options?.signal?.aborted && validTimeout(options?.timeout)) {
      const got = this.#core.tryAcquire(threadToken());
      if (got > 0) {
        this.#ownerDied = got === OWNER_DIED;
        return ACQUIRED_NOW;
      }
    }
    return this.#acquire(options);
  }

  // The waiting path: a slot here, or a request to the parent.
  async #acquire(options: AcquireOptions | undefined): Promise<boolean> {
    const got = await this.#core.acquire(threadToken(), waitOf(options));
    const { acquired, ownerDied } = acquireResult(got, options);
    if (acquired) this.#ownerDied = ownerDied;
    return acquired;
  }

  /**
   * Gives back `n` units, waking that many waiters (longest waiting first).
   * Any thread or process may release.
   *
   * @param n How many units. @default {1}
   * @throws {RangeError} when `n` is not a whole number >= 1, when a
   * {@linkcode BoundedSemaphore} would rise past its start value (in a
   * process worker, past the units it acquired and the value last reported;
   * else the parent finds it and the next `release` throws), or when the
   * value would pass 2147483647.
   *
   * @example Release two at once
   * ```ts
   * import { Semaphore } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const s = new Semaphore(0);
   * s.release(2);
   * equal(s.getValue(), 2);
   * ```
   */
  release(n = 1): void {
    const units = checkCount(n, "release of", 1);
    const result = this.#core.release(threadToken(), units);
    if (result === OVER_BOUND) {
      throw new RangeError(
        `Cannot release the bounded semaphore by "${units}": it would rise past its start value "${this.#core.limit()}"; release only what was acquired`,
      );
    }
    if (result === OVER_MAX) {
      throw new RangeError(
        `Cannot release the semaphore by "${units}": its value "${this.#core.count()}" would pass the largest one, "2147483647"; release fewer units`,
      );
    }
  }

  /**
   * Takes one unit and returns a hold that gives it back when disposed.
   *
   * @param options `timeout` and `signal`.
   * @returns The hold.
   * @throws {TimeoutError} (as a rejection) when `timeout` passes first.
   * @throws The signal's reason (as a rejection) when it aborts first.
   *
   * @example A block that holds a unit
   * ```ts
   * import { Semaphore } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const s = new Semaphore(1);
   * {
   *   await using _held = await s.hold();
   *   equal(s.getValue(), 0);
   * }
   * equal(s.getValue(), 1);
   * ```
   */
  async hold(options?: AcquireOptions): Promise<Held> {
    if (!await this.acquire(options)) {
      throw holdTimedOut("semaphore", options?.timeout);
    }
    return heldBy(() => this.release(), this.#ownerDied);
  }

  /**
   * The current value (Python's `get_value()`); in a process worker, as
   * the parent last reported it.
   *
   * @returns The units free now.
   *
   * @example Read the value
   * ```ts
   * import { Semaphore } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * equal(new Semaphore(3).getValue(), 3);
   * ```
   */
  getValue(): number {
    return this.#core.count();
  }

  /**
   * Whether the last successful acquire through this handle got a unit that
   * a thread or process had held when it died.
   *
   * @example Check after acquiring
   * ```ts
   * import { Semaphore } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const s = new Semaphore();
   * await s.acquire();
   * equal(s.ownerDied, false);
   * ```
   */
  get ownerDied(): boolean {
    return this.#ownerDied;
  }

  // Printed with its value.
  static {
    defineInspect(this, (semaphore) => ({ value: semaphore.getValue() }));
  }
}

/**
 * Python's `multiprocessing.BoundedSemaphore`: a {@linkcode Semaphore}
 * whose `release` throws `RangeError` rather than rise past its start
 * value, which catches a release too many.
 *
 * @example One release too many
 * ```ts
 * import { BoundedSemaphore } from "@multiproc/multiproc/sync";
 * import { throws } from "node:assert/strict";
 *
 * const s = new BoundedSemaphore(1);
 * await s.acquire();
 * s.release();
 * throws(() => s.release(), RangeError);
 * ```
 */
export class BoundedSemaphore extends Semaphore {}

/**
 * Python's `multiprocessing.Event`: a flag that `wait` waits for. Setting
 * it wakes every waiter.
 *
 * @example Stop a worker loop
 * ```ts
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { Event } from "@multiproc/multiproc/sync";
 * import { equal } from "node:assert/strict";
 *
 * const stop = new Event();
 * await using pool = new Pool({ processes: 1, backend: "process" });
 * const rounds = pool.apply(async (stop: Event) => {
 *   let n = 0;
 *   while (!await stop.wait({ timeout: 5 })) n++;
 *   return n >= 0;
 * }, [stop]);
 * setTimeout(() => stop.set(), 50);
 * equal(await rounds, true);
 * ```
 */
export class Event {
  readonly #core: SyncOps;

  /** Makes an event that is not set. */
  constructor();
  // A worker rebuilds an event it received around its core.
  constructor(adoption?: Adoption) {
    this.#core = coreFrom(adoption, () => SyncCore.create(EVENT));
  }

  /** @internal */
  [SHARE](): SharedForm {
    return { type: "Event", cores: [this.#core], options: {} };
  }

  /**
   * Sets the flag and wakes every waiter.
   *
   * @example Set
   * ```ts
   * import { Event } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const e = new Event();
   * e.set();
   * equal(e.isSet(), true);
   * ```
   */
  set(): void {
    this.#core.set();
  }

  /**
   * Clears the flag: waiters from now on wait.
   *
   * @example Clear
   * ```ts
   * import { Event } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const e = new Event();
   * e.set();
   * e.clear();
   * equal(e.isSet(), false);
   * ```
   */
  clear(): void {
    this.#core.clear();
  }

  /**
   * Whether the flag is set. In a process worker, as the parent last
   * reported it (a change reaches the worker as soon as it yields).
   *
   * @returns The flag.
   *
   * @example Read the flag
   * ```ts
   * import { Event } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * equal(new Event().isSet(), false);
   * ```
   */
  isSet(): boolean {
    return this.#core.isSet();
  }

  /**
   * Waits until the flag is set.
   *
   * @param options `timeout` and `signal`.
   * @returns `true` once set (at once when it is), `false` when `timeout` passed first.
   * @throws {RangeError} for a negative `timeout`.
   * @throws The signal's reason (as a rejection) when it aborts first.
   *
   * @example Wait with a timeout
   * ```ts
   * import { Event } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const e = new Event();
   * equal(await e.wait({ timeout: 10 }), false);
   * setTimeout(() => e.set(), 10);
   * equal(await e.wait(), true);
   * ```
   */
  async wait(options?: AcquireOptions): Promise<boolean> {
    const got = await this.#core.waitSet(threadToken(), waitOf(options));
    return acquireResult(got, options).acquired;
  }

  // Printed with its flag.
  static {
    defineInspect(this, (event) => ({ isSet: event.isSet() }));
  }
}

/** The lock of a condition, and its core. */
type ConditionLock = Lock;

/**
 * Python's `multiprocessing.Condition`: waiters give up a lock while they
 * wait for a `notify`, and hold it again when `wait` returns. Notified in
 * the order they began waiting.
 *
 * @example Wait for a state change
 * ```ts
 * import { Condition } from "@multiproc/multiproc/sync";
 * import { equal } from "node:assert/strict";
 *
 * const ready = new Condition();
 * let items = 0;
 * setTimeout(async () => {
 *   await using _held = await ready.hold();
 *   items = 1;
 *   ready.notifyAll();
 * }, 10);
 * await using _held = await ready.hold();
 * equal(await ready.waitFor(() => items > 0, { timeout: 5000 }), true);
 * ```
 */
export class Condition {
  readonly #core: SyncOps;
  readonly #lock: ConditionLock;

  /**
   * Makes a condition.
   *
   * @param lock The lock it uses: a {@linkcode Lock} or {@linkcode RLock}. @default {new RLock()}
   * @throws {TypeError} when `lock` is neither.
   */
  constructor(lock?: Lock);
  // A worker rebuilds a condition it received around its cores.
  constructor(lock?: Lock | Adoption, adopted?: Lock) {
    if (lock instanceof Adoption) {
      this.#core = coreFrom(lock, () => SyncCore.create(CONDITION));
      this.#lock = adopted!;
      return;
    }
    if (lock !== undefined && !(lock instanceof Lock)) {
      throw new TypeError(
        `Cannot make a condition with the lock "${
          String(lock)
        }": pass a Lock or an RLock, or nothing for a new RLock`,
      );
    }
    this.#lock = lock ?? new RLock();
    this.#core = coreFrom(undefined, () => SyncCore.create(CONDITION));
  }

  /** @internal */
  [SHARE](): SharedForm {
    const lock = this.#lock[SHARE]();
    return {
      type: "Condition",
      cores: [this.#core, lock.cores[0]],
      options: { lock: lock.type },
    };
  }

  /**
   * Takes the condition's lock.
   *
   * @param options `timeout` and `signal`.
   * @returns `true` once held, `false` when `timeout` passed first.
   * @throws The signal's reason (as a rejection) when it aborts first.
   *
   * @example Take the lock
   * ```ts
   * import { Condition } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const c = new Condition();
   * equal(await c.acquire(), true);
   * c.release();
   * ```
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    return this.#lock.acquire(options);
  }

  /**
   * Releases the condition's lock.
   *
   * @throws {Error} when this thread or process does not hold it.
   *
   * @example Release the lock
   * ```ts
   * import { Condition } from "@multiproc/multiproc/sync";
   *
   * const c = new Condition();
   * await c.acquire();
   * c.release();
   * ```
   */
  release(): void {
    this.#lock.release();
  }

  /**
   * Takes the condition's lock and returns a hold that releases it when
   * disposed.
   *
   * @param options `timeout` and `signal`.
   * @returns The hold.
   * @throws {TimeoutError} (as a rejection) when `timeout` passes first.
   *
   * @example Hold the lock for a block
   * ```ts
   * import { Condition } from "@multiproc/multiproc/sync";
   *
   * const c = new Condition();
   * await using _held = await c.hold();
   * c.notify();
   * ```
   */
  hold(options?: AcquireOptions): Promise<Held> {
    return this.#lock.hold(options);
  }

  /**
   * Gives up the lock, waits for a notify, and takes the lock back (also
   * after a timeout or an abort). The caller must hold the lock.
   *
   * @param options `timeout` and `signal`.
   * @returns `true` when notified, `false` when `timeout` passed first.
   * @throws {Error} (as a rejection) when the caller does not hold the lock.
   * @throws The signal's reason (as a rejection) when it aborts first.
   *
   * @example Time out
   * ```ts
   * import { Condition } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const c = new Condition();
   * await using _held = await c.hold();
   * equal(await c.wait({ timeout: 10 }), false);
   * ```
   */
  async wait(options?: AcquireOptions): Promise<boolean> {
    const got = await this.#core.waitNotify(
      threadToken(),
      this.#lock[SHARE]().cores[0] as SyncOps,
      waitOf(options),
    );
    if (got === NOT_HELD) throw notHeld("wait on");
    return acquireResult(got, options).acquired;
  }

  /**
   * Waits until `predicate` returns a truthy value (Python's `wait_for`):
   * checks it first, then after each notify. The caller must hold the lock.
   *
   * @typeParam T What the predicate returns.
   * @param predicate Called with the lock held.
   * @param options `timeout` (for the whole wait) and `signal`.
   * @returns The predicate's last result: truthy, or falsy after `timeout`.
   * @throws {Error} (as a rejection) when the caller does not hold the lock.
   * @throws The signal's reason (as a rejection) when it aborts first.
   *
   * @example Wait for a value
   * ```ts
   * import { Condition } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const c = new Condition();
   * await using _held = await c.hold();
   * equal(await c.waitFor(() => false, { timeout: 10 }), false);
   * ```
   */
  async waitFor<T>(
    predicate: () => T extends PromiseLike<unknown> ? never : T,
    options?: AcquireOptions,
  ): Promise<T> {
    const wait = waitOf(options);
    const check = (): T => {
      const result = predicate();
      refuseThenable(result, "a waitFor predicate");
      return result as T;
    };
    let result = check();
    while (!result) {
      const left = wait.deadline === undefined
        ? undefined
        : Math.max(0, wait.deadline - performance.now());
      if (left === 0) break;
      await this.wait({ timeout: left, signal: options?.signal });
      result = check();
    }
    return result;
  }

  /**
   * Wakes the `n` longest waiters. The caller must hold the lock.
   *
   * @param n How many. @default {1}
   * @throws {Error} when the caller does not hold the lock.
   * @throws {RangeError} when `n` is not a whole number >= 0.
   *
   * @example Notify one
   * ```ts
   * import { Condition } from "@multiproc/multiproc/sync";
   *
   * const c = new Condition();
   * await using _held = await c.hold();
   * c.notify(1);
   * ```
   */
  notify(n = 1): void {
    const count = checkCount(n, "notify of", 0);
    if (!this.#lockCore().held(threadToken())) throw notHeld("notify on");
    this.#core.notify(count);
  }

  /**
   * Wakes every waiter. The caller must hold the lock.
   *
   * @throws {Error} when the caller does not hold the lock.
   *
   * @example Notify all
   * ```ts
   * import { Condition } from "@multiproc/multiproc/sync";
   *
   * const c = new Condition();
   * await using _held = await c.hold();
   * c.notifyAll();
   * ```
   */
  notifyAll(): void {
    if (!this.#lockCore().held(threadToken())) throw notHeld("notify on");
    this.#core.notify(0x7fffffff);
  }

  // The lock's core: waits and notifies check who holds it.
  #lockCore(): SyncOps {
    return this.#lock[SHARE]().cores[0] as SyncOps;
  }
}

// Python: "cannot wait on un-acquired lock".
function notHeld(what: string): Error {
  return new Error(
    `Cannot ${what} the condition: this thread or process does not hold its lock; acquire it first, e.g. with await using _held = await condition.hold()`,
  );
}

/**
 * Python's `threading.BrokenBarrierError`: the barrier was reset or
 * aborted, a wait timed out, its action failed, or a party died.
 *
 * @example Catch it
 * ```ts
 * import { Barrier, BrokenBarrierError } from "@multiproc/multiproc/sync";
 * import { rejects } from "node:assert/strict";
 *
 * const b = new Barrier(2);
 * await rejects(b.wait({ timeout: 10 }), BrokenBarrierError);
 * ```
 */
export class BrokenBarrierError extends Error {
  /**
   * Makes the error.
   *
   * @param message What broke the barrier.
   * @param options Its cause.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BrokenBarrierError";
  }
}

/** Options of {@linkcode Barrier}. */
export interface BarrierOptions {
  /**
   * Called by the last party to arrive, before any party passes. A
   * function cannot be copied: a barrier with an action stays in this
   * process (use the party whose `wait()` returns 0 instead).
   *
   * @default {undefined}
   */
  action?: () =>
    | void
    | null
    | boolean
    | number
    | string
    | bigint
    | symbol
    // Anything but a promise: an action runs before the others pass.
    | (object & { then?: undefined });
  /** The default `timeout` of {@linkcode Barrier.wait}, in milliseconds. @default {undefined} */
  timeout?: number;
}

/**
 * Python's `multiprocessing.Barrier`: `parties` callers of `wait` wait for
 * one another, then all go on. A wait that times out breaks it for all
 * (Python's rule), and so does the death of a worker that was given it.
 *
 * @example Two phases
 * ```ts
 * import { Barrier } from "@multiproc/multiproc/sync";
 * import { deepEqual } from "node:assert/strict";
 *
 * const b = new Barrier(2);
 * const indexes = await Promise.all([b.wait(), b.wait()]);
 * deepEqual(indexes.sort(), [0, 1]);
 * ```
 */
export class Barrier {
  readonly #core: SyncOps;
  readonly #action: (() => unknown) | undefined;
  readonly #timeout: number | undefined;

  /**
   * Makes a barrier.
   *
   * @param parties How many callers of `wait` it waits for.
   * @param options `action` and `timeout`.
   * @throws {RangeError} when `parties` is not a whole number >= 1.
   * @throws {TypeError} when `action` is not a function.
   */
  constructor(parties: number, options?: BarrierOptions);
  // A worker rebuilds a barrier it received around its core.
  constructor(parties: number | Adoption, options: BarrierOptions = {}) {
    if (options.action !== undefined && typeof options.action !== "function") {
      throw new TypeError(
        `Cannot use the barrier action "${
          String(options.action)
        }": pass a function`,
      );
    }
    if (options.action?.constructor.name === "AsyncFunction") {
      throw new TypeError(
        "Cannot use an async function as the barrier action: it runs before the others pass, so pass a synchronous function",
      );
    }
    checkTimeout(options.timeout);
    this.#action = options.action;
    this.#timeout = options.timeout;
    this.#core = coreFrom(
      parties,
      () =>
        SyncCore.create(
          BARRIER,
          0,
          checkCount(parties, "barrier for parties numbering", 1),
        ),
    );
  }

  /** @internal */
  [SHARE](): SharedForm {
    if (this.#action !== undefined) {
      throw new TypeError(
        "Cannot pass a barrier with an action to a worker: a function cannot be copied; leave the action out and run it in the party whose wait() returns 0",
      );
    }
    return {
      type: "Barrier",
      cores: [this.#core],
      options: { timeout: this.#timeout },
    };
  }

  /**
   * Waits until `parties` callers wait, then returns.
   *
   * @param options `timeout` (else the barrier's) and `signal`; either breaks the barrier when it ends the wait.
   * @returns This caller's arrival index, from 0 to `parties - 1`, different for each.
   * @throws {BrokenBarrierError} (as a rejection) when the barrier is or becomes broken, or `timeout` passes.
   * @throws The signal's reason (as a rejection) when it aborts first.
   *
   * @example Last to arrive
   * ```ts
   * import { Barrier } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * equal(await new Barrier(1).wait(), 0);
   * ```
   */
  async wait(options?: AcquireOptions): Promise<number> {
    // Python's timeout=None: the barrier's own.
    const wait = waitOf({
      ...options,
      timeout: options?.timeout ?? this.#timeout,
    });
    const hasAction = this.#action !== undefined;
    const got = await this.#core.arrive(threadToken(), wait, hasAction);
    if (got === LAST) {
      try {
        refuseThenable(this.#action!(), "a barrier action");
      } catch (error) {
        this.#core.pass(true);
        throw new BrokenBarrierError(
          `The barrier is broken: its action failed: ${String(error)}`,
          { cause: error },
        );
      }
      this.#core.pass(false);
      return this.parties - 1;
    }
    if (got === ABORTED) throw abortReason(options?.signal);
    if (got === BROKEN || got === TIMED_OUT) {
      throw new BrokenBarrierError(
        "The barrier is broken: it was reset or aborted, a wait timed out, or a party died; call reset() to use it again",
      );
    }
    return got;
  }

  /**
   * Returns the barrier to its empty state; parties waiting now get
   * {@linkcode BrokenBarrierError}.
   *
   * @example Reuse after a break
   * ```ts
   * import { Barrier } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const b = new Barrier(2);
   * b.abort();
   * b.reset();
   * equal(b.broken, false);
   * ```
   */
  reset(): void {
    this.#core.reset();
  }

  /**
   * Breaks the barrier: waiting and future parties get
   * {@linkcode BrokenBarrierError} until {@linkcode Barrier.reset}.
   *
   * @example Abort
   * ```ts
   * import { Barrier } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const b = new Barrier(2);
   * b.abort();
   * equal(b.broken, true);
   * ```
   */
  abort(): void {
    this.#core.abort();
  }

  /**
   * Whether the barrier is broken (in a process worker, as last reported).
   *
   * @example A new barrier
   * ```ts
   * import { Barrier } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * equal(new Barrier(2).broken, false);
   * ```
   */
  get broken(): boolean {
    return this.#core.isSet();
  }

  /**
   * How many parties wait now (in a process worker, as last reported).
   *
   * @example One waiting
   * ```ts
   * import { Barrier } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const b = new Barrier(2);
   * const first = b.wait();
   * equal(b.nWaiting, 1);
   * await b.wait();
   * await first;
   * ```
   */
  get nWaiting(): number {
    return this.#core.count();
  }

  /**
   * How many parties the barrier waits for.
   *
   * @example Parties
   * ```ts
   * import { Barrier } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * equal(new Barrier(3).parties, 3);
   * ```
   */
  get parties(): number {
    return this.#core.limit();
  }

  // Printed with its parties and who waits.
  static {
    defineInspect(this, (barrier) => ({
      parties: barrier.parties,
      nWaiting: barrier.nWaiting,
      broken: barrier.broken,
    }));
  }
}

// Counts are whole numbers in a 32-bit word.
function checkCount(value: unknown, what: string, min: number): number {
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < min ||
    value > 0x7fffffff
  ) {
    throw new RangeError(
      `Cannot make a ${what} "${String(value)}": pass a whole number >= ${min}`,
    );
  }
  return value;
}

// ---- shared memory -------------------------------------------------------

/** The type codes of {@linkcode Value} and {@linkcode SharedArray}. */
export type TypeCode =
  | "i8"
  | "u8"
  | "i16"
  | "u16"
  | "i32"
  | "u32"
  | "f32"
  | "f64"
  | "i64"
  | "u64";

/** What a value of a type code holds: a bigint for 64-bit integers. */
export type ValueOf<C extends TypeCode> = C extends "i64" | "u64" ? bigint
  : number;

/** The typed array of a type code. */
export type TypedArrayOf<C extends TypeCode> = {
  i8: Int8Array;
  u8: Uint8Array;
  i16: Int16Array;
  u16: Uint16Array;
  i32: Int32Array;
  u32: Uint32Array;
  f32: Float32Array;
  f64: Float64Array;
  i64: BigInt64Array;
  u64: BigUint64Array;
}[C];

type TypedArrayConstructor = new (
  buffer: SharedArrayBuffer,
  offset?: number,
  length?: number,
) => TypedArrayOf<TypeCode>;

const typedArrays: Record<TypeCode, TypedArrayConstructor> = {
  i8: Int8Array,
  u8: Uint8Array,
  i16: Int16Array,
  u16: Uint16Array,
  i32: Int32Array,
  u32: Uint32Array,
  f32: Float32Array,
  f64: Float64Array,
  i64: BigInt64Array,
  u64: BigUint64Array,
} as unknown as Record<TypeCode, TypedArrayConstructor>;

// Python accepts its own letters; we take explicit sizes only.
function checkType(type: unknown): TypeCode {
  if (typeof type !== "string" || !Object.hasOwn(typedArrays, type)) {
    throw new TypeError(
      `Unknown type code "${String(type)}": use one of ${
        Object.keys(typedArrays).map((code) => `"${code}"`).join(", ")
      }`,
    );
  }
  return type as TypeCode;
}

// A bigint array takes only bigints, the others only numbers.
function checkItem(type: TypeCode, item: unknown): void {
  const big = type === "i64" || type === "u64";
  if (big ? typeof item === "bigint" : typeof item === "number") return;
  throw new TypeError(
    `Cannot store "${String(item)}" in "${type}" shared memory: pass ${
      big ? `a bigint, such as ${String(item)}n` : "a number"
    }`,
  );
}

const THREADS_ONLY =
  'cannot be passed to a process worker: processes share no memory; use a pool or Process with backend: "worker", or a Manager value';

/**
 * Python's `multiprocessing.Value`: one number in shared memory, with a
 * lock ({@linkcode RLock}, as in Python) for read-modify-write. Between
 * worker threads it is the same memory (zero copy); process workers share
 * no memory, so passing it to one is a `TypeError`.
 *
 * @typeParam C The type code.
 *
 * @example The classic counter
 * ```ts
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { Value } from "@multiproc/multiproc/sync";
 * import { equal } from "node:assert/strict";
 *
 * const counter = new Value("i32", 0);
 * await using pool = new Pool({ processes: 2, backend: "worker" });
 * await pool.map(async (counter: Value<"i32">) => {
 *   for (let i = 0; i < 100; i++) {
 *     await using _held = await counter.getLock().hold();
 *     counter.value += 1;
 *   }
 * }, [counter, counter]);
 * equal(counter.value, 200);
 * ```
 */
export class Value<C extends TypeCode = TypeCode> {
  readonly #type: C;
  readonly #array: TypedArrayOf<C>;
  readonly #lock: RLock;

  /**
   * Makes a value.
   *
   * @param type The type code: `"i8"` … `"u32"`, `"f32"`, `"f64"`, `"i64"`, `"u64"`.
   * @param init The start value: a bigint for `"i64"` and `"u64"`. @default {0}
   * @throws {TypeError} for an unknown type code or an `init` of the wrong kind.
   */
  constructor(type: C, init?: ValueOf<C>);
  // A worker rebuilds a value it received around its memory.
  constructor(type: C | Adoption, init?: ValueOf<C>, adopted?: unknown) {
    if (type instanceof Adoption) {
      const options = adopted as { type: C; buffer: SharedArrayBuffer };
      this.#type = options.type;
      this.#array = new typedArrays[options.type](
        options.buffer,
      ) as TypedArrayOf<C>;
      this.#lock = new (RLock as unknown as new (a: Adoption) => RLock)(type);
      return;
    }
    this.#type = checkType(type) as C;
    const Typed = typedArrays[this.#type];
    const bytes = (Typed as unknown as { BYTES_PER_ELEMENT: number })
      .BYTES_PER_ELEMENT;
    this.#array = new Typed(new SharedArrayBuffer(bytes)) as TypedArrayOf<C>;
    if (init !== undefined) {
      checkItem(this.#type, init);
      this.#array[0] = init;
    }
    this.#lock = new RLock();
  }

  /** @internal */
  [SHARE](): SharedForm {
    return {
      type: "Value",
      cores: this.#lock[SHARE]().cores,
      options: { type: this.#type, buffer: this.#array.buffer },
      threadsOnly: `A Value ${THREADS_ONLY}`,
    };
  }

  /**
   * The number. Reading and writing are each whole, but `+=` is a read then
   * a write: hold {@linkcode Value.getLock} around it.
   *
   * @example Read and write
   * ```ts
   * import { Value } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const v = new Value("f64", 1.5);
   * v.value *= 2;
   * equal(v.value, 3);
   * ```
   */
  get value(): ValueOf<C> {
    return this.#array[0] as ValueOf<C>;
  }

  set value(value: ValueOf<C>) {
    checkItem(this.#type, value);
    this.#array[0] = value;
  }

  /**
   * The type code.
   *
   * @example Type
   * ```ts
   * import { Value } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * equal(new Value("u64", 1n).type, "u64");
   * ```
   */
  get type(): C {
    return this.#type;
  }

  /**
   * The value's lock, shared with every worker that has the value.
   *
   * @returns An {@linkcode RLock}.
   *
   * @example Increment under the lock
   * ```ts
   * import { Value } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const v = new Value("i32");
   * {
   *   await using _held = await v.getLock().hold();
   *   v.value += 1;
   * }
   * equal(v.value, 1);
   * ```
   */
  getLock(): RLock {
    return this.#lock;
  }

  // Printed with its type and value.
  static {
    defineInspect(this, (value) => ({ type: value.type, value: value.value }));
  }
}

/**
 * Python's `multiprocessing.Array`: numbers in shared memory, as a typed
 * array ({@linkcode SharedArray.array}), with a lock ({@linkcode RLock}).
 * Between worker threads it is the same memory (zero copy); process workers
 * share no memory, so passing it to one is a `TypeError`. Named so as not to
 * shadow the global `Array`.
 *
 * @typeParam C The type code.
 *
 * @example Fill in parallel
 * ```ts
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { SharedArray } from "@multiproc/multiproc/sync";
 * import { deepEqual } from "node:assert/strict";
 *
 * const squares = new SharedArray("f64", 4);
 * await using pool = new Pool({ processes: 2, backend: "worker" });
 * await pool.starmap((xs: SharedArray<"f64">, i: number) => {
 *   xs.array[i] = i * i;
 * }, [0, 1, 2, 3].map((i) => [squares, i]));
 * deepEqual(squares.toArray(), [0, 1, 4, 9]);
 * ```
 */
export class SharedArray<C extends TypeCode = TypeCode>
  implements Iterable<ValueOf<C>> {
  readonly #type: C;
  readonly #array: TypedArrayOf<C>;
  readonly #lock: RLock;

  /**
   * Makes an array.
   *
   * @param type The type code: `"i8"` … `"u32"`, `"f32"`, `"f64"`, `"i64"`, `"u64"`.
   * @param lengthOrItems A length (filled with zeros) or the items.
   * @throws {TypeError} for an unknown type code or an item of the wrong kind.
   * @throws {RangeError} for a length that is not a whole number >= 0.
   */
  constructor(type: C, lengthOrItems: number | Iterable<ValueOf<C>>);
  // A worker rebuilds an array it received around its memory.
  constructor(
    type: C | Adoption,
    lengthOrItems: number | Iterable<ValueOf<C>> | undefined,
    adopted?: unknown,
  ) {
    if (type instanceof Adoption) {
      const options = adopted as { type: C; buffer: SharedArrayBuffer };
      this.#type = options.type;
      this.#array = new typedArrays[options.type](
        options.buffer,
      ) as TypedArrayOf<C>;
      this.#lock = new (RLock as unknown as new (a: Adoption) => RLock)(type);
      return;
    }
    this.#type = checkType(type) as C;
    const items = typeof lengthOrItems === "number"
      ? undefined
      : lengthOrItems === undefined || lengthOrItems === null
      ? undefined
      : [...lengthOrItems];
    const length = items?.length ?? lengthOrItems;
    if (
      typeof length !== "number" || !Number.isInteger(length) || length < 0
    ) {
      throw new RangeError(
        `Cannot make a shared array of length "${
          String(lengthOrItems)
        }": pass a whole number >= 0 or the items`,
      );
    }
    const Typed = typedArrays[this.#type];
    const bytes = (Typed as unknown as { BYTES_PER_ELEMENT: number })
      .BYTES_PER_ELEMENT;
    this.#array = new Typed(
      new SharedArrayBuffer(bytes * length),
    ) as TypedArrayOf<C>;
    if (items !== undefined) {
      for (let i = 0; i < items.length; i++) {
        checkItem(this.#type, items[i]);
        this.#array[i] = items[i];
      }
    }
    this.#lock = new RLock();
  }

  /** @internal */
  [SHARE](): SharedForm {
    return {
      type: "SharedArray",
      cores: this.#lock[SHARE]().cores,
      options: { type: this.#type, buffer: this.#array.buffer },
      threadsOnly: `A SharedArray ${THREADS_ONLY}`,
    };
  }

  /**
   * The shared memory as a typed array: index it, loop over it, or use
   * `Atomics` on the integer kinds.
   *
   * @example Index
   * ```ts
   * import { SharedArray } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const xs = new SharedArray("i32", [1, 2, 3]);
   * xs.array[0] += 10;
   * equal(xs.array[0], 11);
   * ```
   */
  get array(): TypedArrayOf<C> {
    return this.#array;
  }

  /**
   * How many items.
   *
   * @example Length
   * ```ts
   * import { SharedArray } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * equal(new SharedArray("u8", 3).length, 3);
   * ```
   */
  get length(): number {
    return this.#array.length;
  }

  /**
   * The type code.
   *
   * @example Type
   * ```ts
   * import { SharedArray } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * equal(new SharedArray("f32", 1).type, "f32");
   * ```
   */
  get type(): C {
    return this.#type;
  }

  /**
   * The array's lock, shared with every worker that has the array.
   *
   * @returns An {@linkcode RLock}.
   *
   * @example Update under the lock
   * ```ts
   * import { SharedArray } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * const xs = new SharedArray("i32", 2);
   * await using _held = await xs.getLock().hold();
   * xs.array[1] = 5;
   * equal(xs.array[1], 5);
   * ```
   */
  getLock(): RLock {
    return this.#lock;
  }

  /**
   * A copy of the items in a plain array.
   *
   * @returns The items.
   *
   * @example Copy out
   * ```ts
   * import { SharedArray } from "@multiproc/multiproc/sync";
   * import { deepEqual } from "node:assert/strict";
   *
   * deepEqual(new SharedArray("i64", [1n, 2n]).toArray(), [1n, 2n]);
   * ```
   */
  toArray(): ValueOf<C>[] {
    return Array.from(this.#array as unknown as ArrayLike<ValueOf<C>>);
  }

  /**
   * The items, in order.
   *
   * @returns An iterator over the shared memory.
   *
   * @example Loop
   * ```ts
   * import { SharedArray } from "@multiproc/multiproc/sync";
   * import { equal } from "node:assert/strict";
   *
   * let sum = 0;
   * for (const x of new SharedArray("u8", [1, 2, 3])) sum += x;
   * equal(sum, 6);
   * ```
   */
  [Symbol.iterator](): Iterator<ValueOf<C>> {
    return (this.#array as unknown as Iterable<ValueOf<C>>)[
      Symbol.iterator
    ]();
  }

  // Printed with its type and length.
  static {
    defineInspect(
      this,
      (array) => ({ type: array.type, length: array.length }),
    );
  }
}
