"""The project's ``asgi.py``: the health paths answered before Django builds a request."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.apps.django_project.settings")

from django.core.asgi import get_asgi_application  # after the settings

from health_middleware.django import asgi

application = asgi(get_asgi_application())
