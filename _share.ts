// Queues and pipe ends inside the arguments of a task or a Process. Structured
// clone would turn one into `{}`, so before the copy each is swapped for a
// descriptor: its shared memory for a worker thread, an id for a child
// process (which then reaches it through the parent, see `_queue_link.ts`).
// The worker swaps descriptors back for working handles.
import { isManagerCore, type ManagerOps } from "./_manager_core.ts";
import {
  describeManager,
  remoteManagerCore,
  type RemoteManagerDescriptor,
} from "./_manager_link.ts";
import {
  coreId,
  remoteCore,
  type RemoteDescriptor,
  spillDirOf,
} from "./_queue_link.ts";
import { type Core, Ring, type RingDescriptor } from "./_ring.ts";
import { isSyncCore, type SyncDescriptor, type SyncOps } from "./_sync_core.ts";
import {
  describeSync,
  remoteSyncCore,
  type RemoteSyncDescriptor,
  threadSyncCore,
} from "./_sync_link.ts";
import type { Backend } from "./_types.ts";

/** Implemented by every queue and pipe end: what it is made of. */
export const SHARE: unique symbol = Symbol.for("multiproc.share");

/** A queue's core, a lock's (or other sync primitive's) or a manager's. */
export type AnyCore = Core | SyncOps | ManagerOps;

/** A shareable object's parts: its class, its cores, its settings. */
export interface SharedForm {
  type: string;
  cores: AnyCore[];
  options: Record<string, unknown>;
  /**
   * Set for shared memory that no other process can reach: why passing it
   * to a process worker fails, and what to do instead.
   */
  threadsOnly?: string;
}

/**
 * The cores a worker rebuilds a queue or pipe end around, handed to its
 * constructor as a value (never through a module variable).
 */
export class Adoption<C extends AnyCore = Core> {
  // The cores in the order the class's shared form lists them.
  constructor(readonly cores: readonly (C | undefined)[]) {}
}

/** An object that can be passed to workers. */
export interface Shareable {
  [SHARE](): SharedForm;
}

const MARK = "$multiproc.handle";

type CoreDescriptor =
  | RingDescriptor
  | RemoteDescriptor
  | SyncDescriptor
  | RemoteSyncDescriptor
  | RemoteManagerDescriptor;

interface HandleDescriptor {
  type: string;
  cores: CoreDescriptor[];
  options: Record<string, unknown>;
}

/** How a worker rebuilds one shareable class from its parts. */
export type Reviver = (
  cores: AnyCore[],
  options: Record<string, unknown>,
) => unknown;
/** The revivers of every shareable class, by the type its shared form names. */
export type Revivers = Readonly<Record<string, Reviver>>;

let anyShared = false;

/** Called when a shareable is made: from now on arguments are searched for them. */
export function noteShareable(): void {
  anyShared = true;
}

// The mark every queue and pipe end carries, whatever its class.
function isShareable(value: object): value is Shareable {
  return SHARE in value;
}

// Class instances are not rebuilt with swapped fields; plain objects are.
function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

// The arguments are the caller's: swapping copies what it changes.
/**
 * Applies `swap` to the shareables inside arrays, plain objects, maps and
 * sets, copying on write.
 *
 * @throws {TypeError} for a shareable inside another kind of object, which
 * structured clone would turn into an empty object.
 */
function replaceIn(
  value: unknown,
  swap: (value: object) => unknown,
  matches: (value: object) => boolean,
  visited: Set<object>,
): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (matches(value)) return swap(value);
  if (ArrayBuffer.isView(value) || visited.has(value)) return value;
  visited.add(value);
  const inner = (item: unknown): unknown =>
    replaceIn(item, swap, matches, visited);
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const replaced = inner(value[i]);
      if (replaced !== value[i]) (copy ??= value.slice())[i] = replaced;
    }
    return copy ?? value;
  }
  if (value instanceof Map) {
    let changed = false;
    const entries = [...value].map(([key, item]): [unknown, unknown] => {
      const pair: [unknown, unknown] = [inner(key), inner(item)];
      changed ||= pair[0] !== key || pair[1] !== item;
      return pair;
    });
    return changed ? new Map(entries) : value;
  }
  if (value instanceof Set) {
    let changed = false;
    const items = [...value].map((item) => {
      const replaced = inner(item);
      changed ||= replaced !== item;
      return replaced;
    });
    return changed ? new Set(items) : value;
  }
  if (!isPlainObject(value)) {
    refuseInside(value, matches);
    return value;
  }
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value)) {
    const replaced = inner(item);
    if (replaced !== item) {
      (copy ??= { ...value as Record<string, unknown> })[key] = replaced;
    }
  }
  return copy ?? value;
}

// Structured clone keeps only the own data of a class instance, so a queue
// in one would arrive as `{}`: say so instead.
/** Throws when a shareable sits among the own properties of `value`. */
function refuseInside(
  value: object,
  matches: (value: object) => boolean,
): void {
  for (const item of Object.values(value)) {
    if (typeof item === "object" && item !== null && matches(item)) {
      const kind = value.constructor?.name ?? "object";
      throw new TypeError(
        `Cannot pass a queue or pipe end inside a "${kind}": only arrays, plain objects, maps and sets are searched for them; pass it as its own argument or in a plain object`,
      );
    }
  }
}

/**
 * Whether `value` holds a queue or pipe end at any depth (for items, which
 * may not carry one).
 */
