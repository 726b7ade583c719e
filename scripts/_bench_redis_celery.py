"""The Celery app of the Redis benchmark (scripts/_bench_redis.py): the same
tasks as the multiproc hosts serve (scripts/_bench_redis_tasks.ts), with the
Redis server in BENCH_REDIS_URL as broker and result backend. Workers run it
as `python3 -m celery -A _bench_redis_celery worker` from scripts/.
"""
import os

from celery import Celery

URL = os.environ["BENCH_REDIS_URL"]

app = Celery("bench_redis", broker=URL, backend=URL)
app.conf.update(broker_connection_retry_on_startup=True)


@app.task(name="noop")
def noop(x):
    return x


@app.task(name="square")
def square(x):
    return x * x
