"""``python -m health_middleware demo``: a small ASGI app behind the middleware,
with real checks on embedded defaults (a SQLite file and the disk it lives on)."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from health_middleware import Health, HealthMiddleware, checks


def build(data_dir: Path) -> tuple[HealthMiddleware, Health]:
    database = data_dir / "demo.sqlite3"
    sqlite3.connect(database).close()
    broken = {"sqlite": False}
    health = Health(
        service_id="health-middleware-demo",
        version="1.0.0",
        release_id="demo",
        description="health_middleware demo",
        interval=2.0,
        timeout=1.0,
    )

    def connect() -> sqlite3.Connection:
        if broken["sqlite"]:
            raise ConnectionRefusedError("demo: the database was switched off with /demo/break")
        return sqlite3.connect(database, timeout=0.5)

    health.add_check("sqlite:responseTime", checks.dbapi(connect))
    health.add_check("disk:utilization", checks.disk(data_dir), critical=False)

    async def app(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] in ("/demo/break", "/demo/fix"):
            broken["sqlite"] = scope["path"] == "/demo/break"
            body = b"sqlite check now " + (b"fails" if broken["sqlite"] else b"passes") + b"\n"
        else:
            body = b"Hello from the demo app. Health lives under /health.\n"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
                "trailers": False,
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return HealthMiddleware(app, health), health


def serve(host: str, port: int) -> int:
    try:
        import uvicorn
    except ImportError:
        print("the demo needs uvicorn: pip install 'health_middleware[demo]'")
        return 2
    with tempfile.TemporaryDirectory(prefix="health-demo-") as data_dir:
        app, _ = build(Path(data_dir))
        base = f"http://{host}:{port}"
        print("health_middleware demo: try these (Ctrl-C stops)")
        for path in ("/health", "/health/live", "/health/ready", "/health/started", "/"):
            print(f"  curl -i {base}{path}")
        print(f"  curl {base}/demo/break   then /health/ready answers 503; /demo/fix heals it")
        uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
