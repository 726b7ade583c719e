// The producer and consumer tasks of the Redis benchmark's queue case, run
// each alone on a worker process of a local pool: through a multiproc Redis
// Queue, a plain Redis list (ioredis LPUSH/BRPOP) or a local Queue. The
// Redis connections of a worker are kept between rounds.
import { Redis } from "ioredis";
import type { Queue as LocalQueue } from "../queue.ts";
import { Queue as RedisQueue } from "../redis.ts";

const queues = new Map<string, RedisQueue<number>>();
const clients = new Map<string, Redis>();

// One handle per queue name in this worker, connected by the warm-up round.
function queueOf(url: string, name: string): RedisQueue<number> {
  let queue = queues.get(name);
  if (queue === undefined) {
    queue = new RedisQueue<number>({ redis: url, name });
    queues.set(name, queue);
  }
  return queue;
}

// One ioredis connection per URL in this worker.
function clientOf(url: string): Redis {
  let client = clients.get(url);
  if (client === undefined) {
    client = new Redis(url);
    clients.set(url, client);
  }
  return client;
}

/** Puts 0…count-1 on the Redis Queue `name`, one awaited put each. */
export async function putRedisQueue(
  url: string,
  name: string,
  count: number,
): Promise<void> {
  const queue = queueOf(url, name);
  for (let i = 0; i < count; i++) await queue.put(i);
}

/** Gets `count` items from the Redis Queue `name`; returns their sum. */
export async function getRedisQueue(
  url: string,
  name: string,
  count: number,
): Promise<number> {
  const queue = queueOf(url, name);
  let sum = 0;
  for (let i = 0; i < count; i++) sum += await queue.get();
  return sum;
}

/** LPUSHes 0…count-1 onto the list `key`, one awaited command each. */
export async function pushList(
  url: string,
  key: string,
  count: number,
): Promise<void> {
  const client = clientOf(url);
  for (let i = 0; i < count; i++) await client.lpush(key, i);
}

/** BRPOPs `count` items from the list `key`; returns their sum. */
export async function popList(
  url: string,
  key: string,
  count: number,
): Promise<number> {
  const client = clientOf(url);
  let sum = 0;
  for (let i = 0; i < count; i++) {
    const reply = await client.brpop(key, 0);
    sum += Number(reply![1]);
  }
  return sum;
}

/** Puts 0…count-1 on a local Queue (the ceiling: no network). */
export async function putLocal(
  queue: LocalQueue<number>,
  count: number,
): Promise<void> {
  for (let i = 0; i < count; i++) await queue.put(i);
}

/** Gets `count` items from a local Queue; returns their sum. */
export async function getLocal(
  queue: LocalQueue<number>,
  count: number,
): Promise<number> {
  let sum = 0;
  for (let i = 0; i < count; i++) sum += await queue.get();
  return sum;
}
