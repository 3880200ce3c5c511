"""A Starlette app whose lifespan yields state that requests read."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from health_middleware import Health, HealthMiddleware

health = Health(interval=0.5, timeout=0.5)
health.add_check("always", lambda: True)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
    yield {"greeting": "hello from lifespan state"}


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.state.greeting)


app = HealthMiddleware(Starlette(routes=[Route("/", home)], lifespan=lifespan), health)
