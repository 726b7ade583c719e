// The one file that knows the Redis client library (node-redis). Everything
// else speaks to Redis through `RedisConnection`: raw commands in, replies
// with binary-safe bulk strings out, so another client (Bun's, iovalkey)
// could be put behind the same few methods.
import { Buffer } from "node:buffer";
// @ts-types="./_redis_client_types.d.ts"
import { createClient, ErrorReply, RESP_TYPES } from "redis";
import { hold as keepAlive, release as letGo } from "./_keep_alive.ts";
import type { TlsSettings } from "./_redis_tls.ts";

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

/**
 * Replies that say "not now" rather than "no": a server still loading its
 * data after a restart, busy with a script, or failing over.
 */
const TRANSIENT = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY)\b/;

// A command Redis refused is a bug to report; anything else (a lost or
// closed connection, a server still loading) is worth sending again.
/** Whether `error` is Redis refusing a command for good. */
export function isReplyError(error: unknown): boolean {
  return error instanceof ErrorReply && !TRANSIENT.test(error.message);
}

/** How long to wait before sending a command again after a lost connection. */
const RESEND_MS = 100;

// Writes must survive a restart of Redis; what Redis refused must not be
// sent again.
/**
 * Sends a command until it is answered: a lost connection is waited out
 * (node-redis reconnects), unless `stopped()` says no one wants the answer.
 *
 * @returns The reply, or `undefined` once stopped.
 * @throws The error Redis replied with.
 */
export async function untilAnswered<T>(
  send: () => Promise<T>,
  stopped: () => boolean = () => false,
): Promise<T | undefined> {
  while (true) {
    try {
      return await send();
    } catch (error) {
      if (isReplyError(error)) throw error;
      if (stopped()) return undefined;
      await new Promise((resolve) => setTimeout(resolve, RESEND_MS));
    }
  }
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

// What to do about a first connection that failed, by its reason.
const HINTS: [RegExp, string][] = [
  [
    /NOAUTH|WRONGPASS|invalid (username|password)|AUTH\b/i,
    "give the right password in the URL, e.g. redis://:password@host:6379 (redis://user:password@host:6379 for an ACL user)",
  ],
  [
    /certificate[ _]?required|peer did not return a certificate|alert bad certificate|BadCertificate/i,
    "the server asks for a client certificate: pass the tls option's cert and key (--tls-cert FILE --tls-key FILE for multiproc-worker)",
  ],
  [
    /certificate|self[- ]signed|unable to (get|verify)|CERT_|Hostname\/IP/i,
    "pass the CA that signed the server's certificate as the tls option's ca (--tls-ca FILE for multiproc-worker), and a servername if the URL's host is not on the certificate",
  ],
  [
    /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|timeout/i,
    "check that the server runs and that the URL's host and port are right",
  ],
];

const OPENSSL = /(?:^|:)error:[0-9A-Fa-f]+:SSL routines:[^:]*:([^:]+)/;

// Sentence case, the URL quoted without its password, the reason without
// its own trailing period, and what to do.
function connectError(url: string, error: unknown): Error {
  const message = ((error as Error)?.message || String(error)).trim();
  // OpenSSL's "…:error:0A00045C:SSL routines:function:reason:file:line…"
  // (Node, Bun) says the reason in its fifth field.
  const reason = (OPENSSL.exec(message)?.[1] ?? message)
    .replace(/[.:\s]+$/, "");
  const hint = HINTS.find(([pattern]) => pattern.test(reason))?.[1] ??
    "check that the server runs and that the URL (host, port, password, rediss:// for TLS) is right";
  return new Error(
    `Cannot connect to Redis at ${
      JSON.stringify(redactUrl(url))
    } (${reason}): ${hint}`,
    { cause: error },
  );
}

// The first connection fails loudly; later losses are retried forever.
/**
 * Connects to `url`; `label` names the connection to the server (CLIENT LIST).
 * With `tls` (checked settings; the URL is then rediss://), the connection
 * uses them instead of the default trust.
 *
 * @throws {Error} naming the server (without its password) and the reason,
 * when it cannot be reached or refuses the credentials.
 */
export async function connectRedis(
  url: string,
  label: string,
  events: ConnectionEvents = {},
  tls?: TlsSettings,
): Promise<RedisConnection> {
  let connected = false;
  let lost = false;
  // RESP2 replies are plain arrays, whatever the command.
  const client = createClient({
    url,
    name: label,
    RESP: 2,
    socket: {
      ...(tls && { tls: true, ...tls }),
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
    throw connectError(url, error);
  }
  connected = true;
  // A connection never holds the program by itself: a command waiting for
  // its reply does, and its owner while it waits for something.
  client.unref();
  return wrap(client as unknown as Client, url, label, events, tls);
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
  tls: TlsSettings | undefined,
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
      return connectRedis(url, label, events, tls);
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
