// Finding executables the way execvp does, and explaining why a spawn failed.
import { type Stats, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";

/** Why a command could not be started, in the OS's terms and in words. */
export interface SpawnProblem {
  /** The errno name: `ENOENT`, `EACCES`, `ENOTDIR`, … */
  code: string;
  /** What went wrong and how to fix it, for the error message. */
  reason: string;
}

/** Where the command's executable lives, or its problem when it is unusable. */
export type Resolution = { path: string } | { problem: SpawnProblem };

/**
 * Whether `error` is a runtime's refusal rather than the OS's: Deno's
 * `NotCapable` (its `PermissionDenied` is the OS's EACCES), Node's
 * permission model. Its message names the flag to add, so it must reach the
 * user as it is.
 */
export function isPermissionError(error: unknown): boolean {
  const { name, code } = (error ?? {}) as { name?: unknown; code?: unknown };
  return name === "NotCapable" || code === "ERR_ACCESS_DENIED";
}

// execvp's checks, made by us so that a failure names the file and the fix.
function isExecutableFile(path: string): SpawnProblem | undefined {
  let stat: Stats;
  try {
    stat = statSync(path);
  } catch (error) {
    if (isPermissionError(error)) throw error;
    return { code: "ENOENT", reason: `"${path}" does not exist` };
  }
  if (!stat.isFile()) {
    return {
      code: "EACCES",
      reason: `"${path}" is a directory, not an executable file`,
    };
  }
  // The mode bits, not access(X_OK), which Deno lets only --allow-sys ask:
  // exec itself has the last word on whose bit counts.
  if ((stat.mode & 0o111) === 0) {
    return {
      code: "EACCES",
      reason: `"${path}" is not executable: check its permissions (chmod +x)`,
    };
  }
  return undefined;
}

// A missing cwd fails a spawn with an error that blames the command.
function checkCwd(cwd: string | undefined): SpawnProblem | undefined {
  if (cwd === undefined) return undefined;
  try {
    if (statSync(cwd).isDirectory()) return undefined;
    return {
      code: "ENOTDIR",
      reason: `the working directory "${cwd}" is not a directory`,
    };
  } catch (error) {
    if (isPermissionError(error)) throw error;
    return {
      code: "ENOENT",
      reason:
        `the working directory "${cwd}" does not exist: pass an existing directory as cwd`,
    };
  }
}

// The sh of stderr: STDOUT needs a path; failed spawns need a diagnosis.
/**
 * Resolves `command` as execvp would: a name with a slash is taken relative
 * to `cwd`, a bare name is searched in `pathEnv`.
 */
export function resolveCommand(
  command: string,
  cwd: string | undefined,
  pathEnv: string | undefined,
): Resolution {
  const cwdProblem = checkCwd(cwd);
  if (cwdProblem) return { problem: cwdProblem };
  if (command.includes("/")) {
    const path = isAbsolute(command) ? command : resolve(cwd ?? ".", command);
    const problem = isExecutableFile(path);
    return problem ? { problem } : { path };
  }
  let denied: SpawnProblem | undefined;
  for (const dir of (pathEnv ?? "").split(delimiter)) {
    if (dir === "") continue;
    const path = join(dir, command);
    const problem = isExecutableFile(path);
    if (!problem) return { path };
    if (problem.code === "EACCES") denied ??= problem;
  }
  return {
    problem: denied ?? {
      code: "ENOENT",
      reason:
        `"${command}" was not found in PATH: check the spelling, install it, or pass the full path of the executable`,
    },
  };
}

/**
 * Explains the errno of a failed spawn that the file system cannot explain:
 * running out of file descriptors, which the pipes to the child need.
 */
export function describeErrno(code: string): SpawnProblem | undefined {
  switch (code) {
    case "EMFILE":
      return {
        code,
        reason:
          "too many open files in this process (EMFILE): close the files, pipes and children you no longer need, or raise the limit (ulimit -n)",
      };
    case "ENFILE":
      return {
        code,
        reason:
          "too many open files in the system (ENFILE): close the files and processes you no longer need, or raise the system's limit (fs.file-max)",
      };
  }
  return undefined;
}

// The runtimes' spawn errors rarely say what to fix.
/** Explains a failed spawn of `command`; falls back to `fallback` when the file system shows nothing wrong. */
export function diagnoseSpawn(
  command: string,
  cwd: string | undefined,
  pathEnv: string | undefined,
  fallback: SpawnProblem,
): SpawnProblem {
  try {
    const resolution = resolveCommand(command, cwd, pathEnv);
    return "problem" in resolution ? resolution.problem : fallback;
  } catch {
    // Without read permission the file system cannot be asked.
    return fallback;
  }
}
