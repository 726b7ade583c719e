/**
 * The tour's `subprocess.call`: run a command as if typed at the terminal,
 * its output going straight to ours, and print its exit code. (The original
 * runs `nslookup www.python.org`; `uname -a` is on every machine and needs no
 * network.)
 *
 * Run with `deno run --allow-run examples/subprocess_call.ts`.
 *
 * @module
 */
import { call } from "../mod.ts";

console.log("$ uname -a");
const r = await call(["uname", "-a"]);
console.log("Exit code:", r);
