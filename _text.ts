// Bytes to text and lines, correct wherever the chunks happen to split.

const decoder = new TextDecoder();

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
 * Decodes UTF-8. With `partial`, a trailing character cut off by the end of
 * the data so far is left out rather than turned into U+FFFD.
 */
export function decodeUtf8(bytes: Uint8Array, partial = false): string {
  return decoder.decode(
    partial ? bytes.subarray(0, completeLength(bytes)) : bytes,
  );
}

/** The length of the prefix of `bytes` that ends on a character boundary. */
function completeLength(bytes: Uint8Array): number {
  const end = bytes.byteLength;
  for (let back = 1; back <= Math.min(4, end); back++) {
    const byte = bytes[end - back]!;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte
    const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return need > back ? end - back : end;
  }
  return end;
}

const NEWLINE = 0x0a;

/**
 * Reads `stream` as UTF-8 lines, without their `\n` or `\r\n`. A last line
 * without a newline is yielded too. Leaving the loop early cancels the stream.
 */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string, void, undefined> {
  const reader = stream.getReader();
  // The bytes of the line not ended yet, kept as they came and decoded once
  // its newline comes: adding each chunk to a string and splitting that
  // again would make a long line cost its length squared.
  let pieces: Uint8Array[] = [];
  let finished = false;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      const last = value.lastIndexOf(NEWLINE);
      if (last === -1) {
        if (value.byteLength > 0) pieces.push(value);
        continue;
      }
      // A newline byte is never part of a multi-byte character, so the bytes
      // up to it decode on their own, whatever came before.
      pieces.push(value.subarray(0, last));
      const text = decoder.decode(concatBytes(pieces));
      pieces = last + 1 < value.byteLength ? [value.subarray(last + 1)] : [];
      for (const line of text.split("\n")) yield stripCr(line);
    }
    if (pieces.length > 0) yield stripCr(decoder.decode(concatBytes(pieces)));
    finished = true;
  } finally {
    if (finished) reader.releaseLock();
    else await reader.cancel();
  }
}

function stripCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}
