"""A set-up that cannot start: an endpoint counts the group "redy", a typo no check
carries (its check is tagged "db"). Refused as the runtime starts: uvicorn's lifespan
startup fails, a gunicorn worker fails to boot, a first request gets a 500.

Environment: HM_LISTEN (``host:port``: ``health.listen`` there; with no typo, for the
tests of ``HEALTH_MIDDLEWARE_LISTEN`` against a port asked for in code), HM_GROUP (the
endpoint's group; default "redy").
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from health_middleware import Health, HealthMiddleware, WSGIHealthMiddleware
from health_middleware.config.environment import listen_address
from tests.apps.lifespan import serve_lifespan

health = Health(service_id="misgrouped", interval=0.5, timeout=0.5)
health.endpoint("/z", group=os.environ.get("HM_GROUP", "redy"))  # before its checks
if os.environ.get("HM_LISTEN"):
    host, port = listen_address(os.environ["HM_LISTEN"])
    health.listen(port, host)


@health.check("db", tags={"db"})
def db() -> bool:
    return True


async def inner_asgi(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"app"})


def inner_wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app"]


asgi_app = HealthMiddleware(inner_asgi, health)
wsgi_app = WSGIHealthMiddleware(inner_wsgi, health)  # made in a gunicorn worker: starts
