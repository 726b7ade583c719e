// The shared state of one synchronization primitive (a lock, a semaphore, an
// event, a condition or a barrier): a few words and a table of waiter slots
// in a growable SharedArrayBuffer, used by every thread of the process that
// made it. A short guard lock protects the words; a waiter takes a slot with
// a ticket and sleeps on it with `Atomics.waitAsync`, so nothing spins, and
// a release hands the primitive straight to the waiter with the lowest
// ticket, so wake-ups are first in, first out. Every operation names its
// owner: a thread's liveness token, or the token a parent gave a child
// process it acts for (see `_sync_link.ts`). When an owner dies, `died`
// releases what it held and tells the next holder so.
import { hold, release } from "./_keep_alive.ts";
import { isDead, threadToken } from "./_liveness.ts";

/** What kind of primitive a core is. */
export const LOCK = 1;
export const RLOCK = 2;
export const SEMAPHORE = 3;
export const BOUNDED_SEMAPHORE = 4;
export const EVENT = 5;
export const CONDITION = 6;
export const BARRIER = 7;
export type Kind =
  | typeof LOCK
  | typeof RLOCK
  | typeof SEMAPHORE
  | typeof BOUNDED_SEMAPHORE
  | typeof EVENT
  | typeof CONDITION
  | typeof BARRIER;

/** Outcomes: acquired (1), acquired from an owner that died (2), a barrier index (>= 0), or one of these. */
export const ACQUIRED = 1;
export const OWNER_DIED = 2;
export const TIMED_OUT = -1;
export const ABORTED = -2;
export const BROKEN = -3;
export const NOT_HELD = -4;
export const OVER_BOUND = -5;
/** A semaphore's value would pass the largest one an Int32 holds. */
export const OVER_MAX = -7;
/** A barrier's last arrival, which runs the action before the others pass. */
export const LAST = -6;

// Header words.
const GUARD = 0;
const GUARD_WAITERS = 1;
const KIND = 2;
/** Lock, RLock: the owner's token, 0 when free. */
const OWNER = 3;
/** RLock: the recursion depth; semaphore: the value; barrier: arrivals. */
const COUNT = 4;
/** Bounded semaphore: the start value; barrier: the parties. */
const LIMIT = 5;
/** Event: set; barrier: broken. */
const FLAG = 6;
const NEXT_TICKET = 7;
const SLOTS = 8;
/** Slots in the WAITING state. */
const WAITING = 9;
/** A dead owner's hold was released with nobody waiting: the next acquirer learns it. */
const DIED_PENDING = 10;
/** Bumped on every change that a watcher in another process mirrors. */
const CHANGES = 11;
/** Threads sleeping on `CHANGES`. */
const WATCHERS = 12;
/**
 * Lock: the token of the child process whose parent holds the lock for it
 * as a lease (see `_sync_link.ts`), 0 when none. OWNER is that token while
 * the lease lasts, whether or not the child holds the lock right now.
 */
const LEASE = 13;
// Slot lists, each by index + 1 (0: empty), so new memory is empty lists.
/** The waiting slots in ticket order: first and last. */
const WAIT_FIRST = 16;
const WAIT_LAST = 17;
/** The free slots. */
const FREE_FIRST = 18;
/** A semaphore's holder records. */
const HOLDS_FIRST = 19;
const HEADER = 20;

// Slot words and states.
const S_STATE = 0;
const S_TICKET = 1;
const S_TOKEN = 2;
const S_ARG = 3;
/** The next and previous slot of the slot's list, by index + 1. */
const S_NEXT = 4;
const S_PREV = 5;
const SLOT_WORDS = 6;
const FREE = 0;
const WAITING_STATE = 1;
const GRANTED = 2;
/** A semaphore's record of how many units one owner holds. */
const HOLDS = 3;

const INITIAL_SLOTS = 4;
// Only address space is reserved up front: memory grows with the waiters.
const MAX_SLOTS = 1 << 18;
/** How long to wait for the guard before asking whether its holder died. */
const GUARD_CHECK_MS = 20;

/** Waits until `deadline` (a `performance.now()` time) or an abort. */
export interface SyncWait {
  deadline?: number;
  signal?: AbortSignal;
  /** Whether the wait holds the event loop. @default {true} */
  hold?: boolean;
  /** Aborts when the owner is gone (a child process that died): even a condition's retake of its lock gives up. */
  gone?: AbortSignal;
}

