// The shared state of one queue: a ring of records in a growable
// SharedArrayBuffer and a few control words, used under a lock by every
// thread of the process that holds it. Waiting uses `Atomics.waitAsync`, so
// nothing spins; other processes reach the ring through a proxy (see
// `_queue_link.ts`).
import { RECORD_HEADER } from "./_codec.ts";
import { hold, release } from "./_keep_alive.ts";
import { isDead, threadToken } from "./_liveness.ts";

/** What an operation came to. */
export const OK = 0;
export const TIMED_OUT = 1;
export const CLOSED = 2;
export const ABORTED = 3;
export type Status =
  | typeof OK
  | typeof TIMED_OUT
  | typeof CLOSED
  | typeof ABORTED;

const LOCK = 0;
const LOCK_WAITERS = 1;
const COUNT = 2;
const HEAD = 3;
const USED = 4;
const CAPACITY = 5;
const IS_CLOSED = 6;
/** Bumped when items arrive or the queue closes: getters wait on it. */
const PUT_SEQ = 7;
/** Bumped when items leave or the queue closes: putters wait on it. */
const GET_SEQ = 8;
const GET_WAITERS = 9;
const PUT_WAITERS = 10;
const UNFINISHED = 11;
const JOIN_SEQ = 12;
const JOIN_WAITERS = 13;
/** Processes that hold the queue and may still deliver items after close. */
const REMOTE_WRITERS = 14;
const MAXSIZE = 15;
const WORDS = 16;

const INITIAL_BYTES = 64 * 1024;
const MAX_BYTES = 1024 * 1024 * 1024;
/** Takes of this many bytes or more allocate their copy outside the lock. */
const ALLOCATE_UNLOCKED = 16 * 1024;
/** How long to wait for the lock before asking whether its holder died. */
const LOCK_CHECK_MS = 20;

/** What crosses to a worker thread: the ring itself, shared. */
export interface RingDescriptor {
  ctl: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

/** A block of records taken from a ring. */
export interface Taken {
  block: Uint8Array;
  count: number;
}

/** Waits until `deadline` (a `performance.now()` time) or a change. */
export interface WaitOptions {
  deadline?: number;
  signal?: AbortSignal;
  /** Whether the wait holds the event loop. */
  hold?: boolean;
}

/**
 * One queue's state as its handles use it: the ring itself in the process
 * that made it, a proxy to it in other processes.
 */
export interface Core {
  readonly maxsize: number;
  /** Puts, waiting while full; `TIMED_OUT` means still full. */
  put(block: Uint8Array, count: number, wait: WaitOptions): Promise<Status>;
  tryPut(
    block: Uint8Array,
    count: number,
    options?: { force?: boolean; afterClose?: boolean },
  ): Status;
  /** Takes, waiting while empty; `TIMED_OUT` means still empty. */
  take(
    maxCount: number,
    maxBytes: number,
    wait: WaitOptions,
  ): Promise<Taken | Status>;
  tryTake(maxCount: number, maxBytes: number): Taken | undefined | 2;
  unget(block: Uint8Array, count: number): void;
  close(): void;
  closed(): boolean;
  qsize(): number;
  taskDone(): boolean;
  join(wait: WaitOptions): Promise<Status>;
  addRemoteWriter(): void;
  removeRemoteWriter(): void;
  whenClosed(): Promise<void>;
  /** The shared memory, for a worker thread; `undefined` when not in this process. */
  descriptor(): RingDescriptor | undefined;
}

export class Ring implements Core {
  readonly ctl: Int32Array;
  readonly data: SharedArrayBuffer;
  readonly #bytes: Uint8Array;

  constructor(descriptor: RingDescriptor) {
    this.ctl = new Int32Array(descriptor.ctl);
    this.data = descriptor.data;
    this.#bytes = new Uint8Array(descriptor.data);
  }

  static create(maxsize: number): Ring {
    const ctl = new SharedArrayBuffer(WORDS * 4);
    const data = new SharedArrayBuffer(INITIAL_BYTES, {
      maxByteLength: MAX_BYTES,
    });
    const words = new Int32Array(ctl);
    words[CAPACITY] = INITIAL_BYTES;
    words[MAXSIZE] = maxsize;
    return new Ring({ ctl, data });
  }

