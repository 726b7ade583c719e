// The types shared by the spawn front (_spawn.ts) and its runtime adapters
// (_spawn_deno.ts, _spawn_node.ts), in a file of types only so that the
// front can import the adapters without the adapters importing it back (as
// dax keeps them in process.common.ts).
import type { OutputPipe } from "./_pipe.ts";

/** Where one of the child's standard streams goes. */
export type StdioMode = "pipe" | "null" | "inherit";

/** Everything an adapter needs to start a child. */
export interface SpawnRequest {
  command: string;
  args: readonly string[];
  cwd: string | undefined;
  /** Variables to set on top of the parent's environment (or alone with `clearEnv`). */
  env: Record<string, string> | undefined;
  clearEnv: boolean;
  stdin: StdioMode;
  stdout: StdioMode;
  /** `"stdout"` sends stderr down stdout's pipe. */
  stderr: StdioMode | "stdout";
  /** Start the child as the leader of a new process group (and session). */
  group: boolean;
}

/** A request as the adapters take it: stderr goes to a place of its own. */
export type AdapterRequest = SpawnRequest & { stderr: StdioMode };

/** How a child ended: `signal` is set when a signal killed it. */
export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

/** A started child, seen through web streams. */
export interface SpawnedChild {
  readonly pid: number;
  readonly stdin: WritableStream<Uint8Array> | null;
  readonly stdout: OutputPipe | null;
  readonly stderr: OutputPipe | null;
  readonly exited: Promise<ExitStatus>;
  /** Sends `signal` to the child, or to its whole group; quiet when it is already gone. */
  kill(signal: string, group: boolean): void;
}
