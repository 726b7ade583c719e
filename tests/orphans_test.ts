// A program that dies, even by SIGKILL, leaves none of the processes it
// started behind: pool workers and Processes end within about two seconds
// of their parent, busy, idle or still starting. On Linux the kernel ends
// them (setpriv's parent-death signal); without setpriv, a watchdog thread.
import { describe, test } from "node:test";
import { deepEqual, ok } from "node:assert/strict";
import process from "node:process";
import { PIPE, Popen } from "../mod.ts";
import { eventually, groupPids, scriptCommand } from "./_helpers.ts";

/** The aim is 2 s; the rest is room for a loaded machine. */
const LIMIT_MS = 5_000;

/**
 * Each scenario of `fixtures/orphan_scenarios`, and how many processes it
 * starts: a pool of 8 starts as many as can start at once (4 or more).
 */
const scenarios: [
  scenario: string,
  title: string,
  children: [least: number, most: number],
][] = [
  ["starting", "a pool of 8 process workers killed as they start", [4, 8]],
  ["idle", "an idle process pool", [2, 2]],
  ["busy", "process workers running synchronous code", [2, 2]],
  ["process", "a Process running synchronous code", [1, 1]],
  [
    "nested",
    "a busy Process and the busy process workers of its own pool",
    [3, 3],
  ],
];

/** How the parent runs: as it is, and with no setpriv to be found. */
const guards: [title: string, env: Record<string, string>][] = [
  ["", {}],
  [", without setpriv (a watchdog thread)", { PATH: "/nonexistent" }],
];

/** Kills whatever is left of process group `pgid`. */
function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // Nothing left.
  }
}

describe("Orphans: the processes of a SIGKILLed program end", () => {
  for (const [guard, env] of guards) {
    for (const [scenario, title, children] of scenarios) {
      test(`${title}${guard}`, async () => {
        // The parent leads a process group that its children inherit, so
        // they can be found once they are orphans.
        await using parent = new Popen(
          scriptCommand("./fixtures/orphan_scenarios", scenario),
          { stdout: PIPE, stderr: PIPE, text: true, killTree: true, env },
        );
        const pgid = parent.pid;
        try {
          const { value } = await parent.lines().next();
          if (value !== "ready") {
            killGroup(pgid);
            const stderr = await new Response(parent.stderr).text();
            throw new Error(`The parent failed: ${value ?? ""}${stderr}`);
          }
          const started = groupPids(pgid).filter((pid) => pid !== pgid);
          const [least, most] = children;
          ok(
            least <= started.length && started.length <= most,
            `children: ${started.join(", ")}`,
          );
          process.kill(pgid, "SIGKILL");
          await parent.wait();
          await eventually(() => groupPids(pgid).length === 0, LIMIT_MS);
          deepEqual(groupPids(pgid), [], `still running ${LIMIT_MS} ms later`);
        } finally {
          killGroup(pgid);
        }
      });
    }
  }
});
