// A queue kept in Redis under one name, for any number of handles on any
// machines. Items are a list; a get moves its item to the getter's own
// "taking" list and removes it from there once the reply is in hand, so an
// item whose reply was lost with the connection is still the getter's, and
// one whose getter died goes back to the head of the queue. Lua scripts make
// each put and each count check one step.
import { createHash } from "node:crypto";
import { encodeOne, RecordReader, UncopyableError } from "./_codec.ts";
import { setLongTimeout } from "./_deadline.ts";
import {
  type Command,
  connectRedis,
  isReplyError,
  type RedisConnection,
  type Reply,
  untilAnswered,
} from "./_redis_client.ts";
import type { TlsSettings } from "./_redis_tls.ts";
import { checkName, text } from "./_redis_wire.ts";
import { copyValues } from "./_values.ts";

/** The keys of one queue, all with one hash tag. */
interface QueueKeys {
  items: string;
  meta: string;
  unfinished: string;
  producers: string;
  space: string;
  getters: string;
  taking(getter: string): string;
  alive(getter: string): string;
}

// Every key of a queue shares its hash tag.
function queueKeys(name: unknown): QueueKeys {
  checkName(name, "queue");
  const tag = `{multiproc:queue:${name}}`;
  return {
    items: `${tag}:items`,
    meta: `${tag}:meta`,
    unfinished: `${tag}:unfinished`,
    producers: `${tag}:producers`,
    space: `${tag}:space`,
    getters: `${tag}:getters`,
    taking: (getter) => `${tag}:taking:${getter}`,
    alive: (getter) => `${tag}:alive:${getter}`,
  };
}

/**
 * Puts unless closed (-1) or full (0); every put counts as unfinished. The
 * handle's last put is noted, so a put sent again after a lost reply is
 * not put twice.
 */
const PUT = `
if redis.call('HGET', KEYS[4], ARGV[2]) == ARGV[3] then return 1 end
if redis.call('HGET', KEYS[2], 'closed') == '1' then return -1 end
local max = tonumber(redis.call('HGET', KEYS[2], 'maxsize') or '0')
if max > 0 and redis.call('LLEN', KEYS[1]) >= max then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
return 1`;

/** One fewer unfinished item, or -1 when none was left. */
const TASK_DONE = `
local left = redis.call('DECR', KEYS[1])
if left < 0 then redis.call('INCR', KEYS[1]) return -1 end
return left`;

/** A dead getter's items go back to the head of the queue, in order. */
const RESCUE = `
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local moved = 0
while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') do moved = moved + 1 end
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1], ARGV[1] .. ':ack')
return moved`;

/**
 * Takes the item in hand out of the getter's taking list: 1 if it was
 * there (or this very acknowledgement, sent again after a lost reply, took
 * it), 0 if a rescue gave it back to the queue meanwhile (the getter was
 * taken for dead). The getter's last acknowledgement is noted beside its
 * last put.
 */
const ACK = `
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then return 1 end
if not redis.call('LPOP', KEYS[1]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if tonumber(ARGV[3]) > 0 then
  redis.call('RPUSH', KEYS[3], '1')
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)
end
return 1`;

/** How long one blocking read waits before looking at `closed` and the clock, in seconds. */
const SLICE_S = 0.25;
/** A getter's liveness key lasts this long and is renewed three times as often. */
const ALIVE_MS = 30_000;
/** How long a disconnect waits for Redis to forget the handle. */
const GOODBYE_MS = 1000;
/** Space tokens kept for waiting puts, at most. */
const SPACE_TOKENS = 64;

/** Why a queue operation gave up. */
export type QueueFailure = "empty" | "full" | "closed";

/** Thrown by {@linkcode QueueLink} for the caller to turn into its own error. */
export class QueueRefusal extends Error {
  // The reason picks the public error class; a lost connection is the cause.
  constructor(readonly reason: QueueFailure, options?: ErrorOptions) {
    super(reason, options);
  }
}

/** The handle was disconnected while an operation waited. */
function disconnected(): Error {
  return new Error(
    "The queue handle was disconnected while the call waited: keep it connected until its calls are done, or make a new Queue with the same name",
  );
}

/** One handle's connections to a queue. */
export class QueueLink {
  readonly name: string;
  readonly keys: QueueKeys;
  readonly getter: string = crypto.randomUUID();
  #url: string;
  #tls: TlsSettings | undefined;
  #maxsize: number;
  #commands: Promise<RedisConnection> | undefined;
  #blocking: Promise<RedisConnection> | undefined;
  #putWaits: Promise<RedisConnection> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #putTail: Promise<void> = Promise.resolve();
  #getTail: Promise<unknown> = Promise.resolve();
  /** Whether an earlier get of this handle may have left an item in its taking list. */
  #takingMayHold = false;
  #puts = 0;
  #acks = 0;
  #ended = false;

