"""A Celery app instrumented with ``health_middleware.celery``, for its tests: its
worker runs as a subprocess on the broker named by ``HM_CELERY_BROKER`` (Redis, or
``filesystem://`` in the folder ``HM_FS_DIR``: a transport with no event loop) and
serves the health endpoints on 127.0.0.1:``HM_PORT``.

``sleep(seconds)`` is a task that sleeps; the remote control command ``hm_block``
(``seconds``) blocks the consumer's loop (control commands run on it, whatever the
pool) to stand for a hung consumer.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery
from celery.worker.control import control_command

from health_middleware import Health
from health_middleware.celery import instrument

app = Celery("hm_health", broker=os.environ["HM_CELERY_BROKER"])
app.conf.update(
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    broker_connection_max_retries=None,  # retry for as long as the broker is away
)
if os.environ.get("HM_FS_DIR"):
    folder = os.environ["HM_FS_DIR"]
    app.conf.broker_transport_options = {
        "data_folder_in": folder,
        "data_folder_out": folder,
        "control_folder": folder,  # else kombu writes a "control" folder in the cwd
    }
health = Health(service_id="celery-worker", interval=0.5, timeout=1.0)
instrument(app, health, int(os.environ["HM_PORT"]), "127.0.0.1", max_age=3.0)


@app.task(name="hm.sleep")  # type: ignore[untyped-decorator]  # Celery is untyped
def sleep(seconds: float) -> None:
    time.sleep(seconds)


@control_command(args=[("seconds", float)], signature="<seconds>")  # type: ignore[untyped-decorator]
def hm_block(state: Any, seconds: float) -> dict[str, float]:
    time.sleep(seconds)
    return {"blocked": seconds}
