/**
 * The Redis benchmark: the distributed `Pool` and `Queue` of `redis.ts`
 * (hosts started with the `multiproc-worker` command) beside BullMQ (with
 * ioredis), Celery (Debian's python3-celery, Redis broker and result
 * backend), plain Redis lists (ioredis and redis-py LPUSH/BRPOP), Python's
 * local `multiprocessing.Pool.map` (the mark for a map) and the local
 * multiproc `Pool` and `Queue` as the ceiling, all on one redis-server this
 * script starts on a free loopback port, in one run: 20 000 tiny tasks
 * submitted one by one, a map of 1 000 000 ints, the round trip of one task,
 * and 10 000 small items between two processes. Multiproc and BullMQ run on
 * Deno (sources) and Node (npm build); each figure is the median of
 * `BENCH_ROUNDS` rounds (default 3). Writes the "redis" section of
 * BENCHMARKS.md.
 *
 * Run with `npm run bench:redis` (or `deno task bench:redis`; `npm run
 * bench` includes it); `BENCH_TRACE=1` names each case as it starts,
 * `BENCH_ONLY` (a regular expression) runs the matching cases only and
 * leaves BENCHMARKS.md alone.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type CaseResult,
  groupOf,
  machineLine,
  median,
  writeSection,
} from "./_bench_report.ts";
import { startRedis } from "../tests/_redis_server.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const rounds = Deno.env.get("BENCH_ROUNDS") ?? "3";
Deno.env.set("BENCH_ROUNDS", rounds);
const partial = Deno.env.get("BENCH_ONLY") !== undefined;
// The sizes of scripts/_bench_redis_cases.ts and scripts/_bench_redis.py.
const TINY = 20_000;
const MAP = 1_000_000;
const CHUNK = 62_500;
const LATENCY_CALLS = 300;
const QUEUE_ITEMS = 10_000;

/** What a case script prints. */
interface CaseOutput {
  runtime: string;
  cases: Record<string, number[]>;
  /** Per case, the Redis commands of its last round by name, per item. */
  commands?: Record<string, Record<string, number>>;
  /** Baselines left out, with why. */
  skipped?: Record<string, string>;
}

/** One case's figures, and the Redis commands per item of its last round. */
interface Result extends CaseResult {
  commands: Record<string, number> | undefined;
}

const results: Result[] = [];
const skipped: string[] = [];

