/**
 * Python's `multiprocessing.Manager`: a dict, a list, a namespace or a value
 * that lives in the process that made the manager, reached through proxies
 * whose methods are async. Pass a proxy in a task's arguments, a pool's
 * `initArgs` or a `Process`'s `args` and it works in the worker, a thread or
 * a process, as queues and locks do. Values are copied in and out.
 *
 * ```ts
 * import { Manager } from "@multiproc/multiproc/manager";
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { deepEqual } from "node:assert/strict";
 * import type { DictProxy } from "@multiproc/multiproc/manager";
 *
 * await using manager = new Manager();
 * const squares = manager.dict<number, number>();
 * await using pool = new Pool({ processes: 2, backend: "process" });
 * await pool.map(
 *   async ([d, n]: [DictProxy<number, number>, number]) => await d.set(n, n * n),
 *   [1, 2, 3].map((n) => [squares, n]),
 * );
 * deepEqual(new Map(await squares.entries()), new Map([[1, 1], [2, 4], [3, 9]]));
 * ```
 *
 * @module
 */
import {
  APPEND,
  CLEAR,
  copyValue,
  DELETE,
  ENTRIES,
  EXTEND,
  GET,
  HAS,
  KEYS,
  ManagerCore,
  type ManagerOps,
  ManagerShutdownError,
  POP,
  SET,
  SIZE,
  SLICE,
  UPDATE,
  VALUES,
} from "./_manager_core.ts";
import {
  Adoption,
  noteShareable,
  SHARE,
  type SharedForm,
  someNested,
} from "./_share.ts";
import { defineInspect } from "./_inspect.ts";
import { type AnyFunction, describeValue, functionSource } from "./_values.ts";

export { ManagerShutdownError };

/** The keys a manager dict takes: compared by value in every process. */
export type DictKey = string | number | bigint | boolean | null | undefined;

/** Who made a proxy: its manager's core and the object's number there. */
interface Target {
  core: ManagerOps;
  id: number;
}

// A proxy is made by its manager, or rebuilt by a worker around its core.
function targetOf(adoption: unknown, options: unknown): Target {
  if (!(adoption instanceof Adoption)) {
    throw new TypeError(
      "Cannot make a manager proxy with new: call manager.dict(), manager.list(), manager.namespace() or manager.value() on a Manager",
    );
  }
  noteShareable();
  return {
    core: adoption.cores[0] as ManagerOps,
    id: (options as { id: number }).id,
  };
}

// Every call goes through the core, here or in the manager's process.
async function call(
  target: Target,
  op: number,
  args: unknown[],
): Promise<unknown> {
  return await target.core.call(target.id, op, args);
}

// What a copy would silently turn into something else: [what, why].
function unstorable(item: object): [string, string] | undefined {
  if (SHARE in item) {
    return [
      "a queue, lock or manager proxy",
      "it would not work once copied; pass it to workers as its own argument instead",
    ];
  }
  if (item instanceof Manager) {
    return [
      "a Manager",
      "it would arrive as an empty object; pass its proxies to workers instead",
    ];
  }
  if (
    typeof SharedArrayBuffer === "function" &&
    (item instanceof SharedArrayBuffer ||
      (ArrayBuffer.isView(item) && item.buffer instanceof SharedArrayBuffer))
  ) {
    return [
      "a SharedArrayBuffer or a view on one",
      "a manager copies values, and shared memory would no longer be shared (or, in this thread, not be copied); copy its bytes (e.g. new Int32Array(shared).slice()), or pass it to workers as its own argument to share it",
    ];
  }
  if (typeof Blob === "function" && item instanceof Blob) {
    return [
      "a Blob",
      "it would arrive as an empty object; store its bytes or its text instead",
    ];
  }
  return undefined;
}

// A proxy, shared memory or a Blob inside a value would not arrive as given.
function checkStorable(value: unknown, where: string): void {
  if (typeof value !== "object" || value === null) return;
  let reason: [string, string] | undefined;
  someNested(value, (item) => (reason = unstorable(item)) !== undefined);
  if (reason !== undefined) {
    throw new TypeError(
      `Cannot store ${reason[0]} in a manager ${where}: ${reason[1]}`,
    );
  }
}

