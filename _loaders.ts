// Runtime adapter for module loaders (tsx, ts-node, …) in worker threads.
// A child process runs with this process's flags and environment, so the
// loader a program was started with (`--import tsx`, `--loader ts-node/esm`,
// NODE_OPTIONS) starts in it as it did here. A worker thread runs the same
// preloads, but a loader may register its hooks on the main thread alone:
// tsx does so on Node 20 and on Node 22/24 before 22.22.3/24.11.1, leaving
// threads unable to load TypeScript. A thread started under such a preload
// registers the hooks that the preload exports itself, unless a preload
// registered some in that thread. Deno and Bun run TypeScript natively.
import module from "node:module";
import process from "node:process";
import { pathToFileURL } from "node:url";

const isNode = !("Deno" in globalThis) && !("Bun" in globalThis);

/** Where the probe below tells the bootstrap what the preloads did. */
const probeKey = Symbol.for("multiproc.loaderProbe");

interface Probe {
  registered: boolean;
  register: typeof module.register;
  registerHooks: unknown;
}

/**
 * A preload that runs before every other one in a worker thread (NODE_OPTIONS
 * preloads come first): it takes itself out of NODE_OPTIONS again and notes
 * whether a later preload registers module hooks in this thread.
 */
const probeSource = `import module from "node:module";
import process from "node:process";
const options = process.env.NODE_OPTIONS ?? "";
const space = options.indexOf(" ");
if (space < 0) delete process.env.NODE_OPTIONS;
else process.env.NODE_OPTIONS = options.slice(space + 1);
const probe = { registered: false, register: module.register, registerHooks: module.registerHooks };
globalThis[Symbol.for("multiproc.loaderProbe")] = probe;
module.register = function (...args) {
  probe.registered = true;
  return probe.register.apply(this, args);
};
if (typeof probe.registerHooks === "function") {
  module.registerHooks = function (...args) {
    probe.registered = true;
    return probe.registerHooks.apply(this, args);
  };
}
module.syncBuiltinESMExports();
`;

const probeOption = `--import=data:text/javascript,${
  encodeURIComponent(probeSource)
}`;

// NODE_OPTIONS quotes values with spaces in double quotes.
/** The `--import` specifiers of a command line and of NODE_OPTIONS, in order. */
function importSpecifiers(
  argv: readonly string[],
  nodeOptions: string | undefined,
): string[] {
  const words = [
    ...[...(nodeOptions ?? "").matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)]
      .map((match) => match[1]?.replace(/\\(.)/g, "$1") ?? match[2]!),
    ...argv,
  ];
  const specifiers: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === "--import" && i + 1 < words.length) {
      specifiers.push(words[++i]!);
    } else if (word.startsWith("--import=")) {
      specifiers.push(word.slice("--import=".length));
    }
  }
  return specifiers;
}

// Reading the environment may be denied (Deno); then nothing is preloaded.
function nodeOptions(): string | undefined {
  try {
    return process.env.NODE_OPTIONS;
  } catch {
    return undefined;
  }
}

/**
 * The environment a new worker thread gets: this process's, with the probe
 * in front of NODE_OPTIONS when this program was started with `--import`
 * preloads; `undefined` (the default environment, nothing added) otherwise.
 */
export function threadEnvironment(): Record<string, string> | undefined {
  if (!isNode) return undefined;
  const options = nodeOptions();
  if (importSpecifiers(process.execArgv, options).length === 0) {
    return undefined;
  }
  return {
    ...process.env as Record<string, string>,
    NODE_OPTIONS: options ? `${probeOption} ${options}` : probeOption,
  };
}

// Node resolves --import against the working directory. A package is looked
// for from here first, as import resolves it, then from the working
// directory, which require can search (this package may be linked from
// elsewhere).
function resolvePreload(specifier: string): string {
  if (/^[a-z][a-z\d+.-]*:/i.test(specifier)) return specifier;
  const base = pathToFileURL(`${process.cwd()}/`);
  if (/^\.{0,2}\//.test(specifier)) return new URL(specifier, base).href;
  try {
    return import.meta.resolve(specifier);
  } catch {
    return pathToFileURL(module.createRequire(base).resolve(specifier)).href;
  }
}

/**
 * In a worker thread started under the probe, when no preload registered
 * module hooks here: registers those that the preloads export (a loader such
 * as tsx that is also a hooks module), as `--loader` would. Resolves to the
 * error that kept one from registering, if any.
 */
export async function adoptThreadLoaders(): Promise<unknown> {
  const probe = (globalThis as { [probeKey]?: Probe })[probeKey];
  if (probe === undefined) return undefined;
  delete (globalThis as { [probeKey]?: Probe })[probeKey];
  module.register = probe.register;
  if (typeof probe.registerHooks === "function") {
    (module as { registerHooks?: unknown }).registerHooks = probe.registerHooks;
  }
  module.syncBuiltinESMExports();
  if (probe.registered) return undefined;
  for (const specifier of importSpecifiers(process.execArgv, nodeOptions())) {
    try {
      const url = resolvePreload(specifier);
      const hooks = await import(url) as Record<string, unknown>;
      if (
        typeof hooks.resolve !== "function" && typeof hooks.load !== "function"
      ) {
        continue;
      }
      module.register(url, { data: {} });
    } catch (error) {
      return new Error(
        `Cannot register the loader "${specifier}" in the worker thread: ${
          String(error)
        }`,
        { cause: error },
      );
    }
  }
  return undefined;
}

/** Node's message for a TypeScript file that nothing could load. */
const typeScriptExtension = /extension "\.[cm]?tsx?"/;

/**
 * What to do about a task module that failed to load for want of a
 * TypeScript loader (`""` when that is not why it failed), and why a loader
 * could not be registered in this thread, if that happened.
 */
export function loaderHint(error: unknown, loaderError?: unknown): string {
  const hint = typeScriptHint(error);
  return loaderError === undefined ? hint : `${hint} (${String(loaderError)})`;
}

// Node's error codes tell which step of loading TypeScript was missing.
function typeScriptHint(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const atRunTime =
    "given on the command line: one registered by module.register() as the program runs does not reach them";
  if (code === "ERR_UNKNOWN_FILE_EXTENSION") {
    return typeScriptExtension.test(String(error))
      ? `: Node ${process.versions.node} loads no TypeScript here; start the program under a loader, which worker threads and processes inherit (\`node --import tsx main.ts\`, \`npx tsx main.ts\`; Node 22.18 and later strip types without one), ${atRunTime}`
      : `: start the program under a loader for such files, which worker threads and processes inherit, ${atRunTime}`;
  }
  if (code === "ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX") {
    return ": Node's type stripping only erases types; for enums, namespaces and parameter properties start node with --experimental-transform-types, or under a loader: `node --import tsx main.ts`";
  }
  if (code === "ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING") {
    return ": Node does not strip types from files under node_modules; load a compiled .js task module, or start the program under a loader: `node --import tsx main.ts`";
  }
  return "";
}
