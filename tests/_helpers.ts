// Helpers shared by the test files: looking at /proc and running fixtures
// under whichever runtime runs the tests.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import process from "node:process";
import { type CompletedProcess, run } from "../mod.ts";

/** Pids of live (non-zombie) processes whose command line contains `needle`. */
export function processesMatching(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8")
        .replaceAll("\0", " ");
      if (cmdline.includes(needle) && !isZombie(Number(entry))) {
        pids.push(Number(entry));
      }
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

/** Whether process `pid` still exists at all, zombie included. */
export function processExists(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/** Kills every process whose command line contains `needle`; for clean-up after a test. */
export function killMatching(needle: string): void {
  for (const pid of processesMatching(needle)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

const typescript = import.meta.url.endsWith(".ts");

/**
 * The file at `path` (relative to `tests/`, without extension) as the
 * running runtime loads it: the `.ts` source in Deno, the compiled `.js`
 * in the npm build.
 */
function sourceUrl(path: string): URL {
  return new URL(`${path}${typescript ? ".ts" : ".js"}`, import.meta.url);
}

/** The argv that runs the script at `path` with the runtime running the tests. */
export function scriptCommand(path: string, ...args: string[]): string[] {
  const file = sourceUrl(path).pathname;
  return typescript
    ? [process.execPath, "run", "-A", file, ...args]
    : [process.execPath, file, ...args];
}

/** Runs the script at `path` to its end (a minute at most), capturing its output as text. */
export function runScript(
  path: string,
  ...args: string[]
): Promise<CompletedProcess<string>> {
  return run(scriptCommand(path, ...args), {
    capture: true,
    text: true,
    timeout: 120_000,
  });
}

/** Everything an async iterable yields. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

/** A unique marker to find this test's processes in /proc. */
export function marker(): string {
  return `61.${Math.floor(Math.random() * 1e6)}`;
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The URL of fixture module `name` (without extension) for the running runtime. */
export function fixtureUrl(name: string): URL {
  return sourceUrl(`./fixtures/${name}`);
}

/** Pids of the live child processes of `parent` (this process by default). */
export function childPids(parent: number = process.pid): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === parent && fields[0] !== "Z") {
        pids.push(Number(entry));
      }
    } catch {
      // Gone while we looked.
    }
  }
  return pids;
}

/** Polls `condition` every 20 ms until it holds or `ms` pass; returns whether it held. */
export async function eventually(
  condition: () => boolean,
  ms = 10_000,
): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await delay(20);
  }
  return condition();
}