// Any iterable, strings too, as Python's list() and extend() take.
function itemsOf(items: unknown, what: string): unknown[] {
  if (
    items === null || items === undefined ||
    typeof (items as Iterable<unknown>)[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(
      `Cannot ${what} ${
        describeValue(items)
      }: pass an array or another iterable`,
    );
  }
  return [...items as Iterable<unknown>];
}

// Python's keys must be hashable; here they must compare by value.
function checkKey(key: unknown): void {
  if (
    (typeof key === "object" && key !== null) || typeof key === "function" ||
    typeof key === "symbol"
  ) {
    throw new TypeError(
      `Cannot use ${
        describeValue(key)
      } as a key of a manager dict: keys are copied between threads and processes, so only strings, numbers, bigints, booleans, null and undefined compare equal; use e.g. JSON.stringify(key)`,
    );
  }
}

// A namespace's names are attribute names.
function checkName(name: unknown): void {
  if (typeof name !== "string") {
    throw new TypeError(
      `Cannot use ${
        describeValue(name)
      } as the name of a manager namespace's attribute: pass a string`,
    );
  }
}

// List indices are integers, negative from the end.
function checkIndex(index: unknown, what: string): void {
  if (typeof index !== "number") {
    throw new TypeError(
      `Cannot use ${describeValue(index)} as ${what}: pass an integer`,
    );
  }
  if (!Number.isInteger(index)) {
    throw new RangeError(`Cannot use "${index}" as ${what}: pass an integer`);
  }
}

// The function runs where the manager lives, so it travels as source.
function sourceOf(fn: unknown): string {
  if (typeof fn !== "function") {
    throw new TypeError(
      `Cannot update with ${
        describeValue(fn)
      }: pass a function that takes the current value and returns the new one`,
    );
  }
  try {
    return functionSource(fn as AnyFunction);
  } catch (error) {
    throw new TypeError(
      `Cannot update with the built-in or bound function "${
        (fn as AnyFunction).name
      }": an update function travels to the manager as its source, which it has not (only common built-ins such as Math.abs, Number and String are known by name); pass an arrow function that calls it, e.g. (x) => parseInt(x)`,
      { cause: error },
    );
  }
}

/**
 * A proxy to a dict (a `Map`) that lives in a manager's process. Keys are
 * primitives (see {@linkcode DictKey}); values are copied in and out. Every
 * call is atomic; {@linkcode DictProxy.update} is an atomic
 * read-modify-write.
 *
 * @typeParam K The keys.
 * @typeParam V The values.
 *
 * @example Filled by worker threads
 * ```ts
 * import { Manager, type DictProxy } from "@multiproc/multiproc/manager";
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { equal } from "node:assert/strict";
 *
 * await using manager = new Manager();
 * const lengths = manager.dict<string, number>();
 * await using pool = new Pool({ processes: 2 });
 * await pool.starmap(
 *   async (d: DictProxy<string, number>, word: string) => await d.set(word, word.length),
 *   [[lengths, "pear"], [lengths, "fig"]],
 * );
 * equal(await lengths.get("fig"), 3);
 * equal(await lengths.size(), 2);
 * ```
 */
export class DictProxy<K extends DictKey = DictKey, V = unknown> {
  readonly #target: Target;

  /**
   * Not for direct use: call {@linkcode Manager.dict}.
   *
   * @throws {TypeError} always.
   */
  constructor();
  // A worker rebuilds a proxy it received around its core: see _revivers.ts.
  constructor(adoption?: Adoption<ManagerOps>, options?: unknown) {
    this.#target = targetOf(adoption, options);
  }

  /** @internal */
  [SHARE](): SharedForm {
    return {
      type: "DictProxy",
      cores: [this.#target.core],
      options: { id: this.#target.id },
    };
  }

  /**
   * The value of `key`, or `defaultValue` (else `undefined`) when it has
   * none, as Python's `dict.get(key, default)`.
   *
   * @param key The key.
   * @param defaultValue What a missing key reads as.
   * @returns A copy of the value.
   * @throws {TypeError} for a key that is not a primitive.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example With a default
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const d = manager.dict<string, number>([["a", 1]]);
   * equal(await d.get("a"), 1);
   * equal(await d.get("b"), undefined);
   * equal(await d.get("b", 0), 0);
   * ```
   */
  get(key: K): Promise<V | undefined>;
  /**
   * The value of `key`, or `defaultValue` when it has none.
   *
   * @typeParam D What a missing key reads as.
   * @param key The key.
   * @param defaultValue What a missing key reads as: returned as it is, not
   * copied (a lock or a function works too).
   * @returns A copy of the value, or `defaultValue`.
   * @throws {TypeError} for a key that is not a primitive.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example With a default
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * equal(await manager.dict<string, number>().get("b", 0), 0);
   * ```
   */
  get<D>(key: K, defaultValue: D): Promise<V | D>;
  get(key: K, defaultValue?: unknown): Promise<unknown> {
    if (defaultValue === undefined) return this.#keyed(GET, key, [key]);
    // The default stays here, as given: only whether the key is there travels.
    return this.#keyed(GET, key, [key, true]).then((found) =>
      (found as unknown[]).length === 0 ? defaultValue : (found as unknown[])[0]
    );
  }

  // Bad keys reject rather than throw: every method is async.
  #keyed(op: number, key: unknown, args: unknown[]): Promise<unknown> {
    try {
      checkKey(key);
    } catch (error) {
      return Promise.reject(error);
    }
    return call(this.#target, op, args);
  }

  /**
   * Sets `key` to a copy of `value`. Like every call, from any worker, it
   * resolves once the manager has applied it: a worker that exits or is
   * killed right after cannot lose it.
   *
   * @param key The key.
   * @param value The value, copied now.
   * @throws {TypeError} for a key that is not a primitive, or a value that
   * cannot be copied (the dict is unchanged).
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Set and read back
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const d = manager.dict<string, number[]>();
   * const xs = [1, 2];
   * await d.set("xs", xs);
   * xs.push(3); // not seen: the dict holds a copy
   * deepEqual(await d.get("xs"), [1, 2]);
   * ```
   */
  set(key: K, value: V): Promise<void> {
    try {
      checkStorable(value, "dict");
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#keyed(SET, key, [key, value]) as Promise<void>;
  }

  /**
   * Removes `key`.
   *
   * @param key The key.
   * @returns Whether it was there (as `Map.delete`; Python's `del` would
   * raise `KeyError`).
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Delete a key
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const d = manager.dict<string, number>({ a: 1 });
   * equal(await d.delete("a"), true);
   * equal(await d.delete("a"), false);
   * equal(await d.has("a"), false);
   * ```
   */
  delete(key: K): Promise<boolean> {
    return this.#keyed(DELETE, key, [key]) as Promise<boolean>;
  }

  /**
   * Whether `key` is there (Python's `key in d`).
   *
   * @param key The key.
   * @returns Whether the dict holds it.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Membership
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const d = manager.dict<string, null>({ a: null });
   * equal(await d.has("a"), true);
   * equal(await d.has("b"), false);
   * ```
   */
  has(key: K): Promise<boolean> {
    return this.#keyed(HAS, key, [key]) as Promise<boolean>;
  }

  /**
   * The keys, in insertion order.
   *
   * @returns A copy of the keys.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Keys
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const d = manager.dict({ a: 1, b: 2 });
   * deepEqual(await d.keys(), ["a", "b"]);
   * ```
   */
  keys(): Promise<K[]> {
    return call(this.#target, KEYS, []) as Promise<K[]>;
  }

  /**
   * The values, in insertion order.
   *
   * @returns Copies of the values.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Values
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const d = manager.dict({ a: 1, b: 2 });
   * deepEqual(await d.values(), [1, 2]);
   * ```
   */
  values(): Promise<V[]> {
    return call(this.#target, VALUES, []) as Promise<V[]>;
  }

  /**
   * The entries, in insertion order: `new Map(await d.entries())` is a copy
   * of the dict (Python's `d.copy()`).
   *
   * @returns Copies of the `[key, value]` pairs.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Entries
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const d = manager.dict({ a: 1 });
   * deepEqual(await d.entries(), [["a", 1]]);
   * ```
   */
  entries(): Promise<[K, V][]> {
    return call(this.#target, ENTRIES, []) as Promise<[K, V][]>;
  }

  /**
   * How many keys there are (Python's `len(d)`).
   *
   * @returns The number of keys.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Size
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * equal(await manager.dict({ a: 1, b: 2 }).size(), 2);
   * ```
   */
  size(): Promise<number> {
    return call(this.#target, SIZE, []) as Promise<number>;
  }

  /**
   * Removes every key.
   *
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Clear
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const d = manager.dict({ a: 1 });
   * await d.clear();
   * equal(await d.size(), 0);
   * ```
   */
  clear(): Promise<void> {
    return call(this.#target, CLEAR, []) as Promise<void>;
  }

  /**
   * An atomic read-modify-write of `key`: `fn` gets a copy of its value
   * (`undefined` when missing) and returns the new one, in the manager's
   * process, with no other call in between. `fn` travels as its source, like
   * an inline task: it cannot use variables from the scope it was written
   * in (a name that is also a global there reads that global), and must be
   * synchronous. It runs in the manager's thread with the manager's
   * process's permissions, blocking every other call until it returns, so a
   * worker started with a `permissions` option cannot send one (a
   * `TypeError`): read, compute and set under a `Lock` there.
   *
   * @param key The key.
   * @param fn From the current value to the new one.
   * @returns A copy of the new value.
   * @throws {TypeError} for a key that is not a primitive, a native or bound
   * function, an async function or one that returns a promise, a value that
   * cannot be copied (the dict is unchanged), or a call from a sandboxed
   * worker.
   * @throws Whatever `fn` throws (the dict is unchanged).
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Count without a lock
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const counts = manager.dict<string, number>();
   * await Promise.all([1, 2, 3].map(() =>
   *   counts.update("hits", (n) => (n ?? 0) + 1)
   * ));
   * equal(await counts.get("hits"), 3);
   * ```
   */
  update(key: K, fn: (current: V | undefined) => V): Promise<V> {
    let source: string;
    try {
      source = sourceOf(fn);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#keyed(UPDATE, key, [key, source]) as Promise<V>;
  }
}

/**
 * A proxy to a list (an `Array`) that lives in a manager's process; items
 * are copied in and out, and every call is atomic. Indices may be negative,
 * counting from the end, as in Python.
 *
 * @typeParam T The items.
 *
 * @example Appended to by worker processes
 * ```ts
 * import { Manager, type ListProxy } from "@multiproc/multiproc/manager";
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { deepEqual } from "node:assert/strict";
 *
 * await using manager = new Manager();
 * const seen = manager.list<number>();
 * await using pool = new Pool({ processes: 2, backend: "process" });
 * await pool.starmap(
 *   async (list: ListProxy<number>, n: number) => await list.append(n),
 *   [[seen, 1], [seen, 2]],
 * );
 * deepEqual((await seen.slice()).sort(), [1, 2]);
 * ```
 */
export class ListProxy<T = unknown> {
  readonly #target: Target;

  /**
   * Not for direct use: call {@linkcode Manager.list}.
   *
   * @throws {TypeError} always.
   */
  constructor();
  // A worker rebuilds a proxy it received around its core: see _revivers.ts.
  constructor(adoption?: Adoption<ManagerOps>, options?: unknown) {
    this.#target = targetOf(adoption, options);
  }

  /** @internal */
  [SHARE](): SharedForm {
    return {
      type: "ListProxy",
      cores: [this.#target.core],
      options: { id: this.#target.id },
    };
  }

  // Bad arguments reject rather than throw: every method is async.
  #call(op: number, args: () => unknown[]): Promise<unknown> {
    let checked: unknown[];
    try {
      checked = args();
    } catch (error) {
      return Promise.reject(error);
    }
    return call(this.#target, op, checked);
  }

  /**
   * Adds a copy of `item` at the end; resolves once it is there, as
   * {@linkcode DictProxy.set} does.
   *
   * @param item The item, copied now.
   * @throws {TypeError} for an item that cannot be copied.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Append
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const list = manager.list<string>();
   * await list.append("a");
   * equal(await list.at(-1), "a");
   * ```
   */
  append(item: T): Promise<void> {
    return this.#call(APPEND, () => {
      checkStorable(item, "list");
      return [item];
    }) as Promise<void>;
  }

  /**
   * Adds copies of `items` at the end, in one call.
   *
   * @param items The items, copied now.
   * @throws {TypeError} for something that is not iterable, or an item that
   * cannot be copied (the list is unchanged).
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Extend
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const list = manager.list([1]);
   * await list.extend([2, 3]);
   * equal(await list.length(), 3);
   * ```
   */
  extend(items: Iterable<T>): Promise<void> {
    return this.#call(EXTEND, () => {
      const array = itemsOf(items, "extend a manager list with");
      checkStorable(array, "list");
      return [array];
    }) as Promise<void>;
  }

  /**
   * The item at `index` (negative: from the end), or `undefined` past
   * either end, as `Array.prototype.at`.
   *
   * @param index The index.
   * @returns A copy of the item.
   * @throws {TypeError} for an index that is not a number.
   * @throws {RangeError} for one that is not an integer.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example At
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const list = manager.list(["a", "b"]);
   * equal(await list.at(0), "a");
   * equal(await list.at(-1), "b");
   * equal(await list.at(2), undefined);
   * ```
   */
  at(index: number): Promise<T | undefined> {
    return this.#call(GET, () => {
      checkIndex(index, "a manager list index");
      return [index];
    }) as Promise<T | undefined>;
  }

  /**
   * Replaces the item at `index` (negative: from the end) with a copy of
   * `item`.
   *
   * @param index The index of an item that exists.
   * @param item The new item, copied now.
   * @throws {RangeError} for an index past either end (Python's
   * `IndexError`) or one that is not an integer.
   * @throws {TypeError} for an index that is not a number, or an item that
   * cannot be copied.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Set
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const list = manager.list([1, 2]);
   * await list.set(-1, 20);
   * deepEqual(await list.slice(), [1, 20]);
   * ```
   */
  set(index: number, item: T): Promise<void> {
    return this.#call(SET, () => {
      checkIndex(index, "a manager list index");
      checkStorable(item, "list");
      return [index, item];
    }) as Promise<void>;
  }

  /**
   * Copies of the items from `start` up to `end` (not included), as
   * `Array.prototype.slice`; `slice()` copies the whole list.
   *
   * @param start The first index (negative: from the end).
   * @param end The index to stop before (negative: from the end).
   * @returns Copies of the items.
   * @throws {TypeError} for a bound that is not a number.
   * @throws {RangeError} for one that is not an integer.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Slice
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const list = manager.list([1, 2, 3, 4]);
   * deepEqual(await list.slice(1, -1), [2, 3]);
   * ```
   */
  slice(start?: number, end?: number): Promise<T[]> {
    return this.#call(SLICE, () => {
      if (start !== undefined) checkIndex(start, "the start of a slice");
      if (end !== undefined) checkIndex(end, "the end of a slice");
      return [start, end];
    }) as Promise<T[]>;
  }

  /**
   * How many items there are (Python's `len(list)`).
   *
   * @returns The length.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Length
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * equal(await manager.list([1, 2]).length(), 2);
   * ```
   */
  length(): Promise<number> {
    return call(this.#target, SIZE, []) as Promise<number>;
  }

  /**
   * Removes and returns the item at `index`, the last by default (Python's
   * `list.pop(index=-1)`).
   *
   * @param index The index (negative: from the end).
   * @returns The item.
   * @throws {RangeError} for an empty list or an index past either end
   * (Python's `IndexError`), or one that is not an integer.
   * @throws {TypeError} for an index that is not a number.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Pop
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal, rejects } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const list = manager.list(["a", "b", "c"]);
   * equal(await list.pop(), "c");
   * equal(await list.pop(0), "a");
   * equal(await list.pop(), "b");
   * await rejects(list.pop(), RangeError);
   * ```
   */
  pop(index = -1): Promise<T> {
    return this.#call(POP, () => {
      checkIndex(index, "a manager list index");
      return [index];
    }) as Promise<T>;
  }

  /**
   * An atomic read-modify-write of the item at `index`, as
   * {@linkcode DictProxy.update}: `fn` runs in the manager's process, from
   * its source.
   *
   * @param index The index of an item that exists (negative: from the end).
   * @param fn From the current item to the new one.
   * @returns A copy of the new item.
   * @throws {RangeError} for an index past either end.
   * @throws {TypeError} for a native or bound function, a function that
   * returns a promise or a value that cannot be copied (the list is
   * unchanged).
   * @throws Whatever `fn` throws (the list is unchanged).
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Update an item
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const list = manager.list([10]);
   * equal(await list.update(0, (n) => n + 1), 11);
   * ```
   */
  update(index: number, fn: (current: T) => T): Promise<T> {
    return this.#call(UPDATE, () => {
      checkIndex(index, "a manager list index");
      return [index, sourceOf(fn)];
    }) as Promise<T>;
  }

  /**
   * Removes every item.
   *
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Clear
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const list = manager.list([1, 2]);
   * await list.clear();
   * equal(await list.length(), 0);
   * ```
   */
  clear(): Promise<void> {
    return call(this.#target, CLEAR, []) as Promise<void>;
  }
}

