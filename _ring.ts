// The shared state of one queue: a ring of records in a growable
// SharedArrayBuffer and a few control words, used by every thread of the
// process that holds it. Writers take turns under one lock and readers under
// another (a two-lock queue), so a producer copies in while a consumer copies
// out; only growing the ring takes both. Waiting uses `Atomics.waitAsync`, so
// nothing spins; other processes reach the ring through a proxy (see
// `_queue_link.ts`).
//
// While no other thread has the ring, a large item is kept aside, out of the
// shared memory: the ring holds a small stub in its place and a take hands
// the item's own bytes back, so a parent forwarding items between child
// processes copies nothing. Sharing the ring puts them back in first.
import { RECORD_HEADER } from "./_codec.ts";
import { concatBytes } from "./_text.ts";
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

/** The writers' lock; its sleeping waiters are counted in the next word. */
const WRITE_LOCK = 0;
/** Items published: written in full and not yet taken. */
const COUNT = 2;
/** Where the oldest record starts; moved by readers. */
const HEAD = 3;
/** Bytes from `HEAD` on that are not free; writers add after writing, readers subtract after reading. */
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
/** The readers' lock; its sleeping waiters are counted in the next word. */
const READ_LOCK = 16;
/** Where the next record goes; moved by writers. */
const TAIL = 18;
const WORDS = 20;

const INITIAL_BYTES = 64 * 1024;
const MAX_BYTES = 1024 * 1024 * 1024;
/**
 * Records this long or longer are kept aside while the ring is this
 * thread's alone (and travel alone between processes).
 */
export const LARGE_RECORD_BYTES = 32 * 1024;
/** The tag of a stub (no codec tag is this high), then the item's key. */
const STUB_TAG = 0xff;
const STUB_BYTES = RECORD_HEADER + 1 + 4;
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
  /** Lent by the parent process: a file it names is the parent's to remove. */
  lent?: boolean;
}

/** Waits until `deadline` (a `performance.now()` time) or a change. */
export interface WaitOptions {
  deadline?: number;
  signal?: AbortSignal;
  /** Whether the wait holds the event loop. */
  hold?: boolean;
}

/** How {@linkcode Core.tryPut} may put. */
export interface PutOptions {
  /** Put even past `maxsize`. */
  force?: boolean;
  /** Put even after a close (an item sent before its sender knew). */
  afterClose?: boolean;
  /** The caller can wait: `TIMED_OUT` sends it to `put` when a wait is due. */
  canWait?: boolean;
  /** The block is the caller's to give: it may be kept without a copy. */
  owned?: boolean;
}

/**
 * One queue's state as its handles use it: the ring itself in the process
 * that made it, a proxy to it in other processes.
 */
export interface Core {
  readonly maxsize: number;
  /**
   * Puts, waiting while full; `TIMED_OUT` means still full. The block is
   * copied before any wait (the caller may reuse it).
   */
  put(block: Uint8Array, count: number, wait: WaitOptions): Promise<Status>;
  tryPut(
    block: Uint8Array,
    count: number,
    options?: PutOptions,
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
  /**
   * Another process may now put through this process and hold items not
   * sent yet: after a close, getters wait for its last items (`CLOSED`
   * when already closed).
   */
  lease(): Promise<Status>;
  /** The same, taken without asking: its puts are on their way. */
  leaseNow(): void;
  /** That process has sent everything. */
  removeRemoteWriter(): void;
  whenClosed(): Promise<void>;
  /** The shared memory, for a worker thread; `undefined` when not in this process. */
  descriptor(): RingDescriptor | undefined;
}

export class Ring implements Core {
  readonly ctl: Int32Array;
  readonly data: SharedArrayBuffer;
  readonly #bytes: Uint8Array;
  /** Large items kept out of the shared memory, by key; none once shared. */
  #aside: Map<number, Uint8Array> | undefined;
  #nextKey = 0;

  // A worker thread rebuilds the ring around the memory it was sent.
  constructor(descriptor: RingDescriptor, alone = false) {
    this.ctl = new Int32Array(descriptor.ctl);
    this.data = descriptor.data;
    this.#bytes = new Uint8Array(descriptor.data);
    if (alone) this.#aside = new Map();
  }

