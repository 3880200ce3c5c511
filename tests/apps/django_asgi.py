"""A minimal Django ASGI app: Django rejects the lifespan protocol."""

from __future__ import annotations

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="test-only",
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
)
django.setup()


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello from django")


urlpatterns = [path("", home)]

from django.core.asgi import get_asgi_application  # noqa: E402  # after settings

from health_middleware import Health, HealthMiddleware  # noqa: E402

health = Health(interval=0.5, timeout=0.5)
health.add_check("always", lambda: True)
app = HealthMiddleware(get_asgi_application(), health)
