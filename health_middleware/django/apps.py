"""The Django app: list ``"health_middleware.django"`` in ``INSTALLED_APPS``."""

from __future__ import annotations

from django.apps import AppConfig


class HealthMiddlewareConfig(AppConfig):
    name = "health_middleware.django"
    label = "health_middleware"
    verbose_name = "Health middleware"

    def ready(self) -> None:
        # Made now, so a mistake in the setting stops the project at start-up and a
        # Health of the project's own has Django's checks before any server wraps it.
        from health_middleware.django.config import get_health

        get_health()
