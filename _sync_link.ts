// Locks, semaphores, events, conditions and barriers across processes. A
// child process holds a `RemoteSyncCore` per primitive; its operations travel
// over the worker channel (beside the queue traffic, in order with it) to a
// `SyncLink` in the parent, which performs them on the primitive's shared
// memory in the name of the child: the link's token is the child's owner
// token. When the child ends, the link drops its waits and releases what it
// held, so the next holder of a lock learns that its owner died.
//
// A `Lock` that a child acquires while nobody waits for it is leased to the
// child (biased ownership): the parent keeps it held in the child's name, and
// the child's acquires and releases of it are local, without a message,
// until the child hands the lease back with a RELEASE. It does so at a
// release once the parent revoked the lease (a waiter came: any thread, this
// process or another child), at once when revoked while it does not hold the
// lock, when its event loop turns with the lock free (setImmediate), when a
// task ends (before its result), and at an acquire more than 2 ms after its
// release (it computed meanwhile, and could not read a revocation). Waiters
// queue in the parent as before, so wake-ups stay first in, first out. The
// parent cannot tell whether a child that dies with the lease held the lock:
// it reports the owner died, which is wrong only when the child died after
// a release and before the lease went back, i.e. within the same turn of its
// event loop (a process stuck in a computation after a release stays in it).
// A grant that reaches a child after its wait gave up goes straight back
// with a RELEASE, a leased one too (the RELEASE ends the lease): the child
// never takes a lease it did not wait for. A child's lock with the lease
// and not held always has an idle check pending, which keeps its core alive:
// a core the child's garbage collector dropped holds no lease it could give
// back.
import { parentPort } from "node:worker_threads";
import { setImmediate } from "node:timers";
import { markDead, newThreadToken } from "./_liveness.ts";
import {
  onSettleSync,
  onSyncFromParent,
  sendSyncToParent,
} from "./_queue_link.ts";
import {
  ABORTED,
  ACQUIRED,
  BARRIER,
  BOUNDED_SEMAPHORE,
  BROKEN,
  EVENT,
  type Kind,
  LOCK,
  NOT_HELD,
  OVER_BOUND,
  RLOCK,
  SYNC_CORE,
  SyncCore,
  type SyncDescriptor,
  type SyncOps,
  type SyncState,
  type SyncWait,
  TIMED_OUT,
} from "./_sync_core.ts";
import { SYNC_DROPPED } from "./_wire.ts";

// Child → parent, each `[op, req, id, ...args]` (req 0: no reply wanted).
const ACQUIRE = 0; // timeout
const RELEASE = 1; // n
const SET = 2;
const CLEAR = 3;
const WAIT_SET = 4; // timeout
const WAIT_NOTIFY = 5; // lockId, timeout
const NOTIFY = 6; // n
const ARRIVE = 7; // timeout
const RESET = 8;
const ABORT = 9;
const CANCEL = 10;
const DROPPED = 11; // n: copies of the primitive the child let go of
// Parent → child.
const REPLY = 20; // req, result, id, owner, count, flag, leased
const STATE = 21; // id, owner, count, flag: an event or barrier changed
const FAILED = 22; // id, result: an operation sent without reply failed
const REVOKE = 23; // id: someone waits for a lock leased to the child

/** What a primitive looks like on its way to a child process. */
export interface RemoteSyncDescriptor {
  syncId: number;
  kind: Kind;
  limit: number;
  state: SyncState;
}

// ---- the parent side --------------------------------------------------

let nextId = 0;
const ids = new WeakMap<SyncCore, number>();
const cores = new Map<number, WeakRef<SyncCore>>();
const forget = new FinalizationRegistry<number>((id) => cores.delete(id));

// A child cannot hold the memory: it names the primitive by this id.
/** The id workers name `core` by. */
export function syncCoreId(core: SyncCore): number {
  let id = ids.get(core);
  if (id === undefined) {
    id = ++nextId;
    ids.set(core, id);
    cores.set(id, new WeakRef(core));
    forget.register(core, id);
  }
  return id;
}

// A thread shares the memory; a child reaches it by id through us.
/**
 * How a primitive's core travels to a worker of `backend`.
 *
 * @throws {TypeError} for a primitive that came from another process.
 */
