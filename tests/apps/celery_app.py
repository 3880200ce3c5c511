"""A Celery app for the checks' tests: its worker runs as a subprocess on the Redis
broker named by ``HM_CELERY_BROKER``."""

from __future__ import annotations

import os

from celery import Celery

app = Celery("health_middleware_tests", broker=os.environ["HM_CELERY_BROKER"])
app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)
