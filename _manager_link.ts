// A manager's objects from worker threads and child processes. A worker
// holds a `RemoteManagerCore` per manager; its calls travel the queue
// channel (`_queue_link.ts`, in order with queue and lock operations) to a
// `ManagerLink` in the parent, which runs them on the manager's objects and
// replies. Every call waits for its reply, writes too: Deno writes a posted
// message only once the event loop turns, so a write that resolved before
// its reply could still be in memory when the process exits or is killed,
// and writes that never wait would pile up without bound.
import { serialize } from "node:v8";
import {
  MANAGER_CORE,
  type ManagerCore,
  type ManagerOps,
  ManagerShutdownError,
  UPDATE,
} from "./_manager_core.ts";
import { onManagerFromParent, sendManagerToParent } from "./_queue_link.ts";
import { decodeError, encodeError } from "./_wire.ts";
import { describeValue, deserializeOwned } from "./_values.ts";

// Reply statuses, parent → worker: `[req, status, value, managerId]`.
const OK = 0;
const FAILED = 1; // value: the error, encoded
const ENDED = 2;

/** What a manager looks like on its way to a worker. */
export interface RemoteManagerDescriptor {
  managerId: number;
}

// ---- the parent side --------------------------------------------------

/**
 * How a manager's core travels to a worker (the same for threads and
 * processes: both reach it through this thread).
 *
 * @throws {TypeError} for a proxy that came from another thread or process.
 */
export function describeManager(core: ManagerOps): RemoteManagerDescriptor {
  if (core instanceof RemoteManagerCore) {
    throw new TypeError(
      "Cannot pass a manager proxy that came from another thread or process on to another worker: pass it to every worker from the process that made the manager",
    );
  }
  return { managerId: (core as ManagerCore).id };
}

// Arguments arrive as plain values (primitives) or serialized.
function argsOf(args: unknown[] | Uint8Array): unknown[] {
  return args instanceof Uint8Array
    ? deserializeOwned(args) as unknown[]
    : args;
}

// An update function runs here, with this process's permissions: from a
// sandbox it would be a way out.
function sandboxedUpdateError(): TypeError {
  return new TypeError(
    "Cannot run an update function sent from a worker started with a permissions option: it would run in the manager's process with that process's permissions, outside the worker's sandbox; read with get(), compute in the worker and write with set() while holding a Lock instead",
  );
}

// A result other than a primitive travels serialized, so that the worker
// decodes it with typed arrays of their own (the channel's decoder makes
// them views into its buffers).
function encodeResult(value: unknown): unknown {
  return typeof value === "object" && value !== null ? serialize(value) : value;
}

/** The parent's end of one worker's manager calls. */
export class ManagerLink {
  readonly #send: (payload: unknown[]) => void;
  readonly #held = new Map<number, ManagerCore>();
  readonly #sandboxed: boolean;
  #disposed = false;

  // One link per worker, beside its queue link; `sandboxed`: the worker
  // runs with fewer permissions than this process.
  constructor(send: (payload: unknown[]) => void, sandboxed = false) {
    this.#send = send;
    this.#sandboxed = sandboxed;
  }

  /** Lets the worker use these managers; call before sending descriptors. */
  share(shared: readonly ManagerOps[]): void {
    for (const core of shared) {
      const local = core as ManagerCore;
      this.#held.set(local.id, local);
    }
  }

  // Posting to a worker that just died must not throw into the caller.
  #post(payload: unknown[]): void {
    if (this.#disposed) return;
    try {
      this.#send(payload);
    } catch {
      // The worker is gone; its exit disposes of this link.
    }
  }

  /** Runs one call from the worker and replies. */
  receive(payload: unknown[]): void {
    const [req, managerId, id, op, args] = payload as [
      number,
      number,
      number,
      number,
      unknown[] | Uint8Array,
    ];
    const core = this.#held.get(managerId);
    let status = OK;
    let value: unknown;
    try {
      if (core === undefined || core.ended) throw new ManagerShutdownError();
      if (op === UPDATE && this.#sandboxed) throw sandboxedUpdateError();
      value = encodeResult(core.perform(id, op, argsOf(args)));
    } catch (error) {
      status = error instanceof ManagerShutdownError ? ENDED : FAILED;
      value = status === FAILED ? encodeError(error) : undefined;
    }
    this.#post([req, status, value, managerId]);
  }

  /** The worker is gone: nothing is held for it, so this only stops replies. */
  dispose(): void {
    this.#disposed = true;
    this.#held.clear();
  }
}

// ---- the worker side --------------------------------------------------

const remote = new Map<number, RemoteManagerCore>();
const requests = new Map<
  number,
  { resolve: (value: unknown) => void; reject: (error: unknown) => void }
>();
let nextReq = 0;
let listening = false;

// The parent's replies about every manager this worker uses.
function receiveFromParent(payload: unknown[]): void {
  const [req, status, value, managerId] = payload as [
    number,
    number,
    unknown,
    number,
  ];
  const core = remote.get(managerId);
  if (status === ENDED) core?.markEnded();
  const error = status === ENDED
    ? new ManagerShutdownError()
    : status === FAILED
    ? decodeError(value)
    : undefined;
  const pending = requests.get(req);
  requests.delete(req);
  if (error === undefined) {
    pending?.resolve(
      value instanceof Uint8Array ? deserializeOwned(value) : value,
    );
  } else pending?.reject(error);
}

// Primitives travel as they are; anything else is copied now, at the call.
function encodeArgs(args: unknown[]): unknown[] | Uint8Array {
  let plain = true;
  for (const arg of args) {
    if (typeof arg === "object" && arg !== null) plain = false;
    else if (typeof arg === "function" || typeof arg === "symbol") {
      plain = false;
    }
  }
  if (plain) return args;
  try {
    return serialize(args);
  } catch (error) {
    const culprit = args.find((arg) => {
      try {
        serialize(arg);
        return false;
      } catch {
        return true;
      }
    });
    throw new TypeError(
      `Cannot copy ${
        describeValue(culprit)
      } into a manager: values are copied with structured clone, which cannot copy functions, symbols or class instances' methods: pass plain data`,
      { cause: error },
    );
  }
}

/** A manager of the parent, seen from a worker. */
class RemoteManagerCore implements ManagerOps {
  readonly [MANAGER_CORE] = true as const;
  readonly #managerId: number;
  #ended = false;

  // One per manager per worker (remoteManagerCore): its proxies share it.
  constructor(descriptor: RemoteManagerDescriptor) {
    this.#managerId = descriptor.managerId;
  }

  /** The parent said the manager is shut down. */
  markEnded(): void {
    this.#ended = true;
  }

  // Copies the arguments at once, so later changes by the caller are never seen.
  call(
    id: number,
    op: number,
    args: unknown[],
  ): Promise<unknown> {
    const encoded = encodeArgs(args);
    if (this.#ended) throw new ManagerShutdownError();
    const req = ++nextReq;
    const message = [req, this.#managerId, id, op, encoded];
    return new Promise((resolve, reject) => {
      requests.set(req, { resolve, reject });
      sendManagerToParent(message, true);
    });
  }
}

// A proxy sent again (with a later task) reuses its manager's core.
/** The core for a manager descriptor received from the parent. */
export function remoteManagerCore(
  descriptor: RemoteManagerDescriptor,
): ManagerOps {
  if (!listening) {
    listening = true;
    onManagerFromParent(receiveFromParent);
  }
  let core = remote.get(descriptor.managerId);
  if (core === undefined) {
    core = new RemoteManagerCore(descriptor);
    remote.set(descriptor.managerId, core);
  }
  return core;
}
