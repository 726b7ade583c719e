// Runs one stress program in a fresh child: Deno on the sources or Node on
// the npm build, in a process group of its own (so that a hang is ended
// with everything it started), with a run tag in its environment (so that
// the processes it leaves behind can be found and counted).
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Outcome } from "../tests/fixtures/stress/_report.ts";
import { RESULT_PREFIX } from "../tests/fixtures/stress/_report.ts";
import { isAlive, killAll, tagged } from "./_stress_proc.ts";

/** The runtimes a program runs in. */
export type Runtime = "deno" | "node";

/** The repository's root directory. */
export const root: string = fileURLToPath(new URL("..", import.meta.url));

/** The environment variable that tags every process of a run. */
export const TAG_VARIABLE = "MULTIPROC_STRESS_RUN";

let runs = 0;
/** Children not yet reaped, for {@linkcode stopEverything}. */
const running = new Set<Child>();

/** The argv that runs stress program `name` (in tests/fixtures/stress/). */
function programCommand(runtime: Runtime, name: string): string[] {
  return runtime === "deno"
    ? [
      Deno.execPath(),
      "run",
      "-A",
      join(root, "tests/fixtures/stress", `${name}.ts`),
    ]
    : ["node", join(root, "npm/esm/tests/fixtures/stress", `${name}.js`)];
}

/** A stress program running in a child process. */
export class Child {
  readonly pid: number;
  /** This run's tag: `MULTIPROC_STRESS_RUN` in every process it starts. */
  readonly tag: string;
  readonly status: Promise<Deno.CommandStatus>;
  stdout = "";
  stderr = "";
  readonly #process: Deno.ChildProcess;
  #lineWaiters: (() => void)[] = [];
  readonly #reading: Promise<void>;

  constructor(runtime: Runtime, name: string, args: Record<string, unknown>) {
    this.tag = `${Deno.pid}.${++runs}.${Date.now()}`;
    const [program, ...rest] = programCommand(runtime, name);
    // setsid: the child leads a process group of its own, which a hang
    // kills as a whole, and which the harness's own signals do not reach.
    this.#process = new Deno.Command("setsid", {
      args: [program, ...rest, JSON.stringify(args)],
      cwd: root,
      env: { [TAG_VARIABLE]: this.tag },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#process.pid;
    this.status = this.#process.status;
    running.add(this);
    this.status.finally(() => running.delete(this));
    this.#reading = Promise.all([
      this.#read(this.#process.stdout, (text) => this.stdout += text),
      this.#read(this.#process.stderr, (text) => this.stderr += text),
    ]).then(() => {});
  }

  async #read(
    stream: ReadableStream<Uint8Array>,
    add: (text: string) => void,
  ): Promise<void> {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      add(text);
      for (const wake of this.#lineWaiters.splice(0)) wake();
    }
  }

  /** Resolves with the first stdout line that starts with `prefix`, or `undefined` after `ms`. */
  async line(prefix: string, ms: number): Promise<string | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.stdout.split("\n").find((line) =>
        line.startsWith(prefix)
      );
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const exited = this.status.then(() => "exited");
      const woke = await Promise.race([
        new Promise<string>((resolve) =>
          this.#lineWaiters.push(() => resolve("line"))
        ),
        new Promise<string>((resolve) =>
          timer = setTimeout(resolve, left, "late")
        ),
        exited,
      ]);
      clearTimeout(timer);
      if (woke === "exited") {
        await this.finished();
        return this.stdout.split("\n").find((line) => line.startsWith(prefix));
      }
    }
  }

  /** SIGKILLs the child's whole process group. */
  killGroup(): void {
    try {
      Deno.kill(-this.pid, "SIGKILL");
    } catch {
      // The group is gone.
    }
  }

  /** SIGKILLs the child alone, as an OOM killer or a crash would end it. */
  killAlone(): void {
    try {
      Deno.kill(this.pid, "SIGKILL");
    } catch {
      // Gone.
    }
  }

  /**
   * Waits for the child's end and the last of its output. Process workers
   * share the child's stdout and stderr, so workers that outlive it keep
   * the pipes open: their output is not waited for beyond a second.
   */
  async finished(): Promise<Deno.CommandStatus> {
    const status = await this.status;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#reading,
      new Promise((resolve) => timer = setTimeout(resolve, 1_000)),
    ]);
    clearTimeout(timer);
    return status;
  }
}

/** Processes of a run still alive at 2 s and at 5 s after its main program ended. */
export interface Leftovers {
  at2s: number;
  at5s: number;
}

/**
 * Counts the processes carrying `tag` (or among `known`) that are still
 * alive, polling until none is or 5 s have passed since `since`, then kills
 * those that are left: the harness must not leave orphans of its own.
 */
export async function leftovers(
  tag: string,
  known: readonly number[] = [],
  since = Date.now(),
): Promise<Leftovers> {
  const alive = (): number[] => [
    ...new Set([...tagged(TAG_VARIABLE, tag), ...known.filter(isAlive)]),
  ];
  let at2s: number | undefined;
  let left = alive();
  while (left.length > 0 && Date.now() - since < 5_000) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    left = alive();
    if (at2s === undefined && Date.now() - since >= 2_000) at2s = left.length;
  }
  at2s ??= left.length;
  killAll(left);
  return { at2s, at5s: left.length };
}

/** How one program run ended, as the harness saw it. */
export interface ProgramResult {
  /** The outcomes the program printed, by variant; `undefined` when it printed none. */
  variants: Record<string, Outcome> | undefined;
  /** The harness killed it at its time limit. */
  timedOut: boolean;
  code: number;
  signal: Deno.Signal | null;
  stderr: string;
  leftovers: Leftovers;
  seconds: number;
}

/**
 * Runs stress program `name` to its end (or kills its group after
 * `timeoutMs`), reads its result line, and counts what it left running.
 */
export async function runProgram(
  runtime: Runtime,
  name: string,
  args: Record<string, unknown>,
  timeoutMs: number,
): Promise<ProgramResult> {
  const started = performance.now();
  const child = new Child(runtime, name, args);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.killGroup();
  }, timeoutMs);
  const status = await child.finished();
  clearTimeout(timer);
  const left = await leftovers(child.tag);
  const line = child.stdout.split("\n").findLast((line) =>
    line.startsWith(RESULT_PREFIX)
  );
  return {
    variants: line === undefined
      ? undefined
      : JSON.parse(line.slice(RESULT_PREFIX.length)),
    timedOut,
    code: status.code,
    signal: status.signal,
    stderr: child.stderr,
    leftovers: left,
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * Kills every child still running and every process any run of this
 * harness started (by its tag): for an interrupted harness, whose children
 * lead their own process groups and so never see the terminal's Ctrl-C.
 */
export function stopEverything(): void {
  for (const child of running) child.killGroup();
  killAll(tagged(TAG_VARIABLE, `${Deno.pid}.`, { prefix: true }));
}
