// Node and Bun adapter: children through node:child_process.
import { spawn } from "node:child_process";
import process from "node:process";
import type { Readable, Writable } from "node:stream";
import type { AdapterRequest, ExitStatus, SpawnedChild } from "./_spawn.ts";

/** Chunks kept in the web stream before the pipe is paused. */
const READ_AHEAD_CHUNKS = 16;

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

function brokenPipe(cause: unknown): Error {
  return Object.assign(new Error("The child closed its standard input"), {
    code: "EPIPE",
    cause,
  });
}

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

function quietKill(kill: () => void): void {
  try {
    kill();
  } catch (error) {
    if ((error as { code?: string }).code !== "ESRCH") throw error;
  }
}

/** Starts a child with `node:child_process`. */
export function spawnNode(request: AdapterRequest): SpawnedChild {
  const child = spawn(request.command, request.args, {
    cwd: request.cwd,
    env: request.clearEnv
      ? { ...request.env }
      : { ...process.env, ...request.env },
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
    stdout: child.stdout ? readableFromNode(child.stdout) : null,
    stderr: child.stderr ? readableFromNode(child.stderr) : null,
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
