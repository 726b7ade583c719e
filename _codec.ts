// Queue items as bytes: each item is one record, `[u32 length][tag][body]`,
// so that a run of records can move between threads and processes as one
// block. Primitives get short forms; everything else goes through V8's
// serializer (structured clone), which copies the item when it is put.
import v8 from "node:v8";
import { deserializeOwned } from "./_values.ts";

const UNDEFINED = 0;
const NULL = 1;
const FALSE = 2;
const TRUE = 3;
const INT32 = 4;
const FLOAT64 = 5;
const STRING = 6;
const SERIALIZED = 7;
const BYTES = 8;

/** Bytes before a record's body: its length. */
export const RECORD_HEADER = 4;

const encoder = new TextEncoder();
// A leading U+FEFF is text like any other: the default would drop it.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Thrown by {@linkcode RecordWriter.add} for a value that cannot be copied. */
export class UncopyableError extends Error {}

/** Appends records to a growing buffer. */
export class RecordWriter {
  bytes: Uint8Array = new Uint8Array(1024);
  #view = new DataView(this.bytes.buffer);
  length = 0;
  count = 0;

  // Records are written in place, so room is made before each.
  #reserve(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(needed, this.bytes.length * 2));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
    this.#view = new DataView(grown.buffer);
  }

  // Every form but strings knows its body's length up front.
  #begin(tag: number, bodyLength: number): number {
    this.#reserve(RECORD_HEADER + 1 + bodyLength);
    const start = this.length;
    this.#view.setUint32(start, 1 + bodyLength, true);
    this.bytes[start + RECORD_HEADER] = tag;
    this.length = start + RECORD_HEADER + 1 + bodyLength;
    this.count++;
    return start + RECORD_HEADER + 1;
  }

  // Encoding at put is the copy: later changes by the caller are never seen.
  /**
   * Appends `value` as one record.
   *
   * @throws {UncopyableError} when structured clone cannot copy it; the
   * writer is left as it was.
   */
  add(value: unknown): void {
    switch (typeof value) {
      case "number": {
        // #begin may grow the buffer: the view is read after it.
        if ((value | 0) === value && !Object.is(value, -0)) {
          const at = this.#begin(INT32, 4);
          this.#view.setInt32(at, value, true);
        } else {
          const at = this.#begin(FLOAT64, 8);
          this.#view.setFloat64(at, value, true);
        }
        return;
      }
      case "string":
        // UTF-8 cannot carry a lone surrogate: such a string goes through
        // the serializer, which keeps it as it is.
        if (value.isWellFormed()) return this.#addString(value);
        break;
      case "boolean":
        this.#begin(value ? TRUE : FALSE, 0);
        return;
      case "undefined":
        this.#begin(UNDEFINED, 0);
        return;
    }
    if (value === null) {
      this.#begin(NULL, 0);
      return;
    }
    // Bytes are the bulk data of queues: copied as they are, once.
    if (value instanceof Uint8Array && value.constructor === Uint8Array) {
      const at = this.#begin(BYTES, value.length);
      this.bytes.set(value, at);
      return;
    }
    let body: Uint8Array;
    try {
      body = v8.serialize(value);
    } catch (error) {
      throw new UncopyableError(String(error), { cause: error });
    }
    const at = this.#begin(SERIALIZED, body.length);
    this.bytes.set(body, at);
  }

  // Encodes straight into the buffer: no array per string.
  #addString(value: string): void {
    // UTF-8 takes at most three bytes per UTF-16 unit.
    this.#reserve(RECORD_HEADER + 1 + value.length * 3);
    const start = this.length;
    const body = start + RECORD_HEADER + 1;
    const { written } = encoder.encodeInto(value, this.bytes.subarray(body));
    this.#view.setUint32(start, 1 + written, true);
    this.bytes[start + RECORD_HEADER] = STRING;
    this.length = body + written;
    this.count++;
  }

  // Batches records already encoded, copied before their buffer is reused.
  /** Appends `count` records already encoded (a copy of `records`). */
  append(records: Uint8Array, count: number): void {
    this.#reserve(records.length);
    this.bytes.set(records, this.length);
    this.length += records.length;
    this.count += count;
  }

  // Reading the records costs no copy; callers copy what they keep.
  /** The records written so far (a view, valid until the next change). */
  view(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  // The buffer is kept for the next item or batch, not reallocated.
  /** Forgets every record, keeping the buffer. */
  clear(): void {
    this.length = 0;
    this.count = 0;
  }
}

// Tests need one record without a writer of their own.
/** Encodes one value as a single record. */
export function encodeOne(value: unknown): Uint8Array {
  const writer = new RecordWriter();
  writer.add(value);
  return writer.view();
}

/** Reads the records of a block one after another. */
export class RecordReader {
  #view: DataView;
  #offset = 0;
  // A block is often a view into a larger buffer: the DataView follows it.
  constructor(readonly bytes: Uint8Array) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  // Tests read a block to its end; the queues count records instead.
  /** Whether records are left. */
  get more(): boolean {
    return this.#offset < this.bytes.length;
  }

  // Records not yet taken are handed on whole, still encoded.
  /** The bytes left, from the next record on. */
  rest(): Uint8Array {
    return this.bytes.subarray(this.#offset);
  }

  /**
   * The body of a bytes record: a view when it is most of the block (a block
   * taken for one item is the caller's own copy), else a copy, so that a
   * small item does not keep a large block alive.
   */
  #bytesAt(body: number): Uint8Array {
    const bytes = this.bytes.subarray(body, this.#offset);
    return bytes.length * 2 >= this.bytes.length ? bytes : bytes.slice();
  }

  // Records handed on still encoded need no decoding here.
  /** Moves past the next record without decoding it. */
  skip(): void {
    this.#offset += RECORD_HEADER + this.#view.getUint32(this.#offset, true);
  }

  // Where a taken item becomes a value again, a fresh copy for its taker.
  /** Decodes the next record. */
  next(): unknown {
    const length = this.#view.getUint32(this.#offset, true);
    const tag = this.bytes[this.#offset + RECORD_HEADER];
    const body = this.#offset + RECORD_HEADER + 1;
    this.#offset += RECORD_HEADER + length;
    switch (tag) {
      case INT32:
        return this.#view.getInt32(body, true);
      case FLOAT64:
        return this.#view.getFloat64(body, true);
      case STRING:
        return decoder.decode(this.bytes.subarray(body, this.#offset));
      case BYTES:
        return this.#bytesAt(body);
      case UNDEFINED:
        return undefined;
      case NULL:
        return null;
      case FALSE:
        return false;
      case TRUE:
        return true;
      default:
        return deserializeOwned(this.bytes.subarray(body, this.#offset));
    }
  }
}

// A take may want fewer items than a block holds; the rest stays encoded.
/** Splits a block after its first `count` records: `[head, tail]`. */
export function splitRecords(
  block: Uint8Array,
  count: number,
): [Uint8Array, Uint8Array] {
  const view = new DataView(block.buffer, block.byteOffset, block.length);
  let offset = 0;
  for (let i = 0; i < count && offset < block.length; i++) {
    offset += RECORD_HEADER + view.getUint32(offset, true);
  }
  return [block.subarray(0, offset), block.subarray(offset)];
}