  descriptor(): RingDescriptor {
    return { ctl: this.ctl.buffer as SharedArrayBuffer, data: this.data };
  }

  get maxsize(): number {
    return this.ctl[MAXSIZE];
  }

  qsize(): number {
    return Atomics.load(this.ctl, COUNT);
  }

  closed(): boolean {
    return Atomics.load(this.ctl, IS_CLOSED) === 1;
  }

  unfinished(): number {
    return Atomics.load(this.ctl, UNFINISHED);
  }

  // ---- the lock ------------------------------------------------------

  #lock(): void {
    const me = threadToken();
    const ctl = this.ctl;
    if (Atomics.compareExchange(ctl, LOCK, 0, me) === 0) return;
    for (let spin = 0; spin < 20000; spin++) {
      if (
        Atomics.load(ctl, LOCK) === 0 &&
        Atomics.compareExchange(ctl, LOCK, 0, me) === 0
      ) return;
    }
    Atomics.add(ctl, LOCK_WAITERS, 1);
    try {
      for (;;) {
        const holder = Atomics.load(ctl, LOCK);
        if (holder === 0) {
          if (Atomics.compareExchange(ctl, LOCK, 0, me) === 0) return;
          continue;
        }
        const woke = Atomics.wait(ctl, LOCK, holder, LOCK_CHECK_MS);
        if (
          woke === "timed-out" && isDead(holder) &&
          Atomics.compareExchange(ctl, LOCK, holder, me) === holder
        ) return;
      }
    } finally {
      Atomics.sub(ctl, LOCK_WAITERS, 1);
    }
  }

