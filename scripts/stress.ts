/**
 * The stress harness: provokes each fault again and again (consumers and
 * producers killed mid-stream, many producers and consumers on one queue,
 * pool workers SIGKILLed, the parent of a pool SIGKILLed, pools made and
 * dropped by the hundred), per runtime (Deno on the sources, Node on the
 * npm build) and backend (worker threads, child processes), each run in a
 * fresh program with a hard time limit; and the same for redis.ts (worker
 * hosts SIGKILLed, redis-server killed and restarted, queue consumers
 * killed, pools and queue handles made and dropped). Prints one table
 * (scenario x runtime x backend: runs, items lost, doubled, out of order,
 * hangs, orphans, leaked fds, threads, Redis keys and connections, other
 * failures) and exits non-zero if any count is not zero.
 *
 * Run with `npm run stress` (or `deno task stress`); `--help` lists the
 * options. `--short` is the quick pass that `npm test` runs.
 *
 * @module
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  emptyOutcome,
  type Outcome,
} from "../tests/fixtures/stress/_report.ts";
import {
  type Backend,
  type RunReport,
  type Scenario,
  scenarios,
} from "./_stress_scenarios.ts";
import { root, type Runtime, stopEverything } from "./_stress_run.ts";
import { redisScenarios } from "./_stress_redis.ts";

/** Every scenario; the short pass runs some of them fewer times. */
const allScenarios: readonly (Scenario & { shortRuns?: number })[] = [
  ...scenarios,
  ...redisScenarios,
];

const usage = `Usage: deno run -A scripts/stress.ts [options]

  --runs N          runs per scenario, runtime and backend (default 20; with
                    --short 2, and 1 for the redis-* scenarios)
  --short           fewer runs and items: the pass npm test runs
  --only NAME,...   these scenarios only (see below)
  --runtime R       deno or node (default both)
  --backend B       worker or process (default both)
  --seed N          first run's seed (default random); run i gets seed + i
  --lock FILE       hold an flock on FILE while building or running npm/
                    (default: $MULTIPROC_NPM_LOCK, else none)
  --verbose         print each run's numbers (kills, counts before and after)
  --help            this text

Scenarios:
${allScenarios.map((s) => `  ${s.name.padEnd(20)}${s.summary}`).join("\n")}
`;

const { values: options } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string" },
    short: { type: "boolean", default: false },
    only: { type: "string" },
    runtime: { type: "string" },
    backend: { type: "string" },
    seed: { type: "string" },
    lock: { type: "string" },
    verbose: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (options.help) {
  console.log(usage);
  Deno.exit(0);
}

function fail(message: string): never {
  console.error(`${message}\n\n${usage}`);
  Deno.exit(2);
}

const runs = options.runs === undefined
  ? (options.short ? 2 : 20)
  : Number(options.runs);
if (!Number.isInteger(runs) || runs < 1) {
  fail(`--runs wants a whole number >= 1, got "${options.runs}"`);
}
/** The runs a scenario gets: --runs, or its own short count with --short. */
function runsOf(scenario: { shortRuns?: number }): number {
  return options.runs === undefined && options.short
    ? scenario.shortRuns ?? runs
    : runs;
}
const only = options.only?.split(",").map((name) => name.trim());
for (const name of only ?? []) {
  if (!allScenarios.some((scenario) => scenario.name === name)) {
    fail(`No scenario "${name}"`);
  }
}
const runtimes: Runtime[] = options.runtime === undefined
  ? ["deno", "node"]
  : [options.runtime as Runtime];
if (!runtimes.every((runtime) => runtime === "deno" || runtime === "node")) {
  fail(`--runtime wants deno or node, got "${options.runtime}"`);
}
const backends: Backend[] = options.backend === undefined
  ? ["worker", "process"]
  : [options.backend as Backend];
if (
  !backends.every((backend) => backend === "worker" || backend === "process")
) {
  fail(`--backend wants worker or process, got "${options.backend}"`);
}
const baseSeed = options.seed === undefined
  ? Math.floor(Math.random() * 1e9)
  : Number(options.seed);
if (!Number.isInteger(baseSeed)) {
  fail(`--seed wants a whole number, got "${options.seed}"`);
}
const lockPath = options.lock ?? Deno.env.get("MULTIPROC_NPM_LOCK");

// ---- the npm build, for Node --------------------------------------------

/** The newest modification time of the files the npm build is made from. */
function newestSource(): number {
  let newest = statSync(join(root, "deno.json")).mtimeMs;
  const visit = (dir: string, recurse: boolean): void => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && recurse) visit(path, true);
      else if (entry.name.endsWith(".ts")) {
        newest = Math.max(newest, statSync(join(root, path)).mtimeMs);
      }
    }
  };
  visit(".", false);
  visit("tests", true);
  return newest;
}

