// Runtime adapter for large queue items between processes: a child writes a
// large item to a file in a directory of the process that holds the queue
// (in /dev/shm, memory, where there is one) and sends a small stub naming it
// in its place, so that the item's bytes go straight from producer to
// consumer instead of through the parent's two IPC channels.
//
// Nothing is lost or left behind:
// - the stub is sent only once its file is whole; a producer killed while it
//   writes leaves a file no stub names, removed when its parent learns of its
//   death (or, at the latest, when the parent exits);
// - a child consumer reads a file and leaves it: the parent removes it when
//   the child acknowledges the item, so one that dies first gives the stub
//   back whole; a taker in the queue's own process reads and removes it;
// - the directory goes when its process exits; one left by a process that
//   was killed is removed by the next that makes its own.
import { RECORD_HEADER } from "./_codec.ts";
import { allowed, atProgramEnd } from "./_program_files.ts";
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { isMainThread, threadId } from "node:worker_threads";

/** Items this long or longer (encoded) travel through a file. */
export const SPILL_BYTES = 64 * 1024;
/** The stub's tag, above every codec tag and the ring's own stub. */
const SPILLED = 0xfe;
/** A stub: header, tag, the writer's pid, file number and item length, the directory. */
const STUB_FIXED = RECORD_HEADER + 1 + 12;
const PREFIX = "multiproc-";
/** A directory's name: the pid, and the thread when not the main one. */
const NAME = /^multiproc-(\d+)(\.\d+)?$/;
/**
 * Who names files and directories here: threads of one process keep apart
 * (each its own directory and numbers, removed when it ends).
 */
const me = isMainThread ? `${process.pid}` : `${process.pid}.${threadId}`;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// /dev/shm is memory; elsewhere the temporary directory will do.
/** Where this process's directory goes, or `undefined` when it may not. */
function base(): string | undefined {
  for (const candidate of ["/dev/shm", tmpdir()]) {
    try {
      if (allowed(candidate, true) && statSync(candidate).isDirectory()) {
        return candidate;
      }
    } catch {
      // Not there: try the next.
    }
  }
  return undefined;
}

// A process that was killed could not remove its directory.
/** Removes the directories of processes that are gone. */
function sweepStale(root: string): void {
  for (const name of readdirSync(root)) {
    const match = NAME.exec(name);
    if (match === null) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || alive(pid)) continue;
    rmSync(`${root}/${name}`, { recursive: true, force: true });
  }
}

// Signal 0 asks without signalling; only "no such process" means gone (not
// someone else's process, nor a refusal to ask).
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code !== "ESRCH";
  }
}

let directory: string | null | undefined;

// The first child to put a large item makes the directory: a program that
// never does leaves nothing behind even when it is killed.
/**
 * This process's directory for items its children put, or `undefined` when
 * files cannot be used here (then items go over IPC).
 */
export function spillDirectory(): string | undefined {
  if (directory !== undefined) return directory ?? undefined;
  directory = null;
  const root = base();
  if (root === undefined) return undefined;
  try {
    sweepStale(root);
  } catch {
    // Not allowed after all: IPC it is.
    return undefined;
  }
  const path = `${root}/${PREFIX}${me}`;
  const remove = (): void => rmSync(path, { recursive: true, force: true });
  atProgramEnd(remove);
  return directory = path;
}

let nextFile = 0;
const writable = new Map<string, boolean>();

// Files are named by their writer's pid and a number, so that the parent
// can tell a dead writer's files apart.
/**
 * Writes `parts` one after another to a new file in `dir`; its number, or
 * `undefined` when it cannot (then the data goes over IPC).
 */
function writeFile(dir: string, parts: Uint8Array[]): number | undefined {
  let ok = writable.get(dir);
  if (ok === undefined) writable.set(dir, ok = allowed(dir, true));
  if (!ok) return undefined;
  const file = ++nextFile;
  const path = `${dir}/${me}-${file}`;
  const write = (): void => {
    const fd = openSync(path, "w", 0o600);
    try {
      for (const part of parts) {
        for (let done = 0; done < part.length;) {
          done += writeSync(fd, part, done);
        }
      }
    } finally {
      closeSync(fd);
    }
  };
  try {
    try {
      write();
    } catch (error) {
      if ((error as { code?: string }).code !== "ENOENT") throw error;
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      write();
    }
  } catch {
    // Full, or not allowed.
    removeFile(path);
    return undefined;
  }
  return file;
}

/**
 * Writes buffers to a new file in `dir`; its path, or `undefined` when it
 * cannot.
 */
export function spillBuffers(
  dir: string,
  buffers: ArrayBuffer[],
): string | undefined {
  const file = writeFile(dir, buffers.map((buffer) => new Uint8Array(buffer)));
  return file === undefined ? undefined : `${dir}/${me}-${file}`;
}

// One read per buffer, straight into it: no copy after the kernel's.
/** Reads back what spillBuffers wrote, removing the file when `remove`. */
export function loadBuffers(
  path: string,
  lengths: number[],
  remove: boolean,
): ArrayBuffer[] {
  const fd = openSync(path, "r");
  let position = 0;
  try {
    return lengths.map((length) => {
      const buffer = new ArrayBuffer(length);
      readFully(fd, new Uint8Array(buffer), position, path);
      position += length;
      return buffer;
    });
  } finally {
    closeSync(fd);
    if (remove) removeFile(path);
  }
}

// A short read means the file is not what its writer wrote.
function readFully(
  fd: number,
  into: Uint8Array,
  position: number,
  path: string,
): void {
  for (let read = 0; read < into.length;) {
    const n = readSync(fd, into, read, into.length - read, position + read);
    if (n === 0) {
      throw new Error(`Cannot read "${path}": the file was cut short`);
    }
    read += n;
  }
}

