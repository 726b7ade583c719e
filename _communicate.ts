// Python's Popen.communicate: feed stdin while draining stdout and stderr, so
// that no pipe fills up and blocks the child.
import type { OutputPipe } from "./_pipe.ts";
import { isBrokenPipe } from "./_spawn.ts";
import { concatBytes } from "./_text.ts";

/** The pipes of one child, as {@linkcode Communication} uses them. */
export interface ChildPipes {
  stdin: WritableStream<Uint8Array> | null;
  stdout: OutputPipe | null;
  stderr: OutputPipe | null;
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
  #pipes: OutputPipe[];

  /**
   * Starts the communication. `live` keeps partial output visible (for
   * callers with a timeout or a signal); without it the runtime may read
   * each pipe in one native call.
   */
  constructor(
    pipes: ChildPipes,
    input: Uint8Array | undefined,
    live: boolean,
  ) {
    for (const name of ["stdin", "stdout", "stderr"] as const) {
      if (pipes[name]?.locked) {
        throw new TypeError(
          `Cannot communicate: ${name} is locked by a reader or writer: release it first, or use ${name} yourself instead of calling communicate()`,
        );
      }
    }
    this.#stdout = pipes.stdout ? [] : null;
    this.#stderr = pipes.stderr ? [] : null;
    this.#pipes = [pipes.stdout, pipes.stderr].filter((pipe) => pipe !== null);
    this.done = Promise.all([
      pipes.stdin ? feed(pipes.stdin.getWriter(), input) : undefined,
      pipes.stdout?.readAll(this.#stdout!, live),
      pipes.stderr?.readAll(this.#stderr!, live),
      pipes.exited,
    ]).then(() => {});
    // A caller that timed out may never come back for the result.
    this.done.catch(() => {});
  }

  // A call that timed out reports the partial output too.
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
    await Promise.all(this.#pipes.map((pipe) => pipe.cancel()));
  }
}

// stdin is closed once written, or a child reading to EOF never ends.
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
