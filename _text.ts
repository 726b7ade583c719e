// Bytes to text and lines, correct wherever the chunks happen to split.

// A leading U+FEFF is text like any other: the default would drop it.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
const strictDecoder = new TextDecoder("utf-8", {
  fatal: true,
  ignoreBOM: true,
});

/** What to do with bytes that are not UTF-8: fail, or put U+FFFD in their place. */
export type DecodeErrors = "strict" | "replace";

/** Bytes that are not UTF-8, found by a `"strict"` decoding. */
export class InvalidUtf8Error extends Error {
  /** The bytes being decoded: a whole output, or the line with the bad byte. */
  readonly bytes: Uint8Array;
  /** The index in `bytes` of the first byte that is not UTF-8. */
  readonly start: number;
  /** Where `bytes` begin in the output they come from. */
  readonly offset: number;
  // The message points at the bad byte, which TextDecoder's does not.
  constructor(bytes: Uint8Array, offset: number, cause: unknown) {
    const start = Math.max(invalidUtf8At(bytes), 0);
    super(
      `Byte 0x${bytes[start]?.toString(16).padStart(2, "0")} at offset ${
        offset + start
      } is not valid UTF-8`,
      { cause },
    );
    this.bytes = bytes;
    this.start = start;
    this.offset = offset;
  }
}

// Pipes and queues deliver chunks; their readers want one array.
/** Joins chunks into one array, copying only when there is more than one. */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let length = 0;
  for (const chunk of chunks) length += chunk.byteLength;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * Decodes UTF-8, with U+FFFD for bytes that are not. With `partial`, a
 * trailing character cut off by the end of the data so far is left out
 * rather than turned into U+FFFD.
 */
export function decodeUtf8(bytes: Uint8Array, partial = false): string {
  return decoder.decode(
    partial ? bytes.subarray(0, completeLength(bytes)) : bytes,
  );
}

// Python's errors option: "strict" must say where the bad byte is.
/**
 * Decodes UTF-8 as `errors` says.
 *
 * @throws {InvalidUtf8Error} with `"strict"` when `bytes` are not all UTF-8.
 */
export function decodeText(
  bytes: Uint8Array,
  errors: DecodeErrors,
  offset = 0,
): string {
  if (errors === "replace") return decoder.decode(bytes);
  try {
    return strictDecoder.decode(bytes);
  } catch (error) {
    throw new InvalidUtf8Error(bytes, offset, error);
  }
}

// TextDecoder fails without saying where; strict errors must.
/**
 * The index of the first byte of `bytes` that does not start or continue a
 * valid UTF-8 sequence as the Encoding Standard reads it (no overlong forms,
 * surrogates or code points past U+10FFFF; a sequence cut off by the end is
 * invalid), or -1 when all is valid. Only run once decoding has failed.
 */
export function invalidUtf8At(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.byteLength) {
    const shape = sequenceShape(bytes[i]!);
    if (shape === undefined) return i;
    if (continues(bytes.subarray(i), shape) < shape.length) return i;
    i += shape.length;
  }
  return -1;
}

// Output read so far may end mid-character, which is no error yet.
/**
 * The length of the prefix of `bytes` that leaves out a valid character cut
 * off at the end. Bytes that could never become one stay in, to be replaced.
 */
function completeLength(bytes: Uint8Array): number {
  const end = bytes.byteLength;
  for (let back = 1; back <= Math.min(3, end); back++) {
    if ((bytes[end - back]! & 0xc0) === 0x80) continue; // a continuation byte
    const tail = bytes.subarray(end - back);
    const shape = sequenceShape(tail[0]!);
    if (shape === undefined || shape.length <= back) return end;
    return continues(tail, shape) === back ? end - back : end;
  }
  return end;
}

// invalidUtf8At must agree with TextDecoder's verdict byte for byte.
/**
 * The bytes a UTF-8 sequence starting with `lead` takes, and the range of
 * its second byte (the Encoding Standard's rule against overlong forms,
 * surrogates and code points past U+10FFFF); `undefined` for a byte that
 * cannot start one.
 */
