/**
 * The whole test command: static checks, the Deno test suite with the JSDoc
 * examples, the npm build, the same suite on Node against the build, a short
 * pass of the stress scenarios, a consumer project that installs the
 * package, and a publish dry run. Stops at the first failure with a non-zero
 * exit code.
 *
 * Run with `npm test` (or `deno task test`).
 *
 * @module
 */
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { arch, platform, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { type Report, writeCompatTable } from "./_compat_table.ts";
import { startRedis } from "../tests/_redis_server.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const deno = Deno.execPath();
/** Node versions the npm build is also tested on, beside the machine's own Node. */
const extraNodes = ["22.23.3", "24.9.0"];
const bunVersion = "1.4.5";

/**
 * The binary `bin` of npm package `name@version`, installed from the npm
 * registry into `.runtimes/` on first use.
 */
async function runtimeBinary(
  name: string,
  version: string,
  bin: string,
): Promise<string> {
  const prefix = join(root, ".runtimes", `${name}-${version}`);
  const binary = join(prefix, "node_modules", bin);
  if (existsSync(binary)) return binary;
  console.log(`Installing ${name}@${version} into .runtimes/`);
  const { code } = await new Deno.Command("npm", {
    args: [
      "install",
      "--no-save",
      "--no-audit",
      "--no-fund",
      "--prefix",
      prefix,
      `${name}@${version}`,
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0 || !existsSync(binary)) {
    throw new Error(`Cannot install ${name}@${version} from npm`);
  }
  return binary;
}

/** Node `version` from the official `node-<platform>-<arch>` package. */
function nodeBinary(version: string): Promise<string> {
  const name = `node-${platform()}-${arch()}`;
  return runtimeBinary(name, version, `${name}/bin/node`);
}

const publicFiles = [
  "mod.ts",
  "manager.ts",
  "pool.ts",
  "process.ts",
  "queue.ts",
  "redis.ts",
  "subprocess.ts",
  "sync.ts",
  "worker.ts",
];

function testFiles(dir: string, extension: string): string[] {
  return readdirSync(join(root, dir))
    .filter((name) => name.endsWith(`_test${extension}`))
    .sort()
    .map((name) => join(dir, name));
}

/** Where a test run writes its JUnit report, for the compatibility table. */
function reportPath(runtime: string): string {
  return join(root, ".reports", `${runtime.replace(/\W+/g, "-")}.xml`);
}

/** Node's test runner: its usual output, and a JUnit report. */
function nodeTestArgs(runtime: string): string[] {
  return [
    "--test",
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
    "--test-reporter=junit",
    `--test-reporter-destination=${reportPath(runtime)}`,
    ...testFiles("npm/esm/tests", ".js"),
  ];
}

/** The Node running this script, as `node` on the PATH. */
function machineNode(): string {
  const { stdout } = new Deno.Command("node", { args: ["--version"] })
    .outputSync();
  return `Node ${new TextDecoder().decode(stdout).trim().replace(/^v/, "")}`;
}

const runtimes = {
  deno: `Deno ${Deno.version.deno}`,
  node: machineNode(),
  bun: `Bun ${bunVersion}`,
};

// Arguments are computed when the step runs: the Node test files exist only
// once the npm build has run. A step that tests a runtime names it, for the
// compatibility table.
type Step = [
  string,
  string | (() => Promise<string>),
  () => string[],
  runtime?: string,
];
const steps: Step[] = [
  ["format", deno, () => ["fmt", "--check"]],
  ["lint", deno, () => ["lint"]],
  ["type check", deno, () => [
    "check",
    "--doc",
    ...publicFiles,
    "tests/",
    "examples/",
    "scripts/",
  ]],
  ["doc lint", deno, () => ["doc", "--lint", ...publicFiles]],
  ["import cycles", deno, () => ["run", "-A", "scripts/check_cycles.ts"]],
  // Checked above: without --no-check every worker would type-check its
  // bootstrap again. The least permissions the tests need (no network but
  // the loopback, no FFI or system information), as tests/_helpers.ts gives the scripts they run.
  ["Deno tests and JSDoc examples", deno, () => [
    "test",
    "--no-prompt",
    "--allow-read",
    `--allow-write=${tmpdir()}`,
    "--allow-run",
    // The redis.ts tests talk to redis-server on the loopback interface.
    "--allow-net=127.0.0.1",
    "--allow-env",
    "--no-check",
    `--junit-path=${reportPath(runtimes.deno)}`,
    "--doc",
    ...publicFiles,
    "tests/",
  ], runtimes.deno],
  ["npm build", deno, () => ["run", "-A", "scripts/build_npm.ts"]],
  [
    `${runtimes.node} tests on the npm build`,
    "node",
    () => nodeTestArgs(runtimes.node),
    runtimes.node,
  ],
  ...extraNodes.map((version): Step => [
    `Node ${version} tests on the npm build`,
    () => nodeBinary(version),
    () => nodeTestArgs(`Node ${version}`),
    `Node ${version}`,
  ]),
  // The fault scenarios of scripts/stress.ts, a few runs each, in Deno on
  // the sources and in Node on the build: `npm run stress` runs them in full.
  ["stress (short)", deno, () => ["run", "-A", "scripts/stress.ts", "--short"]],
  [
    `Bun ${bunVersion} tests on the npm build`,
    () => runtimeBinary("bun", bunVersion, ".bin/bun"),
    () => [
      "test",
      "--timeout",
      "120000",
      "--reporter=junit",
      `--reporter-outfile=${reportPath(runtimes.bun)}`,
      ...testFiles("npm/esm/tests", ".js").map((file) => `./${file}`),
    ],
    runtimes.bun,
  ],
  ["npm consumer project", deno, () => [
    "run",
    "-A",
    "scripts/check_consumer.ts",
  ]],
  ["publish dry run", deno, () => ["publish", "--dry-run", "--allow-dirty"]],
];

/** Whether `command` is a file in one of the PATH's directories. */
function onPath(command: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((dir) => {
    try {
      return dir !== "" && Deno.statSync(join(dir, command)).isFile;
    } catch {
      return false;
    }
  });
}

/** Runs an apt-get command with its output shown; whether it succeeded. */
async function aptGet(args: string[]): Promise<boolean> {
  console.log(`apt-get ${args.join(" ")}`);
  const { code } = await new Deno.Command("apt-get", {
    args,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return code === 0;
}

/**
 * The redis.ts tests start a real `redis-server` (Debian's package): on a
 * fresh machine where this runs as root (CI) it is installed with apt-get,
 * with `apt-get update` only when the package lists lack it or are stale;
 * elsewhere the run stops saying what to install.
 */
async function ensureRedisServer(): Promise<void> {
  if (onPath("redis-server")) return;
  if (Deno.uid() !== 0 || !onPath("apt-get")) {
    console.error(
      "The tests need redis-server, which is not on the PATH: install Debian's package with `sudo apt-get install redis-server` (or your system's Redis 6.2+ server), or run npm test as root where apt-get can install it",
    );
    Deno.exit(1);
  }
  const install = ["install", "-y", "--no-install-recommends", "redis-server"];
  const listed = (await new Deno.Command("apt-cache", {
    args: ["show", "redis-server"],
    stdout: "null",
    stderr: "null",
  }).output()).code === 0;
  const installed = listed && await aptGet(install) ||
    await aptGet(["update"]) && await aptGet(install);
  if (!installed || !onPath("redis-server")) {
    console.error(
      "Cannot install redis-server with apt-get (see its output above): install Debian's package redis-server by hand, then run npm test again",
    );
    Deno.exit(1);
  }
}

await ensureRedisServer();
// The JSDoc examples of redis.ts talk to the server REDIS_URL names (the
// tests start servers of their own); it dies with this script.
const docServer = await startRedis();
Deno.env.set("REDIS_URL", docServer.url);
const only = Deno.args.length > 0 ? new Set(Deno.args) : undefined;
const reports: Report[] = [];
mkdirSync(join(root, ".reports"), { recursive: true });
for (const [title, command, argsOf, runtime] of steps) {
  if (only && ![...only].some((word) => title.toLowerCase().includes(word))) {
    continue;
  }
  const args = argsOf();
  const program = typeof command === "string" ? command : await command();
  console.log(`\n=== ${title}: ${[program, ...args].join(" ")}`);
  const started = performance.now();
  const { code } = await new Deno.Command(program, {
    args,
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (code !== 0) {
    console.error(`\n=== FAILED: ${title} (exit ${code}, ${seconds} s)`);
    Deno.exit(1);
  }
  console.log(`=== ok: ${title} (${seconds} s)`);
  if (runtime !== undefined) {
    reports.push({ runtime, path: reportPath(runtime) });
  }
}

await docServer.stop();

// Only a run of the whole matrix speaks for every runtime.
if (only === undefined) {
  writeCompatTable(join(root, "README.md"), reports);
  await new Deno.Command(deno, { args: ["fmt", "-q", "README.md"], cwd: root })
    .output();
  console.log("\n=== README.md compatibility table written from the test runs");
}
