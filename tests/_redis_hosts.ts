// Worker hosts for the Redis tests: each a separate OS process running the
// `multiproc-worker` command (worker.ts) with the runtime that runs the
// tests, as on another machine. Their log lines are collected. A host dies
// with the test process, even a SIGKILLed one (_parent_guard.ts), and its
// local workers with it (as any pool's workers die with their parent).
import type { ChildProcess } from "node:child_process";
import { PIPE, Popen } from "../subprocess.ts";
import { delay, networkScriptCommand } from "./_helpers.ts";
import {
  canSetDeathSignal,
  guarded,
  stopWatcher,
  watch,
} from "./_parent_guard.ts";

const typescript = import.meta.url.endsWith(".ts");

/** The argv that runs `multiproc-worker` with `args`. */
export function workerCommand(...args: string[]): string[] {
  return networkScriptCommand("../worker", ...args);
}

/** The URL of the task module the hosts serve. */
export function tasksModule(): string {
  return new URL(
    `./fixtures/tasks.${typescript ? "ts" : "js"}`,
    import.meta.url,
  )
    .pathname;
}

/** Options of {@linkcode startHost}. */
export interface HostProcessOptions {
  /** Local workers. @default {2} */
  processes?: number;
  /** Pass `--allow-inline`. @default {false} */
  allowInline?: boolean;
  /** More arguments before the module. @default {[]} */
  args?: string[];
}

/** A host process and what it logged. */
export class HostProcess implements AsyncDisposable {
  readonly lines: string[] = [];
  /** Resolves with its exit code, or `-N` when signal N ended it. */
  readonly exited: Promise<number>;
  #child: Popen;
  #watcher: ChildProcess | undefined;
  #ended = false;

  // stderr is read line by line as it comes.
  constructor(argv: string[]) {
    const guard = canSetDeathSignal();
    this.#child = new Popen(guard ? guarded(argv) : argv, { stderr: PIPE });
    if (!guard) this.#watcher = watch(this.#child.pid);
    const reading = this.#read(this.#child.stderr!);
    this.exited = this.#child.wait().then(async (code) => {
      stopWatcher(this.#watcher);
      await reading;
      this.#ended = true;
      return code;
    });
  }

  // Lines are split as they come, across chunks.
  async #read(stream: ReadableStream<Uint8Array>): Promise<void> {
    let partial = "";
    const decoder = new TextDecoder();
    for await (const bytes of stream) {
      const chunk = decoder.decode(bytes, { stream: true });
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      this.lines.push(...parts);
    }
    if (partial !== "") this.lines.push(partial);
  }

  /** The host's pid. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Resolves with the first log line matching `pattern`, within `ms`. */
  async waitFor(pattern: RegExp, ms = 30_000): Promise<string> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const line = this.lines.find((l) => pattern.test(l));
      if (line !== undefined) return line;
      if (this.#ended) break;
      await delay(20);
    }
    throw new Error(
      `The host did not log ${pattern} within ${ms} ms; it logged:\n${
        this.lines.join("\n")
      }`,
    );
  }

  /** Sends `signal` to the host. */
  signal(signal: "SIGINT" | "SIGTERM" | "SIGKILL"): void {
    if (!this.#ended) this.#child.sendSignal(signal);
  }

  /** Kills the host if it still runs and waits for it. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.signal("SIGKILL");
    await this.exited;
  }
}

/** Starts a host of pool `name` on `url` and waits until it serves. */
export async function startHost(
  url: string,
  name: string,
  options: HostProcessOptions = {},
): Promise<HostProcess> {
  const host = new HostProcess(workerCommand(
    "--redis",
    url,
    "--name",
    name,
    "--processes",
    String(options.processes ?? 2),
    ...(options.allowInline ? ["--allow-inline"] : []),
    ...(options.args ?? []),
    tasksModule(),
  ));
  try {
    await host.waitFor(/serving/);
  } catch (error) {
    await host[Symbol.asyncDispose]();
    throw error;
  }
  return host;
}
