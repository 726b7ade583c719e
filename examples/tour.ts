/**
 * The classic Python multiprocessing tour, on multiproc: each section runs
 * one of the ported examples in `examples/` as its own program, in the
 * tour's order, with its output shown as it comes.
 *
 * Run with `npm run demo` (or `deno task demo`).
 *
 * @module
 */
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
  ["Manager: a dict filled by a process pool", "manager_dict"],
];

/** The argv that runs example `name` in this same runtime, with `flags` in Deno. */
function command(
  name: string,
  flags = ["--allow-read", "--allow-run", "--allow-env"],
): string[] {
  const typescript = import.meta.url.endsWith(".ts");
  const file =
    new URL(`./${name}${typescript ? ".ts" : ".js"}`, import.meta.url)
      .pathname;
  return typescript
    ? [process.execPath, "run", ...flags, file]
    : [process.execPath, file];
}

/** Whether `program` is a file in a directory of the PATH. */
function onPath(program: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) =>
    dir !== "" && existsSync(join(dir, program))
  );
}

/** Runs example `name` under `title`; a failure ends the tour. */
async function section(
  title: string,
  name: string,
  flags?: string[],
): Promise<void> {
  console.log(`\n=== ${title} (examples/${name}.ts)`);
  const { returncode } = await run(command(name, flags));
  if (returncode !== 0) {
    console.error(`examples/${name}.ts failed with exit code ${returncode}`);
    process.exit(1);
  }
}

for (const [title, name] of sections) await section(title, name);

// The same Pool on many machines needs a Redis server: REDIS_URL's, or a
// temporary redis-server the example starts.
const redisTitle = "Many machines: the Pool tour on two hosts over Redis";
if (process.env.REDIS_URL !== undefined || onPath("redis-server")) {
  await section(redisTitle, "redis_pool", [
    "--allow-read",
    "--allow-run",
    "--allow-env",
    `--allow-write=${tmpdir()}`,
    "--allow-net=127.0.0.1",
  ]);
} else {
  console.log(
    `\n=== ${redisTitle}: not run, as redis-server is not on the PATH: install Debian's package redis-server (or set REDIS_URL) to see it`,
  );
}