export function describeSync(
  core: SyncOps,
  backend: "worker" | "process",
): SyncDescriptor | RemoteSyncDescriptor {
  if (core instanceof RemoteSyncCore) {
    throw new TypeError(
      `Cannot pass a lock, semaphore, event, condition or barrier that came from another process on to another worker: create it in the process that starts the workers`,
    );
  }
  const local = core as SyncCore;
  if (backend === "worker") {
    return { ...local.descriptor(), id: syncCoreId(local) };
  }
  return {
    syncId: syncCoreId(local),
    kind: local.kind,
    limit: local.limit(),
    state: local.state(),
  };
}

// A timeout crosses as a number (negative for none); cores wait by deadline.
function deadlineOf(timeout: number): number | undefined {
  return timeout < 0 ? undefined : performance.now() + timeout;
}

/** The parent's end of one child's lock and event traffic. */
export class SyncLink {
  /** The child's owner token: what it holds is held under it. */
  readonly token: number = newThreadToken();
  readonly #send: (payload: unknown[]) => void;
  readonly #held = new Map<number, SyncCore>();
  /** How many copies of each primitive the child was sent and may still have. */
  readonly #copies = new Map<number, number>();
  readonly #pending = new Map<number, AbortController>();
  /** Aborted when the child is gone: its condition waits do not retake their lock. */
  readonly #gone = new AbortController();
  /** Waits whose answer is not sent yet: a grant they got is given back before the child's holds are. */
  readonly #answering = new Set<Promise<void>>();
  /** Leased locks watched for waiters. */
  readonly #watching = new Set<number>();
  /** Leased locks whose lease was revoked. */
  readonly #revoked = new Set<number>();
  #disposed = false;
  #died = false;

  // One link per child, beside its queue link.
  constructor(send: (payload: unknown[]) => void) {
    this.#send = send;
  }

  /** Lets the child use these primitives; call before sending their descriptors. */
  share(shared: readonly SyncCore[]): void {
    for (const core of shared) {
      const id = syncCoreId(core);
      this.#copies.set(id, (this.#copies.get(id) ?? 0) + 1);
      if (this.#held.has(id)) continue;
      this.#held.set(id, core);
      // A child reads isSet(), broken and nWaiting without asking.
      if (core.kind === EVENT || core.kind === BARRIER) this.#watch(id, core);
    }
  }

  // Mirrors an event or barrier into the child while the child lives.
  async #watch(id: number, core: SyncCore): Promise<void> {
    const over = (): boolean => this.#disposed || this.#held.get(id) !== core;
    while (!over()) {
      const seen = core.changes();
      await core.changedSince(seen, over);
      if (over()) return;
      const state = core.state();
      this.#post([STATE, id, state.owner, state.count, state.flag]);
    }
  }

  // Posting to a child that just died must not throw into lock code.
  #post(payload: unknown[]): void {
    if (this.#disposed) return;
    try {
      this.#send(payload);
    } catch {
      // The child is gone; its exit disposes of this link.
    }
  }

