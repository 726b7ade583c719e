"""Python's multiprocessing.Pool on the cases of scripts/_bench_pool_cases.ts.

Prints {"runtime": ..., "cases": {name: [ms per round]}}. Run by
scripts/bench_pool.ts.
"""
import json
import os
import platform
import time
from multiprocessing import Pool

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
TINY = 100_000
MAP = 1_000_000
IMAP = 100_000


def noop(x):
    return x


def square(x):
    return x * x


def main():
    results = {}
    with Pool(2) as pool:
        map_input = list(range(MAP))
        imap_input = list(range(IMAP))
        cases = {
            "tiny: python3 Pool.apply_async": lambda: [
                r.get() for r in [pool.apply_async(noop, (i,)) for i in range(TINY)]
            ],
            "map: python3 Pool.map": lambda: pool.map(square, map_input),
            "imap: python3 Pool.imap": lambda: list(pool.imap(square, imap_input)),
        }
        for name, fn in cases.items():
            fn()
            results[name] = []
        for _ in range(ROUNDS):
            for name, fn in cases.items():
                started = time.perf_counter()
                fn()
                results[name].append((time.perf_counter() - started) * 1000)
    print(json.dumps({"runtime": f"Python {platform.python_version()}", "cases": results}))


if __name__ == "__main__":
    main()
