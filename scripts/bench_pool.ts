/**
 * The pool benchmark: 100 000 tiny tasks submitted at once to 2 workers,
 * `map` of 1 000 000 ints and `imap` (chunksize 1) of 100 000, one-task
 * latency, start-up, CPU scaling and memory while streaming, for multiproc
 * on Deno (sources) and Node (npm build), both backends, beside piscina,
 * tinypool, workerpool, poolifier, a hand-written raw worker_threads pool and
 * Python's `multiprocessing.Pool` and `ProcessPoolExecutor`, in one run.
 * Writes the "pool" section of BENCHMARKS.md.
 *
 * Run with `npm run bench` (or `deno task bench`); `BENCH_ROUNDS` (default
 * 5) tunes it, `BENCH_TRACE=1` names each case as it starts.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  buildNpm,
  type CaseResult,
  groupOf,
  machineLine,
  median,
  runEverywhere,
  table,
  type Unit,
  writeSection,
} from "./_bench_report.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const rounds = Deno.env.get("BENCH_ROUNDS") ?? "5";
Deno.env.set("BENCH_ROUNDS", rounds);

await buildNpm(root);

console.error("Running the pool cases on Deno, Node and Python…");
const all: CaseResult[] = await runEverywhere(root, "pool");

function group(prefix: string): CaseResult[] {
  return groupOf(all, prefix);
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

const peerNames = new Set([
  "piscina",
  "tinypool",
  "workerpool",
  "poolifier",
  "tinypool child_process",
  "workerpool process",
]);

/** The fastest JavaScript peer of each runtime: the baseline of the tiny-task tables. */
function fastestPeer(results: CaseResult[]): (result: CaseResult) => boolean {
  const best = new Map<string, CaseResult>();
  for (const result of results) {
    if (!peerNames.has(result.library)) continue;
    const current = best.get(result.runtime);
    if (!current || median(result.samples) < median(current.samples)) {
      best.set(result.runtime, result);
    }
  }
  return (result) => best.get(result.runtime) === result;
}

function peerTable(results: CaseResult[], count: number): string {
  const baseline = fastestPeer(results);
  const python = results.filter(isPython);
  const lines = table(
    results.filter((result) => !isPython(result)),
    rate(count),
    baseline,
  ).replace("vs raw, same runtime", "vs fastest JS peer, same runtime");
  const pythonLines = python.map((result) =>
    `- ${result.library} (${result.runtime}): ${
      Math.round(count / (median(result.samples) / 1000))
    } tasks/s`
  );
  return `${lines}\n\n${pythonLines.join("\n")}`;
}

const milliseconds: Unit = {
  title: "ms",
  convert: (ms: number) => ms,
  higherIsBetter: false,
};

function isRaw(result: CaseResult): boolean {
  return result.library === "raw worker_threads";
}

/** One row per runtime: a figure from two cases and their ratio. */
function ratioTable(
  title: [string, string, string],
  first: string,
  second: string,
  format: (value: number) => string,
): string {
  const rows = [`| runtime | ${title.join(" | ")} |`, "|---|---:|---:|---:|"];
  for (const runtime of new Set(all.map((result) => result.runtime))) {
    const of = (library: string): number | undefined => {
      const found = all.find((result) =>
        result.runtime === runtime && result.library === library
      );
      return found ? median(found.samples) : undefined;
    };
    const a = of(first);
    const b = of(second);
    if (a === undefined || b === undefined) continue;
    rows.push(
      `| ${runtime} | ${format(a)} | ${format(b)} | ${(a / b).toFixed(2)}× |`,
    );
  }
  return rows.join("\n");
}

const report = `## Pool

Made by \`npm run bench\` (\`scripts/bench_pool.ts\`) on ${machineLine()}.
Each figure is the median of ${rounds} rounds (cases interleaved), with min and max. Pools have 2 workers,
created before timing. Peers: piscina, tinypool, workerpool and poolifier (their latest releases, dev
dependencies); a peer that cannot start in a runtime is left out of that runtime's rows.

### 100 000 tiny tasks submitted at once, worker threads (\`applyAsync\`, one result each)

${peerTable(group("tiny"), 100_000)}

The raw worker_threads pool sends one message per task, round robin.

### 100 000 tiny tasks submitted at once, child processes

${peerTable(group("tiny process"), 100_000)}

### \`map\` of 1 000 000 ints (\`x * x\`, default chunksize), vs Python's \`multiprocessing.Pool\`

${pythonTable(group("map"), 1_000_000)}

### \`imap\` of 100 000 ints, chunksize 1, vs Python's \`multiprocessing.Pool\`

${pythonTable(group("imap"), 100_000)}

### \`starmap\` of 300 000 pairs (\`a + b\`), vs Python's \`multiprocessing.Pool\`

${pythonTable(group("starmap"), 300_000)}

### \`map\` of 300 000 records (\`{ a, b }\` objects, dicts in Python; returns \`a\`), vs Python's \`multiprocessing.Pool\`

${pythonTable(group("records"), 300_000)}

### Round trip of one task at a time (${"2 000"} calls a round), median and 99th percentile

${table(group("p50"), milliseconds, isRaw).replace("| ms ", "| p50 ms ")}

${table(group("p99"), milliseconds, isRaw).replace("| ms ", "| p99 ms ")}

### Start-up: a new Pool to its first result; a Process from start to join

${table(group("startup"), milliseconds, () => false)}

### CPU-bound scaling: the same pure compute (8 tasks) on 1 and on 2 workers

${
  ratioTable(
    ["1 worker, ms", "2 workers, ms", "speed-up"],
    "cpu: 1",
    "cpu: 2",
    (value) => value.toFixed(0),
  )
}

Python runs a tenth of the work (its loop is that much slower); the speed-up is what compares.

### Memory: peak RSS while tasks stream through \`imap\` (worker threads, chunksize 64)

${
  ratioTable(
    ["1 000 000 tasks, MiB", "10 000 tasks, MiB", "ratio"],
    "rss: 1000000",
    "rss: 10000",
    (value) => value.toFixed(0),
  )
}
`;
await writeSection(join(root, "BENCHMARKS.md"), "pool", report);
console.log(report);
