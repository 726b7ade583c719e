/**
 * Python's `multiprocessing` and `subprocess`, for Deno and Node (and Bun).
 *
 * - {@linkcode Pool}: a pool of worker threads or child processes with
 *   `map`, `imap`, `imapUnordered`, `starmap`, `apply`, `applyAsync` (an
 *   {@linkcode AsyncResult} with `get({ timeout })`), `close`, `join` and
 *   `terminate`. Tasks are the exports of a module (type-checked) or
 *   self-contained functions.
 * - {@linkcode Process}: run a function in another process; `start`, `join`,
 *   `terminate`, `exitCode`; {@linkcode currentProcess} tells who is running.
 * - {@linkcode Queue}, {@linkcode JoinableQueue}, {@linkcode SimpleQueue} and
 *   {@linkcode Pipe}: pass them to tasks and processes (threads or OS
 *   processes alike) and they work there as here.
 * - {@linkcode Lock}, {@linkcode RLock}, {@linkcode Semaphore},
 *   {@linkcode BoundedSemaphore}, {@linkcode Event}, {@linkcode Condition},
 *   {@linkcode Barrier}, {@linkcode Value} and {@linkcode SharedArray}:
 *   Python's synchronization primitives and shared memory; they cross to
 *   workers like queues, and a lock whose owner died is released.
 * - {@linkcode run}, {@linkcode call}, {@linkcode checkCall},
 *   {@linkcode checkOutput} and {@linkcode Popen} start commands given as
 *   argv arrays (or one string with `shell: true`), capture or stream their
 *   output, feed their input, and stop them (or their whole process group)
 *   on a timeout or an abort signal; {@linkcode getoutput} and
 *   {@linkcode getstatusoutput} are Python's shell helpers.
 * - Many machines: `@multiproc/multiproc/redis` has the same `Pool` and
 *   `Queue` over Redis, served by the `multiproc-worker` command (it is the
 *   one entry point with a dependency, the `redis` client, so this module
 *   does not re-export it).
 *
 * Timeouts are in milliseconds; names are Python's, camelCased.
 *
 * ```ts
 * import { checkOutput, PIPE, Pool, Popen, Queue } from "@multiproc/multiproc";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * await using pool = new Pool({ processes: 2 });
 * deepEqual(await pool.map((x: number) => x * x, [1, 2, 3]), [1, 4, 9]);
 *
 * equal(await checkOutput(["echo", "hello"], { text: true }), "hello\n");
 *
 * const q = new Queue<string>();
 * await pool.apply(async (q: Queue<string>) => await q.put("from a worker"), [q]);
 * equal(await q.get(), "from a worker");
 *
 * await using sort = new Popen(["sort"], { stdin: PIPE, stdout: PIPE, text: true });
 * deepEqual(await sort.communicate("pear\napple\n"), ["apple\npear\n", null]);
 * ```
 *
 * @module
 */
export * from "./manager.ts";
export * from "./pool.ts";
export * from "./process.ts";
export * from "./queue.ts";
export * from "./subprocess.ts";
export * from "./sync.ts";
