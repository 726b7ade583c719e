// Queues across processes. A child process holds a `RemoteCore` per queue;
// its operations travel over the worker channel (the IPC channel) to a
// `ProxyLink` in the parent, which performs them on the queue's ring.
//
// Speed comes from batching: puts to an unbounded queue are sent in blocks
// of records (the put resolves at once, as Python's feeder thread lets it),
// and a consumer fetches a few items ahead. Nothing is lost on the way:
// - items fetched ahead stay "lent" in the parent until the child reports
//   them consumed; if the child dies, or leaves them unread, they go back to
//   the front of the queue;
// - after a close, getters see `CLOSED` only once every process that holds
//   the queue has sent its last items and confirmed (or died).
import process from "node:process";
import { setImmediate } from "node:timers";
import { RecordReader, RecordWriter, splitRecords } from "./_codec.ts";
import {
  ABORTED,
  CLOSED,
  type Core,
  LARGE_RECORD_BYTES,
  OK,
  type PutOptions,
  type RingDescriptor,
  type Status,
  type Taken,
  TIMED_OUT,
  type WaitOptions,
} from "./_ring.ts";
import {
  canReadSpilled,
  inlineSpilled,
  lastFileOf,
  removeOrphans,
  removeSpilled,
  spill,
  SPILL_BYTES,
  spillDirectory,
} from "./_spill.ts";
import { QUEUE } from "./_wire.ts";

// Child → parent.
const PUT = 0; // id, block, count
const PUT_WAIT = 1; // req, id, block, count, timeout
const GET = 2; // req, id, want, timeout, files (1: it can read spilled items)
const ACK = 3; // id, count
const RETURN = 4; // id, count: the oldest items lent and not acknowledged
const CLOSE = 5; // id
const TASK_DONE = 6; // id
const JOIN = 7; // req, id, timeout
const CLOSE_ACK = 8; // id
const CANCEL = 9; // req
const UNGET = 10; // id, block, count: items received, put back in front
const LEASE = 11; // req, id: may this process put? (a reply says)
const LEASE_NOW = 12; // id: this process puts (it could not wait to ask)
const RELEASE = 13; // id: this process has sent all it put
const SIZE = 14; // req, id: how many items are there now?
const SYNC = 15; // payload: a lock's or event's operation (see _sync_link.ts)
const MANAGER = 16; // payload: a call on a manager's object (_manager_link.ts)
// Parent → child.
const REPLY = 20; // req, status, block, count, qsize, at (when qsize was read)
const CLOSED_NOTICE = 21; // id
const SYNC_BACK = 22; // payload: a reply or notice about a lock or event
const MANAGER_BACK = 23; // payload: a manager's reply

/** At most this much is sent in one put batch. */
const BATCH_BYTES = 256 * 1024;
/** A put batch goes once its stubs stand for this many bytes in files. */
const SPILLED_BATCH_BYTES = 1024 * 1024;
/** At most this much is sent ahead in one reply. */
const REPLY_BYTES = 4 * 1024 * 1024;
/** At most this many items are fetched ahead. */
const MAX_AHEAD = 4096;
/** Items fetched ahead and left unread this long go back to the queue. */
const RETURN_AFTER_MS = 10;
/** A process that put nothing for this long gives up its write lease. */
const RELEASE_AFTER_MS = 20;
/**
 * A consumer that comes back for its next item within this many ms of the
 * last one is streaming; one that thinks longer gets no items fetched ahead,
 * which another consumer could have had meanwhile.
 */
const STREAMING_THINK_MS = 1;
/** This many streaming gets in a row before items are fetched ahead. */
const STREAK_TO_FETCH_AHEAD = 4;

// ---- the parent side --------------------------------------------------

/** Whether a child may have been told to put large items through files. */
let spillSeen = false;

/**
 * The directory where a child puts large items of `core`, or `undefined`
 * when they go over IPC: ours for our own queues, our parent's for its.
 */
export function spillDirOf(core: Core): string | undefined {
  const dir = core instanceof RemoteCore ? core.spill : spillDirectory();
  if (dir !== undefined) spillSeen = true;
  return dir;
}

let nextId = 0;
const ids = new WeakMap<Core, number>();
const cores = new Map<number, WeakRef<Core>>();
const forget = new FinalizationRegistry<number>((id) => cores.delete(id));

// A child cannot hold the ring itself: it names the queue by this id.
/** The id under which a child process reaches `core` through this thread. */
export function coreId(core: Core): number {
  let id = ids.get(core);
  if (id === undefined) {
    id = ++nextId;
    ids.set(core, id);
    cores.set(id, new WeakRef(core));
    forget.register(core, id);
  }
  return id;
}

interface Held {
  core: Core;
  /**
   * Whether the child holds a write lease: it may have put items not sent
   * yet, so after a close getters wait for its confirmation.
   */
  writer: boolean;
  /** Items sent ahead and not yet reported consumed, oldest first. */
  lent: Taken[];
}

// A timeout crosses as a number (negative for none); rings wait by deadline.
function timeoutToDeadline(timeout: number): number | undefined {
  return timeout < 0 ? undefined : performance.now() + timeout;
}

// Lent items go back to the front as they were lent, last first, so that a
// large item stays one block the ring can keep aside without a copy.
function giveBackParts(core: Core, parts: Taken[]): void {
  for (let i = parts.length - 1; i >= 0; i--) {
    if (parts[i].count > 0) core.unget(parts[i].block, parts[i].count);
  }
}

