// What the stress harness reads from /proc: which processes live, whose
// children they are, and which carry a run's tag in their environment.

/** One live process as /proc shows it. */
export interface ProcEntry {
  pid: number;
  ppid: number;
  /** The state letter: `Z` for a zombie. */
  state: string;
}

/** The stat line of `pid`, parsed; `undefined` when it is gone. */
export function procEntry(pid: number): ProcEntry | undefined {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // The command name in parentheses may itself hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { pid, ppid: Number(fields[1]), state: fields[0] };
}

/** Every process on the machine (those that end meanwhile are left out). */
export function processTable(): ProcEntry[] {
  const entries: ProcEntry[] = [];
  for (const { name } of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const entry = procEntry(Number(name));
    if (entry !== undefined) entries.push(entry);
  }
  return entries;
}

/** Whether `pid` is alive: there, and not a zombie waiting to be reaped. */
export function isAlive(pid: number): boolean {
  const entry = procEntry(pid);
  return entry !== undefined && entry.state !== "Z";
}

/** The live descendants of `root` (not `root` itself). */
export function descendants(root: number): number[] {
  const table = processTable();
  const children = new Map<number, number[]>();
  for (const entry of table) {
    if (entry.state === "Z") continue;
    const list = children.get(entry.ppid) ?? [];
    list.push(entry.pid);
    children.set(entry.ppid, list);
  }
  const found: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    for (const child of children.get(todo.pop()!) ?? []) {
      found.push(child);
      todo.push(child);
    }
  }
  return found;
}

const encoder = new TextEncoder();

/**
 * Live processes whose environment holds `name=value` (with `prefix`: a
 * value that starts so). The harness gives each run a tag of its own: every
 * process the run started inherits it, even one that its parent no longer
 * knows about (an orphan, re-parented).
 */
export function tagged(
  name: string,
  value: string,
  { prefix = false } = {},
): number[] {
  const needle = encoder.encode(`${name}=${value}${prefix ? "" : "\0"}`);
  const found: number[] = [];
  for (const { name: pid } of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    let environ: Uint8Array;
    try {
      environ = Deno.readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue; // Gone, or not ours to read.
    }
    if (includes(environ, needle) && isAlive(Number(pid))) {
      found.push(Number(pid));
    }
  }
  return found;
}

function includes(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i <= haystack.length - needle.length; i++) {
    // Variables start the block or follow a NUL.
    if (i > 0 && haystack[i - 1] !== 0) continue;
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return true;
  }
  return false;
}

/** Sends SIGKILL to each pid; quiet about those already gone. */
export function killAll(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // Gone already.
    }
  }
}
