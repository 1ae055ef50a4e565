"""The Celery app of the stack suite: one task, ``stack.work``, whose failure rate per
service is switchable through Redis (``stack:fail:<service>``, a ratio 0..1).

Workers run as ``<service>@stack`` on the queue named after the service, with task
events on (``-E``), so Flower's ``flower_events_total{worker=...}`` carries the service
that Prometheus relabels from the worker's name.
"""

from __future__ import annotations

import os
import random

import redis
from celery import Celery


def make_celery(broker: str) -> Celery:
    """The app with the task registered."""
    app = Celery("stack", broker=broker)
    app.conf.update(
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    flags = redis.Redis.from_url(broker)

    @app.task(name="stack.work")
    def work(service: str) -> str:
        ratio = float(flags.get(f"stack:fail:{service}") or 0)
        if random.random() < ratio:
            raise RuntimeError("injected task failure")
        return "done"

    return app


app = make_celery(os.environ.get("STACK_BROKER", "redis://127.0.0.1:6379/0"))
