// Runtime adapter for the files a program keeps beside its IPC: whether the
// permission model lets it use a directory, and cleaning up as it ends.
import process from "node:process";

const isDeno = "Deno" in globalThis;

// Deno and Node's permission model may deny the file system: never prompt,
// and never let a refusal reach queue code.
/** Whether this process may read (and, with `write`, write) under `path`. */
export function allowed(path: string, write: boolean): boolean {
  if (isDeno) {
    const query = (name: "read" | "write"): boolean =>
      Deno.permissions.querySync({ name, path }).state === "granted";
    return query("read") && (!write || query("write"));
  }
  // deno-lint-ignore no-explicit-any
  const model = (process as any).permission;
  if (model === undefined) return true;
  return model.has("fs.read", path) && (!write || model.has("fs.write", path));
}

// `deno test` ends without "exit", but with "unload".
/** Runs `cleanUp` when this program ends normally, on every runtime. */
export function atProgramEnd(cleanUp: () => void): void {
  process.on("exit", cleanUp);
  if (isDeno) globalThis.addEventListener("unload", cleanUp);
}
