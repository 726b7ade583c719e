// The one file that knows the Redis client library (node-redis). Everything
// else speaks to Redis through `RedisConnection`: raw commands in, replies
// with binary-safe bulk strings out, so another client (Bun's, iovalkey)
// could be put behind the same few methods.
import { Buffer } from "node:buffer";
import { createClient, ErrorReply, RESP_TYPES } from "redis";
import { hold as keepAlive, release as letGo } from "./_keep_alive.ts";

/** A reply: bulk strings are bytes, simple strings text, arrays nested. */
export type Reply = null | number | string | Uint8Array | Reply[];

/** A command: its name and arguments. */
export type Command = (string | Uint8Array)[];

/** A connection to Redis that reconnects by itself once it has connected. */
export interface RedisConnection {
  /**
   * Sends one command. The program stays alive until its reply comes,
   * unless it is `background` work (a blocking read in a loop).
   */
  call(command: Command, background?: boolean): Promise<Reply>;
  /** Runs commands as one transaction (MULTI/EXEC); their replies in order. */
  atomically(commands: Command[]): Promise<Reply[]>;
  /** Calls `listener` with each message published on `channel`. */
  subscribe(
    channel: string,
    listener: (message: string) => void,
  ): Promise<void>;
  /** Another connection to the same server, for blocking reads. */
  duplicate(): Promise<RedisConnection>;
  /** Closes the connection; commands sent before it still get replies. */
  close(): Promise<void>;
  /** Drops the connection at once: a blocking command in flight rejects. */
  destroy(): void;
}

/** What a connection reports about its link to the server. */
export interface ConnectionEvents {
  /** The connection was lost; it is being reconnected. */
  onLost?(error: Error): void;
  /** The connection is back. */
  onBack?(): void;
}

const binary = { [RESP_TYPES.BLOB_STRING]: Buffer } as const;

// Redis itself bounds how long one attempt may take.
const CONNECT_TIMEOUT_MS = 5000;
// Reconnection backs off to this and keeps trying: a restarted server is found.
const MAX_BACKOFF_MS = 2000;

// A command Redis refused is a bug to report; anything else (a lost or
// closed connection) is worth sending again once the connection is back.
/** Whether `error` is Redis's answer to a command rather than a lost connection. */
export function isReplyError(error: unknown): boolean {
  return error instanceof ErrorReply;
}

// A URL's password must not reach logs or error messages.
/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return url;
  }
}

// The first connection fails loudly; later losses are retried forever.
/**
 * Connects to `url`; `label` names the connection to the server (CLIENT LIST).
 *
 * @throws {Error} naming the server (without its password) and the reason,
 * when it cannot be reached or refuses the credentials.
 */
export async function connectRedis(
  url: string,
  label: string,
  events: ConnectionEvents = {},
): Promise<RedisConnection> {
  let connected = false;
  let lost = false;
  // RESP2 replies are plain arrays, whatever the command.
  const client = createClient({
    url,
    name: label,
    RESP: 2,
    socket: {
      connectTimeout: CONNECT_TIMEOUT_MS,
      reconnectStrategy(retries: number, cause: Error): number | Error {
        if (!connected) return cause;
        return Math.min(50 * 2 ** Math.min(retries, 6), MAX_BACKOFF_MS);
      },
    },
  }).withTypeMapping(binary);
  client.on("error", (error: Error) => {
    if (!connected || lost) return;
    lost = true;
    events.onLost?.(error);
  });
  client.on("ready", () => {
    if (!lost) return;
    lost = false;
    events.onBack?.();
  });
  try {
    await client.connect();
  } catch (error) {
    client.destroy();
    throw new Error(
      `Cannot connect to Redis at ${redactUrl(url)}: ${
        (error as Error).message || String(error)
      }: check that the server runs and that the URL (host, port, password, rediss:// for TLS) is right`,
      { cause: error },
    );
  }
  connected = true;
  // A connection never holds the program by itself: a command waiting for
  // its reply does, and its owner while it waits for something.
  client.unref();
  return wrap(client as unknown as Client, url, label, events);
}

// Only the few methods used here, whatever the client's type parameters.
interface Client {
  readonly isOpen: boolean;
  sendCommand(args: (string | Buffer)[]): Promise<unknown>;
  multi(): {
    addCommand(args: (string | Buffer)[]): unknown;
    exec(): Promise<unknown>;
  };
  subscribe(
    channel: string,
    listener: (message: unknown) => void,
  ): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): void;
}

// node-redis replies are already binary-safe with the type mapping.
function wrap(
  client: Client,
  url: string,
  label: string,
  events: ConnectionEvents,
): RedisConnection {
  return {
    async call(command: Command, background = false): Promise<Reply> {
      const sent = client.sendCommand(toArguments(command)) as Promise<Reply>;
      if (background) return await sent;
      keepAlive();
      try {
        return await sent;
      } finally {
        letGo();
      }
    },
    async atomically(commands: Command[]): Promise<Reply[]> {
      const multi = client.multi();
      for (const command of commands) multi.addCommand(toArguments(command));
      keepAlive();
      try {
        return await multi.exec() as unknown as Reply[];
      } finally {
        letGo();
      }
    },
    async subscribe(
      channel: string,
      listener: (message: string) => void,
    ): Promise<void> {
      keepAlive();
      try {
        await client.subscribe(channel, (message: unknown) => {
          listener(String(message));
        });
      } finally {
        letGo();
      }
    },
    duplicate(): Promise<RedisConnection> {
      return connectRedis(url, label, events);
    },
    async close(): Promise<void> {
      if (!client.isOpen) return;
      try {
        await client.close();
      } catch {
        client.destroy();
      }
    },
    destroy(): void {
      if (client.isOpen) client.destroy();
    },
  };
}

// The library takes bytes as Buffers: a view, not a copy.
function toArguments(command: Command): (string | Buffer)[] {
  return command.map((part) =>
    typeof part === "string" || part instanceof Buffer
      ? part
      : Buffer.from(part.buffer, part.byteOffset, part.byteLength)
  );
}
