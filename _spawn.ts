// The runtime-neutral face of starting a child process; the adapters do the rest.
import { closeSync, openSync } from "node:fs";
import { constants } from "node:os";
import process from "node:process";
import {
  describeErrno,
  diagnoseSpawn,
  isPermissionError,
  resolveCommand,
} from "./_command_path.ts";
import { withPermissionHint } from "./_permissions.ts";
import { spawnDeno } from "./_spawn_deno.ts";
import { spawnNode } from "./_spawn_node.ts";
import type { SpawnProblem } from "./_command_path.ts";
import type {
  AdapterRequest,
  ExitStatus,
  SpawnedChild,
  SpawnRequest,
} from "./_spawn_types.ts";

export type {
  AdapterRequest,
  ExitStatus,
  SpawnedChild,
  SpawnRequest,
  StdioMode,
} from "./_spawn_types.ts";

/** Thrown by {@linkcode spawnChild} when the child could not be started. */
export class SpawnFailure extends Error {
  /** What went wrong, in words. */
  readonly problem: SpawnProblem;
  // The runtime's own error stays as the cause, for whoever debugs it.
  constructor(problem: SpawnProblem, cause: unknown) {
    super(problem.reason, { cause });
    this.problem = problem;
  }
}

const spawnImpl: (request: AdapterRequest) => SpawnedChild =
  "Deno" in globalThis ? spawnDeno : spawnNode;

// A bare command is searched in the PATH the child gets, not ours.
function effectivePath(request: SpawnRequest): string | undefined {
  if (request.env && "PATH" in request.env) return request.env.PATH;
  if (request.clearEnv) return undefined;
  try {
    return process.env.PATH;
  } catch {
    // Deno without --allow-env: the spawn error itself must speak.
    return undefined;
  }
}

// A thrown value may have no code, or one that is not a string.
function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "UNKNOWN";
}

/**
 * Whether the file descriptors that starting `request` takes have run out:
 * `"EMFILE"` or `"ENFILE"` when they have. Node reports why a spawn failed
 * only on the next tick, too late for a constructor that throws, but this
 * reason can be checked at once.
 */
function descriptorShortage(
  request: AdapterRequest,
): "EMFILE" | "ENFILE" | undefined {
  const pipes = [request.stdin, request.stdout, request.stderr]
    .filter((mode) => mode === "pipe").length;
  const opened: number[] = [];
  try {
    // Two for each pipe, and two for the pipe that tells whether exec worked.
    for (let i = 0; i < 2 * pipes + 2; i++) {
      opened.push(openSync("/dev/null", "r"));
    }
    return undefined;
  } catch (error) {
    const code = errorCode(error);
    return code === "EMFILE" || code === "ENFILE" ? code : undefined;
  } finally {
    for (const fd of opened) closeSync(fd);
  }
}

/**
 * `stderr: STDOUT` needs both streams on one pipe, which neither runtime's
 * spawn API offers: a `sh` that execs the resolved command after `2>&1` gives
 * exactly Python's dup2, at the cost of one exec.
 */
function mergeStderrIntoStdout(request: SpawnRequest): AdapterRequest {
  const resolution = resolveCommand(
    request.command,
    request.cwd,
    effectivePath(request),
  );
  if ("problem" in resolution) {
    throw new SpawnFailure(resolution.problem, undefined);
  }
  return {
    ...request,
    command: "/bin/sh",
    args: ["-c", 'exec "$0" "$@" 2>&1', resolution.path, ...request.args],
    stderr: "inherit",
  };
}

// Every runtime's spawn error leaves here as a SpawnFailure that says why.
/**
 * Starts a child process with the running runtime's own API.
 *
 * @throws {SpawnFailure} when the command cannot be started.
 */
export function spawnChild(request: SpawnRequest): SpawnedChild {
  let concrete = request as AdapterRequest;
  try {
    if (request.stderr === "stdout") concrete = mergeStderrIntoStdout(request);
    return spawnImpl(concrete);
  } catch (error) {
    if (error instanceof SpawnFailure) throw error;
    if (isPermissionError(error)) {
      const refusal = withPermissionHint(error) as Error;
      throw new SpawnFailure({ code: "EPERM", reason: refusal.message }, error);
    }
    let code = errorCode(error);
    if (code === "UNKNOWN") code = descriptorShortage(concrete) ?? code;
    const problem = describeErrno(code) ?? diagnoseSpawn(
      concrete.command,
      concrete.cwd,
      effectivePath(concrete),
      {
        code,
        reason: error instanceof Error ? error.message : String(error),
      },
    );
    // Node reports the OS error only on the next tick: stand in for it.
    const cause = errorCode(error) === "UNKNOWN"
      ? Object.assign(
        new Error(`spawn ${concrete.command} ${problem.code}`),
        { code: problem.code, syscall: `spawn ${concrete.command}` },
      )
      : error;
    throw new SpawnFailure(problem, cause);
  }
}

// Runtimes report signals by name; Python's returncode is -N.
/** The number of a signal name on this platform, e.g. 9 for `SIGKILL`. */
export function signalNumber(name: string): number {
  return (constants.signals as Record<string, number>)[name] ?? 0;
}

// Error messages name the signal that a negative returncode stands for.
/** The name of signal `number`, e.g. `SIGKILL` for 9, or the number itself when unknown. */
export function signalName(number: number): string {
  const names = constants.signals as Record<string, number>;
  return Object.keys(names).find((name) => names[name] === number) ??
    String(number);
}

/** Python's returncode: the exit code, or `-N` for a child killed by signal N. */
export function returncodeOf(status: ExitStatus): number {
  if (status.signal !== null) return -signalNumber(status.signal);
  return status.code ?? 0;
}

// A child may exit without reading its input; each runtime says so its own way.
/** Whether a write failed because the child closed its end of the pipe. */
export function isBrokenPipe(error: unknown): boolean {
  const code = errorCode(error);
  return code === "EPIPE" || code === "ERR_STREAM_DESTROYED" ||
    (error instanceof Error && error.name === "BrokenPipe");
}
