/**
 * The tour's first `Process` example: start a child process that runs
 * `runProc("test")`, and wait for it.
 *
 * Run with `deno run -A examples/process_run_proc.ts`.
 *
 * @module
 */
import process from "node:process";
import { currentProcess, isMainModule, Process } from "../mod.ts";

/** The code the child process runs. */
export function runProc(name: string): void {
  console.log(`Run child process ${name} (${currentProcess().pid})...`);
}

if (isMainModule(import.meta)) {
  console.log(`Parent process ${process.pid}.`);
  const p = new Process({
    module: import.meta.url,
    target: "runProc",
    args: ["test"],
  });
  console.log("Child process will start.");
  p.start();
  await p.join();
  console.log("Child process end.");
}
