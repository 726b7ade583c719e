// Who the running code is: the main program, a pool worker or a Process.
// Kept on globalThis so that every copy of this module in one thread agrees.
import process from "node:process";

/** What `currentProcess()` reports. */
export interface ProcessInfo {
  name: string;
  pid: number;
}

const key = Symbol.for("multiproc.currentProcess");

interface Holder {
  [key]?: ProcessInfo;
}

// currentProcess() reports it; the main program never sets one.
/** The info of the running thread or process. */
export function getContext(): ProcessInfo {
  return (globalThis as Holder)[key] ??
    { name: "MainProcess", pid: process.pid };
}

/** Set by a worker's bootstrap before any user code runs. */
export function setContext(name: string): void {
  (globalThis as Holder)[key] = { name, pid: process.pid };
}