/** The parent's end of one child's queue traffic. */
export class ProxyLink {
  readonly #post: (message: unknown[]) => void;
  readonly #onSync: ((payload: unknown[]) => void) | undefined;
  readonly #onManager: ((payload: unknown[]) => void) | undefined;
  readonly #held = new Map<number, Held>();
  readonly #pending = new Map<number, AbortController>();
  #disposed = false;
  readonly #pid: number;
  /** The child's last file whose stub came here; later ones are orphans at its death. */
  #lastFile = 0;

  // One link per child: what it holds and borrowed is tracked here. Lock
  // and event traffic shares the channel, so it keeps its order with puts;
  // so do calls on a manager's objects.
  constructor(
    post: (message: unknown[]) => void,
    onSync?: (payload: unknown[]) => void,
    onManager?: (payload: unknown[]) => void,
    pid = 0,
  ) {
    this.#post = post;
    this.#onSync = onSync;
    this.#onManager = onManager;
    this.#pid = pid;
  }

  /** Sends the child a reply of `_manager_link.ts`. */
  sendManager(payload: unknown[]): void {
    this.#send([QUEUE, MANAGER_BACK, payload]);
  }

  /** Sends the child a reply or notice of `_sync_link.ts`. */
  sendSync(payload: unknown[]): void {
    this.#send([QUEUE, SYNC_BACK, payload]);
  }

  /** Lets the child use these queues; call before sending their descriptors. */
  share(shared: readonly Core[]): void {
    for (const core of shared) {
      const id = coreId(core);
      if (this.#held.has(id)) continue;
      this.#held.set(id, { core, writer: false, lent: [] });
      core.whenClosed().then(() => this.#noticeClosed(id));
    }
  }

  // A child's puts must fail at once after a close, not after a round trip.
  #noticeClosed(id: number): void {
    const held = this.#held.get(id);
    // Every holder learns it, so that its puts fail at once; only lease
    // holders confirm.
    if (this.#disposed || held === undefined) return;
    this.#send([QUEUE, CLOSED_NOTICE, id]);
  }

  // Posting to a child that just died must not throw into queue code.
  #send(message: unknown[]): void {
    if (this.#disposed) return;
    try {
      this.#post(message);
    } catch {
      // The child is gone; its exit disposes of this link.
    }
  }

  // Getters waiting out a close stop waiting for this child.
  #release(held: Held): void {
    if (!held.writer) return;
    held.writer = false;
    held.core.removeRemoteWriter();
  }

  /** The child is gone: its unread items go back, its writes are over. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const controller of this.#pending.values()) controller.abort();
    for (const held of this.#held.values()) {
      this.#giveBack(held);
      this.#release(held);
    }
    this.#held.clear();
    // Its queue items and pool results in files no message will name.
    removeOrphans(this.#pid, this.#lastFile);
  }

  // A dead child's unread items go back in front, so none is lost.
  #giveBack(held: Held): void {
    const lent = held.lent;
    held.lent = [];
    giveBackParts(held.core, lent);
  }

  // Items the child read stop being lent: they will not come back, and the
  // files of large ones can go.
  #acknowledge(held: Held, count: number): void {
    const removed = this.#removeLent(held, count);
    if (spillSeen) { for (const part of removed) removeSpilled(part.block); }
  }

  // Acks and returns arrive in the order the child read its replies, so
  // both concern the oldest lent items; a reply still on its way stays lent.
  /** Takes back the `count` oldest lent items, in order, at the front. */
  #takeBack(held: Held, count: number): void {
    giveBackParts(held.core, this.#removeLent(held, count));
  }

  /** Removes the `count` oldest lent items and returns them. */
  #removeLent(held: Held, count: number): Taken[] {
    const removed: Taken[] = [];
    while (count > 0 && held.lent.length > 0) {
      const first = held.lent[0];
      if (first.count <= count) {
        count -= first.count;
        removed.push(first);
        held.lent.shift();
      } else {
        const [head, rest] = splitRecords(first.block, count);
        removed.push({ block: head, count });
        held.lent[0] = { block: rest, count: first.count - count };
        count = 0;
      }
    }
    return removed;
  }