/**
 * A proxy to a namespace in a manager's process: Python's `Namespace`, with
 * attributes read and written by name, `await ns.get("x")` and
 * `await ns.set("x", v)` (a JavaScript assignment cannot be awaited, so an
 * error in it would be lost). Type it with the attributes it holds; a name
 * never set reads `undefined`.
 *
 * @typeParam T The attributes and their types.
 *
 * @example Shared settings
 * ```ts
 * import { Manager } from "@multiproc/multiproc/manager";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * await using manager = new Manager();
 * const ns = manager.namespace({ done: 0, label: "run" });
 * await ns.set("done", 3);
 * equal(await ns.get("done"), 3);
 * deepEqual(await ns.toObject(), { done: 3, label: "run" });
 * ```
 */
export class NamespaceProxy<
  T extends Record<string, unknown> = Record<string, unknown>,
> {
  readonly #target: Target;

  /**
   * Not for direct use: call {@linkcode Manager.namespace}.
   *
   * @throws {TypeError} always.
   */
  constructor();
  // A worker rebuilds a proxy it received around its core: see _revivers.ts.
  constructor(adoption?: Adoption<ManagerOps>, options?: unknown) {
    this.#target = targetOf(adoption, options);
  }

  /** @internal */
  [SHARE](): SharedForm {
    return {
      type: "NamespaceProxy",
      cores: [this.#target.core],
      options: { id: this.#target.id },
    };
  }

  // Bad names reject rather than throw: every method is async.
  #named(
    op: number,
    name: unknown,
    args: () => unknown[],
  ): Promise<unknown> {
    let checked: unknown[];
    try {
      checkName(name);
      checked = args();
    } catch (error) {
      return Promise.reject(error);
    }
    return call(this.#target, op, checked);
  }

  /**
   * The attribute `name` (Python's `ns.name`), `undefined` when never set.
   *
   * @param name The attribute's name.
   * @returns A copy of its value.
   * @throws {TypeError} for a name that is not a string.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Get
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const ns = manager.namespace<{ x?: number }>();
   * equal(await ns.get("x"), undefined);
   * ```
   */
  get<N extends keyof T & string>(name: N): Promise<T[N]> {
    return this.#named(GET, name, () => [name]) as Promise<T[N]>;
  }

  /**
   * Sets the attribute `name` to a copy of `value` (Python's `ns.name = v`);
   * resolves once it is set, as {@linkcode DictProxy.set} does.
   *
   * @param name The attribute's name.
   * @param value Its value, copied now.
   * @throws {TypeError} for a name that is not a string, or a value that
   * cannot be copied.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Set
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const ns = manager.namespace<{ x: number }>({ x: 1 });
   * await ns.set("x", 2);
   * equal(await ns.get("x"), 2);
   * ```
   */
  set<N extends keyof T & string>(name: N, value: T[N]): Promise<void> {
    return this.#named(SET, name, () => {
      checkStorable(value, "namespace");
      return [name, value];
    }) as Promise<void>;
  }

  /**
   * An atomic read-modify-write of the attribute `name`, as
   * {@linkcode DictProxy.update}.
   *
   * @param name The attribute's name.
   * @param fn From the current value to the new one.
   * @returns A copy of the new value.
   * @throws {TypeError} for a name that is not a string, a native or bound
   * function, a function that returns a promise or a value that cannot be
   * copied (the namespace is unchanged).
   * @throws Whatever `fn` throws.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Update
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const ns = manager.namespace({ n: 1 });
   * equal(await ns.update("n", (n) => n * 10), 10);
   * ```
   */
  update<N extends keyof T & string>(
    name: N,
    fn: (current: T[N]) => T[N],
  ): Promise<T[N]> {
    return this.#named(UPDATE, name, () => [name, sourceOf(fn)]) as Promise<
      T[N]
    >;
  }

  /**
   * Removes the attribute `name` (Python's `del ns.name`).
   *
   * @param name The attribute's name.
   * @returns Whether it was set.
   * @throws {TypeError} for a name that is not a string.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Delete
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const ns = manager.namespace<{ x?: number }>({ x: 1 });
   * equal(await ns.delete("x"), true);
   * equal(await ns.get("x"), undefined);
   * ```
   */
  delete(name: keyof T & string): Promise<boolean> {
    return this.#named(DELETE, name, () => [name]) as Promise<boolean>;
  }

  /**
   * Every attribute, as a plain object (Python's `vars(ns)`).
   *
   * @returns Copies of the attributes.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example To an object
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * deepEqual(await manager.namespace({ a: 1 }).toObject(), { a: 1 });
   * ```
   */
  async toObject(): Promise<T> {
    const entries = await call(this.#target, ENTRIES, []) as [
      string,
      unknown,
    ][];
    return Object.fromEntries(entries) as T;
  }
}

