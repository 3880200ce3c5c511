"""A minimal Django project: ``wsgi`` and ``asgi`` handlers (Django rejects lifespan)."""

from __future__ import annotations

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

if not settings.configured:  # in the test process another Django project may be set up
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
    return HttpResponse("django")


urlpatterns = [path("", home)]

from django.core.asgi import get_asgi_application  # noqa: E402  # after settings
from django.core.wsgi import get_wsgi_application  # noqa: E402

asgi = get_asgi_application()
wsgi = get_wsgi_application()
