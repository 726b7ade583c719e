// The stress scenarios of redis.ts: each program (tests/fixtures/stress/
// redis_*.ts) starts a redis-server of its own and its worker hosts and
// queue clients as separate processes, provokes the fault, and counts what
// it found; the harness adds what it saw from outside (a hang, a crash,
// processes left behind). The workers of a host the program SIGKILLed are
// counted by the program, 2 s and 5 s after the kill, as the harness counts
// a program's own leftovers.
import {
  emptyOutcome,
  type Outcome,
} from "../tests/fixtures/stress/_report.ts";
import type { RunContext, RunReport, Scenario } from "./_stress_scenarios.ts";
import { runProgram } from "./_stress_run.ts";

/** A scenario, and how many runs the short pass (`--short`) gives it. */
export interface RedisScenario extends Scenario {
  shortRuns: number;
}

// The end of a program's stderr, without colours: the error before its stack.
function tail(text: string, lines = 12): string {
  // deno-lint-ignore no-control-regex
  const plain = text.replace(/\x1b\[[0-9;]*m/g, "");
  return plain.trimEnd().split("\n").slice(-lines).join("\n");
}

/** One program per run, with a time limit. */
function redisScenario(
  scenario: Omit<RedisScenario, "run">,
  program: string,
  args: (context: RunContext) => Record<string, unknown>,
  timeoutMs: (context: RunContext) => number,
): RedisScenario {
  return {
    ...scenario,
    async run(context: RunContext): Promise<RunReport> {
      const limit = timeoutMs(context);
      const result = await runProgram(
        context.runtime,
        program,
        {
          ...args(context),
          backend: context.backend,
          short: context.short,
          seed: context.seed,
        },
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
            }: ${tail(result.stderr) || "no stderr"}`,
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
      // The program's leftovers, and the killed host's workers it counted,
      // show on its first row.
      const first = outcomes[scenario.variants[0]]!;
      const orphans = {
        [scenario.variants[0]]: {
          at2s: Math.max(result.leftovers.at2s, first.notes.orphans2s ?? 0),
          at5s: Math.max(result.leftovers.at5s, first.notes.orphans5s ?? 0),
        },
      };
      return { outcomes, orphans, seconds: result.seconds };
    },
  };
}

const hostKilled = redisScenario(
  {
    name: "redis-host-killed",
    summary:
      "one of two worker hosts is SIGKILLed during a map and an imap of slow tasks (chunksize 1, visibilityTimeout 1.5 s): every result once, in order; its workers die with it",
    backends: ["worker", "process"],
    variants: [""],
    shortRuns: 1,
  },
  "redis_host_killed",
  ({ short }) => ({
    tasks: short ? 16 : 40,
    taskMs: short ? 150 : 250,
    visibilityMs: 1_500,
  }),
  () => 120_000,
);

const serverKilled = redisScenario(
  {
    name: "redis-server-killed",
    summary:
      "redis-server (appendfsync always) is SIGKILLed and restarted during a map and an imap on two hosts, briefly among short tasks, and for longer than visibilityTimeout while longer tasks run (delivered again meanwhile): both complete, every result once, in order",
    backends: ["worker"],
    variants: ["brief-outage", "long-outage"],
    shortRuns: 1,
  },
  "redis_server_killed",
  ({ short }) => {
    const visibilityMs = short ? 1_000 : 1_500;
    return {
      visibilityMs,
      brief: {
        tasks: short ? 16 : 60,
        taskMs: short ? 100 : 150,
        killFrom: 0,
        killTo: 0.9,
        minDownMs: 0,
        maxDownMs: visibilityMs / 2,
      },
      // Killed while the first tasks run, back before they end.
      long: {
        tasks: short ? 4 : 8,
        taskMs: short ? 3_000 : 4_000,
        killFrom: 0.05,
        killTo: 0.25,
        // Past the driver's liveness (2 × visibilityTimeout) half the time:
        // hosts then take it for gone and drop what they read of it.
        minDownMs: visibilityMs,
        maxDownMs: visibilityMs * 2.8,
      },
    };
  },
  () => 150_000,
);

const queueTraffic = redisScenario(
  {
    name: "redis-queue",
    summary:
      "2 producer and 2 consumer processes on a Redis queue; a consumer is SIGKILLed, or paused past its liveness (replaced, resumed, then killed), or redis-server restarted: every item taken once, an item a dead getter held comes back, each producer's order kept per consumer",
    backends: ["process"],
    variants: ["consumer-killed", "consumer-paused", "redis-killed"],
    shortRuns: 1,
  },
  "redis_queue",
  ({ short }) => ({
    items: short ? 200 : 1_000,
    maxDownMs: short ? 500 : 1_500,
  }),
  // The full pass waits for a killed getter's liveness key to expire (30 s).
  ({ short }) => short ? 120_000 : 240_000,
);

const leaks = redisScenario(
  {
    name: "redis-leaks",
    summary:
      "30 Redis pools made, used and terminated and 30 queue handles disconnected: no fd, thread or connection of the program left, no key but the documented ones",
    backends: ["worker"],
    variants: [""],
    shortRuns: 1,
  },
  "redis_leaks",
  () => ({ pools: 30, queues: 30 }),
  () => 180_000,
);

/** The Redis scenarios, in the order the table lists them. */
export const redisScenarios: readonly RedisScenario[] = [
  hostKilled,
  serverKilled,
  queueTraffic,
  leaks,
];