/** Whether npm/ is missing, lacks the stress programs, or is older than a source. */
function npmStale(): boolean {
  const marker = join(root, "npm/package.json");
  return !existsSync(marker) ||
    !existsSync(join(root, "npm/esm/tests/fixtures/stress/tasks.js")) ||
    statSync(marker).mtimeMs < newestSource();
}

/** Builds npm/ when it is stale; returns the build's complaint if it failed. */
async function ensureBuild(): Promise<string | undefined> {
  if (!npmStale()) return undefined;
  console.log("Building npm/ (missing or older than the sources)…");
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(root, "scripts/build_npm.ts")],
    cwd: root,
  }).output();
  if (code === 0) return undefined;
  const text = new TextDecoder().decode(stdout) +
    new TextDecoder().decode(stderr);
  return `the npm build failed: ${
    text.trim().split("\n").slice(-5).join(" | ")
  }`;
}

/**
 * Runs `fn` holding the lock file, if one was named: on a machine where
 * several people build into this checkout, a build must not delete npm/
 * under a running program.
 */
async function holdingLock<T>(fn: () => Promise<T>): Promise<T> {
  if (lockPath === undefined) return await fn();
  using file = await Deno.open(lockPath, { create: true, write: true });
  await file.lock(true);
  return await fn();
}

// ---- running and counting -----------------------------------------------

interface Cell {
  runs: number;
  lost: number;
  doubled: number;
  outOfOrder: number;
  hangs: number;
  orphans2s: number;
  orphans5s: number;
  leakedFds: number;
  leakedThreads: number;
  /** Redis keys and connections a redis-* scenario found left behind. */
  leakedRedis: number;
  /** Runs with a failure that no other column counts. */
  other: number;
  inHand: number;
  seconds: number;
}

const cells = new Map<string, Cell>();
const failures: string[] = [];

function cellOf(row: string, runtime: Runtime, backend: Backend): Cell {
  const key = `${row}\t${runtime}\t${backend}`;
  let cell = cells.get(key);
  if (cell === undefined) {
    cell = {
      runs: 0,
      lost: 0,
      doubled: 0,
      outOfOrder: 0,
      hangs: 0,
      orphans2s: 0,
      orphans5s: 0,
      leakedFds: 0,
      leakedThreads: 0,
      leakedRedis: 0,
      other: 0,
      inHand: 0,
      seconds: 0,
    };
    cells.set(key, cell);
  }
  return cell;
}

function reproduce(
  scenario: Scenario,
  runtime: Runtime,
  backend: Backend,
  seed: number,
): string {
  return `deno task stress --only ${scenario.name} --runtime ${runtime} --backend ${backend} --runs 1 --seed ${seed}${
    options.short ? " --short" : ""
  }`;
}

/** Adds one run's report to the table; returns a one-line verdict. */
function record(
  scenario: Scenario,
  runtime: Runtime,
  backend: Backend,
  seed: number,
  report: RunReport,
): string {
  const problems: string[] = [];
  for (const variant of scenario.variants) {
    const row = variant === "" ? scenario.name : `${scenario.name}:${variant}`;
    const cell = cellOf(row, runtime, backend);
    const outcome: Outcome = report.outcomes[variant];
    const orphans = report.orphans[variant] ?? { at2s: 0, at5s: 0 };
    cell.runs++;
    cell.seconds += report.seconds;
    cell.lost += outcome.lost;
    cell.doubled += outcome.doubled;
    cell.outOfOrder += outcome.outOfOrder;
    cell.hangs += outcome.hangs;
    cell.orphans2s += orphans.at2s;
    cell.orphans5s += orphans.at5s;
    cell.leakedFds += outcome.leakedFds;
    cell.leakedThreads += outcome.leakedThreads;
    const leakedRedis = (outcome.notes.leakedKeys ?? 0) +
      (outcome.notes.leakedConnections ?? 0);
    cell.leakedRedis += leakedRedis;
    cell.inHand += outcome.inHand;
    const counted = outcome.lost + outcome.doubled + outcome.outOfOrder +
      outcome.hangs + orphans.at5s + outcome.leakedFds + outcome.leakedThreads +
      leakedRedis;
    if (counted === 0 && outcome.errors.length > 0) cell.other++;
    const messages = [...outcome.errors];
    if (orphans.at5s > 0) {
      messages.push(`${orphans.at5s} processes still alive 5 s after it ended`);
    } else if (orphans.at2s > 0) {
      messages.push(`${orphans.at2s} processes still alive 2 s after it ended`);
    }
    if (messages.length > 0) {
      const label = `${row} ${runtime} ${backend} seed ${seed}`;
      failures.push(
        `${label}: ${messages.join("; ")}\n    again: ${
          reproduce(scenario, runtime, backend, seed)
        }`,
      );
      problems.push(`${variant || scenario.name}: ${messages[0]}`);
    }
  }
  return problems.length === 0 ? "ok" : problems.join("; ");
}