function sequenceShape(
  lead: number,
): { length: number; low: number; high: number } | undefined {
  if (lead < 0x80) return { length: 1, low: 0, high: 0 };
  if (lead >= 0xc2 && lead <= 0xdf) return { length: 2, low: 0x80, high: 0xbf };
  if (lead === 0xe0) return { length: 3, low: 0xa0, high: 0xbf };
  if (lead === 0xed) return { length: 3, low: 0x80, high: 0x9f };
  if (lead >= 0xe1 && lead <= 0xef) return { length: 3, low: 0x80, high: 0xbf };
  if (lead === 0xf0) return { length: 4, low: 0x90, high: 0xbf };
  if (lead === 0xf4) return { length: 4, low: 0x80, high: 0x8f };
  if (lead >= 0xf1 && lead <= 0xf3) return { length: 4, low: 0x80, high: 0xbf };
  return undefined;
}

// Both the bad-byte search and the cut-off check need it.
/** How many bytes of the sequence of `shape` starting `bytes` are there and valid. */
function continues(
  bytes: Uint8Array,
  shape: { length: number; low: number; high: number },
): number {
  let count = 1;
  for (; count < shape.length && count < bytes.byteLength; count++) {
    const byte = bytes[count]!;
    const [low, high] = count === 1 ? [shape.low, shape.high] : [0x80, 0xbf];
    if (byte < low || byte > high) break;
  }
  return count;
}

const NEWLINE = 0x0a;

// Python's iteration over a pipe by lines, for a child's output.
/**
 * Reads `stream` as UTF-8 lines, without their `\n` or `\r\n`. A last line
 * without a newline is yielded too. Leaving the loop early cancels the stream.
 * With `"strict"` errors, the lines before one that is not UTF-8 are yielded,
 * then `invalid` makes the error to throw from its {@linkcode InvalidUtf8Error}
 * (whose `bytes` are that line).
 */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
  errors: DecodeErrors = "replace",
  invalid: (error: InvalidUtf8Error) => Error = (error) => error,
): AsyncGenerator<string, void, undefined> {
  const reader = stream.getReader();
  // The bytes of the line not ended yet, kept as they came and decoded once
  // its newline comes: adding each chunk to a string and splitting that
  // again would make a long line cost its length squared.
  let pieces: Uint8Array[] = [];
  // Where the bytes in `pieces` begin in the stream, and the next chunk.
  let piecesAt = 0;
  let chunkAt = 0;
  let finished = false;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      const last = value.lastIndexOf(NEWLINE);
      chunkAt += value.byteLength;
      if (last === -1) {
        if (value.byteLength > 0) pieces.push(value);
        continue;
      }
      // A newline byte is never part of a multi-byte character, so the bytes
      // up to it decode on their own, whatever came before.
      pieces.push(value.subarray(0, last));
      const block = concatBytes(pieces);
      const at = piecesAt;
      pieces = last + 1 < value.byteLength ? [value.subarray(last + 1)] : [];
      piecesAt = chunkAt - (value.byteLength - last - 1);
      const { lines, bad } = splitLines(block, errors, at);
      for (const line of lines) yield stripCr(line);
      if (bad) throw invalid(bad);
    }
    if (pieces.length > 0) {
      const { lines, bad } = splitLines(concatBytes(pieces), errors, piecesAt);
      for (const line of lines) yield stripCr(line);
      if (bad) throw invalid(bad);
    }
    finished = true;
  } finally {
    if (finished) reader.releaseLock();
    else await reader.cancel();
  }
}

/**
 * The lines in `block`, which begins at `offset` of its stream. When one is
 * not UTF-8 (with `"strict"`), the lines before it and its error: reading
 * line by line gives those first.
 */
function splitLines(
  block: Uint8Array,
  errors: DecodeErrors,
  offset: number,
): { lines: string[]; bad?: InvalidUtf8Error } {
  try {
    return { lines: decodeText(block, errors, offset).split("\n") };
  } catch (error) {
    if (!(error instanceof InvalidUtf8Error)) throw error;
    const lineStart = block.lastIndexOf(NEWLINE, error.start) + 1;
    let lineEnd = block.indexOf(NEWLINE, error.start);
    if (lineEnd === -1) lineEnd = block.byteLength;
    return {
      lines: lineStart === 0
        ? []
        : decoder.decode(block.subarray(0, lineStart - 1)).split("\n"),
      bad: new InvalidUtf8Error(
        block.subarray(lineStart, lineEnd),
        offset + lineStart,
        error.cause,
      ),
    };
  }
}

// A "\r\n" ending goes whole, as Python's text mode reads it.
function stripCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}
