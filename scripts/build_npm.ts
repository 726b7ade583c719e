/**
 * Builds the npm package into `npm/`: the sources compiled by `tsc` to ESM
 * with `.d.ts` files (relative specifiers rewritten to `.js`), the test suite
 * compiled beside them for `node --test` (left out of the published files),
 * and a `package.json` generated from `deno.json`.
 *
 * Run with `deno task build:npm`.
 *
 * @module
 */
import {
  copyFile,
  mkdir,
  readdir,
  readFile,
  rm,
  writeFile,
} from "node:fs/promises";
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

const packageJson = {
  name: "multiproc",
  version: config.version,
  description:
    "Python's multiprocessing and subprocess for Node, Deno and Bun: process pools, processes, subprocesses, queues, pipes, locks and shared memory",
  license: config.license,
  type: "module",
  main: "./esm/mod.js",
  types: "./esm/mod.d.ts",
  exports: exportsMap(),
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