  #unlock(): void {
    Atomics.store(this.ctl, LOCK, 0);
    if (Atomics.load(this.ctl, LOCK_WAITERS) > 0) {
      Atomics.notify(this.ctl, LOCK, 1);
    }
  }

  // ---- bytes ---------------------------------------------------------

  #write(position: number, source: Uint8Array): void {
    const capacity = this.ctl[CAPACITY];
    const first = Math.min(source.length, capacity - position);
    this.#bytes.set(source.subarray(0, first), position);
    if (first < source.length) this.#bytes.set(source.subarray(first), 0);
  }

  #read(position: number, out: Uint8Array): void {
    const capacity = this.ctl[CAPACITY];
    const length = out.length;
    const first = Math.min(length, capacity - position);
    out.set(this.#bytes.subarray(position, position + first));
    if (first < length) out.set(this.#bytes.subarray(0, length - first), first);
  }

  #recordLength(position: number): number {
    const capacity = this.ctl[CAPACITY];
    const bytes = this.#bytes;
    let length = 0;
    for (let i = 3; i >= 0; i--) {
      length = length * 256 + bytes[(position + i) % capacity];
    }
    return RECORD_HEADER + length;
  }

  /**
   * Makes room for `extra` more bytes. The records are copied to their new
   * place before the capacity word changes, so a thread that dies here
   * leaves the ring as it was.
   */
  #reserve(extra: number): void {
    const ctl = this.ctl;
    const capacity = ctl[CAPACITY];
    const used = ctl[USED];
    if (used + extra <= capacity) return;
    let grown = capacity * 2;
    while (grown < used + extra) grown *= 2;
    if (grown > MAX_BYTES) {
      throw new RangeError(
        `Cannot queue "${extra}" more bytes: a queue holds at most ${MAX_BYTES} bytes of items: send large data in parts`,
      );
    }
    if (this.data.byteLength < grown) this.data.grow(grown);
    const head = ctl[HEAD];
    const wrapped = head + used - capacity;
    // The records that wrapped to the start move to just past the old end.
    if (wrapped > 0) this.#bytes.copyWithin(capacity, 0, wrapped);
    ctl[CAPACITY] = grown;
  }

  // ---- operations ----------------------------------------------------

  /**
   * Appends a block of `count` records, unless the queue is closed (or, when
   * not `force`d, full: then nothing is added).
   *
   * @throws {RangeError} when the ring cannot grow that far.
   */
  tryPut(
    block: Uint8Array,
    count: number,
    options: { force?: boolean; afterClose?: boolean } = {},
  ): Status {
    const ctl = this.ctl;
    this.#lock();
    try {
      if (ctl[IS_CLOSED] === 1 && !options.afterClose) return CLOSED;
      const maxsize = ctl[MAXSIZE];
      if (
        !options.force && maxsize > 0 && ctl[COUNT] > 0 &&
        ctl[COUNT] + count > maxsize
      ) return TIMED_OUT;
      this.#reserve(block.length);
      const capacity = ctl[CAPACITY];
      this.#write((ctl[HEAD] + ctl[USED]) % capacity, block);
      ctl[USED] += block.length;
      Atomics.add(ctl, UNFINISHED, count);
      Atomics.add(ctl, COUNT, count);
    } finally {
      this.#unlock();
    }
    this.#bump(PUT_SEQ, GET_WAITERS);
    return OK;
  }

  /** Puts records back at the front, in their order (a consumer's unread items). */
  unget(block: Uint8Array, count: number): void {
    const ctl = this.ctl;
    this.#lock();
    try {
      this.#reserve(block.length);
      const capacity = ctl[CAPACITY];
      const head = (ctl[HEAD] - block.length + capacity) % capacity;
      this.#write(head, block);
      ctl[HEAD] = head;
      ctl[USED] += block.length;
      Atomics.add(ctl, COUNT, count);
    } finally {
      this.#unlock();
    }
    this.#bump(PUT_SEQ, GET_WAITERS);
  }

  /**
   * Takes up to `maxCount` records (at least one, if any) and at most about
   * `maxBytes`. Returns `undefined` when there is none yet, `CLOSED` when
   * there never will be.
   */
  tryTake(maxCount: number, maxBytes: number): Taken | undefined | 2 {
    const ctl = this.ctl;
    // Large blocks are allocated outside the lock (allocating is the slow
    // part), then copied if nobody took them meanwhile.
    let out: Uint8Array | undefined;
    for (;;) {
      let taken: Taken;
      this.#lock();
      try {
        const available = ctl[COUNT];
        if (available === 0) {
          return ctl[IS_CLOSED] === 1 && ctl[REMOTE_WRITERS] === 0
            ? CLOSED
            : undefined;
        }
        const capacity = ctl[CAPACITY];
        const head = ctl[HEAD];
        let count = 0;
        let bytes = 0;
        while (count < available && count < maxCount) {
          const length = this.#recordLength((head + bytes) % capacity);
          if (count > 0 && bytes + length > maxBytes) break;
          bytes += length;
          count++;
        }
        if (out?.length !== bytes) {
          if (bytes >= ALLOCATE_UNLOCKED) {
            out = new Uint8Array(bytes);
            continue;
          }
          out = new Uint8Array(bytes);
        }
        this.#read(head, out);
        taken = { block: out, count };
        ctl[HEAD] = (head + bytes) % capacity;
        ctl[USED] -= bytes;
        Atomics.sub(ctl, COUNT, count);
      } finally {
        this.#unlock();
      }
      this.#bump(GET_SEQ, PUT_WAITERS);
      return taken;
    }
  }

  /** Closes the ring: puts fail, getters drain what is left. */
  close(): void {
    Atomics.store(this.ctl, IS_CLOSED, 1);
    Atomics.notify(this.ctl, IS_CLOSED);
    this.#bump(PUT_SEQ, GET_WAITERS);
    this.#bump(GET_SEQ, PUT_WAITERS);
  }

  /** Marks one unfinished item done; `false` when none was unfinished. */
  taskDone(): boolean {
    const ctl = this.ctl;
    for (;;) {
      const unfinished = Atomics.load(ctl, UNFINISHED);
      if (unfinished === 0) return false;
      if (
        Atomics.compareExchange(ctl, UNFINISHED, unfinished, unfinished - 1) ===
          unfinished
      ) {
        if (unfinished === 1) this.#bump(JOIN_SEQ, JOIN_WAITERS);
        return true;
      }
    }
  }

  /** A process now holds the ring: after a close, getters wait for its last items. */
  addRemoteWriter(): void {
    Atomics.add(this.ctl, REMOTE_WRITERS, 1);
  }

  removeRemoteWriter(): void {
    Atomics.sub(this.ctl, REMOTE_WRITERS, 1);
    this.#bump(PUT_SEQ, GET_WAITERS);
  }

  #bump(seq: number, waiters: number): void {
    Atomics.add(this.ctl, seq, 1);
    if (Atomics.load(this.ctl, waiters) > 0) Atomics.notify(this.ctl, seq);
  }

  // ---- waiting -------------------------------------------------------

  /** The current put sequence: read before trying, then wait for a change. */
  putSeq(): number {
    return Atomics.load(this.ctl, PUT_SEQ);
  }

  getSeq(): number {
    return Atomics.load(this.ctl, GET_SEQ);
  }

  joinSeq(): number {
    return Atomics.load(this.ctl, JOIN_SEQ);
  }

  /** Waits until items arrive or the ring closes (after `putSeq()` read `seq`). */
  waitForItems(seq: number, options: WaitOptions): Promise<Status> {
    return this.#wait(PUT_SEQ, GET_WAITERS, seq, options);
  }

  /** Waits until items leave or the ring closes. */
  waitForRoom(seq: number, options: WaitOptions): Promise<Status> {
    return this.#wait(GET_SEQ, PUT_WAITERS, seq, options);
  }

  /** Waits until the unfinished count may have reached zero. */
  waitForJoin(seq: number, options: WaitOptions): Promise<Status> {
    return this.#wait(JOIN_SEQ, JOIN_WAITERS, seq, options);
  }

  #closedPromise: Promise<void> | undefined;

  /** Resolves when the ring is closed, from whichever thread closes it. */
  whenClosed(): Promise<void> {
    return this.#closedPromise ??= (async () => {
      while (Atomics.load(this.ctl, IS_CLOSED) === 0) {
        const wait = Atomics.waitAsync(this.ctl, IS_CLOSED, 0);
        if (wait.async) await wait.value;
      }
    })();
  }

  async put(
    block: Uint8Array,
    count: number,
    wait: WaitOptions,
  ): Promise<Status> {
    let owned = false;
    for (;;) {
      const seq = this.getSeq();
      const status = this.tryPut(block, count);
      if (status !== TIMED_OUT) return status;
      // The caller's buffer may be reused once we yield.
      if (!owned) block = block.slice();
      owned = true;
      const woke = await this.waitForRoom(seq, wait);
      if (woke !== OK) return woke;
    }
  }

  async take(
    maxCount: number,
    maxBytes: number,
    wait: WaitOptions,
  ): Promise<Taken | Status> {
    for (;;) {
      const seq = this.putSeq();
      const taken = this.tryTake(maxCount, maxBytes);
      if (taken !== undefined) return taken;
      const woke = await this.waitForItems(seq, wait);
      if (woke !== OK) return woke;
    }
  }

  async join(wait: WaitOptions): Promise<Status> {
    for (;;) {
      const seq = this.joinSeq();
      if (this.unfinished() === 0) return OK;
      const woke = await this.waitForJoin(seq, wait);
      if (woke !== OK) return woke;
    }
  }

  async #wait(
    index: number,
    waiters: number,
    seq: number,
    options: WaitOptions,
  ): Promise<Status> {
    const { deadline, signal } = options;
    if (signal?.aborted) return ABORTED;
    const timeout = deadline === undefined
      ? Infinity
      : deadline - performance.now();
    if (timeout <= 0) return TIMED_OUT;
    const ctl = this.ctl;
    Atomics.add(ctl, waiters, 1);
    const wait = Atomics.waitAsync(ctl, index, seq, timeout);
    if (!wait.async) {
      Atomics.sub(ctl, waiters, 1);
      return OK;
    }
    // An abort wakes every waiter of this ring; the others simply look again.
    const wake = (): void => void Atomics.notify(ctl, index);
    signal?.addEventListener("abort", wake, { once: true });
    if (options.hold !== false) hold();
    try {
      const outcome = await wait.value;
      if (signal?.aborted) return ABORTED;
      return outcome === "timed-out" ? TIMED_OUT : OK;
    } finally {
      Atomics.sub(ctl, waiters, 1);
      signal?.removeEventListener("abort", wake);
      if (options.hold !== false) release();
    }
  }
}
