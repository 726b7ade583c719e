// Values on their way to a worker: task functions as source, module URLs,
// and arguments copied at submission.
import { Buffer } from "node:buffer";
import { pathToFileURL } from "node:url";
import { DefaultDeserializer, deserialize, serialize } from "node:v8";

// deno-lint-ignore no-explicit-any
export type AnyFunction = (...args: any[]) => any;

// Workers import by URL; users pass paths too, Windows ones included.
/** The URL of a task module given as a URL, a URL string or a path. */
export function toModuleUrl(module: string | URL): string {
  if (module instanceof URL) return module.href;
  if (/^[a-z][a-z0-9+.-]*:/i.test(module) && !/^[a-z]:\\/i.test(module)) {
    return new URL(module).href;
  }
  return pathToFileURL(module).href;
}

// Error messages read "a Map", "an Error".
/** `"a"` or `"an"` and the noun. */
function withArticle(noun: string): string {
  return `${/^[aeiou]/i.test(noun) ? "an" : "a"} ${noun}`;
}

/**
 * The class of an object for error messages: its constructor's name, else
 * its `Symbol.toStringTag` (generator objects have a constructor without a
 * name, objects made by `Object.create(null)` none at all).
 */
function className(value: object): string {
  const constructor = (value as { constructor?: unknown }).constructor;
  const name = typeof constructor === "function" ? constructor.name : "";
  return name !== ""
    ? name
    : Object.prototype.toString.call(value).slice(8, -1);
}

/** What kind of function `fn` is, for error messages: `"a generator function"`, `"a bound function"`, … */
export function describeFunction(fn: AnyFunction): string {
  const tag = Object.prototype.toString.call(fn).slice(8, -1);
  if (tag === "GeneratorFunction") return "a generator function";
  if (tag === "AsyncGeneratorFunction") return "an async generator function";
  if (fn.name.startsWith("bound ")) return "a bound function";
  if (/^class\b/.test(Function.prototype.toString.call(fn))) return "a class";
  return "a function";
}

/** A short description of a value for error messages: `"a Map"`, `"a symbol"`, `"number 5"`. */
export function describeValue(value: unknown): string {
  if (typeof value === "function") {
    return describeFunction(value as AnyFunction);
  }
  if (typeof value === "symbol") return "a symbol";
  if (value === null) return "null";
  if (typeof value === "object") return withArticle(className(value));
  if (value === undefined) return "undefined";
  if (typeof value === "string") {
    return `a string ("${
      value.length > 40 ? `${value.slice(0, 40)}…` : value
    }")`;
  }
  return `${typeof value} ${String(value)}`;
}

// Primitives cannot change after submission: they need no copy.
function isPrimitive(value: unknown): boolean {
  return value === null ||
    (typeof value !== "object" && typeof value !== "function" &&
      typeof value !== "symbol");
}

// A clone of the whole list fails without saying which value was at fault.
/** Why `values[i]` cannot be copied, naming the first that cannot. */
function uncopyableError(values: unknown[], what: string): TypeError {
  for (let i = 0; i < values.length; i++) {
    try {
      structuredClone(values[i]);
    } catch (error) {
      return new TypeError(
        `Cannot send ${what} ${i} (${
          describeValue(values[i])
        }) to a worker: values are copied with structured clone, which cannot copy functions, symbols or class instances' methods: pass plain data`,
        { cause: error },
      );
    }
  }
  return new TypeError(`Cannot send the ${what}s to a worker`);
}

/**
 * Copies values at submission, so that later changes by the caller are never
 * seen by the task; primitives need no copy.
 *
 * @throws {TypeError} naming the first value that cannot be copied.
 */
export function copyValues(values: unknown[], what: string): unknown[] {
  if (values.every(isPrimitive)) return values;
  try {
    return structuredClone(values);
  } catch {
    throw uncopyableError(values, what);
  }
}

/**
 * Serializes values at submission (V8's serializer, as structured clone):
 * the one copy they need on their way to a worker, where a clone followed
 * by the message's own would take two. Primitives need no copy and are
 * returned as they are.
 *
 * @throws {TypeError} naming the first value that cannot be copied.
 */
export function serializeValues(
  values: unknown[],
  what: string,
): unknown[] | Uint8Array {
  if (values.every(isPrimitive)) return values;
  try {
    return serialize(values);
  } catch {
    throw uncopyableError(values, what);
  }
}

