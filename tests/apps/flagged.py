"""A service whose one check fails while a flag file exists.

Environment: HM_FLAG (the flag file), HM_RUNS (a file every run appends its pid
to), HM_INTERVAL and HM_TIMEOUT (seconds), HM_NAME (what the app's own route says),
HM_TOKEN (enables the pre-stop endpoint), HM_DRAIN_FILE.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from health_middleware import CheckResult, Health, HealthMiddleware, WSGIHealthMiddleware
from tests.apps.lifespan import serve_lifespan

FLAG = Path(os.environ.get("HM_FLAG", "/nonexistent/flag"))
RUNS = os.environ.get("HM_RUNS")

NAME = os.environ.get("HM_NAME", "app")

health = Health(
    service_id="flagged",
    interval=float(os.environ.get("HM_INTERVAL", "0.5")),
    timeout=float(os.environ.get("HM_TIMEOUT", "0.5")),
    drain_file=os.environ.get("HM_DRAIN_FILE"),
)
if os.environ.get("HM_TOKEN"):
    health.prestop(os.environ["HM_TOKEN"], delay=float(os.environ.get("HM_PRESTOP_DELAY", "1")))


@health.check("flag:pid", component_type="system")
def flag() -> CheckResult:
    if RUNS:
        with open(RUNS, "a") as runs:
            runs.write(f"{os.getpid()}\n")
    status = "fail" if FLAG.exists() else "pass"
    return CheckResult(status, observed_value=os.getpid(), observed_unit="pid")


def _body() -> bytes:
    return f"{NAME}:{os.getpid()}".encode()


def inner_wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [_body()]


async def inner_asgi(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": _body()})


asgi_app = HealthMiddleware(inner_asgi, health)
wsgi_app = WSGIHealthMiddleware(inner_wsgi, health)
