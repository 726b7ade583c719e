// Which threads of this process are alive, as seen from every thread. A
// queue's lock records its holder's token; a thread that waits long for the
// lock asks whether the holder died (a worker terminated mid-operation) and
// takes the lock over. Operations publish their changes last, so a holder
// that died half-way left nothing visible behind.

const SLOTS = 65536;

interface Table {
  /**
   * `[0]`: the last token handed out; `[1 + token % SLOTS]`: the token while
   * that thread lives; `[1 + SLOTS + token % SLOTS]`: the token of the thread
   * that made it.
   */
  cells: Int32Array;
  token: number;
}

const key = Symbol.for("multiproc.liveness");
type Holder = { [key]?: Table };

// Made on first use, on globalThis so every copy of this module agrees.
function table(): Table {
  const holder = globalThis as Holder;
  if (holder[key] === undefined) {
    const cells = new Int32Array(new SharedArrayBuffer((2 * SLOTS + 1) * 4));
    holder[key] = { cells, token: 0 };
    holder[key].token = newThreadToken();
  }
  return holder[key];
}

/** What a new worker thread needs to join this process's table. */
export interface LivenessSeed {
  cells: SharedArrayBuffer;
  token: number;
}

// A queue's lock names its holder by token; a reused slot drops the old one.
/** Hands out a token for a thread about to start and marks it alive. */
export function newThreadToken(): number {
  const { cells, token: parent } = table();
  const token = (Atomics.add(cells, 0, 1) + 1) & 0x7fffffff || 1;
  Atomics.store(cells, 1 + SLOTS + token % SLOTS, parent);
  Atomics.store(cells, 1 + token % SLOTS, token);
  return token;
}

// A worker thread has its own globalThis: it is handed the table.
/** The seed for a new worker thread, with a fresh token. */
export function livenessSeed(): LivenessSeed {
  return {
    cells: table().cells.buffer as SharedArrayBuffer,
    token: newThreadToken(),
  };
}

/** Called first in a worker thread: join the parent's table. */
export function adoptLiveness(seed: LivenessSeed): void {
  (globalThis as Holder)[key] = {
    cells: new Int32Array(seed.cells),
    token: seed.token,
  };
}

// What a queue's lock records as its holder.
/** This thread's token. */
export function threadToken(): number {
  return table().token;
}

// Called when a worker thread exits, so its locks can be taken over. What
// it started (threads, child process links) ended with it, but their own
// exit handlers ran in it, if at all: they die here too.
/** Marks a thread that exited, and every thread it made, as dead: returns their tokens. */
export function markDead(token: number): number[] {
  const { cells } = table();
  const dead = [token];
  const found = new Set(dead);
  Atomics.compareExchange(cells, 1 + token % SLOTS, token, 0);
  for (let more = true; more;) {
    more = false;
    for (let i = 1; i <= SLOTS; i++) {
      const alive = Atomics.load(cells, i);
      if (alive === 0 || !found.has(Atomics.load(cells, SLOTS + i))) continue;
      if (Atomics.compareExchange(cells, i, alive, 0) !== alive) continue;
      dead.push(alive);
      found.add(alive);
      more = true;
    }
  }
  return dead;
}

// Lets a long waiter take over a lock whose holder died.
/** Whether the thread with this token has exited. */
export function isDead(token: number): boolean {
  return Atomics.load(table().cells, 1 + token % SLOTS) !== token;
}
