// A child's output pipe, readable as a web stream or drained in bulk by the
// fastest means the runtime has.

/** One of a child's output pipes. */
export interface OutputPipe {
  /** The pipe as a web stream; in adapters that wrap a native stream, made on first use. */
  readonly stream: ReadableStream<Uint8Array>;
  /** Whether a reader holds the web stream, so that nobody else can read the pipe. */
  readonly locked: boolean;
  /**
   * Reads the pipe to its end into `chunks`. With `live`, each chunk is
   * pushed as it arrives, so that partial output can be looked at; without,
   * the runtime may read everything natively and push it once at the end.
   */
  readAll(chunks: Uint8Array[], live: boolean): Promise<void>;
  /** Stops reading and closes the pipe; quiet when there is nothing to stop. */
  cancel(): Promise<void>;
}

// Both adapters read a web stream this way (Node's once one was made).
/** Reads `stream` to its end chunk by chunk; returns the reader so it can be cancelled. */
export function readInto(
  stream: ReadableStream<Uint8Array>,
  chunks: Uint8Array[],
): { reader: ReadableStreamDefaultReader<Uint8Array>; done: Promise<void> } {
  const reader = stream.getReader();
  async function loop(): Promise<void> {
    while (true) {
      const { done, value } = await reader.read();
      if (done) return;
      chunks.push(value);
    }
  }
  return { reader, done: loop() };
}

// For adapters whose pipes are web streams already (Deno's).
/**
 * An {@linkcode OutputPipe} over a native web stream. `collect`, when given,
 * reads a whole stream natively (without a JavaScript step per chunk) and is
 * used for reads that need no partial output.
 */
export function webOutputPipe(
  stream: ReadableStream<Uint8Array>,
  collect?: (stream: ReadableStream<Uint8Array>) => Promise<Uint8Array>,
): OutputPipe {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return {
    stream,
    get locked(): boolean {
      return stream.locked;
    },
    async readAll(chunks: Uint8Array[], live: boolean): Promise<void> {
      if (!live && collect) {
        const all = await collect(stream);
        if (all.byteLength > 0) chunks.push(all);
        return;
      }
      const reading = readInto(stream, chunks);
      reader = reading.reader;
      await reading.done;
    },
    async cancel(): Promise<void> {
      // A native bulk read cannot be cancelled; it ends with the pipe.
      if (reader) await reader.cancel();
      else if (!stream.locked) await stream.cancel();
    },
  };
}
