// The stress scenarios: which program each runs, with which arguments in
// full and short mode, on which backends, and how a run's end becomes
// outcomes for the table.
import {
  emptyOutcome,
  type Outcome,
} from "../tests/fixtures/stress/_report.ts";
import { descendants } from "./_stress_proc.ts";
import {
  Child,
  type Leftovers,
  leftovers,
  runProgram,
  type Runtime,
} from "./_stress_run.ts";

/** Where a scenario's workers run. */
export type Backend = "worker" | "process";

/** What one run of a scenario is given. */
export interface RunContext {
  runtime: Runtime;
  backend: Backend;
  short: boolean;
  seed: number;
}

/** What one run of a scenario found, by variant. */
export interface RunReport {
  outcomes: Record<string, Outcome>;
  /** Processes left alive 2 s and 5 s after the program ended, by variant. */
  orphans: Record<string, Leftovers>;
  seconds: number;
}

/** One fault the harness provokes again and again. */
export interface Scenario {
  name: string;
  /** One line for `--help`. */
  summary: string;
  backends: readonly Backend[];
  /** Rows of the table this scenario fills: `[""]` for one. */
  variants: readonly string[];
  run(context: RunContext): Promise<RunReport>;
}

function tail(text: string, lines = 6): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/**
 * A scenario that runs one program per run, with a time limit; the
 * program prints its outcomes, the harness adds what it saw from outside
 * (a hang, a crash, processes left behind).
 */
function programScenario(
  scenario: Omit<Scenario, "run">,
  program: string,
  args: (context: RunContext) => Record<string, unknown>,
  timeoutMs: (context: RunContext) => number,
): Scenario {
  return {
    ...scenario,
    async run(context) {
      const limit = timeoutMs(context);
      const result = await runProgram(
        context.runtime,
        program,
        { ...args(context), backend: context.backend, seed: context.seed },
        limit,
      );
      const outcomes: Record<string, Outcome> = {};
      for (const variant of scenario.variants) {
        const outcome = result.variants?.[variant] ?? emptyOutcome();
        if (result.timedOut) {
          outcome.hangs = 1;
          outcome.errors.push(
            `killed at the ${limit / 1000} s limit${
              result.variants ? "" : " without a result"
            }`,
          );
        } else if (result.variants === undefined) {
          outcome.errors.push(
            `ended (exit ${result.code}${
              result.signal ? `, ${result.signal}` : ""
            }) without a result: ${tail(result.stderr) || "no stderr"}`,
          );
        } else if (result.variants[variant] === undefined) {
          outcome.errors.push(`no result for variant "${variant}"`);
        } else if (result.code !== 0) {
          outcome.errors.push(`exit ${result.code}: ${tail(result.stderr)}`);
        }
        outcomes[variant] = outcome;
      }
      // What the program left running belongs to the whole program: shown
      // on its first row.
      const orphans = { [scenario.variants[0]]: result.leftovers };
      return { outcomes, orphans, seconds: result.seconds };
    },
  };
}

const consumerKilled = programScenario(
  {
    name: "consumer-killed",
    summary:
      "a consumer Process working 12 ms per item (busy loop; timer) is killed mid-stream, twice: each item reported or still queued, never both",
    backends: ["worker", "process"],
    variants: ["cpu", "timers"],
  },
  "consumer_killed",
  ({ short }) => ({
    items: short ? 200 : 400,
    rounds: 2,
    workMs: 12,
    maxDelayMs: short ? 400 : 1_000,
  }),
  () => 60_000,
);

const producerKilled = programScenario(
  {
    name: "producer-killed",
    summary:
      "a producer Process is killed mid-put (small and 100 KiB items): the queue intact, in order, usable",
    backends: ["worker", "process"],
    variants: ["small", "100KiB"],
  },
  "producer_killed",
  ({ short }) => ({
    smallItems: short ? 200 : 400,
    bigItems: short ? 30 : 60,
  }),
  () => 90_000,
);

const mpmc = programScenario(
  {
    name: "mpmc",
    summary:
      "8 producer and 8 consumer Processes share a queue (50k items): every item once, each producer's order kept",
    backends: ["worker", "process"],
    variants: [""],
  },
  "mpmc",
  ({ short }) => ({
    producers: 8,
    consumers: 8,
    items: short ? 8_000 : 50_000,
  }),
  ({ short }) => short ? 120_000 : 240_000,
);

const poolWorkerKilled = programScenario(
  {
    name: "pool-worker-killed",
    summary:
      "worker processes of a Pool are SIGKILLed while 10k tasks run: each task resolves or rejects with WorkerExitError, none hangs",
    backends: ["process"],
    variants: [""],
  },
  "pool_worker_killed",
  ({ short }) => ({
    tasks: short ? 2_000 : 10_000,
    workers: 4,
    kills: short ? 3 : 8,
    taskMicros: 300,
  }),
  () => 150_000,
);

const poolChurn = programScenario(
  {
    name: "pool-churn",
    summary:
      "100 x (new Pool, a few tasks, terminate): no fd, thread or process left",
    backends: ["worker", "process"],
    variants: [""],
  },
  "pool_churn",
  ({ short }) => ({ cycles: short ? 20 : 100, workers: 2 }),
  ({ short }) => short ? 120_000 : 300_000,
);

const MODES = ["idle", "async", "cpu"] as const;

/**
 * Three programs at once, one per kind of pool (idle, busy with timers,
 * computing without end); each is SIGKILLed alone once its pool is up, and
 * the pools' workers still alive 2 s and 5 s later are its orphans. They run
 * together so that a run waits those seconds once.
 */
const parentKilled: Scenario = {
  name: "parent-killed",
  summary:
    "the parent of an idle / timer-busy / computing process Pool is SIGKILLed: its workers must not outlive it",
  backends: ["process"],
  variants: MODES,
  async run(context) {
    const started = performance.now();
    const outcomes: Record<string, Outcome> = {};
    const orphans: Record<string, Leftovers> = {};
    await Promise.all(MODES.map(async (mode) => {
      const outcome = outcomes[mode] = emptyOutcome(2);
      const child = new Child(context.runtime, "orphan_parent", {
        backend: context.backend,
        mode,
        workers: 2,
        seed: context.seed,
      });
      const ready = await child.line("READY", 60_000);
      if (ready === undefined) {
        outcome.hangs = 1;
        outcome.errors.push(
          `no READY within 60 s: ${tail(child.stderr) || "no stderr"}`,
        );
      }
      // Its workers, and theirs, as the parent leaves them.
      const known = descendants(child.pid);
      outcome.notes.workers = known.length;
      child.killAlone();
      const killedAt = Date.now();
      await child.status;
      // The rest of the group, should the parent have been stuck before READY.
      if (ready === undefined) child.killGroup();
      orphans[mode] = await leftovers(child.tag, known, killedAt);
    }));
    return {
      outcomes,
      orphans,
      seconds: (performance.now() - started) / 1000,
    };
  },
};

/** Every scenario, in the order the table lists them. */
export const scenarios: readonly Scenario[] = [
  consumerKilled,
  producerKilled,
  mpmc,
  poolWorkerKilled,
  parentKilled,
  poolChurn,
];
