// TypeScript task modules wherever the program runs TypeScript, and loaders
// (tsx, ts-node, …) that reach worker threads and processes. The consumer
// project (scripts/check_consumer.ts) runs the real tsx and ts-node.
import { describe, test } from "node:test";
import { deepEqual, equal, match } from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { Pool, Process } from "../mod.ts";
import {
  fixtureUrl,
  runScriptWith,
  runtime,
  scriptCommand,
} from "./_helpers.ts";
import { run } from "../subprocess.ts";

/**
 * How this runtime loads TypeScript by itself: all of it (Deno, Bun, Node's
 * --experimental-transform-types), types only (Node 22.18+, 24), or not at
 * all (Node 20).
 */
const typeScript: "all" | "strip" | "none" = runtime !== "node"
  ? "all"
  : (process.features as { typescript?: string | false }).typescript ===
      "transform"
  ? "all"
  : (process.features as { typescript?: string | false }).typescript ===
      "strip"
  ? "strip"
  : "none";

/** Writes `files` into a new temporary directory; returns its path. */
function writeTemp(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "multiproc-loaders-"));
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

const erasable = `interface Squared { value: number }
export function square(x: number): number {
  const result: Squared = { value: x * x };
  return result.value;
}
`;

const withEnum = `enum Offset { None = 0 }
export function square(x: number): number {
  return x * x + Offset.None;
}
`;

/** What `square(4)` gives in a one-worker pool of each backend, or its error. */
async function squareOnBothBackends(
  moduleUrl: URL,
): Promise<Record<string, unknown>> {
  const outcome: Record<string, unknown> = {};
  for (const backend of ["worker", "process"] as const) {
    await using pool = new Pool<{ square(x: number): number }>(moduleUrl, {
      processes: 1,
      backend,
    });
    outcome[backend] = await pool.apply("square", [4]).catch((error) =>
      (error as Error).message
    );
  }
  return outcome;
}

describe(`TypeScript task modules (${runtime})`, () => {
  test(
    typeScript === "none"
      ? "a TypeScript task module fails with an error that says to start a loader"
      : "a TypeScript task module runs in a Pool and a Process on both backends",
    async () => {
      const dir = writeTemp({ "tasks.ts": erasable });
      try {
        const url = pathToFileURL(join(dir, "tasks.ts"));
        const outcome = await squareOnBothBackends(url);
        if (typeScript === "none") {
          for (const backend of ["worker", "process"]) {
            match(
              outcome[backend] as string,
              /Cannot load the task module ".*tasks\.ts".*Unknown file extension ".ts".*loads no TypeScript here; start the program under a loader.*`node --import tsx main\.ts`/,
            );
          }
          return;
        }
        deepEqual(outcome, { worker: 16, process: 16 });
        for (const backend of ["worker", "process"] as const) {
          const child = new Process({
            module: url,
            target: "square",
            args: [3],
            backend,
          });
          child.start();
          await child.join();
          equal(child.exitCode, 0, backend);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test(
    typeScript === "all"
      ? "a task module with an enum runs on both backends"
      : "a task module with an enum fails with an error that says what can load it",
    async () => {
      const dir = writeTemp({ "tasks.ts": withEnum });
      try {
        const outcome = await squareOnBothBackends(
          pathToFileURL(join(dir, "tasks.ts")),
        );
        if (typeScript === "all") {
          deepEqual(outcome, { worker: 16, process: 16 });
          return;
        }
        for (const backend of ["worker", "process"]) {
          match(
            outcome[backend] as string,
            typeScript === "strip"
              ? /enum is not supported in strip-only mode: .*--experimental-transform-types, or under a loader: `node --import tsx main\.ts`/
              : /loads no TypeScript here/,
          );
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  if (runtime === "node") {
    // The loader registers on the main thread alone, as tsx does on Node 20
    // and on Node 22/24 before 22.22.3/24.11.1: workers must register it.
    const loader = fixtureUrl("main_thread_loader").href;
    const tasks = "export function square(x) { return x * x; }\n";
    const everywhere = {
      "Pool worker": 16,
      "Process worker": 0,
      "Pool process": 16,
      "Process process": 0,
    };

    test("a loader given with --import reaches worker threads and processes", async () => {
      const dir = writeTemp({ "mod.tasks": tasks });
      try {
        const result = await runScriptWith(
          "./fixtures/loader_main",
          ["--import", loader],
          pathToFileURL(join(dir, "mod.tasks")).href,
        );
        equal(result.stderr, "");
        deepEqual(JSON.parse(result.stdout!), everywhere);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test("a loader given in NODE_OPTIONS reaches worker threads and processes", async () => {
      const dir = writeTemp({ "mod.tasks": tasks });
      try {
        const result = await run(
          scriptCommand(
            "./fixtures/loader_main",
            pathToFileURL(join(dir, "mod.tasks")).href,
          ),
          {
            capture: true,
            text: true,
            timeout: 120_000,
            env: { NODE_OPTIONS: `--import=${loader}` },
          },
        );
        equal(result.stderr, "");
        deepEqual(JSON.parse(result.stdout!), everywhere);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test("a loader registered as the program runs does not reach workers, and the error says so", async () => {
      const dir = writeTemp({ "mod.tasks": tasks });
      try {
        const result = await runScriptWith(
          "./fixtures/loader_main",
          [],
          pathToFileURL(join(dir, "mod.tasks")).href,
          "register",
          loader,
        );
        const outcome = JSON.parse(result.stdout!);
        for (const backend of ["worker", "process"]) {
          match(
            outcome[`Pool ${backend}`],
            /Unknown file extension ".tasks".*start the program under a loader for such files, which worker threads and processes inherit, given on the command line: one registered by module\.register\(\) as the program runs does not reach them/,
          );
          equal(outcome[`Process ${backend}`], 1);
        }
        match(result.stderr!, /module\.register\(\)/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