/** What crosses to a worker thread: the memory itself. */
export interface SyncDescriptor {
  sync: SharedArrayBuffer;
  /** The id the thread names it by when it lets go of it. */
  id?: number;
}

/** A snapshot of a core's state, mirrored by other processes. */
export interface SyncState {
  owner: number;
  count: number;
  flag: number;
}

/** The brand that tells a sync core from a queue's. */
export const SYNC_CORE: unique symbol = Symbol.for("multiproc.syncCore");

/**
 * What a primitive's handle calls, whether the core is here (shared memory)
 * or in a parent process (through `_sync_link.ts`). `owner` is ignored by a
 * remote core: the parent knows which child asks.
 */
export interface SyncOps {
  readonly [SYNC_CORE]: true;
  readonly kind: Kind;
  /** Takes a lock or semaphore if that needs no wait here: `ACQUIRED`, `OWNER_DIED`, or 0. */
  tryAcquire(owner: number): number;
  /** Acquires a lock or semaphore: `ACQUIRED`, `OWNER_DIED`, `TIMED_OUT` or `ABORTED`. */
  acquire(owner: number, wait: SyncWait): Promise<number>;
  /** Releases `n` units: 0, `NOT_HELD`, `OVER_BOUND` or `OVER_MAX`. */
  release(owner: number, n: number): number;
  /** Whether `owner` holds this lock (any owner, for `undefined`). */
  held(owner: number | undefined): boolean;
  set(): void;
  clear(): void;
  isSet(): boolean;
  /** Waits for the event: `ACQUIRED`, `TIMED_OUT` or `ABORTED`. */
  waitSet(owner: number, wait: SyncWait): Promise<number>;
  /** A condition's wait: releases `lock`, waits for a notify, takes `lock` back. */
  waitNotify(owner: number, lock: SyncOps, wait: SyncWait): Promise<number>;
  notify(n: number): void;
  /** A barrier's wait: the arrival index, `LAST` (then call `pass`), `BROKEN` or `ABORTED`. */
  arrive(owner: number, wait: SyncWait, hasAction: boolean): Promise<number>;
  /** After `LAST`: lets the generation pass, or breaks the barrier. */
  pass(broken: boolean): void;
  reset(): void;
  abort(): void;
  count(): number;
  limit(): number;
}

/** The memory of one primitive, shared by the threads of its process. */
export class SyncCore implements SyncOps {
  readonly [SYNC_CORE] = true as const;
  /** The waiter slots (and the header): tracks the memory as it grows. */
  readonly ints: Int32Array;
  /**
   * The header alone, a fixed-length view: V8 and JavaScriptCore run
   * `Atomics` on a length-tracking view several times slower.
   */
  readonly head: Int32Array;
  readonly kind: Kind;
  /** Slots taken by the last arrival of a barrier generation, passed once its action ran. */
  #passing: { slot: number; ticket: number }[] = [];
  /**
   * Lock: told at once when a waiter of this thread queues while the lock
   * is leased (set by the lease holder's link, in the thread that made it).
   */
  onWanted: (() => void) | undefined;

  // A worker thread rebuilds the core around the memory it was sent.
  constructor(descriptor: SyncDescriptor) {
    this.ints = new Int32Array(descriptor.sync);
    this.head = new Int32Array(descriptor.sync, 0, HEADER);
    this.kind = this.head[KIND] as Kind;
  }

  // Growable: a primitive nobody waits on stays small.
  /** A new core of `kind` with `count` in COUNT and `limit` in LIMIT. */
  static create(kind: Kind, count = 0, limit = 0): SyncCore {
    const bytes = (HEADER + INITIAL_SLOTS * SLOT_WORDS) * 4;
    const buffer = new SharedArrayBuffer(bytes, {
      maxByteLength: (HEADER + MAX_SLOTS * SLOT_WORDS) * 4,
    });
    const head = new Int32Array(buffer, 0, HEADER);
    head[KIND] = kind;
    head[COUNT] = count;
    head[LIMIT] = limit;
    const core = new SyncCore({ sync: buffer });
    core.#addSlots(0, INITIAL_SLOTS);
    return core;
  }

  // A worker thread gets the memory itself; structured clone shares it.
  descriptor(): SyncDescriptor {
    return { sync: this.ints.buffer as SharedArrayBuffer };
  }

  // ---- the guard ---------------------------------------------------------

