/**
 * The classic Python multiprocessing tour, on multiproc: each section runs
 * one of the ported examples in `examples/`, in the tour's order.
 *
 * Run with `npm run demo` (or `deno task demo`).
 *
 * @module
 */

const sections: [string, string][] = [
  ["Subprocess: call a command", "./subprocess_call.ts"],
  ["Subprocess: Popen and communicate()", "./subprocess_communicate.ts"],
];

for (const [title, file] of sections) {
  console.log(`\n=== ${title} (${file.slice(2)})`);
  await import(file);
}
