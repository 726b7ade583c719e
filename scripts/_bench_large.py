"""Python's multiprocessing on the cases of scripts/_bench_large_cases.ts:
100 KiB and 10 MiB bytes items between two processes through a Queue and a
Pipe, the same bytes through one raw OS pipe (the floor), and Pool.map over
200 items of 1 MiB (sums of their doubles) and 200 results of 1 MiB.

Processes are started before timing and wait for a signal; a round is the
time from that signal until both have finished. Prints
{"runtime": ..., "cases": {name: [ms per round]}}. Run by
scripts/bench_large.py.
"""
import json
import os
import platform
import time
from multiprocessing import Event, Pipe, Pool, Process, Queue

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SIZES = {"100 KiB": (2_000, 100 * 1024), "10 MiB": (20, 10 * 1024 * 1024)}
TASKS = 200
TASK_BYTES = 1024 * 1024


def produce(go, into, count, size):
    item = bytes(size)
    put = into.send_bytes if hasattr(into, "send_bytes") else into.put
    go.wait()
    for _ in range(count):
        put(item)


def consume(go, source, count):
    get = source.recv_bytes if hasattr(source, "recv_bytes") else source.get
    go.wait()
    for _ in range(count):
        get()


def raw_write(go, fd, count, size):
    item = bytes(size)
    go.wait()
    for _ in range(count):
        view = memoryview(item)
        while view:
            view = view[os.write(fd, view):]
    os.close(fd)


def raw_read(go, fd, count, size):
    buffer = bytearray(1 << 20)
    go.wait()
    total = 0
    while total < count * size:
        n = os.readv(fd, [buffer])
        if n == 0:
            break
        total += n


def round_of(kind, count, size):
    go = Event()
    if kind == "raw pipe":
        reader, writer = os.pipe()
        producer = Process(target=raw_write, args=(go, writer, count, size))
        consumer = Process(target=raw_read, args=(go, reader, count, size))
    else:
        if kind == "Pipe":
            receiving, sending = Pipe(duplex=False)
        else:
            receiving = sending = Queue()
        producer = Process(target=produce, args=(go, sending, count, size))
        consumer = Process(target=consume, args=(go, receiving, count))
    producer.start()
    consumer.start()
    if kind == "raw pipe":
        os.close(reader)
        os.close(writer)
    time.sleep(0.05)
    started = time.perf_counter()
    go.set()
    producer.join()
    consumer.join()
    return (time.perf_counter() - started) * 1000


def total(data):
    return sum(memoryview(data).cast("d"))


def megabyte(i):
    data = bytearray(TASK_BYTES)
    data[0] = i % 256
    return bytes(data)


def timed(fn):
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def main():
    cases = {}
    for label, (count, size) in SIZES.items():
        for kind in ("Queue", "Pipe", "raw pipe"):
            cases[f"{label}: python3 {kind}"] = (
                lambda kind=kind, count=count, size=size: round_of(kind, count, size)
            )
    pool = Pool(2)
    pool.map(abs, range(4))
    items = [bytes(TASK_BYTES) for _ in range(TASKS)]
    cases["sums: python3 Pool"] = lambda: timed(lambda: pool.map(total, items))
    cases["results: python3 Pool"] = lambda: timed(
        lambda: pool.map(megabyte, range(TASKS))
    )
    results = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, fn in cases.items():
            results[name].append(fn())
    pool.terminate()
    print(json.dumps({"runtime": f"Python {platform.python_version()}", "cases": results}))


if __name__ == "__main__":
    main()