export function holdsShareable(value: unknown): boolean {
  return findShareable(value) !== undefined;
}

// Errors name what a value holds: "a Lock", not "a queue or pipe end".
/** The first queue, pipe end or sync primitive in `value` at any depth. */
export function findShareable(value: unknown): object | undefined {
  return anyShared ? findNested(value, isShareable) : undefined;
}

/**
 * Whether `test` holds for `value` or an object anywhere inside it: array
 * items, map keys and values, set entries, own enumerable properties and an
 * error's `cause` and `errors`. Typed arrays and buffers are tested, not
 * entered.
 */
export function someNested(
  value: unknown,
  test: (item: object) => boolean,
): boolean {
  return findNested(value, test) !== undefined;
}

// One walk for both questions: is something inside, and which is it.
function findNested(
  value: unknown,
  test: (item: object) => boolean,
): object | undefined {
  const seen = new Set<object>();
  const stack: object[] = [];
  let found: object | undefined;
  function visit(item: unknown): boolean {
    if (typeof item !== "object" || item === null || seen.has(item)) {
      return false;
    }
    if (test(item)) {
      found = item;
      return true;
    }
    if (!ArrayBuffer.isView(item) && !(item instanceof ArrayBuffer)) {
      seen.add(item);
      stack.push(item);
    }
    return false;
  }
  if (visit(value)) return found;
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    if (Array.isArray(item)) {
      for (let i = 0; i < item.length; i++) if (visit(item[i])) return found;
    } else if (item instanceof Map) {
      for (const [key, entry] of item) {
        if (visit(key) || visit(entry)) return found;
      }
    } else if (item instanceof Set) {
      for (const entry of item) if (visit(entry)) return found;
    } else {
      // An error's cause and errors are not enumerable, but are copied.
      if (
        item instanceof Error &&
        (visit(item.cause) || visit((item as { errors?: unknown }).errors))
      ) return found;
      for (const key in item) {
        if (
          Object.hasOwn(item, key) &&
          visit((item as Record<string, unknown>)[key])
        ) return found;
      }
    }
  }
  return undefined;
}

// A thread shares the queue's memory; a child reaches it by id through us.
function describeCore(core: AnyCore, backend: Backend): CoreDescriptor {
  if (isSyncCore(core)) return describeSync(core, backend);
  if (isManagerCore(core)) return describeManager(core);
  if (backend === "process") {
    return {
      id: coreId(core),
      maxsize: core.maxsize,
      closed: core.closed(),
      qsize: core.qsize(),
      at: performance.now(),
      spill: spillDirOf(core),
    };
  }
  const ring = core.descriptor();
  if (ring === undefined) {
    throw new TypeError(
      `Cannot pass a queue or pipe that came from another process on to a worker thread: pass it to a pool or Process with backend: "process", or create the queue in this process`,
    );
  }
  return ring;
}

// Structured clone would turn a queue into {}; a descriptor survives it.
/**
 * Swaps the queues and pipe ends in `values` for descriptors a worker of
 * `backend` can use; returns the swapped values (the same array when there
 * are none) and the cores they share.
 *
 * @throws {TypeError} for a handle that cannot reach that kind of worker.
 */
export function shareValues(
  values: unknown[],
  backend: Backend,
): { values: unknown[]; cores: AnyCore[] } {
  const cores: AnyCore[] = [];
  if (!anyShared) return { values, cores };
  const swapped = replaceIn(
    values,
    (value) => {
      const form = (value as Shareable)[SHARE]();
      if (form.threadsOnly !== undefined && backend === "process") {
        throw new TypeError(form.threadsOnly);
      }
      cores.push(...form.cores);
      const descriptor: HandleDescriptor = {
        type: form.type,
        cores: form.cores.map((core) => describeCore(core, backend)),
        options: form.options,
      };
      return { [MARK]: descriptor };
    },
    isShareable,
    new Set(),
  ) as unknown[];
  return { values: swapped, cores };
}

// What shareValues left in place of each handle.
function isDescriptor(value: object): boolean {
  return MARK in value;
}

// A descriptor with shared memory is a ring; one without, an id at the parent.
function reviveCore(descriptor: CoreDescriptor): AnyCore {
  if ("sync" in descriptor) return threadSyncCore(descriptor);
  if ("syncId" in descriptor) return remoteSyncCore(descriptor);
  if ("managerId" in descriptor) return remoteManagerCore(descriptor);
  return "ctl" in descriptor
    ? new Ring(descriptor)
    : remoteCore(descriptor as RemoteDescriptor);
}

// The worker's half of shareValues; classes come in as revivers, not imports.
/**
 * In a worker: swaps descriptors back for working queues and pipe ends,
 * each built by its class's reviver.
 */
export function reviveValues(
  values: unknown[],
  revivers: Revivers,
): unknown[] {
  return replaceIn(
    values,
    (value) => {
      const descriptor = (value as Record<string, HandleDescriptor>)[MARK];
      const revive = Object.hasOwn(revivers, descriptor.type)
        ? revivers[descriptor.type]
        : undefined;
      if (revive === undefined) {
        throw new TypeError(`Unknown shared handle "${descriptor.type}"`);
      }
      return revive(descriptor.cores.map(reviveCore), descriptor.options);
    },
    isDescriptor,
    new Set(),
  ) as unknown[];
}
