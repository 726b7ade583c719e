// Runtime adapter for orphans: a worker process must end when the program
// that started it dies, even by SIGKILL, even while it runs synchronous code
// or is still loading. The IPC channel's "disconnect" cannot tell it: that
// needs the child's event loop. On Linux the kernel ends the child (the
// parent-death signal, PR_SET_PDEATHSIG, set by util-linux's `setpriv`
// before it runs the runtime); elsewhere a small worker thread in the child
// polls the parent's pid and kills its own process. The bootstrap gets the
// parent's pid as its first argument and, second, which of the two guards it.
import { spawnSync } from "node:child_process";
import process from "node:process";
import { Worker } from "node:worker_threads";

const isDeno = "Deno" in globalThis;

/** How often the watchdog thread looks at its parent's pid, in ms. */
const POLL_MS = 250;

/**
 * The watchdog thread, as a `data:` module: it needs no file (nor read
 * access in Deno) and no event loop but its own.
 */
const watchdogSource = `import process from "node:process";
import { workerData } from "node:worker_threads";
setInterval(() => {
  if (process.ppid !== workerData) process.kill(process.pid, "SIGKILL");
}, ${POLL_MS});
`;

let deathSignal: boolean | undefined;

/**
 * Whether children can be started under `setpriv --pdeathsig` here: Linux,
 * util-linux 2.33 or later, and (in Deno) run access to it already granted,
 * so that asking never prompts. Probed once.
 */
function canSetDeathSignal(): boolean {
  if (deathSignal !== undefined) return deathSignal;
  deathSignal = false;
  if (process.platform !== "linux") return false;
  if (
    isDeno &&
    Deno.permissions.querySync({ name: "run", command: "setpriv" }).state !==
      "granted"
  ) return false;
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

/**
 * The command that starts a worker process: `command` with `args`, run
 * under `setpriv --pdeathsig KILL` where it can be, followed by this
 * process's pid and the guard the child gets (`kernel` or `thread`).
 */
export function guardedCommand(
  { command, args }: { command: string; args: string[] },
): { command: string; args: string[] } {
  const parent = String(process.pid);
  if (!canSetDeathSignal()) {
    return { command, args: [...args, parent, "thread"] };
  }
  return {
    command: "setpriv",
    args: ["--pdeathsig", "KILL", "--", command, ...args, parent, "kernel"],
  };
}

/** Ends this process at once, as the parent-death signal would. */
function die(): void {
  process.kill(process.pid, "SIGKILL");
}

/** A watchdog that fails to start leaves the IPC channel's "disconnect". */
function ignore(_error: unknown): void {}

/**
 * Called first in a worker process: ends it when its parent is gone, at
 * once if the parent died while it started.
 */
export function watchParent(): void {
  const [pid, guard] = process.argv.slice(2);
  const parent = Number(pid);
  // Started by hand or by something else: nothing to watch.
  if (!(parent > 0)) return;
  // The parent died before the parent-death signal was set.
  if (process.ppid !== parent) return die();
  if (guard !== "thread") return;
  try {
    const watchdog = new Worker(
      new URL(`data:text/javascript,${encodeURIComponent(watchdogSource)}`),
      { workerData: parent },
    );
    watchdog.on("error", ignore);
    // The thread must not keep this process alive.
    watchdog.unref();
  } catch {
    // Node's permission model without --allow-worker: only the IPC
    // channel's "disconnect" is left.
  }
}
