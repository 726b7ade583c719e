"""The Python baselines of the Redis benchmark (scripts/bench_redis.py runs
it with the Redis server's URL): Celery (Redis broker and result backend,
two workers of concurrency 2, prefork) on the cases of
scripts/_bench_redis_cases.ts, and a plain Redis list (redis-py LPUSH/BRPOP)
between two processes, and Python's own multiprocessing.Pool.map on this
machine (4 processes, no network), the mark for a map. A baseline whose
package is missing is skipped with its reason on stderr and in the output's
"skipped".

Prints {"runtime": ..., "cases": {name: [ms per round]}, "commands": {name:
{command: calls per item in the last round}}, "skipped": {name: reason}};
latency cases give each round's median round trip. BENCH_ROUNDS (default 3)
sets the rounds, BENCH_ONLY (a regular expression) picks cases, BENCH_TRACE=1
names each case as it starts.
"""
import gc
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from multiprocessing import Event, Process

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TRACE = os.environ.get("BENCH_TRACE") == "1"
TINY = 20_000
MAP = 1_000_000
LATENCY_CALLS = 300
QUEUE_ITEMS = 10_000
HOSTS = 2
PER_HOST = 2
CHUNK = math.ceil(MAP / (HOSTS * PER_HOST * 4))
HERE = os.path.dirname(os.path.abspath(__file__))


def check(actual, expected, what):
    if actual != expected:
        raise RuntimeError(f"{what}: expected {expected}, got {actual}")


def timed(work, settle):
    def run():
        started = time.perf_counter()
        work()
        elapsed = (time.perf_counter() - started) * 1000
        settle()
        return elapsed

    return run


def p50(call, settle):
    def run():
        times = []
        for i in range(LATENCY_CALLS):
            started = time.perf_counter()
            call(i)
            times.append((time.perf_counter() - started) * 1000)
        settle()
        return statistics.median(times)

    return run


