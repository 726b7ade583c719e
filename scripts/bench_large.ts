/**
 * The large-item benchmark: 100 KiB and 10 MiB items between two processes
 * through `Queue` and `Pipe`, beside the raw floor (the same bytes through
 * one OS pipe), and `Pool.map` over 200 `Float64Array`s of 1 MiB (their
 * sums) and 200 results of 1 MiB on both backends, for multiproc on Deno
 * (sources) and Node (npm build) and Python's `multiprocessing`, in one run.
 * Writes the "large" section of BENCHMARKS.md.
 *
 * Run with `npm run bench` (all benchmarks) or `deno run -A
 * scripts/bench_large.ts`; `BENCH_ROUNDS` (default 3) tunes it.
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
  writeSection,
} from "./_bench_report.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const rounds = Deno.env.get("BENCH_ROUNDS") ?? "3";
Deno.env.set("BENCH_ROUNDS", rounds);
const BYTES = 200 * 1024 * 1024;
const TASKS = 200;
const TASK_BYTES = 1024 * 1024;

await buildNpm(root);

console.error("Running the large-item cases on Deno, Node and Python…");
const all: CaseResult[] = await runEverywhere(root, "large");

/** MB/s of each round of a case that moved `bytes`. */
function rates(result: CaseResult, bytes: number): number[] {
  return result.samples.map((ms) => bytes / 1e6 / (ms / 1000));
}

function format(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toPrecision(3);
}

function ratio(value: number, base: number | undefined): string {
  return base === undefined ? "—" : `${(value / base).toFixed(2)}×`;
}

/**
 * One row per runtime and channel: MB/s (median, min, max), against Python's
 * channel of the same name and against the raw pipe of the same runtime.
 */
function channelTable(group: CaseResult[]): string {
  const mid = (result: CaseResult): number => median(rates(result, BYTES));
  const python = (kind: string): number | undefined => {
    const found = group.find((r) => r.library === `python3 ${kind}`);
    return found && mid(found);
  };
  const raw = (runtime: string): number | undefined => {
    const found = group.find((r) =>
      r.runtime === runtime && r.library.endsWith("raw pipe")
    );
    return found && mid(found);
  };
  const rows = [
    "| runtime | channel | MB/s (median) | min | max | vs Python's same channel | vs raw pipe, same runtime |",
    "|---|---|---:|---:|---:|---:|---:|",
  ];
  for (const result of group) {
    const figures = rates(result, BYTES);
    const kind = result.library.replace(/^python3 /, "");
    rows.push(
      `| ${result.runtime} | ${result.library} | ${format(mid(result))} | ${
        format(Math.min(...figures))
      } | ${format(Math.max(...figures))} | ${
        kind === "raw pipe" ? "—" : ratio(mid(result), python(kind))
      } | ${ratio(mid(result), raw(result.runtime))} |`,
    );
  }
  return rows.join("\n");
}

/** One row per runtime and backend: MB/s moved, against Python's Pool. */
function poolTable(group: CaseResult[]): string {
  const bytes = TASKS * TASK_BYTES;
  const python = group.find((r) => r.runtime.startsWith("Python"));
  const base = python && median(rates(python, bytes));
  const rows = [
    "| runtime | backend | MB/s (median) | min | max | ms per map (median) | vs Python's Pool |",
    "|---|---|---:|---:|---:|---:|---:|",
  ];
  for (const result of group) {
    const figures = rates(result, bytes);
    rows.push(
      `| ${result.runtime} | ${result.library} | ${format(median(figures))} | ${
        format(Math.min(...figures))
      } | ${format(Math.max(...figures))} | ${
        format(median(result.samples))
      } | ${ratio(median(figures), base)} |`,
    );
  }
  return rows.join("\n");
}

const report = `## Large items

Made by \`npm run bench\` (\`scripts/bench_large.ts\`) on ${machineLine()}, shared with other jobs
while it ran (a load of 4 to 7 on 2 cores: figures varied from run to run by 2× and more, and the Deno, Node
and Python cases run one after another, so their ratios moved too). Each figure is the median of ${rounds} rounds (cases
interleaved), with min and max. A producer task and a consumer task run alone on the two workers of a
process pool (created before timing) and pass 200 MiB; Python's processes are started before timing and
wait for a signal. The raw pipe is the floor: the same bytes, written by a child process started before
timing into one OS pipe and read by its parent (Python: \`os.write\` and \`os.readv\` between two processes).

Between processes, an item of 64 KiB or more travels through a file in \`/dev/shm\` (memory; the temporary
directory where there is none): the producer writes it, the consumer reads it, and only a stub naming it
goes through the parent, which removes the file once the item is acknowledged. Smaller items take the
IPC path as before. Before this, every item crossed two IPC channels through the parent (about 300 MB/s at
100 KiB on this machine). Python's \`Pipe\` is one OS pipe between the two processes, and its \`Queue\` a pipe
fed by a thread: each item is one write and one read, where multiproc's is a file created, written, read
and removed (tmpfs allocates its pages at each write) plus a stub's trip through the parent.

\`Pool\` arguments, \`map\` items and \`map\` results that are all typed arrays or ArrayBuffers (64 KiB or more
together) are copied once each, natively: to a thread the copies are transferred; to and from a child
process they go through a file in the same directory (one write, one read straight into each buffer).

### 2,000 items of 100 KiB between two processes

${channelTable(groupOf(all, "100 KiB"))}

### 20 items of 10 MiB between two processes

${channelTable(groupOf(all, "10 MiB"))}

### \`Pool.map\` over ${TASKS} \`Float64Array\`s of 1 MiB, returning their sums (Python: \`bytes\`, summed through a \`memoryview\`)

${poolTable(groupOf(all, "sums"))}

### \`Pool.map\` over ${TASKS} tasks returning 1 MiB each (\`Uint8Array\`; Python: \`bytes\`)

${poolTable(groupOf(all, "results"))}
`;
await writeSection(join(root, "BENCHMARKS.md"), "large", report);
console.log(report);