// Runs a case script; its stderr passes through, its stdout is the JSON.
async function runCases(command: string, args: string[]): Promise<void> {
  const { code, stdout } = await new Deno.Command(command, {
    args,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (code !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed with ${code}`);
  }
  const output = JSON.parse(new TextDecoder().decode(stdout)) as CaseOutput;
  for (const [library, samples] of Object.entries(output.cases)) {
    results.push({
      runtime: output.runtime,
      library,
      samples,
      commands: output.commands?.[library],
    });
  }
  for (const [what, why] of Object.entries(output.skipped ?? {})) {
    skipped.push(`${what} (${output.runtime}): ${why}`);
  }
}

// The npm build, made while holding the lock other builds take and copied
// out, so that a build started later cannot remove it under a running case;
// its node_modules is this checkout's.
async function nodeBuild(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "multiproc-bench-redis-" });
  const build = await new Deno.Command("flock", {
    args: [
      "/tmp/npmbuild.lock",
      "sh",
      "-c",
      `"$1" run -A scripts/build_npm.ts && cp -r npm/esm npm/package.json "$2"/`,
      "build",
      Deno.execPath(),
      dir,
    ],
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (build.code !== 0) {
    await Deno.remove(dir, { recursive: true });
    Deno.exit(1);
  }
  await Deno.symlink(join(root, "node_modules"), join(dir, "node_modules"));
  return dir;
}

// The first Python 3 that imports celery (pyenv's python3 may not see
// Debian's packages; /usr/bin/python3 does), else the first one there is.
async function python(): Promise<string | undefined> {
  let found: string | undefined;
  for (const candidate of ["python3", "/usr/bin/python3"]) {
    try {
      const probe = await new Deno.Command(candidate, {
        args: ["-c", "import celery"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (probe.success) return candidate;
      found ??= candidate;
    } catch {
      // Not there.
    }
  }
  return found;
}

/** An installed package's version, for the report. */
async function versionOf(name: string): Promise<string> {
  const file = join(root, "node_modules", name, "package.json");
  return (JSON.parse(await Deno.readTextFile(file)) as { version: string })
    .version;
}

const bullmq = await versionOf("bullmq");
const ioredis = await versionOf("ioredis");
const server = await startRedis();
const version = String(await server.command("INFO", "server")).match(
  /redis_version:(\S+)/,
)?.[1];
const nodeDir = await nodeBuild();
try {
  console.error("Running the Redis cases on Deno…");
  await runCases(Deno.execPath(), [
    "run",
    "-A",
    join(root, "scripts/_bench_redis_cases.ts"),
    server.url,
  ]);
  console.error("Running the Redis cases on Node…");
  await runCases("node", [
    join(nodeDir, "esm/scripts/_bench_redis_cases.js"),
    server.url,
  ]);
  const interpreter = await python();
  if (interpreter === undefined) {
    const why =
      "no python3 on the PATH: install Debian's python3-celery and python3-redis";
    console.error(`Celery and redis-py skipped: ${why}`);
    skipped.push(`Celery and redis-py: ${why}`);
  } else {
    console.error(`Running Celery and redis-py on ${interpreter}…`);
    await runCases(interpreter, [
      join(root, "scripts/_bench_redis.py"),
      server.url,
    ]);
  }
} finally {
  await server.stop();
  await Deno.remove(nodeDir, { recursive: true });
}

// ---- the report -------------------------------------------------------------

/** How a table shows one figure, from the milliseconds of a round. */
interface Unit {
  title: string;
  convert(ms: number): number;
  higherIsBetter: boolean;
  /** What the commands column counts per. */
  per: string;
}

function rate(count: number, per: string): Unit {
  return {
    title: "items/s",
    convert: (ms) => count / (ms / 1000),
    higherIsBetter: true,
    per,
  };
}

const isMultiproc = (result: CaseResult): boolean =>
  result.library.startsWith("multiproc");

function format(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toPrecision(3);
}

function total(commands: Record<string, number>): number {
  return Object.values(commands).reduce((sum, calls) => sum + calls, 0);
}

/**
 * A Markdown table: median, min and max of each library, its ratio to the
 * best baseline of the run (any library but multiproc's, any runtime;
 * above 1× is better), and the Redis commands per item of its last round.
 */
function table(prefix: string, unit: Unit): string {
  // groupOf keeps the other fields: the commands come along.
  const rows = groupOf(results, prefix) as Result[];
  const mid = (result: CaseResult): number =>
    median(result.samples.map(unit.convert));
  const baselines = rows.filter((result) => !isMultiproc(result)).map(mid);
  const best = unit.higherIsBetter
    ? Math.max(...baselines)
    : Math.min(...baselines);
  const lines = [
    `| runtime | library | ${unit.title} (median) | min | max | vs best baseline | Redis commands per ${unit.per} |`,
    "|---|---|---:|---:|---:|---:|---:|",
  ];
  for (const result of rows) {
    const figures = result.samples.map(unit.convert);
    const ratio = unit.higherIsBetter ? mid(result) / best : best / mid(result);
    lines.push(
      `| ${result.runtime} | ${result.library} | ${format(mid(result))} | ${
        format(Math.min(...figures))
      } | ${format(Math.max(...figures))} | ${
        Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : "—"
      } | ${result.commands ? format(total(result.commands)) : "—"} |`,
    );
  }
  return lines.join("\n");
}

/** The commands a library sent per item, largest first: where its round trips go. */
function breakdown(prefix: string, library: string): string {
  const found = results.find((result) =>
    result.library === `${prefix}: ${library}` && result.commands
  );
  if (!found?.commands) return "—";
  return Object.entries(found.commands)
    .filter(([, calls]) => calls >= 0.0005)
    .sort((a, b) => b[1] - a[1])
    .map(([command, calls]) => `${command.toUpperCase()} ${format(calls)}`)
    .join(", ");
}

const skippedLines = skipped.length === 0
  ? ""
  : `\nSkipped: ${skipped.join("; ")}.\n`;

const report = `## Redis: many machines

Made by \`npm run bench:redis\` (\`scripts/bench_redis.ts\`) on ${machineLine()}.
One redis-server ${version} (Debian's) on a loopback port serves every library of the run. Each figure
is the median of ${rounds} rounds (cases interleaved), with min and max. Every library has 2 worker
processes of 2 workers each, started before timing in the caller's runtime: \`multiproc-worker
--processes 2\` hosts (worker threads), BullMQ ${bullmq} Workers of concurrency 2 (ioredis ${ioredis}),
Celery workers \`-c 2 -P prefork\`. "vs best baseline" divides by the best of BullMQ (either runtime), Celery and plain
Redis lists in this run, and for the map Python's local \`multiprocessing.Pool\` (above 1× is better); the local multiproc \`Pool\` (4 worker threads) and
\`Queue\` use no network and are the ceiling. "Redis commands" counts every command the server ran
during the last round (\`INFO commandstats\`: commands inside MULTI and inside Lua scripts count one
each, so a BullMQ script call counts its whole script) divided by the items; the idle polls of the
other libraries' workers (a few a second) are in it too.
${skippedLines}
### ${
  TINY.toLocaleString("en")
} tiny tasks submitted one by one (each result fetched)

${table("tiny", rate(TINY, "task"))}

multiproc: \`applyAsync("noop", [i])\` for each, then every \`.get()\`; BullMQ: \`queue.add\` for each
(\`removeOnComplete\`), results from one QueueEvents \`completed\` listener (\`job.waitUntilFinished\` adds a
script call per job); Celery: \`noop.delay(i)\` for each, then every \`.get()\`. Celery's result subscriber
leaves thousands of UNSUBSCRIBEs behind after so many results: they are drained after each round, untimed
(and counted in its commands), so that they do not slow the next case.

### \`map\` of ${MAP.toLocaleString("en")} ints (\`x * x\`) in chunks of ${
  CHUNK.toLocaleString("en")
}

${table("map", rate(MAP, "chunk"))}

Every library gets the same ${
  Math.ceil(MAP / CHUNK)
} chunks (Python's default chunk size for 4 workers): multiproc
\`map(…, { chunksize })\`; BullMQ one \`addBulk\` of a job per chunk; Celery \`square.chunks(…).group()\`;
Python's own \`multiprocessing.Pool(4).map(square, items, chunksize)\` on this machine, without Redis, is
the mark the Redis pool should reach (a baseline here: "vs best baseline" divides by it when it is the best).

### Round trip of one task (${LATENCY_CALLS} calls one at a time a round; p50)

${
  table("p50", {
    title: "p50 ms",
    convert: (ms) => ms,
    higherIsBetter: false,
    per: "call",
  })
}

### Queue: ${
  QUEUE_ITEMS.toLocaleString("en")
} small ints between two processes, one awaited put and get each

${table("queue", rate(QUEUE_ITEMS, "item"))}

A producer and a consumer task run each alone on a worker process of a local pool (Python: two
processes started before timing); the baselines are one \`LPUSH\` and one \`BRPOP\` per item.

### Where the time goes

With 2 cores for callers, workers and Redis alike, tiny tasks are bound by CPU per task rather than by
the network. The multiproc Redis Pool adds the tasks submitted in one turn as stream entries of up to
256 tasks (spread over about four entries per live worker, so that a short map still reaches every
host); a host takes the entries of one read together, runs their tasks in batches on its workers
(reading ahead 16 tasks per worker, and the next entry, while tasks take under 1 ms), and writes the results that finish
together in one transaction: an XADD per entry answered, then the XACK and XDEL of the entries they
complete. Per tiny task Redis runs ${
  breakdown("tiny", "multiproc Redis Pool")
}. What is left is CPU per task in the caller and the hosts: encoding each call, handing it to a
worker and back, settling its promise. A BullMQ worker completes a job and fetches the next one in one
Lua call (its 30-odd commands per job run inside scripts). A \`map\` chunk of numbers and its results
travel as their bytes, which no serializer touches. For one task at a time, the same plain design (four
hops, no scripts) is why multiproc has the shorter round trip.

A multiproc Redis \`Queue\` put is one EVALSHA (the script's source crosses once per server) and a get three round
trips: LPOP of the handle's taking list (an item a lost reply carried), BLMOVE into it, then MULTI LPOP
EXEC once the item is in hand, so that a get that returned took its item exactly once and an item whose
reply was lost is not lost (${
  breakdown("queue", "multiproc Redis Queue")
} per item). The list baselines are one round trip each, and lose an item whose BRPOP reply is lost.
`;
if (partial) {
  console.log(report);
} else {
  await writeSection(join(root, "BENCHMARKS.md"), "redis", report);
  console.log(report);
}
