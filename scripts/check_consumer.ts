/**
 * Installs the built npm package (packed as `npm pack` would publish it)
 * into a throwaway consumer project, type-checks a file that imports
 * `multiproc` under each `moduleResolution` users pick, and runs it with
 * Node. Then a TypeScript program with a TypeScript task module runs, on
 * both backends, in a Pool and a Process, under each way Node users run
 * TypeScript (tsx and ts-node, pinned dev dependencies of the consumer
 * project, and Node's own type stripping), on this machine's Node and on
 * each Node that `scripts/test.ts` installed into `.runtimes/`. Exits
 * non-zero on any failure.
 *
 * Run after `deno task build:npm`.
 *
 * @module
 */
import { existsSync, readdirSync } from "node:fs";
import {
  mkdir,
  mkdtemp,
  readdir,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
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

/** The TypeScript runners users have, as the consumer's dev dependencies. */
const runners = ["tsx@4.23.15", "ts-node@10.9.2", "typescript@6.0.3"];

/** A TypeScript program: a Pool and a Process of each backend on argv[2]. */
const typeScriptMain = `import { Pool, Process } from "multiproc";

const tasks = new URL(process.argv[2]!, import.meta.url);
const outcome: Record<string, unknown> = {};
for (const backend of ["worker", "process"] as const) {
  const pool = new Pool<typeof import("./tasks.ts")>(tasks, { processes: 1, backend });
  outcome[\`Pool \${backend}\`] = await pool.apply("square", [4]).catch(String);
  await pool.terminate();
  const child = new Process({ module: tasks, target: "square", args: [3], backend });
  child.start();
  await child.join();
  outcome[\`Process \${backend}\`] = child.exitCode;
}
console.log(JSON.stringify(outcome));
`;

/** Types that every way of running TypeScript erases. */
const erasableTasks = `interface Squared { value: number }
export function square(x: number): number {
  const squared: Squared = { value: x * x };
  return squared.value;
}
`;

/** An enum: only a loader or --experimental-transform-types runs it. */
const enumTasks = `enum Offset { None = 0 }
export function square(x: number): number {
  return x * x + Offset.None;
}
`;

const typeScriptExpected = JSON.stringify({
  "Pool worker": 16,
  "Process worker": 0,
  "Pool process": 16,
  "Process process": 0,
});

/** This machine's Node and those in `.runtimes/`, by version. */
function nodeBinaries(): Map<string, string> {
  const binaries = new Map<string, string>();
  const add = (binary: string): void => {
    const { stdout } = new Deno.Command(binary, { args: ["--version"] })
      .outputSync();
    binaries.set(new TextDecoder().decode(stdout).trim(), binary);
  };
  add("node");
  const runtimes = join(root, ".runtimes");
  if (!existsSync(runtimes)) return binaries;
  for (const name of readdirSync(runtimes).sort()) {
    const platform = name.match(/^(node-[^-]+-[^-]+)-\d/)?.[1];
    const binary = join(
      runtimes,
      name,
      "node_modules",
      platform ?? "",
      "bin/node",
    );
    if (platform && existsSync(binary)) add(binary);
  }
  return binaries;
}

/**
 * The ways Node `major` runs TypeScript, each as its command line after the
 * node binary and the task module it can load.
 */
function typeScriptRuns(major: number): [string, string[], string][] {
  const runs: [string, string[], string][] = [
    ["tsx (--import tsx)", ["--import", "tsx", "main.ts"], "enum_tasks.ts"],
    [
      "tsx (npx tsx main.ts)",
      ["node_modules/tsx/dist/cli.mjs", "main.ts"],
      "enum_tasks.ts",
    ],
    [
      "ts-node (--loader ts-node/esm)",
      ["--loader", "ts-node/esm", "main.ts"],
      "enum_tasks.ts",
    ],
  ];
  if (major === 22) {
    runs.push(["--experimental-strip-types", [
      "--experimental-strip-types",
      "main.ts",
    ], "tasks.ts"]);
  }
  if (major >= 23) {
    runs.push(["type stripping by default", ["main.ts"], "tasks.ts"]);
  }
  if (major >= 22) {
    runs.push(["--experimental-transform-types", [
      "--experimental-transform-types",
      "main.ts",
    ], "enum_tasks.ts"]);
  }
  return runs;
}

/**
 * Runs the TypeScript program under each runner on each Node: the task
 * module must load in worker threads and child processes alike.
 */
async function checkTypeScriptRunners(consumer: string): Promise<void> {
  await sh("npm", [
    "install",
    "--no-audit",
    "--no-fund",
    "--prefer-offline",
    "--save-dev",
    ...runners,
  ], consumer);
  const project = join(consumer, "typescript");
  await mkdir(project);
  await writeFile(join(project, "main.ts"), typeScriptMain);
  await writeFile(join(project, "tasks.ts"), erasableTasks);
  await writeFile(join(project, "enum_tasks.ts"), enumTasks);
  // ts-node compiles ES modules for Node; type-checking is tsc's job above.
  await writeFile(
    join(project, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { module: "nodenext", target: "es2022" },
      "ts-node": { transpileOnly: true },
    }),
  );
  for (const [version, node] of nodeBinaries()) {
    const major = Number(version.match(/^v(\d+)/)![1]);
    for (const [runner, args, tasks] of typeScriptRuns(major)) {
      const started = performance.now();
      const argv = [...args, `./${tasks}`];
      if (args[0]!.startsWith("node_modules/")) {
        argv[0] = join(consumer, args[0]!);
      }
      const output = (await sh(node, argv, project)).trim();
      if (output !== typeScriptExpected) {
        throw new Error(
          `Expected ${runner} on Node ${version} to print ${typeScriptExpected}, got ${output}`,
        );
      }
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.log(
        `Node ${version}, ${runner}: ${tasks} in a Pool and a Process on both backends (${seconds} s)`,
      );
    }
  }
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
  // Before the Redis client is linked in: npm would prune the link.
  await checkTypeScriptRunners(dir);
  // The worker host of redis.ts, as npm links it, beside the Redis client
  // its users install (the workspace's copy: the install above is offline).
  if (existsSync(join(root, "npm/esm/worker.js"))) {
    await symlink(
      join(root, "node_modules/redis"),
      join(dir, "node_modules/redis"),
    );
    const help = await sh("npx", [
      "--no",
      "--",
      "multiproc-worker",
      "--help",
    ], dir);
    if (!help.includes("--redis")) {
      throw new Error(
        `Expected multiproc-worker --help to say --redis: ${help}`,
      );
    }
    console.log("npx: multiproc-worker --help works");
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