// node:v8 makes a typed array a view into the bytes it reads, often a
// pooled buffer holding other messages: each gets its own copy instead.
// (`_readHostObject` is node:v8's hook for each typed array; its types
// leave it out.)
const readView = (DefaultDeserializer.prototype as unknown as {
  _readHostObject(): ArrayBufferView;
})._readHostObject;

// Buffer.from(view) would copy a small one into a pooled buffer again.
/** A copy of `view`, of its type, over a buffer of exactly its bytes. */
function ownedCopy(view: ArrayBufferView): ArrayBufferView {
  const owned = new Uint8Array(view.byteLength);
  owned.set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  if (Buffer.isBuffer(view)) return Buffer.from(owned.buffer);
  const Type = view.constructor as new (buffer: ArrayBuffer) => ArrayBufferView;
  return new Type(owned.buffer);
}

// Bun has node:v8's deserialize but not its Deserializer class ("not yet
// implemented"): there the views are copied after reading instead.
/** Whether node:v8's Deserializer can be made here. */
function canDeserialize(): boolean {
  try {
    new DefaultDeserializer(serialize(0));
    return true;
  } catch {
    return false;
  }
}
const deserializerWorks = canDeserialize();

// Typed arrays and DataViews come out copied.
class OwningDeserializer extends DefaultDeserializer {
  // Replaces node:v8's hook.
  _readHostObject(): unknown {
    return ownedCopy(readView.call(this));
  }
}

/**
 * `v8.deserialize`, with every typed array and DataView owning exactly its
 * bytes: a view into `bytes` would expose the rest of its buffer through
 * `.buffer`.
 */
export function deserializeOwned(bytes: Uint8Array): unknown {
  if (!deserializerWorks) return ownViews(deserialize(bytes));
  const deserializer = new OwningDeserializer(bytes);
  deserializer.readHeader();
  return deserializer.readValue();
}

/**
 * `value`, changed in place so that every typed array and DataView in it
 * (in arrays, objects, Maps, Sets and errors' causes) owns exactly its bytes:
 * Node's IPC decodes each as a view into the message's bytes or a pooled
 * buffer, which `.buffer` would expose. Views that already own their bytes
 * stay; a view found twice becomes one copy.
 */
export function ownViews(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  return ownIn(value, new Map());
}

// Only objects are looked into, each once (messages may have cycles).
function ownIn(value: object, seen: Map<object, unknown>): unknown {
  const known = seen.get(value);
  if (known !== undefined) return known;
  if (ArrayBuffer.isView(value)) {
    const owned = value.byteOffset === 0 &&
        value.buffer.byteLength === value.byteLength
      ? value
      : ownedCopy(value);
    seen.set(value, owned);
    return owned;
  }
  seen.set(value, value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      if (typeof item !== "object" || item === null) continue;
      const owned = ownIn(item, seen);
      if (owned !== item) value[i] = owned;
    }
  } else if (value instanceof Map) {
    // Rebuilt whole, so that a replaced key keeps its place.
    const entries = Array.from(value as Map<unknown, unknown>);
    value.clear();
    for (const [key, item] of entries) {
      value.set(ownItem(key, seen), ownItem(item, seen));
    }
  } else if (value instanceof Set) {
    const items = Array.from(value as Set<unknown>);
    value.clear();
    for (const item of items) value.add(ownItem(item, seen));
  } else if (!(value instanceof ArrayBuffer)) {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    if (value instanceof Error && !keys.includes("cause")) keys.push("cause");
    for (const key of keys) {
      const item = record[key];
      if (typeof item !== "object" || item === null) continue;
      const owned = ownIn(item, seen);
      if (owned !== item) record[key] = owned;
    }
  }
  return value;
}

// A key or value of a Map or Set, through the walk's memory of what it saw.
function ownItem(value: unknown, seen: Map<object, unknown>): unknown {
  return typeof value === "object" && value !== null
    ? ownIn(value, seen)
    : value;
}

// The worker's side of serializeValues; both must use node:v8.
/** The values of a payload from {@linkcode serializeValues}. */
export function deserializeValues(bytes: Uint8Array): unknown[] {
  return deserializeOwned(bytes) as unknown[];
}