/** The one key a value proxy's map holds. */
const VALUE_KEY = "value";

/**
 * A proxy to one value in a manager's process: Python's `Manager().Value`,
 * for any value that can be copied (not only numbers, and not shared
 * memory: see `Value` in `sync.ts` for that, between threads).
 *
 * @typeParam T The value's type.
 *
 * @example A counter updated by worker processes
 * ```ts
 * import { Manager, type ValueProxy } from "@multiproc/multiproc/manager";
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { equal } from "node:assert/strict";
 *
 * await using manager = new Manager();
 * const total = manager.value(0);
 * await using pool = new Pool({ processes: 2, backend: "process" });
 * await pool.map(
 *   async (total: ValueProxy<number>) => await total.update((n) => n + 1),
 *   [total, total, total],
 * );
 * equal(await total.get(), 3);
 * ```
 */
export class ValueProxy<T = unknown> {
  readonly #target: Target;

  /**
   * Not for direct use: call {@linkcode Manager.value}.
   *
   * @throws {TypeError} always.
   */
  constructor();
  // A worker rebuilds a proxy it received around its core: see _revivers.ts.
  constructor(adoption?: Adoption<ManagerOps>, options?: unknown) {
    this.#target = targetOf(adoption, options);
  }

  /** @internal */
  [SHARE](): SharedForm {
    return {
      type: "ValueProxy",
      cores: [this.#target.core],
      options: { id: this.#target.id },
    };
  }

  /**
   * The value (Python's `v.value`).
   *
   * @returns A copy of it.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Get
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * deepEqual(await manager.value({ a: 1 }).get(), { a: 1 });
   * ```
   */
  get(): Promise<T> {
    return call(this.#target, GET, [VALUE_KEY]) as Promise<T>;
  }

  /**
   * Replaces the value with a copy of `value`; resolves once it is set, as
   * {@linkcode DictProxy.set} does.
   *
   * @param value The new value, copied now.
   * @throws {TypeError} for a value that cannot be copied (the old one
   * stays).
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Set
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const v = manager.value("a");
   * await v.set("b");
   * equal(await v.get(), "b");
   * ```
   */
  set(value: T): Promise<void> {
    try {
      checkStorable(value, "value");
    } catch (error) {
      return Promise.reject(error);
    }
    return call(this.#target, SET, [VALUE_KEY, value]) as Promise<void>;
  }

  /**
   * An atomic read-modify-write, as {@linkcode DictProxy.update}: `fn` runs
   * in the manager's process, from its source, with no other call in
   * between; no lock needed.
   *
   * @param fn From the current value to the new one.
   * @returns A copy of the new value.
   * @throws {TypeError} for a native or bound function, a function that
   * returns a promise or a value that cannot be copied (the value is
   * unchanged).
   * @throws Whatever `fn` throws.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Increment
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const n = manager.value(41);
   * equal(await n.update((n) => n + 1), 42);
   * ```
   */
  update(fn: (current: T) => T): Promise<T> {
    let source: string;
    try {
      source = sourceOf(fn);
    } catch (error) {
      return Promise.reject(error);
    }
    return call(this.#target, UPDATE, [VALUE_KEY, source]) as Promise<T>;
  }
}

// A plain object's own entries, a Map's or any iterable of pairs.
function pairsOf(init: unknown, what: string): [unknown, unknown][] {
  if (init === undefined) return [];
  if (typeof init === "object" && init !== null) {
    if (Symbol.iterator in init) {
      const pairs = [...init as Iterable<unknown>];
      if (pairs.every((pair) => Array.isArray(pair) && pair.length === 2)) {
        return pairs as [unknown, unknown][];
      }
    } else return Object.entries(init);
  }
  throw new TypeError(
    `Cannot make a manager ${what} from ${
      describeValue(init)
    }: pass a Map, an iterable of [key, value] pairs or a plain object`,
  );
}

/**
 * Python's `multiprocessing.Manager()`: makes a dict, a list, a namespace or
 * a value that lives in this process (this thread), and proxies to reach it
 * from anywhere. Pass a proxy to workers in task arguments, `initArgs` or a
 * `Process`'s `args`, on either backend; every call on it is atomic, and
 * `update(fn)` is an atomic read-modify-write. Values are copied in and
 * out. Nothing runs in the background: an idle manager keeps no program
 * alive. Its objects live until `shutdown()` (or the end of
 * `await using manager`), which drops them all: a dict, list, namespace or
 * value is never freed before, even when no proxy to it is left, so make a
 * long-lived manager's objects once and reuse them rather than one per
 * task. Later calls, from anywhere, reject with
 * {@linkcode ManagerShutdownError}. Update functions run in this thread with
 * this process's permissions (see {@linkcode DictProxy.update}).
 *
 * Python's `Manager().Lock()`, `Queue()`, `Event()`… are not needed: the
 * `Lock`, `Queue` and others of `sync.ts` and `queue.ts` cross to workers
 * themselves. A proxy a worker received cannot be passed on to that
 * worker's own workers (a `TypeError`): pass it from here.
 *
 * @example A dict filled by a process pool
 * ```ts
 * import { Manager, type DictProxy } from "@multiproc/multiproc/manager";
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { equal } from "node:assert/strict";
 *
 * await using manager = new Manager();
 * const results = manager.dict<string, number>();
 * await using pool = new Pool({ processes: 2, backend: "process" });
 * await pool.starmap(
 *   async (d: DictProxy<string, number>, k: string) => await d.set(k, k.length),
 *   [[results, "a"], [results, "bb"]],
 * );
 * equal(await results.get("bb"), 2);
 * ```
 */
export class Manager {
  readonly #core = new ManagerCore();

  /** Makes a manager; nothing starts until its objects are used. */
  constructor() {}

  // Every object is one of the core's maps or lists.
  #target(object: Map<unknown, unknown> | unknown[]): [Adoption<ManagerOps>, {
    id: number;
  }] {
    return [new Adoption([this.#core]), { id: this.#core.create(object) }];
  }

  /**
   * A new dict, filled with copies of `init`'s entries.
   *
   * @typeParam K The keys: primitives, compared by value.
   * @typeParam V The values.
   * @param init A `Map`, an iterable of `[key, value]` pairs or a plain
   * object.
   * @returns Its proxy.
   * @throws {TypeError} for `init` of another kind, a key that is not a
   * primitive or a value that cannot be copied.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example From a plain object
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const d = manager.dict({ a: 1 });
   * equal(await d.get("a"), 1);
   * ```
   */
  dict<K extends DictKey = string, V = unknown>(
    init?: Iterable<readonly [K, V]> | Record<string, V>,
  ): DictProxy<K, V> {
    const map = new Map<unknown, unknown>();
    for (const [key, value] of pairsOf(init, "dict")) {
      checkKey(key);
      checkStorable(value, "dict");
      map.set(key, copyValue(value));
    }
    return new (DictProxy as unknown as new (
      ...args: unknown[]
    ) => DictProxy<K, V>)(...this.#target(map));
  }

  /**
   * A new list, filled with copies of `init`'s items.
   *
   * @typeParam T The items.
   * @param init Its first items.
   * @returns Its proxy.
   * @throws {TypeError} for an item that cannot be copied.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example From an array
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * equal(await manager.list([1, 2, 3]).length(), 3);
   * ```
   */
  list<T = unknown>(init?: Iterable<T>): ListProxy<T> {
    const items = init === undefined
      ? []
      : itemsOf(init, "make a manager list from");
    checkStorable(items, "list");
    return new (ListProxy as unknown as new (
      ...args: unknown[]
    ) => ListProxy<T>)(...this.#target(copyValue(items) as unknown[]));
  }

  /**
   * A new namespace with copies of `init`'s properties as its attributes
   * (Python's `manager.Namespace()`).
   *
   * @typeParam T The attributes and their types.
   * @param init Its first attributes.
   * @returns Its proxy.
   * @throws {TypeError} for a value that cannot be copied.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example Typed by its first attributes
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const ns = manager.namespace({ stage: "load" });
   * equal(await ns.get("stage"), "load");
   * ```
   */
  namespace<T extends Record<string, unknown> = Record<string, unknown>>(
    init?: Partial<T>,
  ): NamespaceProxy<T> {
    const map = new Map<unknown, unknown>();
    for (const [name, value] of pairsOf(init, "namespace")) {
      checkName(name);
      checkStorable(value, "namespace");
      map.set(name, copyValue(value));
    }
    return new (NamespaceProxy as unknown as new (
      ...args: unknown[]
    ) => NamespaceProxy<T>)(...this.#target(map));
  }

  /**
   * A new value, a copy of `init` (Python's `manager.Value(typecode, v)`).
   *
   * @typeParam T The value's type.
   * @param init Its first value.
   * @returns Its proxy.
   * @throws {TypeError} for a value that cannot be copied.
   * @throws {ManagerShutdownError} once the manager is shut down.
   *
   * @example A flag
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const flag = manager.value(false);
   * await flag.set(true);
   * equal(await flag.get(), true);
   * ```
   */
  value<T>(init: T): ValueProxy<T> {
    checkStorable(init, "value");
    const map = new Map<unknown, unknown>([[VALUE_KEY, copyValue(init)]]);
    return new (ValueProxy as unknown as new (
      ...args: unknown[]
    ) => ValueProxy<T>)(...this.#target(map));
  }

  /**
   * Whether {@linkcode Manager.shutdown} was called.
   *
   * @example After shutdown
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * const manager = new Manager();
   * manager.shutdown();
   * equal(manager.ended, true);
   * ```
   */
  get ended(): boolean {
    return this.#core.ended;
  }

  /**
   * Drops every object (Python's `shutdown()`): every later call on its
   * proxies, here or in any worker, and any call still on its way from a
   * worker, rejects with {@linkcode ManagerShutdownError}. Calling it again
   * does nothing.
   *
   * @example Shut down
   * ```ts
   * import { Manager, ManagerShutdownError } from "@multiproc/multiproc/manager";
   * import { rejects } from "node:assert/strict";
   *
   * const manager = new Manager();
   * const list = manager.list([1]);
   * manager.shutdown();
   * await rejects(list.length(), ManagerShutdownError);
   * ```
   */
  shutdown(): void {
    this.#core.end();
  }

  /**
   * Shuts the manager down at the end of an `await using` block, as
   * Python's `with Manager() as manager:` does.
   *
   * @example Scoped manager
   * ```ts
   * import { Manager } from "@multiproc/multiproc/manager";
   * import { equal } from "node:assert/strict";
   *
   * let manager: Manager;
   * {
   *   await using scoped = new Manager();
   *   manager = scoped;
   * }
   * equal(manager.ended, true);
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    this.shutdown();
    return Promise.resolve();
  }

  static {
    defineInspect(this, (manager) => ({ ended: manager.ended }));
  }
}