  // Nothing connects until the first operation.
  constructor(
    url: string,
    name: unknown,
    maxsize: number,
    tls?: TlsSettings,
  ) {
    this.keys = queueKeys(name);
    this.name = name as string;
    this.#url = url;
    this.#tls = tls;
    this.#maxsize = maxsize;
  }

  // ---- puts -------------------------------------------------------------

  // The item is encoded when put: later changes by the caller are not seen.
  /** Encodes an item as local queues do. */
  encode(item: unknown): Uint8Array {
    try {
      return encodeOne(item);
    } catch (error) {
      if (!(error instanceof UncopyableError)) throw error;
      copyValues([item], "item");
      throw new TypeError(`Cannot copy the item: ${error.message}`);
    }
  }

  // One put at a time per handle: its items keep their order, and the
  // handle's last put is all a resent one needs to be recognised.
  /** Puts `bytes`, waiting for room until `deadline` unless `nowait`. */
  put(
    bytes: Uint8Array,
    deadline: number,
    signal: AbortSignal | undefined,
    nowait: boolean,
  ): Promise<void> {
    const put = this.#putTail.then(() =>
      this.#putNow(bytes, deadline, signal, nowait)
    );
    this.#putTail = put.catch(() => {});
    return put;
  }

  // A full queue makes the put wait for a getter's space token; a lost
  // connection is waited out and the put sent again under the same id.
  async #putNow(
    bytes: Uint8Array,
    deadline: number,
    signal: AbortSignal | undefined,
    nowait: boolean,
  ): Promise<void> {
    const commands = await this.#connection();
    const id = String(++this.#puts);
    let lost: unknown;
    while (true) {
      signal?.throwIfAborted();
      const done = await untilAnswered(() =>
        runScript(commands, [
          "EVAL",
          PUT,
          "4",
          this.keys.items,
          this.keys.meta,
          this.keys.unfinished,
          this.keys.producers,
          bytes,
          this.getter,
          id,
        ]).catch((error) => {
          lost = error;
          throw error;
        }), () => this.#ended || Date.now() >= deadline);
      if (this.#ended) throw disconnected();
      if (done === undefined) throw new QueueRefusal("full", { cause: lost });
      if (done === 1) return;
      if (done === -1) throw new QueueRefusal("closed");
      const left = deadline - Date.now();
      if (nowait || left <= 0) throw new QueueRefusal("full");
      try {
        const waits = await this.#blockingPuts();
        await waits.call([
          "BLPOP",
          this.keys.space,
          String(Math.max(0.01, Math.min(SLICE_S, left / 1000))),
        ]);
      } catch (error) {
        if (isReplyError(error)) throw error;
        if (this.#ended) throw disconnected();
        await sleep(100, undefined);
      }
    }
  }

  // ---- gets -------------------------------------------------------------

  // One get at a time per handle, as the handle has one taking list: a get
  // that looked in it while another's item was there would take that item
  // too. A get still waiting for its turn gives up on its timeout or
  // signal; once its turn has come, it does so itself, so that an item it
  // took is never dropped.
  /** Takes the next item's bytes, waiting until `deadline` unless `nowait`. */
  get(
    deadline: number,
    signal: AbortSignal | undefined,
    nowait: boolean,
  ): Promise<Uint8Array> {
    let started = false;
    let gaveUp = false;
    const work = this.#getTail.then(() => {
      if (gaveUp) return undefined;
      started = true;
      return this.#getNow(deadline, signal, nowait);
    });
    this.#getTail = work.catch(() => {});
    return new Promise<Uint8Array>((resolve, reject) => {
      const waiting = Number.isFinite(deadline) && !nowait
        ? setLongTimeout(
          () => giveUp(new QueueRefusal("empty")),
          Math.max(0, deadline - Date.now()),
        )
        : undefined;
      const onAbort = (): void => giveUp(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      function giveUp(reason: unknown): void {
        if (started) return;
        gaveUp = true;
        reject(reason);
      }
      work.then((bytes) => {
        if (bytes !== undefined) resolve(bytes);
      }, reject).finally(() => {
        waiting?.clear();
        signal?.removeEventListener("abort", onAbort);
      });
    });
  }

  // Blocking reads wait a slice at a time, to notice close, signal and
  // clock; a lost connection is waited out, and the item it may have moved
  // for this handle is found in the handle's taking list.
  async #getNow(
    deadline: number,
    signal: AbortSignal | undefined,
    nowait: boolean,
  ): Promise<Uint8Array> {
    const commands = await this.#connection();
    const mine = this.keys.taking(this.getter);
    let lookInTaking = this.#takingMayHold;
    while (true) {
      signal?.throwIfAborted();
      if (this.#ended) throw disconnected();
      try {
        if (lookInTaking) {
          const stranded = await commands.call(["LPOP", mine]);
          if (stranded instanceof Uint8Array) return stranded;
          lookInTaking = false;
          this.#takingMayHold = false;
        }
        const left = deadline - Date.now();
        const blocking = nowait ? commands : await this.#blockingGets();
        // Registered as a live getter in the same round trip, just before
        // the move: a handle a rescue took for dead (paused 30 s or more)
        // is one again before anything can be moved for it.
        const [, reply] = await Promise.all([
          blocking.atomically([
            ["SET", this.keys.alive(this.getter), "1", "PX", String(ALIVE_MS)],
            ["SADD", this.keys.getters, this.getter],
          ]),
          blocking.call(
            nowait ? ["LMOVE", this.keys.items, mine, "LEFT", "RIGHT"] : [
              "BLMOVE",
              this.keys.items,
              mine,
              "LEFT",
              "RIGHT",
              String(Math.max(0.01, Math.min(SLICE_S, left / 1000))),
            ],
          ),
        ]);
        if (reply instanceof Uint8Array) {
          if (signal?.aborted) {
            await commands.call([
              "LMOVE",
              mine,
              this.keys.items,
              "RIGHT",
              "LEFT",
            ]);
            signal.throwIfAborted();
          }
          const ours = await this.#acknowledge(commands, mine);
          this.#takingMayHold = false;
          if (ours) return reply;
          // A rescue gave it back to the queue while this handle was taken
          // for dead: it is another getter's now.
          continue;
        }
        const closed = await this.#closedAndEmpty();
        if (closed) throw new QueueRefusal("closed");
        if (nowait || Date.now() >= deadline) throw new QueueRefusal("empty");
      } catch (error) {
        if (error instanceof QueueRefusal || isReplyError(error)) throw error;
        if (this.#ended) throw disconnected();
        if (signal?.aborted) signal.throwIfAborted();
        if (Date.now() >= deadline) {
          throw new QueueRefusal("empty", { cause: error });
        }
        // The connection was lost: once back, this handle's taking list
        // holds what the lost reply carried, if anything.
        lookInTaking = true;
        this.#takingMayHold = true;
        await sleep(100, signal);
      }
    }
  }

  // The item in hand leaves the taking list, however often the connection
  // drops meanwhile (only this handle uses that list); a waiting put may go on.
  /** Whether the item was still this handle's to take. */
  async #acknowledge(
    commands: RedisConnection,
    mine: string,
  ): Promise<boolean> {
    const id = String(++this.#acks);
    const taken = await untilAnswered(
      () =>
        runScript(commands, [
          "EVAL",
          ACK,
          "3",
          mine,
          this.keys.producers,
          this.keys.space,
          `${this.getter}:ack`,
          id,
          String(this.#maxsize > 0 ? SPACE_TOKENS : 0),
        ]),
      () => this.#ended,
    );
    return taken !== 0;
  }

  /** Whether the queue was closed and nothing is left in it. */
  async #closedAndEmpty(): Promise<boolean> {
    const commands = await this.#connection();
    const [closed, length] = await commands.atomically([
      ["HGET", this.keys.meta, "closed"],
      ["LLEN", this.keys.items],
    ]);
    return text(closed) === "1" && length === 0;
  }

  // ---- state ------------------------------------------------------------

  /** Items in the queue now. */
  async qsize(): Promise<number> {
    return Number(
      await (await this.#connection()).call(["LLEN", this.keys.items]),
    );
  }

  /** The queue's bound, as its first handle set it (0: none). */
  async maxsize(): Promise<number> {
    const stored = await (await this.#connection()).call([
      "HGET",
      this.keys.meta,
      "maxsize",
    ]);
    return Number(text(stored) || 0);
  }

  /** Whether any handle closed the queue. */
  async closed(): Promise<boolean> {
    const stored = await (await this.#connection()).call([
      "HGET",
      this.keys.meta,
      "closed",
    ]);
    return text(stored) === "1";
  }

  /** Closes the queue for every handle. */
  async close(): Promise<void> {
    await (await this.#connection()).call([
      "HSET",
      this.keys.meta,
      "closed",
      "1",
    ]);
  }

  /** One item dealt with; -1 when there was none to finish. */
  async taskDone(): Promise<number> {
    return Number(
      await runScript(await this.#connection(), [
        "EVAL",
        TASK_DONE,
        "1",
        this.keys.unfinished,
      ]),
    );
  }

  // join() looks at the count a few times a second.
  /** Resolves once every item put has been dealt with. */
  async join(signal: AbortSignal | undefined): Promise<void> {
    const commands = await this.#connection();
    while (true) {
      signal?.throwIfAborted();
      const left = await untilAnswered(
        () => commands.call(["GET", this.keys.unfinished]),
        () => this.#ended,
      );
      if (this.#ended) throw disconnected();
      if (Number(text(left) || 0) === 0) return;
      await sleep(100, signal);
    }
  }

  /** Lets go of the connections; the queue stays in Redis. */
  async end(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    clearInterval(this.#timer);
    for (const link of [this.#blocking, this.#putWaits]) {
      link?.then((connection) => connection.destroy(), () => {});
    }
    const commands = await this.#commands?.catch(() => undefined);
    if (commands === undefined) return;
    // Redis may be gone: the getter's key then expires on its own.
    await Promise.race([
      commands.atomically([
        ["DEL", this.keys.alive(this.getter)],
        ["SREM", this.keys.getters, this.getter],
        ["HDEL", this.keys.producers, this.getter, `${this.getter}:ack`],
      ]).catch(() => {}),
      sleep(GOODBYE_MS, undefined),
    ]);
    commands.destroy();
  }

  // ---- connections ------------------------------------------------------

  // The first use connects, sets the bound, and starts the upkeep.
  #connection(): Promise<RedisConnection> {
    if (this.#ended) {
      return Promise.reject(
        new Error(
          "Cannot use the queue handle after it was disconnected: make a new Queue with the same name",
        ),
      );
    }
    // A failed first connection is tried again at the next call.
    return this.#commands ??= this.#connect().catch((error) => {
      this.#commands = undefined;
      throw error;
    });
  }

  async #connect(): Promise<RedisConnection> {
    const commands = await connectRedis(
      this.#url,
      "multiproc-queue",
      {},
      this.#tls,
    );
    const replies = await commands.atomically([
      ["HSETNX", this.keys.meta, "maxsize", String(this.#maxsize)],
      ["HGET", this.keys.meta, "maxsize"],
      ["SET", this.keys.alive(this.getter), "1", "PX", String(ALIVE_MS)],
      ["SADD", this.keys.getters, this.getter],
    ]);
    // The first handle's bound is the queue's.
    this.#maxsize = Number(text(replies[1]) || 0);
    await this.#rescue(commands, false).catch(() => {});
    this.#timer = setInterval(() => {
      commands.call([
        "SET",
        this.keys.alive(this.getter),
        "1",
        "PX",
        String(ALIVE_MS),
      ], true).then(() => this.#rescue(commands, true)).catch(() => {});
    }, ALIVE_MS / 3);
    (this.#timer as { unref?: () => void }).unref?.();
    return commands;
  }

  // Items taken by getters that died go back to the head of the queue.
  async #rescue(
    commands: RedisConnection,
    background: boolean,
  ): Promise<void> {
    const getters = await commands.call(
      ["SMEMBERS", this.keys.getters],
      background,
    );
    if (!Array.isArray(getters)) return;
    for (const id of getters.map((g: Reply) => text(g))) {
      if (id === this.getter) continue;
      await runScript(commands, [
        "EVAL",
        RESCUE,
        "5",
        this.keys.taking(id),
        this.keys.items,
        this.keys.alive(id),
        this.keys.getters,
        this.keys.producers,
        id,
      ], background);
    }
  }

  // Blocking commands get connections of their own.
  async #duplicate(): Promise<RedisConnection> {
    return await (await this.#connection()).duplicate();
  }

  // The blocking gets' connection; one that failed to open is tried again.
  #blockingGets(): Promise<RedisConnection> {
    return this.#blocking ??= this.#duplicate().catch((error) => {
      this.#blocking = undefined;
      throw error;
    });
  }

  // The blocking puts' connection, likewise.
  #blockingPuts(): Promise<RedisConnection> {
    return this.#putWaits ??= this.#duplicate().catch((error) => {
      this.#putWaits = undefined;
      throw error;
    });
  }
}

/** Decodes an item's bytes. */
export function decodeItem(bytes: Uint8Array): unknown {
  return new RecordReader(bytes).next();
}

// A pause that an abort ends early.
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

const digests = new Map<string, string>();

// A script runs by its SHA1: its source crosses once per server, not with
// every call; a server that does not know it yet (new, restarted without
// its data, flushed) is sent it once with EVAL.
/** Sends `["EVAL", script, ...rest]` as EVALSHA, falling back to EVAL. */
async function runScript(
  commands: RedisConnection,
  command: Command,
  background = false,
): Promise<Reply> {
  const [, script, ...rest] = command as [string, string, ...Command];
  let digest = digests.get(script);
  if (digest === undefined) {
    digest = createHash("sha1").update(script).digest("hex");
    digests.set(script, digest);
  }
  try {
    return await commands.call(["EVALSHA", digest, ...rest], background);
  } catch (error) {
    if (!String((error as Error)?.message).startsWith("NOSCRIPT")) throw error;
    return await commands.call(command, background);
  }
}
