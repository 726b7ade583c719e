// Helpers shared by the test files: looking at /proc and running fixtures
// under whichever runtime runs the tests.
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import process from "node:process";
import { type CompletedProcess, run } from "../mod.ts";

/** One process as /proc shows it. */
interface ProcessEntry {
  pid: number;
  ppid: number;
  /** The process group id. */
  pgrp: number;
  /** The state letter: `Z` for a zombie. */
  state: string;
  /** The arguments, joined by spaces. */
  cmdline: string;
}

/**
 * Every process on the machine but the shell that looks. Deno lets only
 * --allow-all read /proc, so a shell reads it (--allow-run is enough), in
 * one go (processes that end meanwhile are left out): its pid, each
 * process's stat line, then each command line argument as
 * `pid/cmdline:arg`, NUL-separated.
 */
function processTable(): ProcessEntry[] {
  const output = execFileSync("/bin/sh", [
    "-c",
    "echo $$; cd /proc && cat [0-9]*/stat 2>/dev/null; printf '\\0'; grep -a -s -z -H '' [0-9]*/cmdline; exit 0",
  ], { encoding: "utf8", maxBuffer: 1 << 26 });
  const shell = Number(output.slice(0, output.indexOf("\n")));
  const split = output.indexOf("\0");
  const entries = new Map<number, ProcessEntry>();
  for (const line of output.slice(0, split).split("\n").slice(1)) {
    if (line === "" || line.startsWith(`${shell} `)) continue;
    const fields = line.slice(line.lastIndexOf(")") + 2).split(" ");
    const pid = Number(line.slice(0, line.indexOf(" ")));
    entries.set(pid, {
      pid,
      ppid: Number(fields[1]),
      pgrp: Number(fields[2]),
      state: fields[0]!,
      cmdline: "",
    });
  }
  for (const record of output.slice(split + 1).split("\0")) {
    const slash = record.indexOf("/");
    const entry = entries.get(Number(record.slice(0, slash)));
    if (entry === undefined) continue;
    const arg = record.slice(record.indexOf(":") + 1);
    entry.cmdline = entry.cmdline === "" ? arg : `${entry.cmdline} ${arg}`;
  }
  return [...entries.values()];
}

/** Pids of live (non-zombie) processes whose command line contains `needle`. */
export function processesMatching(needle: string): number[] {
  return processTable()
    .filter((entry) => entry.state !== "Z" && entry.cmdline.includes(needle))
    .map((entry) => entry.pid);
}

/** Pids of the live (non-zombie) processes of process group `pgid`. */
export function groupPids(pgid: number): number[] {
  return processTable()
    .filter((entry) => entry.pgrp === pgid && entry.state !== "Z")
    .map((entry) => entry.pid);
}

/** Whether process `pid` still exists at all, zombie included. */
export function processExists(pid: number): boolean {
  return processTable().some((entry) => entry.pid === pid);
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

/**
 * The permissions the Deno tests run with (`scripts/test.ts`), which the
 * scripts they start get too: never the network, FFI or system information.
 */
export const denoTestFlags: readonly string[] = [
  "--allow-read",
  `--allow-write=${tmpdir()}`,
  "--allow-run",
  "--allow-env",
];

/** The argv that runs the script at `path` with the runtime running the tests. */
export function scriptCommand(path: string, ...args: string[]): string[] {
  const file = sourceUrl(path).pathname;
  return typescript
    ? [process.execPath, "run", "--no-prompt", ...denoTestFlags, file, ...args]
    : [process.execPath, file, ...args];
}

/**
 * The argv that runs the script at `path` (relative to `tests/`, without
 * extension) with the runtime running the tests, the loopback network
 * allowed in Deno: the Redis tests' hosts and clients.
 */
export function networkScriptCommand(
  path: string,
  ...args: string[]
): string[] {
  const file = sourceUrl(path).pathname;
  return typescript
    ? [
      process.execPath,
      "run",
      "--no-prompt",
      ...denoTestFlags,
      "--allow-net=127.0.0.1",
      file,
      ...args,
    ]
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
  return processTable()
    .filter((entry) => entry.ppid === parent && entry.state !== "Z")
    .map((entry) => entry.pid);
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

/** Which runtime runs the tests. */
export const runtime: "deno" | "bun" | "node" = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";

/**
 * Runs the script at `path` with exactly these runtime flags instead of all
 * permissions: Deno's `--allow-*`, Node's `--permission` and its grants.
 */
export function runScriptWith(
  path: string,
  flags: readonly string[],
  ...args: string[]
): Promise<CompletedProcess<string>> {
  const file = sourceUrl(path).pathname;
  const argv = runtime === "deno"
    ? [process.execPath, "run", "--no-prompt", ...flags, file, ...args]
    : [process.execPath, ...flags, file, ...args];
  return run(argv, { capture: true, text: true, timeout: 120_000 });
}

/**
 * A test's name, marked when this runtime refuses `feature` with a clear
 * error (`reason`) that the test asserts instead: the README's compatibility
 * table lists those marks.
 */
export function limitedTest(
  name: string,
  feature: string,
  reason: string | undefined,
): string {
  return reason === undefined
    ? name
    : `${name} [refused here: ${feature}: ${reason}]`;
}
