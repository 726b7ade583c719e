// The objects of a Manager, in the thread that made it: maps (dicts, and
// the namespaces and values, which are maps too) and lists, each under a
// number. A call runs whole, with nothing in between, so each is atomic; an
// update runs a function, rebuilt from its source, for a read-modify-write.
import { compileFunction, describeValue } from "./_values.ts";

/** Marks a manager's core, the owner's or a worker's (`_manager_link.ts`). */
export const MANAGER_CORE: unique symbol = Symbol.for("multiproc.managerCore");

/** The operations on an object; a list reads `GET`, `SET`, `SIZE`, `UPDATE` by index. */
export const GET = 0; // key, wrapped (a map: [value] if present, else [])
export const SET = 1; // key, value (a list: index, value)
export const DELETE = 2; // key
export const HAS = 3; // key
export const KEYS = 4;
export const VALUES = 5;
export const ENTRIES = 6;
export const SIZE = 7;
export const CLEAR = 8;
export const UPDATE = 9; // key, source
export const APPEND = 10; // item
export const EXTEND = 11; // items
export const SLICE = 12; // start, end
export const POP = 13; // index

/** A manager's objects seen from anywhere: runs one call on one object. */
export interface ManagerOps {
  readonly [MANAGER_CORE]: true;
  /**
   * Runs `op` on object `id` with `args` (copied here) and returns a copy of
   * the result.
   *
   * @throws {TypeError} when an argument cannot be copied.
   * @throws {ManagerShutdownError} once the manager is shut down.
   */
  call(id: number, op: number, args: unknown[]): unknown;
}

/**
 * Thrown by every call on a manager's proxy once the manager is shut down
 * ({@linkcode Manager.shutdown} or the end of its `await using` block), in
 * the process that made it and in every worker.
 *
 * @example A proxy used after its manager ended
 * ```ts
 * import { Manager, ManagerShutdownError } from "@multiproc/multiproc/manager";
 * import { rejects } from "node:assert/strict";
 *
 * const manager = new Manager();
 * const scores = manager.dict<string, number>();
 * manager.shutdown();
 * await rejects(scores.get("a"), ManagerShutdownError);
 * ```
 */
export class ManagerShutdownError extends Error {
  /**
   * Makes the error.
   *
   * @param message What could not be done.
   */
  constructor(
    message =
      "Cannot use a manager's dict, list, namespace or value after the manager was shut down: use its proxies before shutdown() or before the end of the manager's await using block",
  ) {
    super(message);
    this.name = "ManagerShutdownError";
  }
}

// Primitives cannot change later: they need no copy.
function isPrimitive(value: unknown): boolean {
  return value === null ||
    (typeof value !== "object" && typeof value !== "function" &&
      typeof value !== "symbol");
}

// Values go in and out as copies, as queue items do.
/**
 * A copy of `value` (structured clone); primitives are returned as they are.
 *
 * @throws {TypeError} naming the value when it cannot be copied.
 */
export function copyValue(value: unknown): unknown {
  if (isPrimitive(value)) return value;
  try {
    return structuredClone(value);
  } catch (error) {
    throw new TypeError(
      `Cannot copy ${
        describeValue(value)
      } into or out of a manager: values are copied with structured clone, which cannot copy functions, symbols or class instances' methods: pass plain data`,
      { cause: error },
    );
  }
}

// Awaiting a promise would let other calls in between the read and the write.
function isThenable(value: unknown): boolean {
  return (typeof value === "object" || typeof value === "function") &&
    value !== null && typeof (value as { then?: unknown }).then === "function";
}

// A list index counts from the end when negative, as in Python.
function listIndex(list: unknown[], index: number, what: string): number {
  if (list.length === 0) {
    throw new RangeError(
      what === "pop"
        ? "Cannot pop from an empty manager list"
        : `Cannot ${what} index "${index}" of an empty manager list`,
    );
  }
  const at = index < 0 ? list.length + index : index;
  if (at < 0 || at >= list.length) {
    throw new RangeError(
      `Cannot ${what} index "${index}" of a manager list of length ${list.length}: use an index from ${-list
        .length} to ${list.length - 1}`,
    );
  }
  return at;
}

// An update must be synchronous.
function promiseError(): TypeError {
  return new TypeError(
    "Cannot update with an async function or one that returned a promise: it must be synchronous, so that nothing changes the value between its read and its write; do the asynchronous work first, or read, compute and set under a Lock",
  );
}

let nextId = 0;

