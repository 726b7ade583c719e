/**
 * The classic Python multiprocessing tour, on multiproc: each section runs
 * one of the ported examples in `examples/` as its own program, in the
 * tour's order, with its output shown as it comes.
 *
 * Run with `npm run demo` (or `deno task demo`).
 *
 * @module
 */
import process from "node:process";
import { run } from "../mod.ts";

const sections: [string, string][] = [
  ["Process: run_proc in a child process", "process_run_proc"],
  ["Pool: 13 long tasks with applyAsync", "pool_long_tasks"],
  ["Subprocess: call a command", "subprocess_call"],
  ["Subprocess: Popen and communicate()", "subprocess_communicate"],
  ["Queue: a writer and a reader process", "queue_write_read"],
  ["Arguments are copies: ls[i] = i", "pool_copy_semantics"],
  ["Pool(5).map(f, [1, 2, 3])", "pool_map"],
  ["with Pool(processes=4) as pool", "pool_tour"],
];

/** The argv that runs example `name` in this same runtime. */
function command(name: string): string[] {
  const typescript = import.meta.url.endsWith(".ts");
  const file =
    new URL(`./${name}${typescript ? ".ts" : ".js"}`, import.meta.url)
      .pathname;
  return typescript
    ? [
      process.execPath,
      "run",
      "--allow-read",
      "--allow-run",
      "--allow-env",
      file,
    ]
    : [process.execPath, file];
}

for (const [title, name] of sections) {
  console.log(`\n=== ${title} (examples/${name}.ts)`);
  const { returncode } = await run(command(name));
  if (returncode !== 0) {
    console.error(`examples/${name}.ts failed with exit code ${returncode}`);
    process.exit(1);
  }
}
