"""Python's multiprocessing.Manager().dict() on the cases of
scripts/_bench_manager_cases.ts: 5 000 set+get round trips (d[k] = i; d[k])
from one process and from one thread of the main process.

The worker is started before timing and waits for a signal; a round is the
time from that signal until it has finished. Prints
{"runtime": ..., "cases": {name: [ms per round]}}. Run by
scripts/bench_manager.ts.
"""
import json
import os
import platform
import threading
import time
from multiprocessing import Event, Manager, Process

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
PAIRS = 5_000


def pairs(go, d, count):
    go.wait()
    for i in range(count):
        d["k"] = i
        if d["k"] != i:
            raise RuntimeError("Read a stale value")


def timed(make):
    go = Event()
    worker = make(go)
    worker.start()
    time.sleep(0.05)
    started = time.perf_counter()
    go.set()
    worker.join()
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    with Manager() as manager:
        d = manager.dict()
        cases = {
            "process: python3 Manager().dict()": lambda: timed(
                lambda go: Process(target=pairs, args=(go, d, PAIRS))
            ),
            "thread: python3 Manager().dict()": lambda: timed(
                lambda go: threading.Thread(target=pairs, args=(go, d, PAIRS))
            ),
        }
        results = {name: [] for name in cases}
        for name, case in cases.items():
            case()  # warm-up
        for _ in range(ROUNDS):
            for name, case in cases.items():
                results[name].append(case())
    print(json.dumps({
        "runtime": f"Python {platform.python_version()}",
        "cases": results,
    }))