const builtinNames = new Map<AnyFunction, string>([
  [Math.max, "Math.max"],
  [Math.min, "Math.min"],
  [Math.pow, "Math.pow"],
  [Math.sqrt, "Math.sqrt"],
  [Math.abs, "Math.abs"],
  [Math.floor, "Math.floor"],
  [Math.ceil, "Math.ceil"],
  [Math.round, "Math.round"],
  [String, "String"],
  [Number, "Number"],
  [Boolean, "Boolean"],
  [JSON.stringify, "JSON.stringify"],
  [JSON.parse, "JSON.parse"],
]);

// An inline task function can cross to a worker only as source.
/**
 * The source of a task function, to be rebuilt in a worker. A few built-ins
 * (`Math.max`, `String`, …) are sent as calls to themselves.
 *
 * @throws {TypeError} for native and bound functions, whose source is not available.
 */
export function functionSource(fn: AnyFunction): string {
  const builtin = builtinNames.get(fn);
  if (builtin !== undefined) return `(...args) => ${builtin}(...args)`;
  const source = fn.toString();
  if (!/\{\s*\[native code\]\s*\}$/.test(source)) return source;
  if (fn.name.startsWith("bound ")) {
    const target = fn.name.slice("bound ".length);
    throw new TypeError(
      `Cannot send ${
        target === ""
          ? "an anonymous bound function"
          : `the bound function "${target}"`
      } to a worker: neither its source nor its bound values can be copied: pass the function itself, with the bound values as arguments, or export it from a module`,
    );
  }
  throw new TypeError(
    `Cannot send the native function "${fn.name}" to a worker: its source is not available: pass a function that calls it by its global name, e.g. (x) => Math.sqrt(x), or export one from a module`,
  );
}

// Method shorthand's source is no expression: it needs "function" in front.
/**
 * Compiles an inline function from its source, as an expression or a
 * method; `what` names it in the error.
 *
 * @throws {TypeError} when the source is not a function that can be rebuilt.
 */
export function compileFunction(
  source: string,
  what = "inline task function in the worker",
): AnyFunction {
  const attempts = [source, `function ${source}`];
  if (source.startsWith("async ")) {
    attempts.push(`async function ${source.slice(6)}`);
  }
  for (const attempt of attempts) {
    try {
      return new Function(
        `"use strict"; return (${attempt});`,
      )() as AnyFunction;
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
    }
  }
  throw new TypeError(
    `Cannot rebuild the ${what} from its source "${
      source.slice(0, 80)
    }": pass a plain function or arrow function, or export it from a module`,
  );
}

/** Below this many items a plain array costs less than packing. */
const PACK_MIN = 16;

/**
 * Packs an array of numbers into a `Float64Array`, which crosses to a worker
 * as one block of bytes (and can be transferred) instead of one tagged value
 * per item; every JavaScript number, `NaN` and `-0` included, survives.
 * Other arrays are returned as they are.
 */
export function packNumbers(values: ArrayLike<unknown>): unknown {
  if (values.length < PACK_MIN) return values;
  for (let i = 0; i < values.length; i++) {
    if (typeof values[i] !== "number") return values;
  }
  return Float64Array.from(values as ArrayLike<number>);
}

// map() sends its items in chunks; a chunk of numbers goes cheapest packed.
/**
 * Copies a chunk of items for a worker: packed when all are numbers, else
 * as {@linkcode serializeValues} does.
 *
 * @throws {TypeError} naming the first item that cannot be copied.
 */
export function copyItems(
  items: unknown[],
): unknown[] | Float64Array | Uint8Array {
  const packed = packNumbers(items);
  return packed instanceof Float64Array
    ? packed
    : serializeValues(items, "item");
}

// Workers learn an inline function's source once, then get its number.
/** Inline functions' sources, numbered in the order they were first seen. */
export class InlineSources {
  #ids = new Map<string, number>();
  #sources: string[] = [];

  /** The number of `source`, given one when it is new. */
  id(source: string): number {
    let id = this.#ids.get(source);
    if (id === undefined) {
      id = this.#sources.length;
      this.#sources.push(source);
      this.#ids.set(source, id);
    }
    return id;
  }

  /** The source numbered `id`. */
  source(id: number): string {
    return this.#sources[id]!;
  }
}
