import { describe, test } from "node:test";
import { equal, match } from "node:assert/strict";
import { run } from "../mod.ts";
import { scriptCommand } from "./_helpers.ts";

async function runExample(name: string): Promise<string> {
  const result = await run(scriptCommand(`../examples/${name}`), {
    capture: true,
    text: true,
    timeout: 60_000,
  });
  equal(result.stderr, "", `${name} printed nothing to stderr`);
  equal(result.returncode, 0);
  return result.stdout!;
}

describe("examples: the classic tour", () => {
  test("subprocess.call prints the command's output and exit code", async () => {
    const out = await runExample("subprocess_call");
    match(out, /^\$ uname -a\n\S+ .*\nExit code: 0\n$/);
  });

  test("Popen + communicate drives an interactive sh", async () => {
    const out = await runExample("subprocess_communicate");
    equal(
      out,
      "$ sh\nHello from sh\n42\n\nStderr: oops\nExit code: 0\n",
    );
  });

  test("the tour runs every section in order", async () => {
    const out = await runExample("tour");
    match(out, /=== Subprocess: call a command[\s\S]*Exit code: 0/);
    match(out, /=== Subprocess: Popen and communicate\(\)[\s\S]*42/);
  });
});