/** A manager's objects, where they live. */
export class ManagerCore implements ManagerOps {
  readonly [MANAGER_CORE] = true as const;
  /** How workers name this manager. */
  readonly id: number = ++nextId;
  #objects = new Map<number, Map<unknown, unknown> | unknown[]>();
  #nextObject = 0;
  #functions = new Map<string, (value: unknown) => unknown>();
  #ended = false;

  /** Whether {@linkcode ManagerCore.end} was called. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Adds an object; its items must be copies already. */
  create(object: Map<unknown, unknown> | unknown[]): number {
    if (this.#ended) throw new ManagerShutdownError();
    const id = ++this.#nextObject;
    this.#objects.set(id, object);
    return id;
  }

  /** Drops every object: later calls throw {@linkcode ManagerShutdownError}. */
  end(): void {
    this.#ended = true;
    this.#objects.clear();
    this.#functions.clear();
  }

  // The owner's own calls: arguments in and the result out are copied here.
  call(id: number, op: number, args: unknown[]): unknown {
    for (let i = 0; i < args.length; i++) args[i] = copyValue(args[i]);
    return copyValue(this.perform(id, op, args));
  }

  /**
   * Runs `op` on object `id`; `args` are the caller's copies (a worker's
   * arrive copied). Returns the result uncopied: the caller copies it.
   *
   * @throws {ManagerShutdownError} once ended.
   */
  perform(id: number, op: number, args: unknown[]): unknown {
    const object = this.#objects.get(id);
    if (object === undefined) throw new ManagerShutdownError();
    return Array.isArray(object)
      ? this.#onList(object, op, args)
      : this.#onMap(object, op, args);
  }

  // A dict, namespace or value.
  #onMap(map: Map<unknown, unknown>, op: number, args: unknown[]): unknown {
    switch (op) {
      case GET:
        if (!args[1]) return map.get(args[0]);
        return map.has(args[0]) ? [map.get(args[0])] : [];
      case SET:
        map.set(args[0], args[1]);
        return undefined;
      case DELETE:
        return map.delete(args[0]);
      case HAS:
        return map.has(args[0]);
      case KEYS:
        return [...map.keys()];
      case VALUES:
        return [...map.values()];
      case ENTRIES:
        return [...map.entries()];
      case SIZE:
        return map.size;
      case CLEAR:
        map.clear();
        return undefined;
      case UPDATE: {
        const next = this.#apply(args[1] as string, map.get(args[0]));
        map.set(args[0], copyValue(next));
        return next;
      }
    }
    throw new Error(`Unknown manager operation "${op}" on a map`);
  }

  // A list.
  #onList(list: unknown[], op: number, args: unknown[]): unknown {
    switch (op) {
      case GET:
        return list.at(args[0] as number);
      case SET:
        list[listIndex(list, args[0] as number, "set")] = args[1];
        return undefined;
      case SIZE:
        return list.length;
      case CLEAR:
        list.length = 0;
        return undefined;
      case APPEND:
        list.push(args[0]);
        return undefined;
      case EXTEND:
        for (const item of args[0] as unknown[]) list.push(item);
        return undefined;
      case SLICE:
        return list.slice(
          args[0] as number | undefined,
          args[1] as number | undefined,
        );
      case POP: {
        const at = listIndex(list, args[0] as number, "pop");
        return list.splice(at, 1)[0];
      }
      case UPDATE: {
        const at = listIndex(list, args[0] as number, "update");
        const next = this.#apply(args[1] as string, list[at]);
        list[at] = copyValue(next);
        return next;
      }
    }
    throw new Error(`Unknown manager operation "${op}" on a list`);
  }

  // The function gets a copy: one that throws halfway leaves the object intact.
  #apply(source: string, current: unknown): unknown {
    let fn = this.#functions.get(source);
    if (fn === undefined) {
      // An async function's body would run up to its first await, side
      // effects and all, before its promise is refused.
      if (/^async[\s(]/.test(source)) throw promiseError();
      fn = compileFunction(source, "update function") as (
        value: unknown,
      ) => unknown;
      this.#functions.set(source, fn);
    }
    let next: unknown;
    try {
      next = fn(copyValue(current));
    } catch (error) {
      if (!(error instanceof ReferenceError)) throw error;
      throw new ReferenceError(
        `${error.message}: an update function runs where the manager lives and cannot use variables from the scope it was written in: compute what it needs inside it, or read, compute and set under a Lock`,
        { cause: error },
      );
    }
    if (isThenable(next)) throw promiseError();
    return next;
  }
}

/** Whether `core` is a manager's, rather than a queue's or a lock's. */
export function isManagerCore(core: object): core is ManagerOps {
  return MANAGER_CORE in core;
}