  // _worker_handle.ts routes every QUEUE message from the child here.
  /** Handles one queue message from the child. */
  receive(message: unknown[]): void {
    let i = 1;
    while (i < message.length) {
      const op = message[i] as number;
      switch (op) {
        case PUT: {
          const held = this.#held.get(message[i + 1] as number);
          const block = message[i + 2] as Uint8Array;
          if (spillSeen) {
            this.#lastFile = lastFileOf(block, this.#pid, this.#lastFile);
          }
          held?.core.tryPut(
            block,
            message[i + 3] as number,
            // The child put it before it knew of a close: it counts. The
            // block came over IPC: the ring may keep it as it is.
            { force: true, afterClose: true, owned: true },
          );
          i += 4;
          break;
        }
        case PUT_WAIT:
          this.#putWait(
            message[i + 1] as number,
            message[i + 2] as number,
            message[i + 3] as Uint8Array,
            message[i + 4] as number,
            message[i + 5] as number,
          );
          i += 6;
          break;
        case GET:
          this.#get(
            message[i + 1] as number,
            message[i + 2] as number,
            message[i + 3] as number,
            message[i + 4] as number,
            message[i + 5] === 1,
          );
          i += 6;
          break;
        case ACK: {
          const held = this.#held.get(message[i + 1] as number);
          if (held) this.#acknowledge(held, message[i + 2] as number);
          i += 3;
          break;
        }
        case RETURN: {
          const held = this.#held.get(message[i + 1] as number);
          if (held) this.#takeBack(held, message[i + 2] as number);
          i += 3;
          break;
        }
        case UNGET:
          this.#held.get(message[i + 1] as number)?.core.unget(
            message[i + 2] as Uint8Array,
            message[i + 3] as number,
          );
          i += 4;
          break;
        case CLOSE:
          this.#held.get(message[i + 1] as number)?.core.close();
          i += 2;
          break;
        case TASK_DONE:
          this.#held.get(message[i + 1] as number)?.core.taskDone();
          i += 2;
          break;
        case JOIN:
          this.#join(
            message[i + 1] as number,
            message[i + 2] as number,
            message[i + 3] as number,
          );
          i += 4;
          break;
        case CLOSE_ACK:
        case RELEASE: {
          const held = this.#held.get(message[i + 1] as number);
          if (held) this.#release(held);
          i += 2;
          break;
        }
        case LEASE:
          this.#lease(message[i + 1] as number, message[i + 2] as number);
          i += 3;
          break;
        case SIZE: {
          const held = this.#held.get(message[i + 2] as number);
          this.#reply(message[i + 1] as number, OK, held);
          i += 3;
          break;
        }
        case LEASE_NOW: {
          const id = message[i + 1] as number;
          const held = this.#held.get(id);
          if (held && !held.writer) {
            held.writer = true;
            held.core.leaseNow();
          }
          // Closed before the lease came: the child learns it and confirms.
          if (held?.core.closed()) this.#send([QUEUE, CLOSED_NOTICE, id]);
          i += 2;
          break;
        }
        case CANCEL:
          this.#pending.get(message[i + 1] as number)?.abort();
          i += 2;
          break;
        case SYNC:
          this.#onSync?.(message[i + 1] as unknown[]);
          i += 2;
          break;
        case MANAGER:
          this.#onManager?.(message[i + 1] as unknown[]);
          i += 2;
          break;
        default:
          throw new Error(`Unknown queue operation "${op}" from a worker`);
      }
    }
  }

  // A child's wait may be cancelled, and must not hold our event loop.
  #waitOptions(req: number, timeout: number): WaitOptions {
    const controller = new AbortController();
    this.#pending.set(req, controller);
    return {
      deadline: timeoutToDeadline(timeout),
      signal: controller.signal,
      hold: false,
    };
  }

  // Every reply carries the queue's size, so the child's qsize() stays close.
  #reply(
    req: number,
    status: Status,
    held: Held | undefined,
    taken?: Taken,
  ): void {
    this.#pending.delete(req);
    this.#send([
      QUEUE,
      REPLY,
      req,
      status,
      taken?.block,
      taken?.count ?? 0,
      held?.core.qsize() ?? 0,
      performance.now(),
    ]);
  }

  // What a child takes stays lent until it says it read it, so none is lost.
  async #get(
    req: number,
    id: number,
    want: number,
    timeout: number,
    files: boolean,
  ): Promise<void> {
    const held = this.#held.get(id);
    if (held === undefined) return this.#reply(req, CLOSED, held);
    const result = await held.core.take(
      want,
      REPLY_BYTES,
      this.#waitOptions(req, timeout),
    );
    if (typeof result === "number") return this.#reply(req, result, held);
    if (this.#disposed) return held.core.unget(result.block, result.count);
    // Items passed on from our own parent, whose files it removes once we
    // acknowledge them, and items for a child that may not read the files,
    // travel whole.
    if (spillSeen && (result.lent || !files)) {
      result.block = inlineSpilled(result.block, !result.lent);
    }
    held.lent.push(result);
    this.#reply(req, OK, held, result);
  }

  // Getters must wait out a close for a child that may still hold puts.
  async #lease(req: number, id: number): Promise<void> {
    const held = this.#held.get(id);
    if (held === undefined) return this.#reply(req, CLOSED, held);
    const status = await held.core.lease();
    if (status === OK) {
      // Granted twice (a lease taken without asking crossed this one).
      if (held.writer || this.#disposed) held.core.removeRemoteWriter();
      else held.writer = true;
    }
    this.#reply(req, status, held);
  }

  // A put to a full queue waits here, in the parent, where the ring is.
  async #putWait(
    req: number,
    id: number,
    block: Uint8Array,
    count: number,
    timeout: number,
  ): Promise<void> {
    const held = this.#held.get(id);
    if (held === undefined) return this.#reply(req, CLOSED, held);
    const status = await held.core.put(
      block,
      count,
      this.#waitOptions(req, timeout),
    );
    this.#reply(req, status, held);
  }

  // join() in a child waits on the ring, which only this process has.
  async #join(req: number, id: number, timeout: number): Promise<void> {
    const held = this.#held.get(id);
    if (held === undefined) return this.#reply(req, OK, held);
    this.#reply(
      req,
      await held.core.join(this.#waitOptions(req, timeout)),
      held,
    );
  }
}

// ---- the child side ---------------------------------------------------

