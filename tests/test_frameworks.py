"""Wrapped frameworks keep working: Starlette's lifespan state survives, and a
Django ASGI app (which rejects lifespan) starts under ``uvicorn --lifespan on``."""

from __future__ import annotations

import time

import pytest

from tests.support import Server, server, uvicorn

pytestmark = pytest.mark.server


def _until_passing(running: Server) -> None:
    deadline = time.monotonic() + 10
    while running.get("/health").status != 200:
        assert time.monotonic() < deadline, running.output()
        time.sleep(0.05)


def test_starlette_lifespan_state_survives_wrapping() -> None:
    args = uvicorn("tests.apps.starlette_state:app", "--lifespan", "on")
    with server(args) as running:
        assert running.get("/").body == b"hello from lifespan state"
        _until_passing(running)


def test_django_asgi_starts_with_lifespan_on() -> None:
    args = uvicorn("tests.apps.django_asgi:app", "--lifespan", "on")
    with server(args) as running:
        assert running.get("/").body == b"django"
        _until_passing(running)
        assert running.get("/health/ready").status == 200
    assert "Application startup failed" not in running.output()
