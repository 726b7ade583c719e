/**
 * Python's `multiprocessing` and `subprocess`, for Deno and Node.
 *
 * - {@linkcode run}, {@linkcode call}, {@linkcode checkCall},
 *   {@linkcode checkOutput} and {@linkcode Popen} start commands given as
 *   argv arrays, capture or stream their output, feed their input, and stop
 *   them (or their whole process group) on a timeout or an abort signal.
 *
 * Timeouts are in milliseconds; names are Python's, camelCased.
 *
 * ```ts
 * import { checkOutput, PIPE, Popen } from "@multiproc/multiproc";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * equal(await checkOutput(["echo", "hello"], { text: true }), "hello\n");
 *
 * await using sort = new Popen(["sort"], { stdin: PIPE, stdout: PIPE, text: true });
 * deepEqual(await sort.communicate("pear\napple\n"), ["apple\npear\n", null]);
 * ```
 *
 * @module
 */
export * from "./pool.ts";
export * from "./process.ts";
export * from "./subprocess.ts";
