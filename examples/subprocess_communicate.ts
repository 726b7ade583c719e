/**
 * The tour's `Popen` + `communicate()`: start an interactive program with
 * piped stdin, stdout and stderr, send it a script of commands, and read
 * everything it printed once it exits. (The original drives `nslookup`; here
 * the interactive program is `sh`, which every machine has.)
 *
 * Run with `deno run --allow-run examples/subprocess_communicate.ts`.
 *
 * @module
 */
import { PIPE, Popen } from "../mod.ts";

console.log("$ sh");
await using p = new Popen(["sh"], { stdin: PIPE, stdout: PIPE, stderr: PIPE });
const [output, err] = await p.communicate(
  "echo Hello from sh\nexpr 6 \\* 7\necho oops >&2\nexit\n",
);
console.log(new TextDecoder().decode(output!));
console.log("Stderr:", new TextDecoder().decode(err!).trim());
console.log("Exit code:", p.returncode);