  // Only a queue's maker allocates: growable, so a small queue stays small.
  static create(maxsize: number): Ring {
    const ctl = new SharedArrayBuffer(WORDS * 4);
    const data = new SharedArrayBuffer(INITIAL_BYTES, {
      maxByteLength: MAX_BYTES,
    });
    const words = new Int32Array(ctl);
    words[CAPACITY] = INITIAL_BYTES;
    words[MAXSIZE] = maxsize;
    return new Ring({ ctl, data }, true);
  }

  // A worker thread gets the memory itself; structured clone shares it.
  /**
   * The shared memory, for a worker thread; items kept aside go back into
   * it first.
   *
   * @throws {RangeError} when they do not fit.
   */
  descriptor(): RingDescriptor {
    if (this.#aside !== undefined) this.#inlineAside();
    return { ctl: this.ctl.buffer as SharedArrayBuffer, data: this.data };
  }

  // Another thread could not reach them: every stub becomes its item again.
  #inlineAside(): void {
    const aside = this.#aside!;
    if (aside.size > 0) {
      this.#lock(WRITE_LOCK);
      this.#lock(READ_LOCK);
      try {
        const ctl = this.ctl;
        const used = ctl[USED];
        const records = new Uint8Array(used);
        this.#read(ctl[HEAD], records);
        const view = new DataView(records.buffer);
        const parts: Uint8Array[] = [];
        for (let at = 0; at < used;) {
          const length = RECORD_HEADER + view.getUint32(at, true);
          parts.push(
            this.#isStub(records, at, length)
              ? aside.get(view.getUint32(at + RECORD_HEADER + 1, true))!
              : records.subarray(at, at + length),
          );
          at += length;
        }
        const whole = concatBytes(parts);
        this.#grow(Math.max(0, whole.length - used));
        this.#write(0, whole);
        ctl[HEAD] = 0;
        ctl[TAIL] = whole.length;
        Atomics.store(ctl, USED, whole.length);
      } finally {
        this.#unlock(READ_LOCK);
        this.#unlock(WRITE_LOCK);
      }
    }
    this.#aside = undefined;
  }

  // Only codec tags are below STUB_TAG, so a stub cannot be mistaken.
  #isStub(bytes: Uint8Array, at: number, length: number): boolean {
    return length === STUB_BYTES && bytes[at + RECORD_HEADER] === STUB_TAG;
  }

