/**
 * The subprocess benchmark: spawn-and-wait of `true`, and 100 MiB through
 * `cat` with `communicate()`, for multiproc on Deno (sources) and on Node
 * (npm build), side by side with raw `Deno.Command`, raw
 * `node:child_process`, execa and Python's `subprocess`, in one run.
 * Writes the "subprocess" section of BENCHMARKS.md.
 *
 * Run with `npm run bench` (or `deno task bench`); `BENCH_ROUNDS` (default
 * 7) and `BENCH_SPAWNS` (spawns per round, default 200) tune it.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  buildNpm,
  type CaseResult,
  machineLine,
  runEverywhere,
  table,
  writeSection,
} from "./_bench_report.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const rounds = Deno.env.get("BENCH_ROUNDS") ?? "7";
const spawns = Deno.env.get("BENCH_SPAWNS") ?? "200";
Deno.env.set("BENCH_ROUNDS", rounds);
Deno.env.set("BENCH_SPAWNS", spawns);

await buildNpm(root);

async function group(name: "spawn" | "pipe"): Promise<CaseResult[]> {
  console.error(`Running the ${name} cases on Deno, Node and Python…`);
  return await runEverywhere(root, "subprocess", [name]);
}

const isRaw = (result: CaseResult): boolean =>
  result.library.startsWith("raw ");
const spawn = await group("spawn");
const pipe = await group("pipe");
const mebibytes = 100 * 1024 * 1024 / 1e6;

const report = `## Subprocess

Made by \`npm run bench\` (\`scripts/bench_subprocess.ts\`) on ${machineLine()}.
Each figure is the median of ${rounds} rounds (cases interleaved round by round), with min and max;
"vs raw" compares with the runtime's own API in the same run (above 1× is faster than raw).

### Spawn \`true\` and wait for it (${spawns} spawns per round)

${
  table(spawn, {
    title: "ms per spawn",
    convert: (ms) => ms,
    higherIsBetter: false,
  }, isRaw)
}

### 100 MiB through \`cat\` with \`communicate()\` (output returned as one buffer)

${
  table(pipe, {
    title: "MB/s",
    convert: (ms) => mebibytes / (ms / 1000),
    higherIsBetter: true,
  }, isRaw)
}
`;
await writeSection(join(root, "BENCHMARKS.md"), "subprocess", report);
console.log(report);
