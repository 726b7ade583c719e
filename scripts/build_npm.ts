/**
 * Builds the npm package into `npm/`: the sources compiled by `tsc` to ESM
 * with `.d.ts` files (relative specifiers rewritten to `.js`), the test suite
 * compiled beside them for `node --test` (left out of the published files),
 * and a `package.json` generated from `deno.json`, with the worker host's
 * command (`multiproc-worker`) and the Redis client as an optional peer
 * dependency.
 *
 * Run with `deno task build:npm`.
 *
 * @module
 */
import {
  chmod,
  copyFile,
  mkdir,
  readdir,
  readFile,
  rm,
  writeFile,
} from "node:fs/promises";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = join(root, "npm");

interface DenoConfig {
  name: string;
  version: string;
  license: string;
  exports: Record<string, string>;
}

const config = JSON.parse(
  await readFile(join(root, "deno.json"), "utf8"),
) as DenoConfig;

function esmPath(source: string, extension: string): string {
  return source.replace(/^\.\//, "./esm/").replace(/\.ts$/, extension);
}

function exportsMap(): Record<string, { types: string; default: string }> {
  return Object.fromEntries(
    Object.entries(config.exports).map(([entry, source]) => [entry, {
      types: esmPath(source, ".d.ts"),
      default: esmPath(source, ".js"),
    }]),
  );
}

/** The worker-host command of redis.ts, once its source exists. */
const workerCommand = existsSync(join(root, "worker.ts"))
  ? { "multiproc-worker": "./esm/worker.js" }
  : undefined;

const packageJson = {
  name: "multiproc",
  version: config.version,
  description:
    "Python's multiprocessing and subprocess for Node, Deno and Bun: process pools, processes, subprocesses, queues, pipes, locks, shared memory and managers",
  license: config.license,
  type: "module",
  main: "./esm/mod.js",
  types: "./esm/mod.d.ts",
  exports: exportsMap(),
  bin: workerCommand,
  // Only the `./redis` entry point (and the worker host) loads the Redis
  // client, v5 or v6: users of the rest install nothing more.
  peerDependencies: { redis: "^5.0.0 || ^6.0.0" },
  peerDependenciesMeta: { redis: { optional: true } },
  files: [
    "esm/",
    "!esm/tests/",
    "!esm/examples/",
    "!esm/scripts/",
    "README.md",
    "CHANGELOG.md",
    "LICENSE",
  ],
  engines: { node: ">=20" },
  keywords: [
    "multiprocessing",
    "subprocess",
    "child_process",
    "process",
    "pool",
    "worker",
    "queue",
    "lock",
    "manager",
    "redis",
    "distributed",
    "deno",
    "bun",
  ],
};

const tsconfig = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    lib: ["ES2024", "ESNext.Disposable", "ESNext.Array", "DOM"],
    types: ["node", "deno"],
    typeRoots: [join(root, "node_modules/@types")],
    rootDir: root,
    outDir: join(out, "esm"),
    declaration: true,
    rewriteRelativeImportExtensions: true,
    strict: true,
    skipLibCheck: true,
    noEmitOnError: true,
    removeComments: false,
    verbatimModuleSyntax: false,
  },
  include: [
    join(root, "*.ts"),
    join(root, "tests/**/*.ts"),
    join(root, "examples/**/*.ts"),
    join(root, "scripts/_bench_*.ts"),
  ],
};

async function sources(): Promise<string[]> {
  return (await readdir(root)).filter((name) => name.endsWith(".ts"));
}

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
const tsconfigPath = join(out, "tsconfig.build.json");
await writeFile(tsconfigPath, JSON.stringify(tsconfig, null, 2));
const tsc = spawnSync(
  join(root, "node_modules/.bin/tsc"),
  ["-p", tsconfigPath],
  { stdio: "inherit" },
);
await rm(tsconfigPath);
if (tsc.status !== 0) {
  console.error(`tsc failed with status ${tsc.status}`);
  Deno.exit(1);
}
// npm links the command to this file: Node runs it through the shebang,
// which tsc keeps from worker.ts (added here if that ever changes).
if (workerCommand) {
  const command = join(out, "esm", "worker.js");
  const source = await readFile(command, "utf8");
  if (!source.startsWith("#!")) {
    await writeFile(command, `#!/usr/bin/env node\n${source}`);
  }
  await chmod(command, 0o755);
}
await writeFile(
  join(out, "package.json"),
  JSON.stringify(packageJson, null, 2) + "\n",
);
for (const file of ["README.md", "CHANGELOG.md", "LICENSE"]) {
  await copyFile(join(root, file), join(out, file));
}
console.log(
  `Built npm/ (multiproc@${config.version}) from ${
    (await sources()).length
  } source files`,
);