/** A report for a run that could not start: every variant failed so. */
function notRun(scenario: Scenario, reason: string): RunReport {
  const outcomes: Record<string, Outcome> = {};
  for (const variant of scenario.variants) {
    outcomes[variant] = { ...emptyOutcome(), errors: [reason] };
  }
  return { outcomes, orphans: {}, seconds: 0 };
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    stopEverything();
    Deno.exit(130);
  });
}

const started = performance.now();
console.log(
  `Stress: ${runs} run(s) each${
    options.short
      ? `, short${options.runs === undefined ? " (redis-*: 1 each)" : ""}`
      : ""
  }, seed ${baseSeed}, on ${runtimes.join(" and ")}`,
);
for (const runtime of runtimes) {
  for (const scenario of allScenarios) {
    if (only && !only.includes(scenario.name)) continue;
    for (const backend of backends) {
      if (!scenario.backends.includes(backend)) continue;
      const count = runsOf(scenario);
      for (let i = 0; i < count; i++) {
        const seed = baseSeed + i;
        const context = { runtime, backend, short: options.short, seed };
        const report = runtime === "node"
          ? await holdingLock(async () => {
            const problem = await ensureBuild();
            return problem === undefined
              ? await scenario.run(context)
              : notRun(scenario, problem);
          })
          : await scenario.run(context);
        const verdict = record(scenario, runtime, backend, seed, report);
        if (options.verbose) {
          for (const [variant, outcome] of Object.entries(report.outcomes)) {
            console.log(
              `    ${variant || scenario.name}: ${
                JSON.stringify(outcome.notes)
              }`,
            );
          }
        }
        console.log(
          `  ${scenario.name} ${runtime} ${backend} ${i + 1}/${count} (${
            report.seconds.toFixed(1)
          } s): ${
            verdict.length > 160 ? `${verdict.slice(0, 157)}…` : verdict
          }`,
        );
      }
    }
  }
}

// ---- the table ------------------------------------------------------------

const header = [
  "scenario",
  "runtime",
  "backend",
  "runs",
  "lost",
  "doubled",
  "out-of-order",
  "hangs",
  "orphans 2s/5s",
  "leaked fds",
  "leaked threads",
  "leaked keys/conns",
  "other",
  "in hand",
  "s/run",
];
const rows: string[][] = [];
let bad = 0;
for (const [key, cell] of cells) {
  const failed = cell.lost + cell.doubled + cell.outOfOrder + cell.hangs +
    cell.orphans5s + cell.leakedFds + cell.leakedThreads + cell.leakedRedis +
    cell.other;
  bad += failed;
  rows.push([
    ...key.split("\t"),
    String(cell.runs),
    String(cell.lost),
    String(cell.doubled),
    String(cell.outOfOrder),
    String(cell.hangs),
    `${cell.orphans2s}/${cell.orphans5s}`,
    String(cell.leakedFds),
    String(cell.leakedThreads),
    String(cell.leakedRedis),
    String(cell.other),
    String(cell.inHand),
    (cell.seconds / cell.runs).toFixed(1),
  ]);
}
const widths = header.map((title, i) =>
  Math.max(title.length, ...rows.map((row) => row[i].length))
);
const line = (row: string[]): string =>
  `| ${
    row.map((text, i) =>
      i < 3 ? text.padEnd(widths[i]) : text.padStart(widths[i])
    )
      .join(" | ")
  } |`;
console.log(`\n${line(header)}`);
console.log(`|${widths.map((width) => "-".repeat(width + 2)).join("|")}|`);
for (const row of rows) console.log(line(row));
console.log(
  `\nother: runs with a failure no other column counts (a wrong result, a wrong qsize(), a crash).` +
    `\nin hand: the one item a killed consumer thread had taken and not yet reported (a thread can stop between two statements); the consumer's loss, not the queue's, not counted. A process cannot lose it: its acknowledgement travels with its report. In redis-queue, the one item a SIGKILLed consumer process had when the kill came after its get's acknowledgement reached Redis and before its print: lost, whether or not the get had returned (the acknowledgement is its last step), which the Redis README does not say.` +
    `\norphans: processes of a run alive 2 s / 5 s after its program ended (or was killed), and the workers of a worker host a redis-* program SIGKILLed alive 2 s / 5 s after the kill; the 5 s count fails.` +
    `\nleaked keys/conns: Redis keys beyond the documented ones, and connections of the program still open, after redis-leaks made and dropped its pools and queue handles.` +
    `\nbackend: of the worker hosts' local pools (redis-host-killed, redis-server-killed, redis-leaks); redis-queue's clients are processes.`,
);
if (failures.length > 0) {
  console.log(`\nFailures (${failures.length}):`);
  for (const failure of failures) console.log(`- ${failure}`);
}
const minutes = (performance.now() - started) / 60_000;
console.log(
  `\n${bad === 0 ? "All clean" : `${bad} problems`} in ${
    minutes.toFixed(1)
  } min (seed ${baseSeed}).`,
);
Deno.exit(bad === 0 ? 0 : 1);
