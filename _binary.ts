// Bulk data between a pool and its workers: arguments, items or results that
// are all typed arrays or ArrayBuffers are copied each into an ArrayBuffer of
// its own, once, natively, instead of through V8's serializer (slow for large
// buffers in Deno). A worker thread is handed those buffers (transferred, so
// not copied again), which Deno's worker_threads also posts much faster than
// typed arrays, whose elements it visits one by one. To and from a child
// process they go through a file (see `_spill.ts`) where one can be used: one
// write and one read, instead of a copy, the IPC channel's two and a read.
import { loadBuffers, spillBuffers } from "./_spill.ts";

/** The typed arrays carried, by code; one code past the last is a bare ArrayBuffer. */
const VIEWS = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
] as const;
const BARE = VIEWS.length;

/** Below this many bytes in all, the serializer is as cheap. */
const MIN_BYTES = 64 * 1024;

/**
 * Values copied by {@linkcode copyBinary}: three numbers each (the kind, and
 * a view's byte offset and length) and their buffers.
 */
export interface BinaryValues {
  codes: number[];
  buffers: ArrayBuffer[];
}

// Buffer and other subclasses, and views of shared memory, which structured
// clone shares instead of copying, keep the usual path.
/** The code of a value this file carries, or -1. */
function codeOf(value: unknown): number {
  if (value instanceof ArrayBuffer) {
    return (value as { resizable?: boolean }).resizable ? -1 : BARE;
  }
  if (!ArrayBuffer.isView(value) || !(value.buffer instanceof ArrayBuffer)) {
    return -1;
  }
  return VIEWS.indexOf(value.constructor as (typeof VIEWS)[number]);
}

/** Values written by {@linkcode spillBinary}: their kinds, lengths and file. */
export interface BinaryFile {
  codes: number[];
  lengths: number[];
  path: string;
}

/**
 * Copies `values` when every one is a typed array or an ArrayBuffer and they
 * hold enough bytes to be worth it; `undefined` otherwise.
 */
export function copyBinary(
  values: ArrayLike<unknown>,
): BinaryValues | undefined {
  const found = sources(values);
  if (found === undefined) return undefined;
  return {
    codes: found.codes,
    buffers: found.buffers.map((buffer) => buffer.slice(0)),
  };
}

/**
 * Writes `values` (as {@linkcode copyBinary} would copy them) to a file in
 * `dir`; `undefined` when they are not such values or it cannot.
 */
export function spillBinary(
  values: ArrayLike<unknown>,
  dir: string,
): BinaryFile | undefined {
  const found = sources(values);
  if (found === undefined) return undefined;
  const path = spillBuffers(dir, found.buffers);
  if (path === undefined) return undefined;
  const lengths = found.buffers.map((buffer) => buffer.byteLength);
  return { codes: found.codes, lengths, path };
}

/** Whether `value` is what {@linkcode spillBinary} made. */
export function isBinaryFile(value: unknown): value is BinaryFile {
  return typeof value === "object" && value !== null &&
    typeof (value as BinaryFile).path === "string" &&
    Array.isArray((value as BinaryFile).lengths) &&
    Array.isArray((value as BinaryFile).codes);
}

/** The values of a file, each buffer read into its own; `remove` removes it. */
export function loadBinary(file: BinaryFile, remove: boolean): unknown[] {
  return fromBinary({
    codes: file.codes,
    buffers: loadBuffers(file.path, file.lengths, remove),
  });
}

// As structured clone does, a view comes with its whole buffer.
/** The codes of `values` and the buffers that hold them, not copied. */
function sources(values: ArrayLike<unknown>): BinaryValues | undefined {
  if (values.length === 0) return undefined;
  const codes: number[] = new Array(values.length * 3);
  let bytes = 0;
  for (let i = 0; i < values.length; i++) {
    const code = codeOf(values[i]);
    if (code < 0) return undefined;
    codes[i * 3] = code;
    if (code === BARE) {
      bytes += (values[i] as ArrayBuffer).byteLength;
      continue;
    }
    const view = values[i] as ArrayBufferView;
    codes[i * 3 + 1] = view.byteOffset;
    codes[i * 3 + 2] = (view as Uint8Array).length;
    bytes += view.buffer.byteLength;
  }
  if (bytes < MIN_BYTES) return undefined;
  const buffers = Array.from(
    values,
    (value, i) =>
      codes[i * 3] === BARE
        ? value as ArrayBuffer
        : (value as ArrayBufferView).buffer as ArrayBuffer,
  );
  return { codes, buffers };
}

// A task keeps its payload until it ends (to send it again if its worker
// dies): a thread is handed copies.
/** Copies of the buffers, to transfer. */
export function copyBuffers(binary: BinaryValues): BinaryValues {
  return {
    codes: binary.codes,
    buffers: binary.buffers.map((buffer) => buffer.slice(0)),
  };
}

// A map chunk's results are otherwise an array or packed numbers.
/** Whether `value` is what {@linkcode copyBinary} made. */
export function isBinary(value: unknown): value is BinaryValues {
  return typeof value === "object" && value !== null &&
    !Array.isArray(value) && !ArrayBuffer.isView(value) &&
    Array.isArray((value as BinaryValues).codes) &&
    Array.isArray((value as BinaryValues).buffers);
}

/** The values again, over their buffers: no copy. */
export function fromBinary(binary: BinaryValues): unknown[] {
  const { codes, buffers } = binary;
  return buffers.map((buffer, i) => {
    const code = codes[i * 3]!;
    if (code === BARE) return buffer;
    return new VIEWS[code]!(buffer, codes[i * 3 + 1], codes[i * 3 + 2]);
  });
}