def start_celery_workers(url):
    """Two worker processes, prefork with 2 children each; the kernel ends them with us."""
    env = dict(os.environ, BENCH_REDIS_URL=url, PYTHONDONTWRITEBYTECODE="1")
    workers = []
    for i in range(HOSTS):
        argv = [sys.executable, "-W", "ignore", "-m", "celery", "-A", "_bench_redis_celery", "worker",
                "-c", str(PER_HOST), "-P", "prefork", "-n", f"bench{i}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "-l", "WARNING"]
        guard = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
        workers.append(subprocess.Popen(
            [*guard, *argv],
            cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
    return workers


def stop(workers):
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def celery_cases(url, cases, cleanup):
    os.environ["BENCH_REDIS_URL"] = url
    sys.path.insert(0, HERE)
    sys.dont_write_bytecode = True  # no __pycache__ in scripts/
    import celery
    from _bench_redis_celery import app, noop, square

    workers = start_celery_workers(url)
    cleanup.append(lambda: stop(workers))
    deadline = time.monotonic() + 60
    while len(app.control.ping(timeout=0.5)) < HOSTS:
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            raise RuntimeError("The Celery workers did not answer a ping within 60 s")
    items = list(range(MAP))

    def tiny(count=TINY):
        results = [noop.delay(i) for i in range(count)]
        check(sum(r.get() for r in results), count * (count - 1) // 2, "tiny, Celery")

    def mapped(count=MAP):
        parts = square.chunks(zip(items[:count]), CHUNK).group().apply_async().get()
        check(sum(sum(part) for part in parts), sum(x * x for x in items[:count]), "map, Celery")

    def settle():
        """Celery leaves work behind: results that were fetched without their
        pubsub message leave it queued, and each such message, once read,
        sends an UNSUBSCRIBE; collected results unsubscribe too. After 10 000
        tasks that is thousands of commands, which would land in the next case:
        they run after each round, untimed (but counted in its commands)."""
        gc.collect()
        consumer = app.backend.result_consumer
        pubsub = getattr(consumer, "_pubsub", None)
        deadline = time.monotonic() + 60
        # Read until no channel is left (the rest are confirmations redis-py drops).
        while pubsub is not None and pubsub.subscribed and time.monotonic() < deadline:
            consumer.drain_events(timeout=0.01)

    name = f"Celery {celery.__version__}"
    # Warm-ups are a tenth of a round: Celery's rounds are the longest of the benchmark.
    cases[f"tiny: {name}"] = (timed(tiny, settle), lambda: (tiny(TINY // 10), settle()))
    cases[f"map: {name} chunks"] = (timed(mapped, settle), lambda: (mapped(MAP // 10), settle()))
    cases[f"p50: {name}"] = p50(lambda i: noop.delay(i).get(), settle)


def square_local(x):
    return x * x


def local_pool_cases(cases, cleanup):
    """Python's own multiprocessing.Pool on this machine (4 processes, no
    network): the mark a Redis map should reach."""
    from multiprocessing import Pool

    pool = Pool(HOSTS * PER_HOST)
    cleanup.append(pool.terminate)
    items = list(range(MAP))
    expected = sum(x * x for x in items)

    def mapped():
        check(sum(pool.map(square_local, items, CHUNK)), expected, "map, Python Pool")

    cases["map: Python multiprocessing.Pool (local)"] = timed(mapped, lambda: None)


def produce(url, key, count, go):
    import redis

    client = redis.Redis.from_url(url)
    client.ping()
    go.wait()
    for i in range(count):
        client.lpush(key, i)


def consume(url, key, count, go, done):
    import redis

    client = redis.Redis.from_url(url)
    client.ping()
    go.wait()
    total = 0
    for _ in range(count):
        total += int(client.brpop(key, 0)[1])
    check(total, count * (count - 1) // 2, "queue, redis-py")
    done.set()


def list_round(url):
    """Both processes start before timing and wait for a signal, as in scripts/_bench_queue.py."""
    key = f"bench-list-python-{os.getpid()}"
    go, done = Event(), Event()
    producer = Process(target=produce, args=(url, key, QUEUE_ITEMS, go))
    consumer = Process(target=consume, args=(url, key, QUEUE_ITEMS, go, done))
    producer.start()
    consumer.start()
    time.sleep(0.2)
    started = time.perf_counter()
    go.set()
    producer.join()
    consumer.join()
    elapsed = (time.perf_counter() - started) * 1000
    if not done.is_set():
        raise RuntimeError("The redis-py consumer failed")
    return elapsed


def items_of(name):
    """What one round of a case counts as an item, for Redis commands per item."""
    if name.startswith("tiny"):
        return TINY
    if name.startswith("map"):
        return math.ceil(MAP / CHUNK)
    if name.startswith("p50"):
        return LATENCY_CALLS
    return QUEUE_ITEMS


def command_stats(admin):
    """Commands Redis ran since the last reset, by name (without these counting calls)."""
    counts = {}
    for key, value in admin.info("commandstats").items():
        name = key[len("cmdstat_"):]
        if name not in ("info", "config|resetstat"):
            counts[name] = value["calls"]
    return counts


def main():
    url = sys.argv[1]
    cases, skipped, cleanup = {}, {}, []
    only = re.compile(os.environ.get("BENCH_ONLY", ""))
    redis = None
    try:
        import redis

        cases[f"queue: redis-py {redis.__version__} LPUSH/BRPOP"] = lambda: list_round(url)
    except ImportError as error:
        skipped["redis-py"] = f"{error}: install Debian's python3-redis"
    if redis is None:
        skipped["Celery"] = "its Redis broker needs redis-py: install Debian's python3-redis"
    else:
        try:
            celery_cases(url, cases, cleanup)
        except ImportError as error:
            skipped["Celery"] = f"{error}: install Debian's python3-celery"
    local_pool_cases(cases, cleanup)
    for name, reason in skipped.items():
        print(f"{name} skipped: {reason}", file=sys.stderr)
    chosen = {name: case for name, case in cases.items() if only.search(name)}
    results, commands = {}, {}
    try:
        admin = redis.Redis.from_url(url) if "redis-py" not in skipped else None
        for name, case in chosen.items():
            if TRACE:
                print(f"python warm-up: {name}", file=sys.stderr)
            warm = case[1] if isinstance(case, tuple) else case
            warm()
            results[name] = []
        for round_ in range(ROUNDS):
            for name, case in chosen.items():
                if TRACE:
                    print(f"python round {round_ + 1}: {name}", file=sys.stderr)
                run = case[0] if isinstance(case, tuple) else case
                # The last round also counts the commands Redis ran for it, per item.
                counting = admin is not None and round_ == ROUNDS - 1
                if counting:
                    admin.config_resetstat()
                results[name].append(run())
                if counting:
                    commands[name] = {
                        command: calls / items_of(name)
                        for command, calls in command_stats(admin).items()
                    }
    finally:
        for undo in cleanup:
            undo()
    print(json.dumps({
        "runtime": f"Python {platform.python_version()}",
        "cases": results,
        "commands": commands,
        "skipped": skipped,
    }))


if __name__ == "__main__":
    main()
