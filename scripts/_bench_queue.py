"""Python's multiprocessing Queue, SimpleQueue and Pipe on the cases of
scripts/_bench_queue_cases.ts: a producer process and a consumer process
pass small ints (200 000) or 100 KiB bytes (2 000) through them.

Both processes are started before timing and wait for a signal; a round is
the time from that signal until both have finished. Prints
{"runtime": ..., "cases": {name: [ms per round]}}. Run by
scripts/bench_queue.ts.
"""
import json
import os
import platform
import time
from multiprocessing import Event, Pipe, Process, Queue, SimpleQueue

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
PROCESS_ITEMS = 200_000
BIG_ITEMS = 2_000
BIG_BYTES = 100 * 1024


def produce(go, into, count, size):
    item = bytes(size)
    put = into.send if hasattr(into, "send") else into.put
    go.wait()
    if size == 0:
        for i in range(count):
            put(i)
    else:
        for _ in range(count):
            put(item)


def consume(go, source, count):
    get = source.recv if hasattr(source, "recv") else source.get
    go.wait()
    for _ in range(count):
        get()


def channel(kind):
    if kind == "Pipe":
        reader, writer = Pipe(duplex=False)
        return writer, reader
    q = Queue() if kind == "Queue" else SimpleQueue()
    return q, q


def round_of(kind, count, size=0):
    sending, receiving = channel(kind)
    go = Event()
    producer = Process(target=produce, args=(go, sending, count, size))
    consumer = Process(target=consume, args=(go, receiving, count))
    producer.start()
    consumer.start()
    time.sleep(0.05)
    started = time.perf_counter()
    go.set()
    producer.join()
    consumer.join()
    return (time.perf_counter() - started) * 1000


def main():
    cases = {
        "process: python3 Queue": lambda: round_of("Queue", PROCESS_ITEMS),
        "process: python3 SimpleQueue": lambda: round_of("SimpleQueue", PROCESS_ITEMS),
        "process: python3 Pipe": lambda: round_of("Pipe", PROCESS_ITEMS),
        "big process: python3 Queue": lambda: round_of("Queue", BIG_ITEMS, BIG_BYTES),
    }
    results = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, fn in cases.items():
            results[name].append(fn())
    print(json.dumps({"runtime": f"Python {platform.python_version()}", "cases": results}))


if __name__ == "__main__":
    main()