  /**
   * Takes the guard. It is held only for a few words, so waiting for it
   * spins a little and then sleeps; a holder that died is found out.
   */
  #lock(): void {
    const me = threadToken();
    // Deno lets a terminated thread run on until it yields (denoland/deno
    // #35657); others may already have released what it held.
    if (isDead(me)) {
      throw new Error(
        "Cannot use the lock: this worker thread was stopped; use the process backend for tasks that must be stopped while they compute",
      );
    }
    if (Atomics.compareExchange(this.head, GUARD, 0, me) === 0) return;
    for (let spin = 0; spin < 2000; spin++) {
      if (
        Atomics.load(this.head, GUARD) === 0 &&
        Atomics.compareExchange(this.head, GUARD, 0, me) === 0
      ) return;
    }
    Atomics.add(this.head, GUARD_WAITERS, 1);
    try {
      for (;;) {
        const holder = Atomics.load(this.head, GUARD);
        if (holder === 0) {
          if (Atomics.compareExchange(this.head, GUARD, 0, me) === 0) return;
          continue;
        }
        const woke = Atomics.wait(this.head, GUARD, holder, GUARD_CHECK_MS);
        if (
          woke === "timed-out" && isDead(holder) &&
          Atomics.compareExchange(this.head, GUARD, holder, me) === holder
        ) return;
      }
    } finally {
      Atomics.sub(this.head, GUARD_WAITERS, 1);
    }
  }

  // Notifies only a counted sleeper: an uncontended unlock stays cheap.
  #unlock(): void {
    Atomics.store(this.head, GUARD, 0);
    if (Atomics.load(this.head, GUARD_WAITERS) > 0) {
      Atomics.notify(this.head, GUARD, 1);
    }
  }

  // Other processes mirror the state: their watchers wake on a change.
  #changed(): void {
    Atomics.add(this.head, CHANGES, 1);
    if (Atomics.load(this.head, WATCHERS) > 0) {
      Atomics.notify(this.head, CHANGES);
    }
  }

  /** The state other processes mirror. */
  state(): SyncState {
    return {
      owner: Atomics.load(this.head, OWNER),
      count: Atomics.load(this.head, COUNT),
      flag: Atomics.load(this.head, FLAG),
    };
  }

  /**
   * Resolves once the state changed after `seen` (a value of `changes()`),
   * without holding the event loop.
   */
  async changedSince(seen: number, until?: () => boolean): Promise<void> {
    Atomics.add(this.head, WATCHERS, 1);
    try {
      while (Atomics.load(this.head, CHANGES) === seen && !until?.()) {
        const wait = Atomics.waitAsync(this.head, CHANGES, seen);
        if (wait.async) await wait.value;
      }
    } finally {
      Atomics.sub(this.head, WATCHERS, 1);
    }
  }

  /** Wakes `changedSince` to look at its `until` again. */
  wakeWatchers(): void {
    Atomics.notify(this.head, CHANGES);
  }

  /** Whether `token` holds this primitive or waits on it. */
  involves(token: number): boolean {
    this.#lock();
    try {
      if (this.head[OWNER] === token) return true;
      for (let i = 0; i < this.head[SLOTS]; i++) {
        const at = HEADER + i * SLOT_WORDS;
        if (
          this.ints[at + S_STATE] !== FREE && this.ints[at + S_TOKEN] === token
        ) return true;
      }
      return false;
    } finally {
      this.#unlock();
    }
  }

  /** The change counter, for `changedSince`. */
  changes(): number {
    return Atomics.load(this.head, CHANGES);
  }

  // ---- slots -------------------------------------------------------------

  // Slots never move, so a waiter's index stays valid while the table grows.
  /** Makes slots `from` to `to` (exclusive) free; the guard is held. */
  #addSlots(from: number, to: number): void {
    for (let i = to - 1; i >= from; i--) this.#push(FREE_FIRST, -1, i);
    this.head[SLOTS] = to;
  }

  /** Puts `slot` at the end of a list (its start, without `last`); the guard is held. */
  #push(first: number, last: number, slot: number): void {
    const ints = this.ints;
    const at = HEADER + slot * SLOT_WORDS;
    if (last < 0) {
      const next = this.head[first];
      ints[at + S_NEXT] = next;
      ints[at + S_PREV] = 0;
      if (next !== 0) {
        ints[HEADER + (next - 1) * SLOT_WORDS + S_PREV] = slot + 1;
      }
      this.head[first] = slot + 1;
      return;
    }
    const prev = this.head[last];
    ints[at + S_NEXT] = 0;
    ints[at + S_PREV] = prev;
    if (prev === 0) this.head[first] = slot + 1;
    else ints[HEADER + (prev - 1) * SLOT_WORDS + S_NEXT] = slot + 1;
    this.head[last] = slot + 1;
  }

  /** Takes `slot` out of a list; the guard is held. */
  #unlink(first: number, last: number, slot: number): void {
    const ints = this.ints;
    const at = HEADER + slot * SLOT_WORDS;
    const next = ints[at + S_NEXT];
    const prev = ints[at + S_PREV];
    if (prev === 0) this.head[first] = next;
    else ints[HEADER + (prev - 1) * SLOT_WORDS + S_NEXT] = next;
    if (next !== 0) ints[HEADER + (next - 1) * SLOT_WORDS + S_PREV] = prev;
    else if (last >= 0) this.head[last] = prev;
  }

  /** Frees `slot` from the list its state puts it in; the guard is held. */
  #free(slot: number): void {
    const at = HEADER + slot * SLOT_WORDS;
    const state = this.ints[at + S_STATE];
    if (state === FREE) return;
    if (state === WAITING_STATE) {
      this.#unlink(WAIT_FIRST, WAIT_LAST, slot);
      this.head[WAITING]--;
    } else if (state === HOLDS) this.#unlink(HOLDS_FIRST, -1, slot);
    Atomics.store(this.ints, at + S_STATE, FREE);
    this.#push(FREE_FIRST, -1, slot);
  }

  /** Takes a free slot (growing the table if none); the guard is held. */
  #take(state: number, token: number, arg: number): number {
    const ints = this.ints;
    if (this.head[FREE_FIRST] === 0) {
      const slots = this.head[SLOTS];
      if (slots >= MAX_SLOTS) {
        throw new RangeError(
          `Cannot wait on a primitive that already has "${slots}" waiters and holders: use fewer at once (a semaphore lets many jobs take turns with far fewer waiting)`,
        );
      }
      const grown = Math.min(slots * 2, MAX_SLOTS);
      (ints.buffer as SharedArrayBuffer).grow(
        (HEADER + grown * SLOT_WORDS) * 4,
      );
      this.#addSlots(slots, grown);
    }
    const found = this.head[FREE_FIRST] - 1;
    this.#unlink(FREE_FIRST, -1, found);
    const at = HEADER + found * SLOT_WORDS;
    ints[at + S_TICKET] = this.head[NEXT_TICKET]++;
    ints[at + S_TOKEN] = token;
    ints[at + S_ARG] = arg;
    Atomics.store(ints, at + S_STATE, state);
    // Tickets only grow: the end of the list is the latest.
    if (state === WAITING_STATE) {
      this.#push(WAIT_FIRST, WAIT_LAST, found);
      this.head[WAITING]++;
    } else if (state === HOLDS) this.#push(HOLDS_FIRST, -1, found);
    return found;
  }

  /** The waiting slot with the lowest ticket, or -1; the guard is held. */
  #first(): number {
    return this.head[WAIT_FIRST] - 1;
  }

  /** Wakes the waiter in `slot` with `arg`; the guard is held. */
  #grant(slot: number, arg: number): void {
    const ints = this.ints;
    const at = HEADER + slot * SLOT_WORDS;
    ints[at + S_ARG] = arg;
    this.#unlink(WAIT_FIRST, WAIT_LAST, slot);
    this.head[WAITING]--;
    Atomics.store(ints, at + S_STATE, GRANTED);
    Atomics.notify(ints, at + S_STATE);
  }

  /** Wakes every waiter, each with `arg` (or its own arg when `undefined`). */
  #grantAll(arg: number | undefined): void {
    const ints = this.ints;
    for (let next = this.#first(); next >= 0; next = this.#first()) {
      this.#grant(next, arg ?? ints[HEADER + next * SLOT_WORDS + S_ARG]);
    }
  }

  // Semaphores remember who holds units, so a dead holder's can come back.
  /** Adds `n` (may be negative) to what `token` holds; the guard is held. */
  #addHolds(token: number, n: number): void {
    const ints = this.ints;
    let any = -1;
    for (let next = this.head[HOLDS_FIRST]; next !== 0;) {
      const i = next - 1;
      const at = HEADER + i * SLOT_WORDS;
      if (ints[at + S_TOKEN] === token) {
        this.#changeHolds(i, n);
        return;
      }
      any = i;
      next = ints[at + S_NEXT];
    }
    if (n > 0) this.#take(HOLDS, token, n);
    // Released by another owner than the one that acquired: count it
    // against some holder, so that a death later gives back no more than
    // is out.
    else if (any >= 0) this.#changeHolds(any, n);
  }

  // A record that reaches zero frees its slot.
  #changeHolds(slot: number, n: number): void {
    const at = HEADER + slot * SLOT_WORDS;
    const held = this.ints[at + S_ARG] + n;
    if (held > 0) this.ints[at + S_ARG] = held;
    else this.#free(slot);
  }

  // ---- waiting -------------------------------------------------------------

  /**
   * Sleeps in `slot` until it is granted, the deadline passes or the signal
   * aborts. Returns the grant's argument, or `TIMED_OUT` / `ABORTED` once
   * the slot is given up (a grant that came first wins).
   */
  async #await(slot: number, ticket: number, wait: SyncWait): Promise<number> {
    const ints = this.ints;
    const at = HEADER + slot * SLOT_WORDS;
    const { deadline, signal } = wait;
    const wake = (): void => void Atomics.notify(ints, at + S_STATE);
    signal?.addEventListener("abort", wake, { once: true });
    const holds = wait.hold !== false;
    if (holds) hold();
    try {
      while (
        Atomics.load(ints, at + S_STATE) === WAITING_STATE &&
        Atomics.load(ints, at + S_TICKET) === ticket && !signal?.aborted
      ) {
        const left = deadline === undefined
          ? undefined
          : deadline - performance.now();
        if (left !== undefined && left <= 0) break;
        const sleep = Atomics.waitAsync(
          ints,
          at + S_STATE,
          WAITING_STATE,
          left,
        );
        if (sleep.async) await sleep.value;
      }
    } finally {
      signal?.removeEventListener("abort", wake);
      if (holds) release();
    }
    this.#lock();
    try {
      if (ints[at + S_TICKET] !== ticket) return ABORTED;
      const state = ints[at + S_STATE];
      if (state === GRANTED) {
        const arg = ints[at + S_ARG];
        this.#free(slot);
        return arg;
      }
      if (state === WAITING_STATE) this.#free(slot);
      return signal?.aborted ? ABORTED : TIMED_OUT;
    } finally {
      this.#unlock();
    }
  }

  // Python's acquire(timeout=0) and a signal already aborted never wait.
  #cannotWait(wait: SyncWait): number | undefined {
    if (wait.signal?.aborted) return ABORTED;
    if (wait.deadline !== undefined && wait.deadline <= performance.now()) {
      return TIMED_OUT;
    }
    return undefined;
  }

  // ---- locks and semaphores ------------------------------------------------

  /** Takes the primitive if it is free and nobody waits; the guard is held. */
  #tryAcquire(owner: number): number {
    switch (this.kind) {
      case RLOCK:
        if (this.head[OWNER] === owner) {
          this.head[COUNT]++;
          return ACQUIRED;
        }
      // falls through
      case LOCK:
        if (this.head[OWNER] !== 0 || this.head[WAITING] > 0) return 0;
        Atomics.store(this.head, OWNER, owner);
        this.head[COUNT] = 1;
        this.#changed();
        return this.#diedPending();
      default:
        if (this.head[COUNT] === 0 || this.head[WAITING] > 0) return 0;
        this.head[COUNT]--;
        this.#addHolds(owner, 1);
        this.#changed();
        return this.#diedPending();
    }
  }

  // The first holder after a dead one's release learns of it, once.
  #diedPending(): number {
    if (this.head[DIED_PENDING] === 0) return ACQUIRED;
    this.head[DIED_PENDING] = 0;
    return OWNER_DIED;
  }

  // The uncontended path, without a promise.
  tryAcquire(owner: number): number {
    this.#lock();
    try {
      return this.#tryAcquire(owner);
    } finally {
      this.#unlock();
    }
  }

  // Free: at once; else a slot, handed the primitive by a release.
  async acquire(owner: number, wait: SyncWait): Promise<number> {
    let slot: number;
    let ticket: number;
    this.#lock();
    try {
      const got = this.#tryAcquire(owner);
      if (got !== 0) return got;
      const refused = this.#cannotWait(wait);
      if (refused !== undefined) return refused;
      slot = this.#take(WAITING_STATE, owner, 0);
      ticket = this.ints[HEADER + slot * SLOT_WORDS + S_TICKET];
      // The lease holder's link watches for a waiter, to revoke the lease.
      if (this.head[LEASE] !== 0) this.#changed();
    } finally {
      this.#unlock();
    }
    // In the link's thread it revokes now, before anything this thread does next.
    if (this.onWanted !== undefined && Atomics.load(this.head, LEASE) !== 0) {
      this.onWanted();
    }
    const got = await this.#await(slot, ticket, wait);
    // Granted as the signal fired: the caller gets the abort, so give back.
    if (got > 0 && wait.signal?.aborted) {
      this.release(owner, 1);
      return ABORTED;
    }
    return got;
  }

  /** Hands the lock (or one unit) to the first waiter, else frees it; the guard is held. */
  #handOff(arg: number): void {
    const ints = this.ints;
    const next = this.#first();
    if (this.kind === LOCK || this.kind === RLOCK) {
      // Whoever held it gives it up, and with it a lease it had.
      this.head[LEASE] = 0;
      if (next < 0) {
        Atomics.store(this.head, OWNER, 0);
        this.head[COUNT] = 0;
        if (arg === OWNER_DIED) this.head[DIED_PENDING] = 1;
      } else {
        Atomics.store(
          this.head,
          OWNER,
          ints[HEADER + next * SLOT_WORDS + S_TOKEN],
        );
        this.head[COUNT] = 1;
        this.#grant(next, arg);
      }
    } else if (next < 0) {
      this.head[COUNT]++;
      if (arg === OWNER_DIED) this.head[DIED_PENDING] = 1;
    } else {
      this.#addHolds(ints[HEADER + next * SLOT_WORDS + S_TOKEN], 1);
      this.#grant(next, arg);
    }
    this.#changed();
  }

  // Python's release(); a lock only by its owner (a robust mutex).
  release(owner: number, n: number): number {
    this.#lock();
    try {
      if (this.kind === LOCK || this.kind === RLOCK) {
        if (this.head[OWNER] !== owner) return NOT_HELD;
        if (this.kind === RLOCK && --this.head[COUNT] > 0) return 0;
        this.#handOff(ACQUIRED);
        return 0;
      }
      if (
        this.kind === BOUNDED_SEMAPHORE &&
        this.head[COUNT] + n > this.head[LIMIT]
      ) {
        return OVER_BOUND;
      }
      if (this.head[COUNT] + n > 0x7fffffff) return OVER_MAX;
      for (let i = 0; i < n; i++) {
        this.#addHolds(owner, -1);
        this.#handOff(ACQUIRED);
      }
      return 0;
    } finally {
      this.#unlock();
    }
  }

  /** Whether `owner` holds this lock (or anyone, for `undefined`). */
  held(owner: number | undefined): boolean {
    const holder = Atomics.load(this.head, OWNER);
    return owner === undefined ? holder !== 0 : holder === owner;
  }

  /**
   * Makes `owner`'s hold of this lock a lease when nobody waits for it: the
   * lock stays `owner`'s until its link hands it back. Returns whether it
   * did.
   */
  lease(owner: number): boolean {
    this.#lock();
    try {
      if (
        this.kind !== LOCK || this.head[OWNER] !== owner ||
        this.head[WAITING] > 0 || this.head[LEASE] !== 0
      ) return false;
      this.head[LEASE] = owner;
      return true;
    } finally {
      this.#unlock();
    }
  }

  /** Whether `owner` holds this lock's lease. */
  leasedTo(owner: number): boolean {
    return Atomics.load(this.head, LEASE) === owner;
  }

  /** Whether anyone waits to acquire (or, for a condition, to be notified). */
  wanted(): boolean {
    return Atomics.load(this.head, WAITING) > 0;
  }

  /**
   * RLock, for a condition's wait: gives up every level `owner` holds and
   * returns how many there were (0 when it holds none).
   */
  #releaseAll(owner: number): number {
    this.#lock();
    try {
      if (this.head[OWNER] !== owner) return 0;
      const depth = this.head[COUNT];
      this.#handOff(ACQUIRED);
      return depth;
    } finally {
      this.#unlock();
    }
  }

  /**
   * RLock, after a condition's wait took one level back: adds the other
   * levels (another async function of the owner may hold some meanwhile).
   */
  #restore(depth: number): void {
    this.#lock();
    this.head[COUNT] += depth - 1;
    this.#unlock();
  }

  // ---- events --------------------------------------------------------------

  // Python's Event.set(): every waiter wakes.
  set(): void {
    this.#lock();
    try {
      if (this.head[FLAG] === 1) return;
      Atomics.store(this.head, FLAG, 1);
      this.#grantAll(ACQUIRED);
      this.#changed();
    } finally {
      this.#unlock();
    }
  }

  // Python's Event.clear().
  clear(): void {
    this.#lock();
    try {
      if (this.head[FLAG] === 0) return;
      Atomics.store(this.head, FLAG, 0);
      this.#changed();
    } finally {
      this.#unlock();
    }
  }

  // Read without the guard: one word.
  isSet(): boolean {
    return Atomics.load(this.head, FLAG) === 1;
  }

  // Python's Event.wait(): true at once when set.
  async waitSet(owner: number, wait: SyncWait): Promise<number> {
    let slot: number;
    let ticket: number;
    this.#lock();
    try {
      if (this.head[FLAG] === 1) return ACQUIRED;
      const refused = this.#cannotWait(wait);
      if (refused !== undefined) return refused;
      slot = this.#take(WAITING_STATE, owner, 0);
      ticket = this.ints[HEADER + slot * SLOT_WORDS + S_TICKET];
    } finally {
      this.#unlock();
    }
    return await this.#await(slot, ticket, wait);
  }

  // ---- conditions ------------------------------------------------------------

  /**
   * Python's Condition.wait(): `ACQUIRED` when notified, `TIMED_OUT`,
   * `ABORTED`, or `NOT_HELD` (the caller does not hold the lock). The lock
   * is held again when it returns, except for `NOT_HELD`.
   */
  async waitNotify(
    owner: number,
    lock: SyncOps,
    wait: SyncWait,
  ): Promise<number> {
    const core = lock as SyncCore;
    if (!core.held(owner)) return NOT_HELD;
    let slot: number;
    let ticket: number;
    // In line before the lock is let go: a notify after it finds us.
    this.#lock();
    try {
      slot = this.#take(WAITING_STATE, owner, 0);
      ticket = this.ints[HEADER + slot * SLOT_WORDS + S_TICKET];
    } finally {
      this.#unlock();
    }
    const depth = core.#releaseAll(owner);
    const got = await this.#await(slot, ticket, wait);
    // A dead waiter must not take the lock back: nobody would release it.
    if (wait.gone?.aborted) return got;
    // Python takes the lock back without a timeout, whatever happened.
    const back = await core.acquire(owner, { signal: wait.gone });
    if (back > 0 && core.kind === RLOCK) core.#restore(depth);
    return got;
  }

  // Python's notify(n): the n longest waiters wake.
  notify(n: number): void {
    this.#lock();
    try {
      for (let i = 0; i < n; i++) {
        const next = this.#first();
        if (next < 0) break;
        this.#grant(next, ACQUIRED);
      }
    } finally {
      this.#unlock();
    }
  }

  // ---- barriers --------------------------------------------------------------

  /**
   * Python's Barrier.wait(): the arrival index once all parties came,
   * `LAST` for the last arrival when there is an action to run first (then
   * call `pass`), `BROKEN`, or `ABORTED`. A timeout or an abort breaks the
   * barrier, as a timeout does in Python.
   */
  async arrive(
    owner: number,
    wait: SyncWait,
    hasAction: boolean,
  ): Promise<number> {
    const ints = this.ints;
    let slot: number;
    let ticket: number;
    this.#lock();
    try {
      if (this.head[FLAG] === 1) return BROKEN;
      const index = this.head[COUNT]++;
      if (index + 1 === this.head[LIMIT]) {
        this.#changed();
        if (!hasAction) {
          this.#release();
          return index;
        }
        this.#passing = this.#waiters();
        this.head[COUNT] = 0;
        return LAST;
      }
      const refused = this.#cannotWait(wait);
      if (refused !== undefined) {
        this.#break();
        return refused === ABORTED ? ABORTED : BROKEN;
      }
      slot = this.#take(WAITING_STATE, owner, index);
      ticket = ints[HEADER + slot * SLOT_WORDS + S_TICKET];
      this.#changed();
    } finally {
      this.#unlock();
    }
    // An abort breaks the barrier at once: a child process that gave up
    // and says so finds it broken by the time its next message is read.
    const breakNow = (): void => {
      this.#lock();
      try {
        const at = HEADER + slot * SLOT_WORDS;
        if (
          ints[at + S_STATE] === WAITING_STATE && ints[at + S_TICKET] === ticket
        ) this.#break();
      } finally {
        this.#unlock();
      }
    };
    wait.signal?.addEventListener("abort", breakNow, { once: true });
    let got: number;
    try {
      got = await this.#await(slot, ticket, wait);
    } finally {
      wait.signal?.removeEventListener("abort", breakNow);
    }
    if (got === BROKEN && wait.signal?.aborted) return ABORTED;
    if (got === TIMED_OUT || got === ABORTED) {
      this.#lock();
      this.#break();
      this.#unlock();
      return got === ABORTED ? ABORTED : BROKEN;
    }
    return got;
  }

  /** The waiting slots with their tickets; the guard is held. */
  #waiters(): { slot: number; ticket: number }[] {
    const ints = this.ints;
    const found: { slot: number; ticket: number }[] = [];
    for (let next = this.head[WAIT_FIRST]; next !== 0;) {
      const at = HEADER + (next - 1) * SLOT_WORDS;
      found.push({ slot: next - 1, ticket: ints[at + S_TICKET] });
      next = ints[at + S_NEXT];
    }
    return found;
  }

  /** Lets every waiter of this generation pass with its index; the guard is held. */
  #release(): void {
    this.#grantAll(undefined);
    this.head[COUNT] = 0;
    this.#changed();
  }

  /** Breaks the barrier: every waiter gets `BROKEN`; the guard is held. */
  #break(): void {
    Atomics.store(this.head, FLAG, 1);
    this.#grantAll(BROKEN);
    this.head[COUNT] = 0;
    this.#changed();
  }

  // After the action: only the slots of that generation, if still waiting.
  pass(broken: boolean): void {
    const ints = this.ints;
    const passing = this.#passing;
    this.#passing = [];
    this.#lock();
    try {
      if (broken) return this.#break();
      for (const { slot, ticket } of passing) {
        const at = HEADER + slot * SLOT_WORDS;
        if (
          ints[at + S_STATE] === WAITING_STATE && ints[at + S_TICKET] === ticket
        ) this.#grant(slot, ints[at + S_ARG]);
      }
      this.#changed();
    } finally {
      this.#unlock();
    }
  }

  // Python's reset(): waiters get BrokenBarrierError, the barrier is new.
  reset(): void {
    this.#lock();
    try {
      this.#grantAll(BROKEN);
      Atomics.store(this.head, FLAG, 0);
      this.head[COUNT] = 0;
      this.#changed();
    } finally {
      this.#unlock();
    }
  }

  // Python's abort(): broken until reset.
  abort(): void {
    this.#lock();
    try {
      this.#break();
    } finally {
      this.#unlock();
    }
  }

  // A barrier's arrivals, a semaphore's value.
  count(): number {
    return Atomics.load(this.head, COUNT);
  }

  // A barrier's parties, a bounded semaphore's start value.
  limit(): number {
    return this.head[LIMIT];
  }

  // ---- deaths ------------------------------------------------------------------

  /**
   * `token`'s thread or process ended: its waits are dropped, what it held
   * is released (the next holder learns the owner died), and a barrier it
   * was waiting at breaks (a party that finished with it breaks nothing).
   */
  died(token: number): void {
    const ints = this.ints;
    this.#lock();
    try {
      let wasWaiting = false;
      let units = 0;
      for (let i = 0; i < this.head[SLOTS]; i++) {
        const at = HEADER + i * SLOT_WORDS;
        const state = ints[at + S_STATE];
        if (state === FREE || ints[at + S_TOKEN] !== token) continue;
        if (state === WAITING_STATE) wasWaiting = true;
        if (state === HOLDS) units += ints[at + S_ARG];
        this.#free(i);
        // A proxy wait in a parent may still be asleep on it.
        Atomics.notify(ints, at + S_STATE);
      }
      switch (this.kind) {
        case LOCK:
        case RLOCK:
          if (this.head[OWNER] === token) this.#handOff(OWNER_DIED);
          break;
        case SEMAPHORE:
        case BOUNDED_SEMAPHORE:
          for (let i = 0; i < units; i++) this.#handOff(OWNER_DIED);
          break;
        case BARRIER:
          if (wasWaiting) this.#break();
          break;
      }
    } finally {
      this.#unlock();
    }
  }
}

/** Whether `core` is a sync primitive's core (else a queue's). */
export function isSyncCore(core: object): core is SyncOps {
  return SYNC_CORE in core;
}
