"""Python's subprocess on the same cases as scripts/_bench_subprocess_cases.ts.

Prints {"runtime": ..., "cases": {name: [ms per operation, one per round]}}.
Run by scripts/bench_subprocess.ts; not meant to be run by hand.
"""
import json
import os
import platform
import subprocess
import sys
import time

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
SPAWNS = int(os.environ.get("BENCH_SPAWNS", "200"))
PIPE_BYTES = 100 * 1024 * 1024
DATA = b"a" * PIPE_BYTES if sys.argv[-1] == "pipe" else b""


def spawn_true():
    subprocess.run(["true"])


def cat():
    p = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    out, _ = p.communicate(DATA)
    assert len(out) == PIPE_BYTES


GROUP = sys.argv[-1] if sys.argv[-1] in ("spawn", "pipe") else "spawn"
CASES = {
    "spawn": {"python3 subprocess": (spawn_true, SPAWNS)},
    "pipe": {"python3 subprocess": (cat, 1)},
}[GROUP]


def measure(fn, repeat):
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) * 1000 / repeat


results = {}
for name, (fn, repeat) in CASES.items():
    measure(fn, repeat)
    results[name] = []
for _ in range(ROUNDS):
    for name, (fn, repeat) in CASES.items():
        results[name].append(measure(fn, repeat))
print(json.dumps({"runtime": f"Python {platform.python_version()}", "cases": results}))
