"""A service whose one check fails while a flag file exists.

Environment: HM_FLAG (the flag file), HM_RUNS (a file every run appends a line to:
"pid started finished status", times from time.time()), HM_INTERVAL and HM_TIMEOUT
(seconds), HM_SLEEP (seconds each run takes), HM_NAME (what the app's own route says),
HM_TOKEN (enables the pre-stop endpoint), HM_DRAIN_FILE, HM_SHUTDOWN_DELAY, HM_JITTER
("0" turns the schedule's offset off), HM_INSTANCE (a named shared instance),
HM_STALE_AFTER.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from health_middleware import CheckResult, Health, HealthMiddleware, WSGIHealthMiddleware
from tests.apps.lifespan import serve_lifespan

FLAG = Path(os.environ.get("HM_FLAG", "/nonexistent/flag"))
RUNS = os.environ.get("HM_RUNS")
SLEEP = float(os.environ.get("HM_SLEEP", "0"))

NAME = os.environ.get("HM_NAME", "app")

health = Health(
    service_id="flagged",
    interval=float(os.environ.get("HM_INTERVAL", "0.5")),
    timeout=float(os.environ.get("HM_TIMEOUT", "0.5")),
    drain_file=os.environ.get("HM_DRAIN_FILE"),
    shutdown_delay=float(os.environ.get("HM_SHUTDOWN_DELAY", "0")),
    jitter=os.environ.get("HM_JITTER", "1") != "0",
    instance=os.environ.get("HM_INSTANCE"),
    stale_after=float(os.environ.get("HM_STALE_AFTER", "10")),
)
if os.environ.get("HM_TOKEN"):
    health.prestop(os.environ["HM_TOKEN"], delay=float(os.environ.get("HM_PRESTOP_DELAY", "1")))


@health.check("flag:pid", component_type="system")
def flag() -> CheckResult:
    started = time.time()
    if RUNS:
        with open(RUNS, "a") as runs:
            runs.write(f"{os.getpid()} {started:.3f} start\n")
    if SLEEP:
        time.sleep(SLEEP)
    status = "fail" if FLAG.exists() else "pass"
    if RUNS:
        with open(RUNS, "a") as runs:
            runs.write(f"{os.getpid()} {time.time():.3f} {status}\n")
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
