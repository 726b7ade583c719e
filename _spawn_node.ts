// Node and Bun adapter: children through node:child_process.
import { spawn } from "node:child_process";
import process from "node:process";
import type { Readable, Writable } from "node:stream";
import { type OutputPipe, readInto } from "./_pipe.ts";
import type {
  AdapterRequest,
  ExitStatus,
  SpawnedChild,
} from "./_spawn_types.ts";

/** Chunks kept in the web stream before the pipe is paused. */
const READ_AHEAD_CHUNKS = 16;

// Users get web streams in every runtime; pausing the socket bounds memory.
function readableFromNode(stream: Readable): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller): void {
      stream.on("data", (chunk: Uint8Array) => {
        controller.enqueue(chunk);
        if ((controller.desiredSize ?? 0) <= 0) stream.pause();
      });
      stream.once("end", () => controller.close());
      stream.once("error", (error) => controller.error(error));
    },
    pull(): void {
      stream.resume();
    },
    cancel(): void {
      stream.destroy();
    },
  }, { highWaterMark: READ_AHEAD_CHUNKS });
}

/**
 * The pipe as a web stream only once somebody asks for one: bulk reads take
 * the chunks straight from the socket, at the speed of raw child_process.
 */
function nodeOutputPipe(socket: Readable): OutputPipe {
  let web: ReadableStream<Uint8Array> | undefined;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return {
    get stream(): ReadableStream<Uint8Array> {
      return web ??= readableFromNode(socket);
    },
    get locked(): boolean {
      return web?.locked ?? false;
    },
    readAll(chunks: Uint8Array[]): Promise<void> {
      if (web) {
        const reading = readInto(web, chunks);
        reader = reading.reader;
        return reading.done;
      }
      return new Promise((resolve, reject) => {
        socket.on("data", (chunk: Uint8Array) => chunks.push(chunk));
        socket.once("close", () => resolve());
        socket.once("error", reject);
      });
    },
    async cancel(): Promise<void> {
      if (reader) await reader.cancel();
      else if (web && !web.locked) await web.cancel();
      else if (!web) socket.destroy();
    },
  };
}

// isBrokenPipe looks for EPIPE, whatever Node's own error was.
function brokenPipe(cause: unknown): Error {
  return Object.assign(new Error("The child closed its standard input"), {
    code: "EPIPE",
    cause,
  });
}

// Users get a web stream for stdin in every runtime.
function writableFromNode(stream: Writable): WritableStream<Uint8Array> {
  // Without a listener an EPIPE from a child that stopped reading would crash
  // the process; the failure reaches the writer through the write callback.
  stream.on("error", () => {});
  return new WritableStream<Uint8Array>({
    write(chunk): Promise<void> {
      return new Promise((resolve, reject) => {
        stream.write(
          chunk,
          (error) => error ? reject(brokenPipe(error)) : resolve(),
        );
      });
    },
    close(): Promise<void> {
      return new Promise((resolve, reject) => {
        if (stream.destroyed) return reject(brokenPipe(undefined));
        stream.end(() => resolve());
        stream.once("error", (error) => reject(brokenPipe(error)));
      });
    },
    abort(): void {
      stream.destroy();
    },
  });
}

// Killing a child that has just exited must not throw at the caller.
function quietKill(kill: () => void): void {
  try {
    kill();
  } catch (error) {
    if ((error as { code?: string }).code !== "ESRCH") throw error;
  }
}

// Node's env replaces the whole environment; ours adds to it unless clearEnv.
function environment(request: AdapterRequest): NodeJS.ProcessEnv | undefined {
  if (request.clearEnv) return { ...request.env };
  // Copying process.env costs more than the spawn itself gains from it.
  return request.env ? { ...process.env, ...request.env } : undefined;
}

// _spawn.ts picks this adapter in Node and Bun.
/** Starts a child with `node:child_process`. */
export function spawnNode(request: AdapterRequest): SpawnedChild {
  const child = spawn(request.command, request.args, {
    cwd: request.cwd,
    env: environment(request),
    stdio: [
      request.stdin === "null" ? "ignore" : request.stdin,
      request.stdout === "null" ? "ignore" : request.stdout,
      request.stderr === "null" ? "ignore" : request.stderr,
    ],
    detached: request.group,
  });
  const pid = child.pid;
  if (pid === undefined) {
    // The reason arrives as an "error" event on the next tick; the caller
    // diagnoses it now so that starting fails synchronously, as in Deno.
    child.once("error", () => {});
    throw Object.assign(new Error(`spawn ${request.command} failed`), {
      code: "UNKNOWN",
    });
  }
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  return {
    pid,
    stdin: child.stdin ? writableFromNode(child.stdin) : null,
    stdout: child.stdout ? nodeOutputPipe(child.stdout) : null,
    stderr: child.stderr ? nodeOutputPipe(child.stderr) : null,
    exited,
    kill(signal: string, group: boolean): void {
      quietKill(() =>
        group
          ? process.kill(-pid, signal)
          : child.kill(signal as NodeJS.Signals)
      );
    },
  };
}
