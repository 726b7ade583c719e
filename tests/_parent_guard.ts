// Test helper: processes a test starts (redis-server, worker hosts) die
// with the test process, even when it is SIGKILLed. On Linux the kernel
// ends them (the parent-death signal, set by util-linux's `setpriv`, as
// _watchdog.ts does for worker processes); elsewhere a small shell watcher
// in its own process group kills the child once the test process is gone.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import process from "node:process";

let deathSignal: boolean | undefined;

// Whether `setpriv --pdeathsig` works here (Linux, util-linux 2.33+); probed once.
/** Whether {@linkcode guarded} can be used here. */
export function canSetDeathSignal(): boolean {
  if (deathSignal !== undefined) return deathSignal;
  deathSignal = false;
  if (process.platform !== "linux") return false;
  try {
    const probe = spawnSync("setpriv", ["--pdeathsig", "KILL", "--", "true"], {
      stdio: "ignore",
    });
    deathSignal = probe.status === 0;
  } catch {
    // Not there, or not allowed.
  }
  return deathSignal;
}

// The shell in between catches a death before the signal was set (the
// child was reparented); it execs, so the child keeps its pid.
/** `argv` run so that the kernel kills it when this process dies. */
export function guarded(argv: string[]): string[] {
  return [
    "setpriv",
    "--pdeathsig",
    "KILL",
    "--",
    "/bin/sh",
    "-c",
    'if [ "$PPID" != "$1" ]; then exit 1; fi; shift; exec "$@"',
    "multiproc-guard",
    String(process.pid),
    ...argv,
  ];
}

// Without setpriv, a shell in its own process group polls this process.
/**
 * Kills process `pid` once this process is gone; stop the watcher with
 * {@linkcode stopWatcher} when the child ends first.
 */
export function watch(pid: number): ChildProcess {
  const watcher = spawn("/bin/sh", [
    "-c",
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill -9 "$2" 2>/dev/null',
    "multiproc-watch",
    String(process.pid),
    String(pid),
  ], {
    stdio: "ignore",
    detached: true,
    env: { PATH: "/usr/bin:/bin" },
  });
  watcher.on("error", ignore);
  watcher.unref();
  return watcher;
}

// The watcher's whole process group: the shell and its sleep.
/** Ends a watcher from {@linkcode watch}. */
export function stopWatcher(watcher: ChildProcess | undefined): void {
  if (watcher?.pid === undefined) return;
  try {
    process.kill(-watcher.pid, "SIGKILL");
  } catch {
    // Gone already.
  }
}

// A watcher that cannot start leaves the other guards.
function ignore(_error: unknown): void {}
