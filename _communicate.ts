// Python's Popen.communicate: feed stdin while draining stdout and stderr, so
// that no pipe fills up and blocks the child.
import { isBrokenPipe } from "./_spawn.ts";
import { concatBytes } from "./_text.ts";

/** The pipes of one child, as {@linkcode Communication} uses them. */
export interface ChildPipes {
  stdin: WritableStream<Uint8Array> | null;
  stdout: ReadableStream<Uint8Array> | null;
  stderr: ReadableStream<Uint8Array> | null;
  exited: Promise<unknown>;
}

/**
 * One communication with a child, started once and then awaited by as many
 * `communicate()` calls as it takes: what a timed-out call leaves unread is
 * still collected for the next one.
 */
export class Communication {
  /** Settles once the input is written, both outputs are at EOF and the child has exited. */
  readonly done: Promise<void>;
  #stdout: Uint8Array[] | null;
  #stderr: Uint8Array[] | null;
  #readers: ReadableStreamDefaultReader<Uint8Array>[] = [];

  constructor(pipes: ChildPipes, input: Uint8Array | undefined) {
    this.#stdout = pipes.stdout ? [] : null;
    this.#stderr = pipes.stderr ? [] : null;
    for (const name of ["stdin", "stdout", "stderr"] as const) {
      if (pipes[name]?.locked) {
        throw new TypeError(
          `Cannot communicate: ${name} is locked by a reader or writer: release it first, or use ${name} yourself instead of calling communicate()`,
        );
      }
    }
    const stdoutReader = pipes.stdout && this.#reader(pipes.stdout);
    const stderrReader = pipes.stderr && this.#reader(pipes.stderr);
    this.done = Promise.all([
      pipes.stdin ? feed(pipes.stdin.getWriter(), input) : undefined,
      stdoutReader && drain(stdoutReader, this.#stdout!),
      stderrReader && drain(stderrReader, this.#stderr!),
      pipes.exited,
    ]).then(() => {});
    // A caller that timed out may never come back for the result.
    this.done.catch(() => {});
  }

  #reader(
    stream: ReadableStream<Uint8Array>,
  ): ReadableStreamDefaultReader<Uint8Array> {
    const reader = stream.getReader();
    this.#readers.push(reader);
    return reader;
  }

  /** Stdout and stderr as read so far (`null` where not piped). */
  output(): [Uint8Array | null, Uint8Array | null] {
    return [
      this.#stdout && concatBytes(this.#stdout),
      this.#stderr && concatBytes(this.#stderr),
    ];
  }

  /**
   * Stops reading: for pipes that a grandchild keeps open after the child
   * itself is gone.
   */
  async stopReading(): Promise<void> {
    await Promise.all(this.#readers.map((reader) => reader.cancel()));
  }
}

async function feed(
  writer: WritableStreamDefaultWriter<Uint8Array>,
  input: Uint8Array | undefined,
): Promise<void> {
  try {
    if (input !== undefined && input.byteLength > 0) await writer.write(input);
    await writer.close();
  } catch (error) {
    // A child may exit without reading its input, as Python also accepts.
    if (!isBrokenPipe(error)) throw error;
  } finally {
    writer.releaseLock();
  }
}

async function drain(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  chunks: Uint8Array[],
): Promise<void> {
  while (true) {
    const { done, value } = await reader.read();
    if (done) return;
    chunks.push(value);
  }
}