interface Reply {
  status: Status;
  block: Uint8Array | undefined;
  count: number;
  qsize: number;
  /** The parent's clock when it read `qsize`. */
  at: number;
}

/** A child process's end of its queue traffic with the parent. */
class ParentChannel {
  post: ((message: unknown[], sent: () => void) => void) | undefined;
  #sending = 0;
  #onSent: (() => void) | undefined;
  readonly cores = new Map<number, RemoteCore>();
  #ops: unknown[] = [QUEUE];
  #batchBytes = 0;
  /** The bytes of the items in files whose stubs are in the batch. */
  #spilledBytes = 0;
  #scheduled = false;
  #nextReq = 0;
  readonly #requests = new Map<number, (reply: Reply) => void>();
  /** The put batch being filled: appended to while it is the last op. */
  #putWriter: RecordWriter | undefined;
  #putCore: number | undefined;

  #ackAt = -1;

  // An ACK per get would double the messages of a fast consumer.
  /** Reports `count` more items of `id` consumed, merged with the last report. */
  ack(id: number, count: number): void {
    const ops = this.#ops;
    if (
      this.#putCore === undefined && this.#ackAt === ops.length - 3 &&
      ops[this.#ackAt + 1] === id
    ) {
      ops[this.#ackAt + 2] = (ops[this.#ackAt + 2] as number) + count;
      return;
    }
    this.push([ACK, id, count]);
    this.#ackAt = this.#ops.length - 3;
  }

  // Operations batch into one message per turn of the event loop.
  /** Appends an operation; it is sent with the next flush. */
  push(op: unknown[]): void {
    this.#closePutBatch();
    for (const part of op) this.#ops.push(part);
    this.#schedule();
  }

  // Consecutive puts to one queue travel as one block of records.
  /** Appends one record to the put batch for `id`. */
  putRecord(id: number, block: Uint8Array, count: number): void {
    if (block.length >= SPILL_BYTES && count === 1) {
      const dir = this.cores.get(id)?.spill;
      const stub = dir === undefined ? undefined : spill(dir, block);
      if (stub !== undefined) {
        this.#spilledBytes += block.length;
        block = stub;
      }
    }
    if (block.length >= LARGE_RECORD_BYTES) {
      return this.#putLarge(id, block, count);
    }
    if (this.#putCore !== id) {
      this.#closePutBatch();
      this.#putCore = id;
      this.#putWriter ??= new RecordWriter();
    }
    // Copy the caller's bytes now: the put has resolved once we return.
    this.#putWriter!.append(block, count);
    this.#batchBytes += block.length;
    // Stubs of items in files must leave soon too, so that the consumer
    // reads while the producer writes.
    if (
      this.#batchBytes >= BATCH_BYTES ||
      this.#spilledBytes >= SPILLED_BATCH_BYTES
    ) {
      // Stubs are small: the producer lets the event loop write them, and
      // need not wait until they are written.
      const stubs = this.#batchBytes < BATCH_BYTES;
      this.flush();
      if (stubs) this.#stubsPosted = true;
      else this.#behind = true;
    } else this.#schedule();
  }

  // A large item travels alone, copied once (the put has resolved once we
  // return), so that the parent's ring can keep the block it receives.
  /** Sends one large record as its own put. */
  #putLarge(id: number, block: Uint8Array, count: number): void {
    this.push([PUT, id, block.slice(), count]);
    this.#batchBytes += block.length;
    if (this.#batchBytes >= BATCH_BYTES) {
      this.flush();
      this.#behind = true;
    }
  }

  // No other op may overtake the puts before it: the batch closes first.
  #closePutBatch(): void {
    if (this.#putCore === undefined) return;
    const writer = this.#putWriter!;
    this.#ops.push(PUT, this.#putCore, writer.view().slice(), writer.count);
    writer.clear();
    this.#putCore = undefined;
  }

  // One flush per turn, not per op, is what makes the batches.
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flush());
  }

  // Called at once where order or exit matters, else once per turn.
  /** Sends what is pending, in order. */
  flush(): void {
    this.#scheduled = false;
    this.#closePutBatch();
    if (this.#ops.length === 1) return;
    const message = this.#ops;
    this.#ops = [QUEUE];
    this.#ackAt = -1;
    this.#batchBytes = 0;
    this.#spilledBytes = 0;
    if (this.post === undefined) return;
    this.#sending++;
    this.post(message, () => {
      if (--this.#sending === 0) this.#onSent?.();
    });
  }

  /** A put filled a batch and the event loop has not turned since. */
  #behind = false;

  /** Whether puts should let the channel catch up before going on. */
  congested(): boolean {
    return this.#behind || this.#stubsPosted || this.#sending > 1;
  }

  /** A batch of stubs was posted and the event loop has not turned since. */
  #stubsPosted = false;

  // Deno and Bun write a posted message only once the event loop turns, and
  // may report it sent before: a producer that never yields would pile up
  // batches in memory and deliver none.
  /** Lets the event loop write what was posted, then waits until it is sent. */
  async catchUp(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    const stubsOnly = this.#stubsPosted && !this.#behind;
    this.#behind = false;
    this.#stubsPosted = false;
    if (!stubsOnly) await this.sent();
  }

  // A child must not exit with its puts still in memory.
  /** Resolves once everything flushed has been handed to the OS. */
  sent(): Promise<void> {
    if (this.#sending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#onSent = resolve);
  }

  /**
   * Sends a request and resolves with its reply: now when someone waits for
   * it, else with the next flush, so that a fetch ahead never carries the
   * acknowledgement of an item ahead of what its reader does with it.
   */
  request(
    op: number,
    args: unknown[],
    signal?: AbortSignal,
    urgent = true,
  ): Promise<Reply> {
    const req = ++this.#nextReq;
    return new Promise<Reply>((resolve) => {
      const onAbort = (): void => {
        this.push([CANCEL, req]);
        this.flush();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#requests.set(req, (reply) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(reply);
      });
      this.push([op, req, ...args]);
      if (urgent) this.flush();
    });
  }

  // The parent's replies and close notices come batched, like our ops.
  receive(message: unknown[]): void {
    let i = 1;
    while (i < message.length) {
      if (message[i] === REPLY) {
        const req = message[i + 1] as number;
        const settle = this.#requests.get(req);
        this.#requests.delete(req);
        settle?.({
          status: message[i + 2] as Status,
          block: message[i + 3] as Uint8Array | undefined,
          count: message[i + 4] as number,
          qsize: message[i + 5] as number,
          at: message[i + 6] as number,
        });
        i += 7;
      } else if (message[i] === SYNC_BACK) {
        syncHandler?.(message[i + 1] as unknown[]);
        i += 2;
      } else if (message[i] === MANAGER_BACK) {
        managerHandler?.(message[i + 1] as unknown[]);
        i += 2;
      } else {
        this.cores.get(message[i + 1] as number)?.noticeClosed();
        i += 2;
      }
    }
  }
}

const parent = new ParentChannel();

let syncHandler: ((payload: unknown[]) => void) | undefined;
let settleSync: (() => void) | undefined;

// _sync_link.ts registers here rather than being imported by this file.
/** In a child process: who handles lock and event traffic from the parent. */
export function onSyncFromParent(handler: (payload: unknown[]) => void): void {
  syncHandler = handler;
}

/** In a child process: what hands back lock leases when a task ends. */
export function onSettleSync(handler: () => void): void {
  settleSync = handler;
}

/**
 * In a child process: sends a lock or event operation to the parent, in
 * order with queue operations; `urgent` sends it now rather than with the
 * next batch.
 */
export function sendSyncToParent(payload: unknown[], urgent: boolean): void {
  parent.push([SYNC, payload]);
  if (urgent) parent.flush();
}

let managerHandler: ((payload: unknown[]) => void) | undefined;

// _manager_link.ts registers here rather than being imported by this file.
/** In a worker: who handles the replies of manager calls. */
export function onManagerFromParent(
  handler: (payload: unknown[]) => void,
): void {
  managerHandler = handler;
}

/**
 * In a worker: sends a call on a manager's object to the parent, in order
 * with queue and lock operations; `urgent` sends it now rather than with the
 * next batch.
 */
export function sendManagerToParent(payload: unknown[], urgent: boolean): void {
  parent.push([MANAGER, payload]);
  if (urgent) parent.flush();
}

/**
 * Called by a worker's bootstrap: how queue operations are sent
 * (`sent` is called once a message is written).
 */
export function connectToParent(
  post: (message: unknown[], sent: () => void) => void,
): void {
  parent.post = post;
  // A program that calls exit() right after its puts: hand them over while
  // it can (Node writes to the channel at once; Deno may not get to it).
  process.on("exit", () => parent.flush());
}

// The bootstrap routes QUEUE messages here; the channel stays private.
/** Handles a queue message from the parent. */
export function receiveFromParent(message: unknown[]): void {
  parent.receive(message);
}

/** Sends every pending queue operation now (before results, before exit). */
export function flushQueues(): void {
  parent.flush();
}

/**
 * Gives back items fetched ahead and unread (a task ended), and sends
 * everything. Returns a promise only when a fetch is still on its way: its
 * items go back too once they arrive.
 */
export function settleQueues(): Promise<void> | undefined {
  let fetching: Promise<void>[] | undefined;
  settleSync?.();
  for (const core of parent.cores.values()) {
    const pending = core.settle();
    if (pending) (fetching ??= []).push(pending);
  }
  parent.flush();
  if (fetching === undefined) return undefined;
  return Promise.all(fetching).then(() => settleQueues());
}

/** Settles, then resolves once everything is written: call before exit. */
export async function finishQueues(): Promise<void> {
  await settleQueues();
  await parent.sent();
}

/** What a queue looks like on its way to a child process. */
export interface RemoteDescriptor {
  id: number;
  maxsize: number;
  /** Whether it was closed when sent: the notice would come too late. */
  closed: boolean;
  /** Its size when sent: a bounded `putNowait` checks against it. */
  qsize: number;
  /** The parent's clock when it read `qsize`. */
  at: number;
  /** Where to write large items (see `_spill.ts`), if anywhere. */
  spill?: string;
}

// A queue sent again (with a later task) must reuse its core and state.
/** The core for a queue descriptor received from the parent process. */
export function remoteCore(descriptor: RemoteDescriptor): Core {
  let core = parent.cores.get(descriptor.id);
  if (core === undefined) {
    core = new RemoteCore(descriptor);
    parent.cores.set(descriptor.id, core);
  } else core.refresh(descriptor);
  return core;
}

// Clocks differ between processes: the parent gets the time left.
function timeoutOf(wait: WaitOptions): number {
  return wait.deadline === undefined
    ? -1
    : Math.max(0, wait.deadline - performance.now());
}

/** A queue of the parent process, seen from a child. */
class RemoteCore implements Core {
  readonly #id: number;
  readonly maxsize: number;
  /** Where large items go (the parent's directory), if anywhere. */
  readonly spill: string | undefined;
  /** Whether this process may read the files there (else they come inlined). */
  readonly #files: boolean;
  /** Blocks fetched ahead, oldest first, each with its unread count. */
  #ahead: { reader: RecordReader; count: number }[] = [];
  #aheadCount = 0;
  #want = 1;
  #knownSize = 0;
  #knownAt = -Infinity;
  #sentSince = 0;
  #closed = false;
  /** The parent said: closed, empty, and nobody can put any more. */
  #drained = false;
  #closeNoticed = false;
  /** Processes this one passed the queue on to that hold a write lease. */
  #writers = 0;
  /** Whether this process holds a write lease from its parent. */
  #leased = false;
  #leasing: Promise<Status> | undefined;
  #sizing: Promise<void> | undefined;
  /** Whether this process put since it last gave up its lease. */
  #writing = false;
  #puts = 0;
  #releaseTimer: ReturnType<typeof setTimeout> | undefined;
  #received = 0;
  #done = 0;
  #returnTimer: ReturnType<typeof setTimeout> | undefined;
  #fetching: Promise<void> | undefined;
  /** When the reader took the last item it had: its think time starts. */
  #emptiedAt = -Infinity;
  /** Whether the reader's current wait for an item has been counted. */
  #demandNoted = false;
  /** Gets in a row that came back quickly: fetch ahead once it is long enough. */
  #streak = 0;
  #onClosed: (() => void) | undefined;
  readonly #closedPromise: Promise<void>;

  // One per queue per process (remoteCore): its handles share this state.
  constructor(descriptor: RemoteDescriptor) {
    this.#id = descriptor.id;
    this.maxsize = descriptor.maxsize;
    this.spill = descriptor.spill;
    this.#files = canReadSpilled(descriptor.spill);
    this.#closedPromise = new Promise((resolve) => this.#onClosed = resolve);
    this.refresh(descriptor);
  }

  // A task's arguments may say more about the queue than the last reply did
  // (the parent got items meanwhile); the parent's clock tells which is newer.
  // Earlier tasks sent their puts before their results, so the parent has
  // counted them, unless the task came in one batch with them: then a
  // bounded putNowait may pass maxsize by those, as documented.
  /** Learns the queue's state from a descriptor that came with a task. */
  refresh(descriptor: RemoteDescriptor): void {
    if (descriptor.closed) this.#markClosed();
    if (descriptor.at <= this.#knownAt) return;
    this.#knownSize = descriptor.qsize;
    this.#knownAt = descriptor.at;
    this.#sentSince = 0;
  }

  // A worker thread cannot share a ring that this process does not have.
  descriptor(): RingDescriptor | undefined {
    return undefined;
  }

  // Known from a notice or a reply: asking would take a round trip.
  closed(): boolean {
    return this.#closed;
  }

  // An estimate without a round trip: the size last heard plus what moved.
  qsize(): number {
    return this.#knownSize + this.#sentSince + this.#aheadCount;
  }

  // Settled by a notice, a reply or our own close: no polling.
  whenClosed(): Promise<void> {
    return this.#closedPromise;
  }

  // Every way of learning of a close must also settle whenClosed().
  #markClosed(): void {
    this.#closed = true;
    this.#onClosed?.();
  }

  /** The parent closed the queue: send the last items, then confirm. */
  noticeClosed(): void {
    this.#markClosed();
    this.#closeNoticed = true;
    this.#confirmClose();
  }

  // The parent's getters wait out a close until every leaseholder confirms.
  #confirmClose(): void {
    if (!this.#closeNoticed || this.#writers > 0) return;
    this.#closeNoticed = false;
    if (!this.#leased) return;
    this.#leased = false;
    this.#writing = false;
    parent.push([CLOSE_ACK, this.#id]);
    parent.flush();
  }

  // A close makes getters wait for every process that may hold puts not yet
  // sent; a lease tells the parent which ones, so that a process busy with
  // other work does not hold up a close.
  /** Takes a write lease for a process this one passed the queue on to. */
  async lease(): Promise<Status> {
    if (this.#closed) return CLOSED;
    this.#writers++;
    const status = await this.#acquire();
    if (status !== OK) this.removeRemoteWriter();
    return status;
  }

  /** The same, for a process that could not wait for the answer. */
  leaseNow(): void {
    this.#writers++;
    this.#acquireNow();
  }

  // With the last writer below us gone, a close can be confirmed.
  removeRemoteWriter(): void {
    this.#writers--;
    this.#confirmClose();
    this.#maybeRelease();
  }

  /** Asks the parent for a write lease, once for everyone waiting. */
  #acquire(): Promise<Status> {
    if (this.#leased) return Promise.resolve(OK);
    return this.#leasing ??= parent.request(LEASE, [this.#id]).then(
      (reply) => {
        this.#leasing = undefined;
        this.#learn(reply);
        if (reply.status === OK) this.#leased = true;
        return reply.status;
      },
    );
  }

  /** Takes a write lease without asking; it travels before the first put. */
  #acquireNow(): void {
    if (this.#leased) return;
    this.#leased = true;
    parent.push([LEASE_NOW, this.#id]);
  }

  /** Gives up the lease once neither this process nor its children put. */
  #maybeRelease(): void {
    if (!this.#leased || this.#writing || this.#writers > 0) return;
    if (this.#leasing !== undefined || this.#closeNoticed) return;
    this.#leased = false;
    parent.push([RELEASE, this.#id]);
  }

  /** Notes a put; the lease goes once no put came for a while. */
  #noteWriting(): void {
    this.#writing = true;
    this.#puts++;
    if (this.#releaseTimer === undefined) this.#armRelease(this.#puts);
  }

  // Re-armed while puts go on, so a steady producer keeps its lease.
  #armRelease(puts: number): void {
    this.#releaseTimer = setTimeout(() => {
      this.#releaseTimer = undefined;
      if (this.#puts !== puts) return this.#armRelease(this.#puts);
      this.#writing = false;
      this.#maybeRelease();
    }, RELEASE_AFTER_MS);
    // deno-lint-ignore no-explicit-any
    (this.#releaseTimer as any).unref?.();
  }

  // Unbounded puts resolve at once and travel batched, as Python's feeder.
  tryPut(
    block: Uint8Array,
    count: number,
    options: PutOptions = {},
  ): Status {
    if (this.#closed && !options.afterClose) return CLOSED;
    if (
      !options.force && this.maxsize > 0 &&
      this.qsize() + count > this.maxsize
    ) {
      this.#askSize();
      return TIMED_OUT;
    }
    // A caller that can wait goes to put() to catch up with the channel.
    if (options.canWait && parent.congested()) return TIMED_OUT;
    if (!this.#leased || this.#leasing !== undefined) {
      // A caller that can wait asks first (see put), and keeps its order
      // behind a lease on its way.
      if (options.canWait) return TIMED_OUT;
      this.#acquireNow();
    }
    parent.putRecord(this.#id, block, count);
    this.#sentSince += count;
    this.#noteWriting();
    return OK;
  }

  // A bounded queue's room is known only in the parent: the put waits there.
  async put(
    block: Uint8Array,
    count: number,
    wait: WaitOptions,
  ): Promise<Status> {
    if (this.maxsize === 0) {
      // A large item goes to its file now, which is its copy; the channel
      // catches up after.
      if (
        this.#leased && this.#leasing === undefined &&
        this.spill !== undefined && block.length >= SPILL_BYTES
      ) {
        const status = this.tryPut(block, count);
        if (parent.congested()) await parent.catchUp();
        return status;
      }
      // The caller's buffer may be reused once we yield.
      block = block.slice();
      const leased = await this.#acquire();
      if (leased !== OK) return leased;
      // A producer that never yields would buffer without end: once a batch
      // is full, let the channel catch up.
      if (parent.congested()) await parent.catchUp();
      return this.tryPut(block, count);
    }
    if (this.#closed) return CLOSED;
    const reply = await parent.request(
      PUT_WAIT,
      [this.#id, block.slice(), count, timeoutOf(wait)],
      wait.signal,
    );
    this.#learn(reply);
    return reply.status;
  }

  // Full as far as this process knows: a putNowait that tries again later
  // must see the getters' progress, though it never waits for a reply.
  /** Asks the parent for the queue's size, once at a time. */
  #askSize(): void {
    if (this.#sizing !== undefined) return;
    this.#sizing = parent.request(SIZE, [this.#id]).then((reply) => {
      this.#sizing = undefined;
      if (reply.at > this.#knownAt) this.#learn(reply);
    });
  }

  // Every reply brings news of the queue's size and of a close.
  #learn(reply: Reply): void {
    this.#knownSize = reply.qsize;
    this.#knownAt = reply.at;
    this.#sentSince = 0;
    if (reply.status === CLOSED) this.#markClosed();
  }

  // Only items fetched ahead can be had without a round trip.
  tryTake(maxCount: number, maxBytes: number): Taken | undefined | 2 {
    if (this.#aheadCount === 0) this.#noteDemand();
    return this.#takeAhead(maxCount, maxBytes);
  }

  /** Whether the reader comes back fast enough to be worth fetching ahead for. */
  #streaming(): boolean {
    return this.#streak >= STREAK_TO_FETCH_AHEAD;
  }

  // Think time runs from the reader's last item to its next request, so the
  // wait for a reply is not counted; the clock is read once per fetch, not
  // per item (it costs as much as a small item in Deno).
  /** The reader asks and has nothing ahead: was it quick since its last item? */
  #noteDemand(): void {
    if (this.#demandNoted) return;
    this.#demandNoted = true;
    if (performance.now() - this.#emptiedAt <= STREAMING_THINK_MS) {
      this.#streak++;
    } else {
      this.#streak = 0;
      this.#want = 1;
    }
  }

  // Items fetched ahead are handed out still encoded, in order.
  #takeAhead(maxCount: number, maxBytes: number): Taken | undefined | 2 {
    if (this.#aheadCount === 0) {
      if (this.#drained) return CLOSED;
      return undefined;
    }
    const first = this.#ahead[0];
    const rest = first.reader.rest();
    const count = Math.min(maxCount, first.count);
    let [block] = splitRecords(rest, count);
    let taken = count;
    if (block.length > maxBytes && count > 1) {
      [block] = splitRecords(rest, 1);
      taken = 1;
    }
    for (let i = 0; i < taken; i++) first.reader.skip();
    first.count -= taken;
    if (first.count === 0) this.#ahead.shift();
    this.#aheadCount -= taken;
    if (this.#aheadCount === 0) {
      this.#emptiedAt = performance.now();
      this.#demandNoted = false;
    }
    this.#consumed(taken);
    this.#refill();
    return { block, count: taken, lent: true };
  }

  /** Asks for more before the items fetched ahead run out, hiding the round trip. */
  #refill(): void {
    if (
      this.#fetching !== undefined || this.#drained || !this.#streaming() ||
      this.#aheadCount * 2 > this.#want
    ) return;
    this.#fetching = this.#fetch(this.#want, 0, undefined, false).then(() => {
      this.#fetching = undefined;
    });
  }

  /** Fetches up to `want` items (waiting up to `timeout` ms for the first). */
  async #fetch(
    want: number,
    timeout: number,
    signal?: AbortSignal,
    urgent = true,
  ): Promise<Reply> {
    const reply = await parent.request(
      GET,
      [this.#id, want, timeout, this.#files ? 1 : 0],
      signal,
      urgent,
    );
    if (this.#streaming()) this.#want = Math.min(this.#want * 2, MAX_AHEAD);
    this.#learn(reply);
    if (reply.status === CLOSED) this.#drained = true;
    if (reply.block !== undefined && reply.count > 0) {
      this.#ahead.push({
        reader: new RecordReader(reply.block),
        count: reply.count,
      });
      this.#aheadCount += reply.count;
      // Nobody may read them: they go back unless read soon.
      if (this.#returnTimer === undefined) this.#armReturn(this.#received);
    }
    return reply;
  }

  // The parent keeps items lent until told they were read.
  #consumed(count: number): void {
    this.#received += count;
    parent.ack(this.#id, count);
    if (this.#aheadCount > 0 && this.#returnTimer === undefined) {
      this.#armReturn(this.#received);
    }
  }

  /** Gives back what is fetched ahead once nothing was read for a while. */
  #armReturn(received: number): void {
    this.#returnTimer = setTimeout(() => {
      this.#returnTimer = undefined;
      // A fetch on its way would come back after the give-back, out of
      // order: wait for it.
      if (this.#received === received && this.#fetching === undefined) {
        this.giveBack();
      } else if (this.#aheadCount > 0 || this.#fetching !== undefined) {
        this.#armReturn(this.#received);
      }
    }, RETURN_AFTER_MS);
    // deno-lint-ignore no-explicit-any
    (this.#returnTimer as any).unref?.();
  }

  /**
   * A task ended: gives back what was fetched ahead (or waits for a fetch on
   * its way) and gives up the lease after the last puts.
   */
  settle(): Promise<void> | undefined {
    if (this.#fetching !== undefined) return this.#fetching;
    if (this.#leasing !== undefined) return this.#leasing.then(() => {});
    this.giveBack();
    this.#writing = false;
    this.#maybeRelease();
    return undefined;
  }

  /** Returns the items fetched ahead and not read (no fetch may be on its way). */
  giveBack(): void {
    clearTimeout(this.#returnTimer);
    this.#returnTimer = undefined;
    this.#streak = 0;
    this.#want = 1;
    if (this.#aheadCount === 0) return;
    parent.push([RETURN, this.#id, this.#aheadCount]);
    this.#ahead = [];
    this.#aheadCount = 0;
  }

  // Fetches only when nothing is ahead; the wait happens in the parent.
  async take(
    maxCount: number,
    maxBytes: number,
    wait: WaitOptions,
  ): Promise<Taken | Status> {
    if (this.#aheadCount === 0) this.#noteDemand();
    for (;;) {
      const taken = this.#takeAhead(maxCount, maxBytes);
      if (taken !== undefined) return taken;
      if (this.#fetching !== undefined) {
        await this.#fetching;
        continue;
      }
      const reply = await this.#fetch(
        Math.max(this.#want, maxCount),
        timeoutOf(wait),
        wait.signal,
      );
      if (reply.block !== undefined) continue;
      if (wait.signal?.aborted) return ABORTED;
      if (reply.status !== OK) return reply.status;
    }
  }

  // Items a reader did not use go back to the front, in the parent, whole:
  // the parent removes the file of an item once we acknowledged it.
  unget(block: Uint8Array, count: number): void {
    const whole = this.spill === undefined
      ? block
      : inlineSpilled(block, false);
    parent.push([
      UNGET,
      this.#id,
      whole === block ? block.slice() : whole,
      count,
    ]);
  }

  // Flushed at once: the parent's getters must learn of it now.
  close(): void {
    if (this.#closed) return;
    this.#markClosed();
    parent.push([CLOSE, this.#id]);
    parent.flush();
  }

  // More task_done() calls than items received is the caller's mistake.
  taskDone(): boolean {
    if (this.#done >= this.#received) return false;
    this.#done++;
    parent.push([TASK_DONE, this.#id]);
    return true;
  }

  // Only the parent knows when every task is done.
  async join(wait: WaitOptions): Promise<Status> {
    const reply = await parent.request(
      JOIN,
      [this.#id, timeoutOf(wait)],
      wait.signal,
    );
    return wait.signal?.aborted ? ABORTED : reply.status;
  }
}
