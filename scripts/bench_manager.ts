/**
 * The manager benchmark: set+get round trips on a `Manager().dict()` from
 * a worker process and from a worker thread, for multiproc on Deno
 * (sources) and Node (npm build), beside Python's `Manager().dict()` in one
 * run. Writes the "manager" section of BENCHMARKS.md.
 *
 * Run with `npm run bench` (or `deno run -A scripts/bench_manager.ts`);
 * `BENCH_ROUNDS` (default 5) tunes it.
 *
 * @module
 */
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  buildNpm,
  type CaseResult,
  groupOf,
  machineLine,
  runEverywhere,
  table,
  type Unit,
  writeSection,
} from "./_bench_report.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const rounds = Deno.env.get("BENCH_ROUNDS") ?? "5";
Deno.env.set("BENCH_ROUNDS", rounds);
const PAIRS = 5_000;

await buildNpm(root);

console.error("Running the manager cases on Deno, Node and Python…");
const all: CaseResult[] = await runEverywhere(root, "manager");

const rate: Unit = {
  title: "set+get pairs/s",
  convert: (ms: number) => PAIRS / (ms / 1000),
  higherIsBetter: true,
};

function isPython(result: CaseResult): boolean {
  return result.runtime.startsWith("Python");
}

// Other jobs on the machine move these figures more than most: say so.
const load = loadavg()[0]!;
const loaded = load > cpus().length / 2
  ? `\nThe machine was busy with other jobs during this run (load average ${
    load.toFixed(1)
  } on ${cpus().length} CPUs): round trips wait for a CPU, so the min and max columns spread wide, and the ratios move from run to run.\n`
  : "";

const report = `## Manager

Made by \`deno run -A scripts/bench_manager.ts\` on ${machineLine()}.
Each figure is the median of ${rounds} rounds (cases interleaved), with min and max; the last column compares
with Python's \`multiprocessing.Manager().dict()\` in the same situation. A round is ${
  PAIRS.toLocaleString("en")
} pairs of
\`await d.set("k", i); await d.get("k")\` (Python: \`d["k"] = i; d["k"]\`) in one warm worker.

### From a worker process

${table(groupOf(all, "process"), rate, isPython, false)}

### From a worker thread

${table(groupOf(all, "thread"), rate, isPython, false)}

Python's proxies make a round trip over a socket to the manager's server process for each call, a set
as well as a get. Here the dict lives in the process that made the manager, which a worker reaches over
its IPC channel (a thread: its message port), and every call waits for its reply, a \`set\` too, so a
pair costs two round trips, as in Python. (Until this run a worker process's \`set\` resolved without
a reply, one round trip a pair, about 35,000 pairs/s on Deno and 30,000 on Node on a less loaded
machine; but such a write could be lost when the process exited or was killed right after, and a
loop of them piled up in memory, so writes now wait.) The IPC channels of Deno and Node (V8
serialization in JavaScript) cost more per message than Python's pickled socket, which is what
bounds these figures.
${loaded}`;
await writeSection(join(root, "BENCHMARKS.md"), "manager", report);
console.log(report);
