"""Python's multiprocessing.Lock on the cases of scripts/_bench_sync_cases.ts:
acquire+release of an uncontended lock in one process (1 000 000 pairs), and
a lock that two processes take turns on (10 000 pairs each).

The processes are started before timing and wait for a signal; a round is
the time from that signal until both have finished. The contended case also
reports its handoffs (how often the lock went from one process to the
other, counted under the lock) as `handoffs <name>`, in ms per handoff. Prints
{"runtime": ..., "cases": {name: [ms per round]}}. Run by
scripts/bench_sync.ts.
"""
import json
import os
import platform
import time
from multiprocessing import Event, Lock, Process, Value

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
UNCONTENDED = 1_000_000
TURNS = 10_000


def turns(go, lock, count, me, last, changes):
    go.wait()
    for _ in range(count):
        lock.acquire()
        if last.value != me:
            if last.value != -1:
                changes.value += 1
            last.value = me
        lock.release()


def uncontended():
    lock = Lock()
    started = time.perf_counter()
    for _ in range(UNCONTENDED):
        lock.acquire()
        lock.release()
    return (time.perf_counter() - started) * 1000


def contended():
    lock = Lock()
    go = Event()
    last = Value("i", -1, lock=False)
    changes = Value("i", 0, lock=False)
    workers = [
        Process(target=turns, args=(go, lock, TURNS, me, last, changes))
        for me in range(2)
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.05)
    started = time.perf_counter()
    go.set()
    for worker in workers:
        worker.join()
    ms = (time.perf_counter() - started) * 1000
    return ms, ms / max(changes.value, 1)


if __name__ == "__main__":
    cases = {
        "uncontended: python3 multiprocessing.Lock": uncontended,
        "process: python3 multiprocessing.Lock": contended,
    }
    results = {name: [] for name in cases}
    for name, case in cases.items():
        case()  # warm-up
    for _ in range(ROUNDS):
        for name, case in cases.items():
            ms = case()
            if isinstance(ms, tuple):
                ms, per_handoff = ms
                results.setdefault(f"handoffs {name}", []).append(per_handoff)
            results[name].append(ms)
    print(json.dumps({
        "runtime": f"Python {platform.python_version()}",
        "cases": results,
    }))
