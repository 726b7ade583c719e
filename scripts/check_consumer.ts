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
import { call } from "multiproc/subprocess";

const result: CompletedProcess<string> = await run(["echo", "consumer"], { capture: true, text: true });
const bytes: Uint8Array = await checkOutput(["printf", "x"]);
const sorter = new Popen(["sort"], { stdin: PIPE, stdout: PIPE, text: true });
const [sorted] = await sorter.communicate("b\\na\\n");
const code: number = await call(["sh", "-c", "exit 5"]);
console.log(JSON.stringify([result.stdout, bytes.length, sorted, code]));
`;
const expected = JSON.stringify(["consumer\n", 1, "a\nb\n", 5]);

const dir = await mkdtemp(join(tmpdir(), "multiproc-consumer-"));
try {
  await sh("npm", ["pack", "--pack-destination", dir, join(root, "npm")], dir);
  const tarball = (await readdir(dir)).find((name) => name.endsWith(".tgz"))!;
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
} finally {
  await rm(dir, { recursive: true, force: true });
}
