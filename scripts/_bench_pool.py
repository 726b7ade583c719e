"""Python's multiprocessing.Pool on the cases of scripts/_bench_pool_cases.ts.

Prints {"runtime": ..., "cases": {name: [ms per round]}}. Run by
scripts/bench_pool.ts.
"""
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import Pool

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
TINY = 100_000
MAP = 1_000_000
IMAP = 100_000
STARMAP = 300_000


def noop(x):
    return x


def square(x):
    return x * x


def add(a, b):
    return a + b


def field(record):
    return record["a"]


LATENCY_CALLS = 2_000
BURN = 30_000_000


def burn(n):
    x = 0
    for i in range(n):
        x = (x + i * i) % 1_000_003
    return x


def latencies(pool):
    times = []
    for i in range(LATENCY_CALLS):
        started = time.perf_counter()
        pool.apply(noop, (i,))
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.99)]


def cpu(processes):
    # Python is much slower per loop step than JavaScript: a smaller amount of
    # the same work keeps the round short; the ratio 1 vs 2 is what counts.
    work = [BURN // 8 // 10] * 8
    with Pool(processes) as pool:
        pool.map(burn, [1000])
        started = time.perf_counter()
        pool.map(burn, work)
        return (time.perf_counter() - started) * 1000


def main():
    results = {}
    with Pool(2) as pool:
        map_input = list(range(MAP))
        imap_input = list(range(IMAP))
        pairs = [(i, i) for i in range(STARMAP)]
        records = [{"a": i, "b": "x%d" % i} for i in range(STARMAP)]
        cases = {
            "tiny: python3 Pool.apply_async": lambda: [
                r.get() for r in [pool.apply_async(noop, (i,)) for i in range(TINY)]
            ],
            "map: python3 Pool.map": lambda: pool.map(square, map_input),
            "imap: python3 Pool.imap": lambda: list(pool.imap(square, imap_input)),
            "starmap: python3 Pool.starmap": lambda: pool.starmap(add, pairs),
            "records: python3 Pool.map": lambda: pool.map(field, records),
        }
        with ProcessPoolExecutor(2) as executor:
            cases["tiny: python3 ProcessPoolExecutor.submit"] = lambda: [
                f.result() for f in [executor.submit(noop, i) for i in range(TINY)]
            ]
            for name, fn in cases.items():
                fn()
                results[name] = []
            for name in ("p50: python3 Pool.apply", "p99: python3 Pool.apply", "cpu: 1", "cpu: 2"):
                results[name] = []
            for _ in range(ROUNDS):
                for name, fn in cases.items():
                    started = time.perf_counter()
                    fn()
                    results[name].append((time.perf_counter() - started) * 1000)
                p50, p99 = latencies(pool)
                results["p50: python3 Pool.apply"].append(p50)
                results["p99: python3 Pool.apply"].append(p99)
                results["cpu: 1"].append(cpu(1))
                results["cpu: 2"].append(cpu(2))
    print(json.dumps({"runtime": f"Python {platform.python_version()}", "cases": results}))


if __name__ == "__main__":
    main()
