/**
 * Fails when the package's modules import each other in a cycle, type-only
 * imports included: a file depends on the files below it, never on one that
 * depends on it back. Reads the module graph of the public entry points from
 * `deno info --json`, then finds the strongly connected components (Tarjan).
 *
 * Run with `deno run -A scripts/check_cycles.ts`; part of `npm test`.
 *
 * @module
 */
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = new URL("..", import.meta.url).href;
/** Every source file of the package: those no entry point reaches too. */
const sources = readdirSync(fileURLToPath(root))
  .filter((name) => name.endsWith(".ts"))
  .sort();

interface ModuleInfo {
  specifier: string;
  dependencies?: {
    code?: { specifier: string };
    type?: { specifier: string };
  }[];
}

/** The package's own files and what each imports (code and types). */
async function graph(entry: string): Promise<Map<string, Set<string>>> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: fileURLToPath(root),
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(new TextDecoder().decode(stderr));
  const info = JSON.parse(new TextDecoder().decode(stdout)) as {
    modules: ModuleInfo[];
  };
  const own = (specifier: string): boolean =>
    specifier.startsWith(root) && !specifier.slice(root.length).includes("/");
  const edges = new Map<string, Set<string>>();
  for (const module of info.modules) {
    if (!own(module.specifier)) continue;
    const targets = new Set<string>();
    for (const dependency of module.dependencies ?? []) {
      for (const target of [dependency.code, dependency.type]) {
        if (target && own(target.specifier)) targets.add(target.specifier);
      }
    }
    edges.set(module.specifier, targets);
  }
  return edges;
}

/** The groups of two or more files that reach each other (Tarjan's algorithm). */
function cycles(edges: Map<string, Set<string>>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  function visit(node: string): void {
    index.set(node, counter);
    low.set(node, counter++);
    stack.push(node);
    onStack.add(node);
    for (const next of edges.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member.slice(root.length));
    } while (member !== node);
    if (component.length > 1 || edges.get(node)?.has(node)) {
      found.push(component.sort());
    }
  }
  for (const node of edges.keys()) if (!index.has(node)) visit(node);
  return found;
}

const edges = new Map<string, Set<string>>();
// mod.ts reaches most files at once; the rest (the worker bootstrap, loaded
// by URL) get a `deno info` of their own.
for (const file of ["mod.ts", ...sources]) {
  if (edges.has(root + file)) continue;
  for (const [module, targets] of await graph(file)) edges.set(module, targets);
}
const found = cycles(edges);
if (found.length > 0) {
  console.error(
    `Import cycles between ${found.length === 1 ? "these files" : "files"}:\n${
      found.map((files) => `  ${files.join(" <-> ")}`).join("\n")
    }\nMove the shared types into a leaf file (_types.ts) and import them from there.`,
  );
  Deno.exit(1);
}
console.log(`No import cycles among ${edges.size} files`);
