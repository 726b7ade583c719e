/**
 * The pool benchmark: 100 000 tiny tasks submitted at once to 2 workers,
 * `map` of 1 000 000 ints and `imap` (chunksize 1) of 100 000, for
 * multiproc on Deno (sources) and Node (npm build), both backends, beside a
 * hand-written raw worker_threads pool and Python's `multiprocessing.Pool`,
 * in one run. Writes the "pool" section of BENCHMARKS.md.
 *
 * Run with `npm run bench` (or `deno task bench`); `BENCH_ROUNDS` (default
 * 5) tunes it.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  buildNpm,
  type CaseResult,
  machineLine,
  runCases,
  table,
  type Unit,
  writeSection,
} from "./_bench_report.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const deno = Deno.execPath();
const rounds = Deno.env.get("BENCH_ROUNDS") ?? "5";
Deno.env.set("BENCH_ROUNDS", rounds);

await buildNpm(root);

console.error("Running the pool cases on Deno, Node and Python…");
const all: CaseResult[] = [
  ...await runCases(deno, [
    "run",
    "-A",
    join(root, "scripts/_bench_pool_cases.ts"),
  ]),
  ...await runCases("node", [
    join(root, "npm/esm/scripts/_bench_pool_cases.js"),
  ]),
  ...await runCases("python3", [join(root, "scripts/_bench_pool.py")]),
];

function group(prefix: string): CaseResult[] {
  return all
    .filter((result) => result.library.startsWith(`${prefix}: `))
    .map((result) => ({
      ...result,
      library: result.library.slice(prefix.length + 2),
    }));
}

const isPython = (result: CaseResult): boolean =>
  result.library.startsWith("python3");

function rate(count: number): Unit {
  return {
    title: "tasks/s",
    convert: (ms: number) => count / (ms / 1000),
    higherIsBetter: true,
  };
}

function pythonTable(results: CaseResult[], count: number): string {
  return table(results, rate(count), isPython, false);
}

const report = `## Pool

Made by \`npm run bench\` (\`scripts/bench_pool.ts\`) on ${machineLine()}.
Each figure is the median of ${rounds} rounds (cases interleaved), with min and max. Pools have 2 workers,
created before timing. The last column compares with Python's \`multiprocessing.Pool\` (2 processes) in the same run.

### 100 000 tiny tasks submitted at once (\`applyAsync\`, one result each)

${pythonTable(group("tiny"), 100_000)}

The raw worker_threads pool sends one message per task, round robin.

### \`map\` of 1 000 000 ints (\`x * x\`, default chunksize)

${pythonTable(group("map"), 1_000_000)}

### \`imap\` of 100 000 ints, chunksize 1

${pythonTable(group("imap"), 100_000)}
`;
await writeSection(join(root, "BENCHMARKS.md"), "pool", report);
console.log(report);
