// The part of node-redis that _redis_client.ts uses, as Deno reads it: the
// package's own types pull in @types/node, which Deno's documentation tools
// cannot resolve. tsc (the npm build) checks the adapter against the
// package's real types.

/** RESP reply types, for a client's type mapping. */
export declare const RESP_TYPES: { readonly BLOB_STRING: 36 };

/** An error Redis replied with. */
export declare class ErrorReply extends Error {}

/** The options the adapter gives `createClient`. */
export interface ClientOptions {
  url: string;
  name?: string;
  RESP?: 2 | 3;
  socket?: {
    tls?: boolean;
    ca?: string;
    cert?: string;
    key?: string;
    rejectUnauthorized?: boolean;
    servername?: string;
    connectTimeout?: number;
    reconnectStrategy?(retries: number, cause: Error): number | Error;
  };
}

/** The methods of a client the adapter calls. */
export interface NodeRedisClient {
  readonly isOpen: boolean;
  withTypeMapping(mapping: Record<number, unknown>): NodeRedisClient;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "ready", listener: () => void): unknown;
  connect(): Promise<unknown>;
  destroy(): void;
  unref(): void;
  sendCommand(args: (string | Uint8Array)[]): Promise<unknown>;
  multi(): {
    addCommand(args: (string | Uint8Array)[]): unknown;
    exec(): Promise<unknown>;
  };
  subscribe(
    channel: string,
    listener: (message: unknown) => void,
  ): Promise<unknown>;
  close(): Promise<unknown>;
}

/** Makes a client; it connects with `connect()`. */
export declare function createClient(options: ClientOptions): NodeRedisClient;
