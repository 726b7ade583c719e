/**
 * Installs the built npm package (packed as `npm pack` would publish it)
 * into a throwaway consumer project, type-checks a file that imports
 * `multiproc` under each `moduleResolution` users pick, and runs it with
 * Node. Exits non-zero on any failure.
 *
 * Run after `deno task build:npm`.
 *
 * @module
 */
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const tsc = join(root, "node_modules/.bin/tsc");

async function sh(
  command: string,
  args: string[],
  cwd: string,
): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout);
  if (code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${code}):\n${text}${
        new TextDecoder().decode(stderr)
      }`,
    );
  }
  return text;
}

const consumerSource = `
import { checkOutput, PIPE, Popen, run, type CompletedProcess } from "multiproc";
import { Pool } from "multiproc/pool";
import { Process } from "multiproc/process";
import { Queue } from "multiproc/queue";
import { call } from "multiproc/subprocess";
import { Lock, Value } from "multiproc/sync";

const result: CompletedProcess<string> = await run(["echo", "consumer"], { capture: true, text: true });
const bytes: Uint8Array = await checkOutput(["printf", "x"]);
const sorter = new Popen(["sort"], { stdin: PIPE, stdout: PIPE, text: true });
const [sorted] = await sorter.communicate("b\\na\\n");
const code: number = await call(["sh", "-c", "exit 5"]);
// The worker bootstrap must be found inside node_modules, on both backends.
const threads = new Pool({ processes: 2 });
const processes = new Pool({ processes: 2, backend: "process" });
const squares: number[] = await threads.map((x: number) => x * x, [1, 2, 3]);
const cubes: number[] = await processes.map((x: number) => x ** 3, [1, 2, 3]);
// A queue crosses to both kinds of worker from inside node_modules.
const q = new Queue<number>();
await threads.apply(async (q: Queue<number>) => await q.put(1), [q]);
await processes.apply(async (q: Queue<number>) => await q.put(2), [q]);
const fromWorkers: number[] = [await q.get(), await q.get()];
// A lock crosses to both kinds of worker, a Value to threads.
const lock = new Lock();
const counter = new Value("i32", 0);
// (No await using inside: tsc lowers it to helpers an inline task lacks.)
await threads.apply(async (lock: Lock, counter: Value<"i32">) => {
  await lock.acquire();
  counter.value += 1;
  lock.release();
}, [lock, counter]);
const locked: boolean = await processes.apply(
  async (lock: Lock) => await lock.acquire({ timeout: 5000 }),
  [lock],
);
await Promise.all([threads.terminate(), processes.terminate()]);
const child = new Process({ target: () => {} , backend: "process" });
child.start();
await child.join();
console.log(JSON.stringify([result.stdout, bytes.length, sorted, code, squares, cubes, child.exitCode, fromWorkers, counter.value, locked]));
`;
const expected = JSON.stringify([
  "consumer\n",
  1,
  "a\nb\n",
  5,
  [1, 4, 9],
  [1, 8, 27],
  0,
  [1, 2],
  1,
  true,
]);

/** What users install: the runtime files, never tests, examples or scripts. */
async function checkPackedFiles(tarball: string, cwd: string): Promise<void> {
  const files = (await sh("tar", ["tzf", tarball], cwd)).trim().split("\n");
  const unwanted = files.filter((file) =>
    /^package\/esm\/(tests|examples|scripts)\//.test(file)
  );
  if (unwanted.length > 0) {
    throw new Error(`The package ships files users do not need: ${unwanted}`);
  }
  for (const needed of ["package/esm/_bootstrap.js", "package/esm/mod.d.ts"]) {
    if (!files.includes(needed)) {
      throw new Error(`The package lacks ${needed}`);
    }
  }
  console.log(`npm pack: ${files.length} files, none of them tests or scripts`);
}

const dir = await mkdtemp(join(tmpdir(), "multiproc-consumer-"));
try {
  await sh("npm", ["pack", "--pack-destination", dir, join(root, "npm")], dir);
  const tarball = (await readdir(dir)).find((name) => name.endsWith(".tgz"))!;
  await checkPackedFiles(tarball, dir);
  await writeFile(
    join(dir, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }),
  );
  await sh("npm", [
    "install",
    "--no-audit",
    "--no-fund",
    "--offline",
    `./${tarball}`,
  ], dir);
  await writeFile(join(dir, "main.ts"), consumerSource);
  for (
    const [module, resolution] of [
      ["node16", "node16"],
      ["nodenext", "nodenext"],
      ["esnext", "bundler"],
    ]
  ) {
    await sh(tsc, [
      "--strict",
      "--target",
      "es2022",
      "--module",
      module,
      "--moduleResolution",
      resolution,
      "--types",
      "node",
      "--typeRoots",
      join(root, "node_modules/@types"),
      "--outDir",
      "out",
      "main.ts",
    ], dir);
    console.log(`tsc: types resolve with moduleResolution ${resolution}`);
  }
  const output = (await sh("node", ["out/main.js"], dir)).trim();
  if (output !== expected) {
    throw new Error(
      `Expected the consumer to print ${expected}, got ${output}`,
    );
  }
  console.log(`node: the installed package runs (${output})`);
  // require() of an ES module works from Node 20.19 and 22.12 on.
  await writeFile(
    join(dir, "main.cjs"),
    `const { checkOutput } = require("multiproc");
checkOutput(["echo", "required"], { text: true }).then((out) => console.log(out.trim()));
`,
  );
  const required = (await sh("node", ["main.cjs"], dir)).trim();
  if (required !== "required") {
    throw new Error(`Expected require("multiproc") to work, got ${required}`);
  }
  console.log('node: require("multiproc") works');
} finally {
  await rm(dir, { recursive: true, force: true });
}
