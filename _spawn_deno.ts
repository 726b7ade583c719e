// Deno adapter: children through Deno.Command.
import { type OutputPipe, webOutputPipe } from "./_pipe.ts";
import type {
  AdapterRequest,
  ExitStatus,
  SpawnedChild,
} from "./_spawn_types.ts";

// Deno spells "pipe" as "piped"; the other modes match.
function stdio(mode: AdapterRequest["stdin"]): "piped" | "null" | "inherit" {
  return mode === "pipe" ? "piped" : mode;
}

// Killing a child that has just exited must not throw at the caller.
function quietKill(kill: () => void): void {
  try {
    kill();
  } catch (error) {
    // The child may exit between our last look and the kill: that is no error.
    const message = error instanceof Error ? error.message : "";
    const gone = (error as { code?: string }).code === "ESRCH" ||
      message.includes("already terminated");
    if (!gone) throw error;
  }
}

/** Deno reads a whole resource-backed body in one native call. */
async function collect(
  stream: ReadableStream<Uint8Array>,
): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// Every Deno pipe gets the native bulk read.
function outputPipe(stream: ReadableStream<Uint8Array>): OutputPipe {
  return webOutputPipe(stream, collect);
}

// _spawn.ts picks this adapter when running in Deno.
/** Starts a child with `Deno.Command`. */
export function spawnDeno(request: AdapterRequest): SpawnedChild {
  const child = new Deno.Command(request.command, {
    args: [...request.args],
    cwd: request.cwd,
    env: request.env,
    clearEnv: request.clearEnv,
    stdin: stdio(request.stdin),
    stdout: stdio(request.stdout),
    stderr: stdio(request.stderr),
    detached: request.group,
  }).spawn();
  const exited: Promise<ExitStatus> = child.status.then((status) => ({
    code: status.signal === null ? status.code : null,
    signal: status.signal,
  }));
  return {
    pid: child.pid,
    stdin: request.stdin === "pipe" ? child.stdin : null,
    stdout: request.stdout === "pipe" ? outputPipe(child.stdout) : null,
    stderr: request.stderr === "pipe" ? outputPipe(child.stderr) : null,
    exited,
    kill(signal: string, group: boolean): void {
      quietKill(() =>
        group
          ? Deno.kill(-child.pid, signal as Deno.Signal)
          : child.kill(signal as Deno.Signal)
      );
    },
  };
}
