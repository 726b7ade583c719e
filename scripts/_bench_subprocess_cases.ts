/**
 * The subprocess benchmark cases for one runtime, one group at a time
 * (`spawn` or `pipe`, the first argument): prints a JSON object
 * `{ runtime, cases: { name: number[] } }` with the milliseconds per
 * operation of each round. Run by `scripts/bench_subprocess.ts` under Deno
 * (on the sources) and under Node (on the npm build).
 *
 * Groups run in separate processes: Node forks to spawn, and a heap holding
 * the 100 MiB pipe buffers would make every later spawn slower.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { Buffer } from "node:buffer";
import process from "node:process";
import { PIPE, Popen, run } from "../mod.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
const spawns = Number(process.env.BENCH_SPAWNS ?? 200);
const group = process.argv.at(-1) === "pipe" ? "pipe" : "spawn";
const pipeBytes = 100 * 1024 * 1024;
const input = group === "pipe"
  ? new Uint8Array(pipeBytes).fill(97)
  : new Uint8Array();
const isDeno = "Deno" in globalThis;

type Case = () => Promise<void>;

function nodeSpawnTrue(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("true", { stdio: "inherit" });
    child.once("error", reject);
    child.once("exit", () => resolve());
  });
}

function nodeCat(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("cat", { stdio: ["pipe", "pipe", "inherit"] });
    const chunks: Uint8Array[] = [];
    let length = 0;
    child.stdout!.on("data", (chunk: Uint8Array) => {
      chunks.push(chunk);
      length += chunk.byteLength;
    });
    child.once("error", reject);
    child.once("close", () => {
      // The caller wants the output as one buffer, as communicate() gives it.
      const output = Buffer.concat(chunks);
      if (output.byteLength !== pipeBytes) {
        reject(new Error(`got ${length} bytes`));
      } else resolve();
    });
    child.stdin!.end(input);
  });
}

async function denoSpawnTrue(): Promise<void> {
  await new Deno.Command("true", { stdout: "inherit", stderr: "inherit" })
    .output();
}

async function denoCat(): Promise<void> {
  const child = new Deno.Command("cat", { stdin: "piped", stdout: "piped" })
    .spawn();
  const writing = (async () => {
    const writer = child.stdin.getWriter();
    await writer.write(input);
    await writer.close();
  })();
  const [{ stdout }] = await Promise.all([child.output(), writing]);
  if (stdout.byteLength !== pipeBytes) {
    throw new Error(`got ${stdout.byteLength} bytes`);
  }
}

async function multiprocSpawnTrue(): Promise<void> {
  await run(["true"]);
}

async function multiprocCat(): Promise<void> {
  await using p = new Popen(["cat"], { stdin: PIPE, stdout: PIPE });
  const [stdout] = await p.communicate(input);
  if (stdout!.byteLength !== pipeBytes) {
    throw new Error(`got ${stdout!.byteLength} bytes`);
  }
}

async function execaCases(): Promise<Record<string, Case>> {
  const { execa } = await import("execa");
  if (group === "spawn") {
    return {
      "execa": async () => {
        await execa("true", { stdio: "inherit" });
      },
    };
  }
  return {
    "execa": async () => {
      const { stdout } = await execa("cat", {
        input: input,
        encoding: "buffer",
        maxBuffer: pipeBytes * 2,
      });
      if (stdout.byteLength !== pipeBytes) {
        throw new Error(`got ${stdout.byteLength} bytes`);
      }
    },
  };
}

const raw = isDeno ? "raw Deno.Command" : "raw node:child_process";
const cases: Record<string, Case> = {
  "multiproc": group === "spawn" ? multiprocSpawnTrue : multiprocCat,
  [raw]: group === "spawn"
    ? (isDeno ? denoSpawnTrue : nodeSpawnTrue)
    : (isDeno ? denoCat : nodeCat),
  ...(isDeno ? {} : await execaCases()),
};

async function measure(fn: Case): Promise<number> {
  const repeat = group === "spawn" ? spawns : 1;
  const started = performance.now();
  for (let i = 0; i < repeat; i++) await fn();
  return (performance.now() - started) / repeat;
}

const results: Record<string, number[]> = {};
for (const [name, fn] of Object.entries(cases)) {
  await measure(fn); // warm-up
  results[name] = [];
}
// Rounds interleave the cases, so that drift on a shared machine hits all alike.
for (let round = 0; round < rounds; round++) {
  for (const [name, fn] of Object.entries(cases)) {
    results[name]!.push(await measure(fn));
  }
}
console.log(JSON.stringify({
  runtime: isDeno ? `Deno ${Deno.version.deno}` : `Node ${process.version}`,
  cases: results,
}));