  // A child's wait may be cancelled, and must not hold our event loop.
  #wait(req: number, timeout: number): SyncWait {
    const controller = new AbortController();
    this.#pending.set(req, controller);
    return {
      deadline: deadlineOf(timeout),
      signal: controller.signal,
      hold: false,
      gone: this.#gone.signal,
    };
  }

  // Every reply carries the state, so the child's mirror stays close.
  #reply(
    req: number,
    result: number,
    id: number,
    core: SyncCore,
    leased = 0,
  ): void {
    this.#pending.delete(req);
    const state = core.state();
    this.#post([
      REPLY,
      req,
      result,
      id,
      state.owner,
      state.count,
      state.flag,
      leased,
    ]);
  }

  // Waits answer when they end; the rest fail loudly in the child only.
  async #answer(
    req: number,
    id: number,
    core: SyncCore,
    result: Promise<number>,
    leasable = false,
  ): Promise<void> {
    const answer = result.then((got) =>
      leasable
        ? this.#answerAcquire(req, got, id, core)
        : this.#reply(req, got, id, core)
    );
    this.#answering.add(answer);
    await answer;
    this.#answering.delete(answer);
  }

  // An acquire that found nobody else waiting leases the lock to the child;
  // the reply goes first, so that a revocation never comes before it.
  #answerAcquire(req: number, got: number, id: number, core: SyncCore): void {
    if (got <= 0 || this.#disposed || !core.lease(this.token)) {
      return this.#reply(req, got, id, core);
    }
    this.#revoked.delete(id);
    this.#reply(req, got, id, core, 1);
    core.onWanted = (): void => this.#revokeIfWanted(id, core);
    if (!this.#watching.has(id)) this.#watchLease(id, core);
  }

  // Once per lease: the child hands it back at its next release.
  #revokeIfWanted(id: number, core: SyncCore): void {
    if (
      this.#revoked.has(id) || !core.leasedTo(this.token) || !core.wanted()
    ) return;
    this.#revoked.add(id);
    this.#post([REVOKE, id]);
  }

  // Waiters of other threads are seen here, a moment later; ends with the lease.
  async #watchLease(id: number, core: SyncCore): Promise<void> {
    this.#watching.add(id);
    try {
      while (!this.#disposed) {
        const seen = core.changes();
        if (!core.leasedTo(this.token)) return;
        this.#revokeIfWanted(id, core);
        await core.changedSince(seen);
      }
    } finally {
      this.#watching.delete(id);
    }
  }

  /** Handles one operation from the child. */
  receive(payload: unknown[]): void {
    const [op, req, id] = payload as number[];
    if (op === CANCEL) {
      this.#pending.get(req)?.abort();
      return;
    }
    if (op === DROPPED) return this.#dropped(id, payload[3] as number);
    const core = this.#held.get(id);
    if (core === undefined || this.#disposed) return;
    const token = this.token;
    switch (op) {
      case ACQUIRE:
        this.#answer(
          req,
          id,
          core,
          core.acquire(token, this.#wait(req, payload[3] as number)),
          true,
        );
        break;
      case RELEASE: {
        const result = core.release(token, payload[3] as number);
        if (result < 0) this.#post([FAILED, id, result]);
        break;
      }
      case SET:
        core.set();
        break;
      case CLEAR:
        core.clear();
        break;
      case WAIT_SET:
        this.#answer(
          req,
          id,
          core,
          core.waitSet(token, this.#wait(req, payload[3] as number)),
        );
        break;
      case WAIT_NOTIFY: {
        const lock = this.#held.get(payload[3] as number);
        if (lock === undefined) return this.#reply(req, NOT_HELD, id, core);
        this.#answer(
          req,
          id,
          core,
          core.waitNotify(token, lock, this.#wait(req, payload[4] as number)),
        );
        break;
      }
      case NOTIFY:
        core.notify(payload[3] as number);
        break;
      case ARRIVE:
        this.#answer(
          req,
          id,
          core,
          core.arrive(token, this.#wait(req, payload[3] as number), false),
        );
        break;
      case RESET:
        core.reset();
        break;
      case ABORT:
        core.abort();
        break;
      default:
        throw new Error(`Unknown lock operation "${op}" from a worker`);
    }
  }

  // A primitive sent with every task would otherwise be kept for the
  // child's life; one it holds or waits on stays, for its release at death.
  /** The child let go of `n` copies of primitive `id`: forgets it when no other is left. */
  #dropped(id: number, n: number): void {
    const left = (this.#copies.get(id) ?? 0) - n;
    const core = this.#held.get(id);
    if (left > 0 || core === undefined) {
      this.#copies.set(id, left);
      return;
    }
    this.#copies.delete(id);
    if (core.involves(this.token)) return;
    this.#held.delete(id);
    core.wakeWatchers();
  }

  /**
   * The child is gone: its waits end, what it held is released (the next
   * holder learns its owner died), and a barrier it waited at breaks.
   */
  dispose(): void {
    if (this.#died) return;
    this.#died = true;
    this.stop();
    const die = (): void => {
      for (const core of this.#held.values()) {
        if (core.leasedTo(this.token)) core.onWanted = undefined;
        core.died(this.token);
      }
      this.#held.clear();
    };
    // A grant that came as the child died is given back as a clean release
    // first: only what the child really held is released as its death.
    if (this.#answering.size === 0) die();
    else Promise.allSettled(this.#answering).then(die);
  }

  /**
   * The child can run nothing more (killed with SIGKILL, or gone): its waits
   * end at once, so nothing is handed to it that it would never release.
   */
  stop(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    markDead(this.token);
    this.#gone.abort();
    for (const controller of this.#pending.values()) controller.abort();
    this.#pending.clear();
  }
}

// ---- the child side ---------------------------------------------------

const remote = new Map<number, WeakRef<RemoteSyncCore>>();
/** How many times a primitive arrived since this process last let go of it. */
interface Tally {
  id: number;
  copies: number;
}
// The parent keeps what it sent until told that it is garbage here.
const collected = new FinalizationRegistry<Tally>((tally) => {
  if (remote.get(tally.id)?.deref() === undefined) remote.delete(tally.id);
  sendSyncToParent([DROPPED, 0, tally.id, tally.copies], false);
});
/**
 * How soon after its release a process may take a leased lock again without
 * asking, in `Date.now()` ticks (a few times cheaper than `performance.now()`
 * in Deno, which would cost a burst a third of its speed).
 */
const LEASE_BURST_MS = 2;
const requests = new Map<number, (result: number, leased: boolean) => void>();
let nextReq = 0;
let listening = false;

// The parent's replies and notices about every primitive of this process.
function receiveFromParent(payload: unknown[]): void {
  const op = payload[0] as number;
  if (op === REPLY) {
    const [, req, result, id, owner, count, flag, leased] = payload as number[];
    remote.get(id)?.deref()?.learn({ owner, count, flag });
    const settle = requests.get(req);
    requests.delete(req);
    settle?.(result, leased === 1);
  } else if (op === STATE) {
    const [, id, owner, count, flag] = payload as number[];
    remote.get(id)?.deref()?.learn({ owner, count, flag });
  } else if (op === FAILED) {
    remote.get(payload[1] as number)?.deref()?.failed(payload[2] as number);
  } else if (op === REVOKE) {
    remote.get(payload[1] as number)?.deref()?.revoke();
  }
}

// A task ended: leases of locks it left free go back before its result.
function settleLeases(): void {
  for (const core of remote.values()) core.deref()?.idle();
}

/** How a wait of this process gives up on its own. */
interface GiveUp {
  /** What a wait that timed out here resolves to. */
  timedOut: number;
  /** Takes a result the parent sends after the wait gave up. */
  late?: (result: number) => void;
}

/**
 * Sends a request and resolves with the parent's result. With `giveUp`,
 * the wait's deadline (unless it is already due: a try such as
 * `acquire({ timeout: 0 })`, which the parent answers at once) and signal
 * end it here even while the parent is busy:
 * the parent is told to cancel, and what it answers later goes to `late`.
 * `onReply` reads a reply in time before anything that came with it.
 */
function request(
  payload: unknown[],
  wait: SyncWait,
  giveUp?: GiveUp,
  onReply?: (result: number, leased: boolean) => void,
): Promise<number> {
  const req = ++nextReq;
  payload[1] = req;
  const { signal, deadline } = wait;
  return new Promise((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settle = (result: number): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(result);
    };
    const abandon = (result: number): void => {
      requests.set(req, (late) => giveUp?.late?.(late));
      sendSyncToParent([CANCEL, req], true);
      settle(result);
    };
    const onAbort = (): void => {
      if (giveUp !== undefined) abandon(ABORTED);
      else sendSyncToParent([CANCEL, req], true);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    // A wait without time left is a try: only the parent can answer it.
    const left = deadline === undefined ? 0 : deadline - performance.now();
    if (giveUp !== undefined && left > 0) {
      timer = setTimeout(() => abandon(giveUp.timedOut), left);
    }
    requests.set(req, (result, leased) => {
      onReply?.(result, leased);
      settle(result);
    });
    sendSyncToParent(payload, true);
  });
}

// Clocks differ between processes: the parent gets the time left.
function timeoutOf(wait: SyncWait): number {
  return wait.deadline === undefined
    ? -1
    : Math.max(0, wait.deadline - performance.now());
}

/** A primitive of the parent process, seen from a child. */
class RemoteSyncCore implements SyncOps {
  readonly [SYNC_CORE] = true as const;
  readonly kind: Kind;
  readonly #id: number;
  readonly #limit: number;
  #state: SyncState;
  /** Lock, RLock: how deep this process holds it; a semaphore: the units it acquired. */
  #depth = 0;
  /** An operation sent without reply failed in the parent: the next call says so. */
  #failure = 0;
  /** How many times it arrived: the parent forgets that many when it is garbage. */
  readonly tally: Tally;
  /** Lock: the parent holds it for this process; acquire and release are local. */
  #leased = false;
  /** Lock: someone waits for it; the lease goes back at the next release. */
  #revoking = false;
  /** Lock: a lease check is due when the event loop turns. */
  #idleCheck = false;
  /** Lock: when this process last released it under the lease. */
  #releasedAt = 0;

  // One per primitive per process (remoteSyncCore): handles share it.
  constructor(descriptor: RemoteSyncDescriptor) {
    this.#id = descriptor.syncId;
    this.kind = descriptor.kind;
    this.#limit = descriptor.limit;
    this.#state = descriptor.state;
    this.tally = { id: descriptor.syncId, copies: 1 };
    collected.register(this, this.tally);
  }

  /** The state the parent reported last. */
  learn(state: SyncState): void {
    this.#state = state;
  }

  /** An operation sent without a reply failed with `result`. */
  failed(result: number): void {
    this.#failure = result;
  }

  // Requests carry the id; the req is filled in by request().
  #op(op: number, ...args: unknown[]): unknown[] {
    return [op, 0, this.#id, ...args];
  }

  // Before anything else that came with the reply (a revocation) is read.
  #granted(result: number, leased: boolean): void {
    if (result <= 0) return;
    this.#depth++;
    if (!leased) return;
    this.#leased = true;
    this.#revoking = false;
  }

  /** Someone waits: the lease goes back now, or at the next release. */
  revoke(): void {
    if (!this.#leased) return;
    if (this.#depth === 0) this.#handBack();
    else this.#revoking = true;
  }

  /** Hands the lease back if the lock is free here (a task ended, the event loop turned). */
  idle(): void {
    if (this.#leased && this.#depth === 0) this.#handBack();
  }

  // The parent releases the lock; its first waiter gets it.
  #handBack(): void {
    this.#leased = false;
    this.#revoking = false;
    this.#state = { ...this.#state, owner: 0 };
    sendSyncToParent(this.#op(RELEASE, 1), true);
  }

  // A lease is for a burst of use: it goes back when the loop turns with
  // the lock free, so a dead process is rarely taken for a dead holder.
  #checkWhenIdle(): void {
    if (this.#idleCheck) return;
    this.#idleCheck = true;
    setImmediate(() => {
      this.#idleCheck = false;
      this.idle();
    });
  }

  // Only the parent can tell, unless it leased us the lock. A lease is for
  // a burst: after a pause (a computation that kept the event loop busy, and
  // waiters from reading the revocation), the lease goes back and the
  // acquire queues behind them, so that no waiter starves.
  tryAcquire(): number {
    if (!this.#leased || this.#revoking || this.#depth !== 0) return 0;
    if (Date.now() - this.#releasedAt > LEASE_BURST_MS) {
      this.#handBack();
      return 0;
    }
    this.#depth = 1;
    return ACQUIRED;
  }

  // A wait in the parent, in the name of this process.
  async acquire(_owner: number, wait: SyncWait): Promise<number> {
    const local = this.tryAcquire();
    if (local !== 0) return local;
    // Held here under the lease: our wait in the parent revokes it.
    if (this.#leased && timeoutOf(wait) !== 0) this.#revoking = true;
    // A grant that comes after this process gave up goes straight back,
    // a leased one with its lease: the RELEASE ends both.
    const result = await request(
      this.#op(ACQUIRE, timeoutOf(wait)),
      wait,
      {
        timedOut: TIMED_OUT,
        late: (got) => {
          if (got > 0) sendSyncToParent(this.#op(RELEASE, 1), true);
        },
      },
      (got, leased) => this.#granted(got, leased),
    );
    if (result <= 0) return result;
    // Granted as the signal fired: the caller gets the abort, so give back.
    if (wait.signal?.aborted) {
      this.release(0, 1);
      return ABORTED;
    }
    return result;
  }

  // Checked here, so that the mistake throws at once; sent without a reply.
  release(_owner: number, n: number): number {
    if (this.#failure !== 0) {
      const failure = this.#failure;
      this.#failure = 0;
      return failure;
    }
    if (this.kind === LOCK || this.kind === RLOCK) {
      if (this.#depth === 0) return NOT_HELD;
      if (this.#leased) {
        this.#depth--;
        this.#releasedAt = Date.now();
        if (this.#revoking) this.#handBack();
        else this.#checkWhenIdle();
        return 0;
      }
      // Free as far as this process knows, until the parent says more.
      if (--this.#depth === 0) this.#state = { ...this.#state, owner: 0 };
    } else {
      // Units this process acquired can go back; past them, an over-release
      // the mirror can see throws here, at the release that is wrong.
      if (
        this.kind === BOUNDED_SEMAPHORE && n > this.#depth &&
        this.#state.count + n > this.#limit
      ) return OVER_BOUND;
      this.#depth = Math.max(0, this.#depth - n);
      this.#state = { ...this.#state, count: this.#state.count + n };
    }
    sendSyncToParent(this.#op(RELEASE, n), true);
    return 0;
  }

  // Only this process's own holding is known for sure (all of it, leased).
  held(owner: number | undefined): boolean {
    return this.#depth > 0 ||
      (owner === undefined && !this.#leased && this.#state.owner !== 0);
  }

  // Mirrored at once here; the parent's waiters wake when it arrives.
  set(): void {
    this.#state = { ...this.#state, flag: 1 };
    sendSyncToParent(this.#op(SET), true);
  }

  // As set().
  clear(): void {
    this.#state = { ...this.#state, flag: 0 };
    sendSyncToParent(this.#op(CLEAR), true);
  }

  // The mirror: as of the last reply or notice.
  isSet(): boolean {
    return this.#state.flag === 1;
  }

  // Asked even when the mirror says set: the parent knows best.
  waitSet(_owner: number, wait: SyncWait): Promise<number> {
    return request(this.#op(WAIT_SET, timeoutOf(wait)), wait, {
      timedOut: TIMED_OUT,
    });
  }

  // The parent releases and takes back the lock for us.
  waitNotify(_owner: number, lock: SyncOps, wait: SyncWait): Promise<number> {
    const other = lock as RemoteSyncCore;
    if (other.#depth === 0) return Promise.resolve(NOT_HELD);
    // The parent lets go of the lock for us, and of its lease.
    other.#leased = false;
    other.#revoking = false;
    return request(
      this.#op(WAIT_NOTIFY, other.#id, timeoutOf(wait)),
      // Python's wait holds the lock again when it returns: the parent
      // takes it back for us, so its answer is awaited.
      { signal: wait.signal },
    );
  }

  // Sent without a reply, in order with our other operations.
  notify(n: number): void {
    sendSyncToParent(this.#op(NOTIFY, n), true);
  }

  // An action never crosses, so the parent never answers LAST.
  arrive(_owner: number, wait: SyncWait): Promise<number> {
    // Given up here, the parent's cancel breaks the barrier for all.
    return request(this.#op(ARRIVE, timeoutOf(wait)), wait, {
      timedOut: BROKEN,
    });
  }

  // Only the process that made a barrier with an action runs it.
  pass(): void {}

  // As set().
  reset(): void {
    this.#state = { ...this.#state, flag: 0, count: 0 };
    sendSyncToParent(this.#op(RESET), true);
  }

  // As set().
  abort(): void {
    this.#state = { ...this.#state, flag: 1, count: 0 };
    sendSyncToParent(this.#op(ABORT), true);
  }

  // The mirror: as of the last reply or notice.
  count(): number {
    return this.#state.count;
  }

  // Fixed when made.
  limit(): number {
    return this.#limit;
  }
}

// A primitive sent again (with a later task) reuses its core and state.
/** The core for a descriptor received from the parent process. */
export function remoteSyncCore(descriptor: RemoteSyncDescriptor): SyncOps {
  if (!listening) {
    listening = true;
    onSyncFromParent(receiveFromParent);
    onSettleSync(settleLeases);
  }
  let core = remote.get(descriptor.syncId)?.deref();
  if (core === undefined) {
    core = new RemoteSyncCore(descriptor);
    remote.set(descriptor.syncId, new WeakRef(core));
  } else {
    core.tally.copies++;
    core.learn(descriptor.state);
  }
  return core;
}

// A worker thread's copies: the parent keeps each until told it is garbage.
const threadCopies = new FinalizationRegistry<number>((id) => {
  parentPort?.postMessage([SYNC_DROPPED, id, 1]);
});

/** A worker thread's core for a primitive it was sent, tracked for its parent. */
export function threadSyncCore(descriptor: SyncDescriptor): SyncCore {
  const core = new SyncCore(descriptor);
  if (descriptor.id !== undefined) threadCopies.register(core, descriptor.id);
  return core;
}

/** Whether `core` lives in a parent process. */
export function isRemoteSync(core: SyncOps): boolean {
  return core instanceof RemoteSyncCore;
}