/** Removes a file spillBuffers wrote, once its data is no longer needed. */
export function removeSpilledFile(path: string): void {
  removeFile(path);
}

/**
 * In a child: writes one encoded item to a file in `dir` and returns the
 * stub to send instead, or `undefined` when it cannot (then send the item).
 */
export function spill(dir: string, record: Uint8Array): Uint8Array | undefined {
  // A stub names its file by pid: only a main thread puts through its
  // parent (a queue from another process cannot go on to a thread).
  if (!isMainThread) return undefined;
  const file = writeFile(dir, [record]);
  if (file === undefined) return undefined;
  const name = encoder.encode(dir);
  const stub = new Uint8Array(STUB_FIXED + name.length);
  const view = new DataView(stub.buffer);
  view.setUint32(0, stub.length - RECORD_HEADER, true);
  stub[RECORD_HEADER] = SPILLED;
  view.setUint32(RECORD_HEADER + 1, process.pid, true);
  view.setUint32(RECORD_HEADER + 5, file, true);
  view.setUint32(RECORD_HEADER + 9, record.length, true);
  stub.set(name, STUB_FIXED);
  return stub;
}

/** Whether the record at `at` in `block` is a stub. */
function stubAt(block: Uint8Array, at: number): boolean {
  return block[at + RECORD_HEADER] === SPILLED;
}

/** Whether `block` starts with a stub (a taken item is one record). */
export function isSpilled(block: Uint8Array): boolean {
  return block.length > STUB_FIXED && stubAt(block, 0);
}

/** What a stub at `at` says: the file, the writer's pid and file number, the item's length. */
function stubFile(
  block: Uint8Array,
  at: number,
): { path: string; pid: number; file: number; length: number } {
  const view = new DataView(block.buffer, block.byteOffset, block.length);
  const end = at + RECORD_HEADER + view.getUint32(at, true);
  const pid = view.getUint32(at + RECORD_HEADER + 1, true);
  const file = view.getUint32(at + RECORD_HEADER + 5, true);
  const length = view.getUint32(at + RECORD_HEADER + 9, true);
  const dir = decoder.decode(block.subarray(at + STUB_FIXED, end));
  return { path: `${dir}/${pid}-${file}`, pid, file, length };
}

// A plain Uint8Array, not Node's Buffer: a bytes item must come back as one.
/** Reads a stub's file (the item's record), removing it when `remove`. */
export function loadSpilled(stub: Uint8Array, remove: boolean): Uint8Array {
  const { path, length } = stubFile(stub, 0);
  const fd = openSync(path, "r");
  const record = new Uint8Array(length);
  try {
    readFully(fd, record, 0, path);
  } finally {
    closeSync(fd);
    if (remove) removeFile(path);
  }
  return record;
}

// Gone already (a parent that swept it) is as good as removed.
function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Nothing to remove.
  }
}

/** Calls `each` with the offset of every stub among the records of `block`. */
function forEachStub(block: Uint8Array, each: (at: number) => void): void {
  const view = new DataView(block.buffer, block.byteOffset, block.length);
  for (let at = 0; at < block.length;) {
    const length = RECORD_HEADER + view.getUint32(at, true);
    if (length > STUB_FIXED && stubAt(block, at)) each(at);
    at += length;
  }
}

/** Removes the files of the stubs among the records of `block` (acknowledged items). */
export function removeSpilled(block: Uint8Array): void {
  forEachStub(block, (at) => removeFile(stubFile(block, at).path));
}

/**
 * The records of `block` with every stub replaced by its item, for a process
 * that cannot read the files; `remove` removes them once read.
 */
export function inlineSpilled(block: Uint8Array, remove: boolean): Uint8Array {
  const stubs: number[] = [];
  forEachStub(block, (at) => stubs.push(at));
  if (stubs.length === 0) return block;
  const view = new DataView(block.buffer, block.byteOffset, block.length);
  const parts: Uint8Array[] = [];
  let from = 0;
  let length = 0;
  for (const at of stubs) {
    const end = at + RECORD_HEADER + view.getUint32(at, true);
    const record = loadSpilled(block.subarray(at, end), remove);
    parts.push(block.subarray(from, at), record);
    length += at - from + record.length;
    from = end;
  }
  parts.push(block.subarray(from));
  length += block.length - from;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** The highest file number among the stubs of `block` written by `pid`. */
export function lastFileOf(
  block: Uint8Array,
  pid: number,
  last: number,
): number {
  forEachStub(block, (at) => {
    const stub = stubFile(block, at);
    if (stub.pid === pid) last = Math.max(last, stub.file);
  });
  return last;
}

/**
 * A child died: removes the files it wrote after `last`, the last one a stub
 * of which reached this process (the rest no stub will ever name).
 */
export function removeOrphans(pid: number, last: number): void {
  const dir = directory;
  if (typeof dir !== "string") return;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const prefix = `${pid}-`;
  for (const name of names) {
    if (name.startsWith(prefix) && Number(name.slice(prefix.length)) > last) {
      removeFile(`${dir}/${name}`);
    }
  }
}

/** Directories of our parents' queues this process has been handed. */
const handed = new Set<string>();

/** Whether this child may read files in `dir` (else the parent inlines items). */
export function canReadSpilled(dir: string | undefined): boolean {
  if (dir === undefined) return false;
  handed.add(dir);
  return allowed(dir, false);
}

// Deno's children do not see a scoped grant such as --allow-write=/tmp, so
// they are given the directories themselves.
/** The directories a child may need to read and write its large items in. */
export function spillScopes(): string[] {
  const own = spillDirectory();
  const dirs = own === undefined ? [...handed] : [own, ...handed];
  return dirs.filter((dir) => allowed(dir, true));
}