  /** What goes into the ring for `block`: itself, or a stub when kept aside. */
  #record(block: Uint8Array, count: number, owned = false): Uint8Array {
    if (
      this.#aside === undefined || count !== 1 ||
      block.length < LARGE_RECORD_BYTES
    ) return block;
    const key = ++this.#nextKey;
    this.#aside.set(key, owned ? block : block.slice());
    const stub = new Uint8Array(STUB_BYTES);
    const view = new DataView(stub.buffer);
    view.setUint32(0, STUB_BYTES - RECORD_HEADER, true);
    stub[RECORD_HEADER] = STUB_TAG;
    view.setUint32(RECORD_HEADER + 1, key, true);
    return stub;
  }

  // A stub is as long as an int's record: the tag tells them apart.
  /** Whether the record at `position`, `length` bytes long, is a stub. */
  #stubAt(position: number, length: number): boolean {
    return this.#aside !== undefined && length === STUB_BYTES &&
      this.#bytes[(position + RECORD_HEADER) % this.ctl[CAPACITY]] ===
        STUB_TAG;
  }

  /** Removes and returns the item kept aside for the stub at `position`. */
  #takeAside(position: number): Uint8Array {
    const stub = new Uint8Array(STUB_BYTES);
    this.#read(position, stub);
    const key = new DataView(stub.buffer).getUint32(RECORD_HEADER + 1, true);
    const block = this.#aside!.get(key)!;
    this.#aside!.delete(key);
    return block;
  }

  // Fixed at creation, so read without Atomics.
  get maxsize(): number {
    return this.ctl[MAXSIZE];
  }

  // Python's qsize(), from any thread without a lock.
  qsize(): number {
    return Atomics.load(this.ctl, COUNT);
  }

  // Read without a lock: a close only ever goes one way.
  closed(): boolean {
    return Atomics.load(this.ctl, IS_CLOSED) === 1;
  }

  // join() waits for this to reach zero.
  unfinished(): number {
    return Atomics.load(this.ctl, UNFINISHED);
  }

  // ---- the lock ------------------------------------------------------

  /**
   * Takes the lock at `lock` (its waiters counted at `lock + 1`). A lock is
   * held only while bytes are copied, so waiting for it spins a little and
   * then sleeps; a holder that died is found out and replaced.
   */
  #lock(lock: number): void {
    const me = threadToken();
    // Deno lets a terminated thread run on until it yields (denoland/deno
    // #35657); others may already have taken over its locks.
    if (isDead(me)) {
      throw new Error(
        "Cannot use the queue: this worker thread was stopped; use the process backend for tasks that must be stopped while they compute",
      );
    }
    const ctl = this.ctl;
    if (Atomics.compareExchange(ctl, lock, 0, me) === 0) return;
    for (let spin = 0; spin < 20000; spin++) {
      if (
        Atomics.load(ctl, lock) === 0 &&
        Atomics.compareExchange(ctl, lock, 0, me) === 0
      ) return;
    }
    Atomics.add(ctl, lock + 1, 1);
    try {
      for (;;) {
        const holder = Atomics.load(ctl, lock);
        if (holder === 0) {
          if (Atomics.compareExchange(ctl, lock, 0, me) === 0) return;
          continue;
        }
        const woke = Atomics.wait(ctl, lock, holder, LOCK_CHECK_MS);
        if (
          woke === "timed-out" && isDead(holder) &&
          Atomics.compareExchange(ctl, lock, holder, me) === holder
        ) {
          this.#recover(lock);
          return;
        }
      }
    } finally {
      Atomics.sub(ctl, lock + 1, 1);
    }
  }

  /**
   * After taking `lock` over from a thread that died holding it: the dead
   * thread may have stopped between the words it updates, so the counts are
   * rebuilt from the records themselves, under both locks.
   */
  #recover(lock: number): void {
    // Taking the other lock may take over from a dead thread too: one
    // rebuild, at the end, covers both.
    if (this.#recovering) return;
    this.#recovering = true;
    try {
      this.#rebuildUnder(lock);
    } finally {
      this.#recovering = false;
    }
  }

  #recovering = false;

  // A rebuild needs both locks, taken writers' first so none deadlocks.
  #rebuildUnder(lock: number): void {
    if (lock === READ_LOCK) {
      // Both locks are always taken writers' first.
      this.#unlock(READ_LOCK);
      this.#lock(WRITE_LOCK);
      this.#lock(READ_LOCK);
      this.#rebuild();
      this.#unlock(WRITE_LOCK);
    } else {
      this.#lock(READ_LOCK);
      this.#rebuild();
      this.#unlock(READ_LOCK);
    }
  }

  /**
   * Recounts the records between `HEAD` and `TAIL`: both move only once
   * their bytes are whole, so what lies between them is whole records. The
   * ring is never filled to the last byte, so `HEAD === TAIL` means empty.
   */
  #rebuild(): void {
    const ctl = this.ctl;
    const capacity = ctl[CAPACITY];
    const tail = ctl[TAIL];
    let position = ctl[HEAD];
    let count = 0;
    let bytes = 0;
    while (position !== tail) {
      const length = this.#recordLength(position);
      position = (position + length) % capacity;
      bytes += length;
      count++;
    }
    Atomics.store(ctl, USED, bytes);
    Atomics.store(ctl, COUNT, count);
  }

  // Notifies only a counted sleeper: an uncontended unlock stays cheap.
  #unlock(lock: number): void {
    Atomics.store(this.ctl, lock, 0);
    if (Atomics.load(this.ctl, lock + 1) > 0) Atomics.notify(this.ctl, lock, 1);
  }

  // ---- bytes ---------------------------------------------------------

  // A record may wrap past the end of the ring.
  #write(position: number, source: Uint8Array): void {
    const capacity = this.ctl[CAPACITY];
    const first = Math.min(source.length, capacity - position);
    this.#bytes.set(source.subarray(0, first), position);
    if (first < source.length) this.#bytes.set(source.subarray(first), 0);
  }

  // A record may wrap past the end of the ring.
  #read(position: number, out: Uint8Array): void {
    const capacity = this.ctl[CAPACITY];
    const length = out.length;
    const first = Math.min(length, capacity - position);
    out.set(this.#bytes.subarray(position, position + first));
    if (first < length) out.set(this.#bytes.subarray(0, length - first), first);
  }

  // A header may itself wrap, so it is read byte by byte.
  #recordLength(position: number): number {
    const capacity = this.ctl[CAPACITY];
    const bytes = this.#bytes;
    let length = 0;
    for (let i = 3; i >= 0; i--) {
      length = length * 256 + bytes[(position + i) % capacity];
    }
    return RECORD_HEADER + length;
  }

  /** Makes room for `extra` more bytes; the caller holds the write lock. */
  #makeRoom(extra: number): void {
    // Strictly less: a full ring would look empty (HEAD === TAIL).
    if (Atomics.load(this.ctl, USED) + extra < this.ctl[CAPACITY]) return;
    this.#lock(READ_LOCK);
    try {
      this.#grow(extra);
    } finally {
      this.#unlock(READ_LOCK);
    }
  }

  /**
   * Grows the ring for `extra` more bytes; the caller holds both locks. The
   * records are copied to their new place before the capacity word changes,
   * so a thread that dies here leaves the ring as it was.
   *
   * @throws {RangeError} when the ring cannot grow that far.
   */
  #grow(extra: number): void {
    const ctl = this.ctl;
    const capacity = ctl[CAPACITY];
    const used = ctl[USED];
    if (used + extra < capacity) return;
    let grown = capacity * 2;
    while (grown <= used + extra) grown *= 2;
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
    ctl[TAIL] = (head + used) % grown;
  }

  // ---- operations ----------------------------------------------------

  // Never waits: the building block of put() and of Python's put_nowait().
  /**
   * Appends a block of `count` records, unless the queue is closed (or, when
   * not `force`d, full: then nothing is added).
   *
   * @throws {RangeError} when the ring cannot grow that far.
   */
  tryPut(
    block: Uint8Array,
    count: number,
    options: PutOptions = {},
  ): Status {
    const ctl = this.ctl;
    this.#lock(WRITE_LOCK);
    try {
      if (Atomics.load(ctl, IS_CLOSED) === 1 && !options.afterClose) {
        return CLOSED;
      }
      const maxsize = ctl[MAXSIZE];
      const size = Atomics.load(ctl, COUNT);
      if (
        !options.force && maxsize > 0 && size > 0 && size + count > maxsize
      ) return TIMED_OUT;
      const record = this.#record(block, count, options.owned);
      this.#makeRoom(record.length);
      const tail = ctl[TAIL];
      this.#write(tail, record);
      // Published last: readers see the record only once it is whole.
      ctl[TAIL] = (tail + record.length) % ctl[CAPACITY];
      Atomics.add(ctl, USED, record.length);
      Atomics.add(ctl, UNFINISHED, count);
      Atomics.add(ctl, COUNT, count);
    } finally {
      this.#unlock(WRITE_LOCK);
    }
    this.#bump(PUT_SEQ, GET_WAITERS);
    return OK;
  }

  /**
   * Puts records back at the front, in their order (a consumer's unread
   * items); the block becomes the ring's.
   */
  unget(block: Uint8Array, count: number): void {
    const ctl = this.ctl;
    this.#lock(WRITE_LOCK);
    this.#lock(READ_LOCK);
    try {
      const record = this.#record(block, count, true);
      this.#grow(record.length);
      const capacity = ctl[CAPACITY];
      const head = (ctl[HEAD] - record.length + capacity) % capacity;
      this.#write(head, record);
      ctl[HEAD] = head;
      Atomics.add(ctl, USED, record.length);
      Atomics.add(ctl, COUNT, count);
    } finally {
      this.#unlock(READ_LOCK);
      this.#unlock(WRITE_LOCK);
    }
    this.#bump(PUT_SEQ, GET_WAITERS);
  }

  // Never waits: the building block of take() and of Python's get_nowait().
  /**
   * Takes up to `maxCount` records (at least one, if any) and at most about
   * `maxBytes`. Returns `undefined` when there is none yet, `CLOSED` when
   * there never will be.
   */
  tryTake(maxCount: number, maxBytes: number): Taken | undefined | 2 {
    const ctl = this.ctl;
    let taken: Taken;
    this.#lock(READ_LOCK);
    try {
      // Closed first: a close waits for the put in progress, so once it is
      // seen, an empty ring stays empty.
      const closed = Atomics.load(ctl, IS_CLOSED) === 1 &&
        Atomics.load(ctl, REMOTE_WRITERS) === 0;
      const available = Atomics.load(ctl, COUNT);
      if (available === 0) return closed ? CLOSED : undefined;
      const capacity = ctl[CAPACITY];
      const head = ctl[HEAD];
      let count = 0;
      let bytes = 0;
      let aside: Uint8Array | undefined;
      while (count < available && count < maxCount) {
        const position = (head + bytes) % capacity;
        const length = this.#recordLength(position);
        if (count > 0 && bytes + length > maxBytes) break;
        // An item kept aside is taken alone: its bytes are handed over.
        if (this.#stubAt(position, length)) {
          if (count > 0) break;
          aside = this.#takeAside(position);
        }
        bytes += length;
        count++;
        if (aside !== undefined) break;
      }
      if (aside !== undefined) taken = { block: aside, count };
      else {
        const out = new Uint8Array(bytes);
        this.#read(head, out);
        taken = { block: out, count };
      }
      ctl[HEAD] = (head + bytes) % capacity;
      Atomics.sub(ctl, USED, bytes);
      Atomics.sub(ctl, COUNT, count);
    } finally {
      this.#unlock(READ_LOCK);
    }
    this.#bump(GET_SEQ, PUT_WAITERS);
    return taken;
  }

  // Waiters on either side must wake to see the close.
  /** Closes the ring: puts fail, getters drain what is left. */
  close(): void {
    // After the put in progress, if any: nothing lands once getters see it.
    this.#lock(WRITE_LOCK);
    Atomics.store(this.ctl, IS_CLOSED, 1);
    this.#unlock(WRITE_LOCK);
    Atomics.notify(this.ctl, IS_CLOSED);
    this.#bump(PUT_SEQ, GET_WAITERS);
    this.#bump(GET_SEQ, PUT_WAITERS);
  }

  // JoinableQueue.task_done(); the compare-exchange never goes below zero.
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

  // In the ring's own process a lease needs no asking.
  lease(): Promise<Status> {
    if (this.closed()) return Promise.resolve(CLOSED);
    this.leaseNow();
    return Promise.resolve(OK);
  }

  // Getters wait on after close while a remote writer may still deliver.
  leaseNow(): void {
    Atomics.add(this.ctl, REMOTE_WRITERS, 1);
  }

  // Getters that waited for that writer's last items must look again.
  removeRemoteWriter(): void {
    Atomics.sub(this.ctl, REMOTE_WRITERS, 1);
    this.#bump(PUT_SEQ, GET_WAITERS);
  }

  // Notifies only counted sleepers: a put or take nobody waits on stays cheap.
  #bump(seq: number, waiters: number): void {
    Atomics.add(this.ctl, seq, 1);
    if (Atomics.load(this.ctl, waiters) > 0) Atomics.notify(this.ctl, seq);
  }

  // ---- waiting -------------------------------------------------------

  /** The current put sequence: read before trying, then wait for a change. */
  putSeq(): number {
    return Atomics.load(this.ctl, PUT_SEQ);
  }

  // As putSeq, for putters waiting for room.
  getSeq(): number {
    return Atomics.load(this.ctl, GET_SEQ);
  }

  // As putSeq, for join() waiting on task_done().
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

  // The waiting form of tryPut, tried again whenever items leave.
  async put(
    block: Uint8Array,
    count: number,
    wait: WaitOptions,
  ): Promise<Status> {
    let owned = false;
    for (;;) {
      const seq = this.getSeq();
      const status = this.tryPut(block, count, { owned });
      if (status !== TIMED_OUT) return status;
      // The caller's buffer may be reused once we yield.
      if (!owned) block = block.slice();
      owned = true;
      const woke = await this.waitForRoom(seq, wait);
      if (woke !== OK) return woke;
    }
  }

  // The waiting form of tryTake, tried again whenever items arrive.
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

  // JoinableQueue.join(): waits out every task_done().
  async join(wait: WaitOptions): Promise<Status> {
    for (;;) {
      const seq = this.joinSeq();
      if (this.unfinished() === 0) return OK;
      const woke = await this.waitForJoin(seq, wait);
      if (woke !== OK) return woke;
    }
  }

  // Waits asynchronously, so a waiting thread still serves its event loop.
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
