"""The project's Celery app, on the broker ``CELERY_BROKER_URL`` names."""

from __future__ import annotations

from celery import Celery

app = Celery("django_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
