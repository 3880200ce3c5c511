"""The apps the end-to-end benchmark serves, each answering a health endpoint whose
dependency check takes 2 ms (``time.sleep`` or ``asyncio.sleep``). Each counts its
check runs and reports the count at ``/_runs``. ``BENCH_HUNG=1`` adds a dependency
that never returns.

- ``bare_asgi`` / ``bare_wsgi``: constant bytes, no check at all (the physical limit)
- ``ours_asgi`` / ``ours_wsgi``: health_middleware, checks on an interval of 1 s
- ``starlette_route`` / ``fastapi_route``: a route that runs the check on every request
- ``fastapi_health``: the fastapi-health package
- ``flask_healthcheck``: Flask with py-healthcheck (it caches a pass for 27 s by default)
- ``django_health_check``: django-health-check's view
- ``slow_wsgi`` / ``cpu_asgi``: health_middleware in front of an app whose other
  requests keep the worker busy (2 s asleep in a sync worker; 200 ms of CPU on the
  event loop), for the probe latency under saturation
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

# The bare apps send exactly the response the middleware sends for /health/ready (its
# status, headers and body: tests/test_benchmark_apps.py holds them to it), so that
# "ours ÷ bare" measures the middleware, not a difference in what goes on the wire.
BODY = b'{"status":"pass"}'
HEADERS = [
    (b"content-type", b"application/health+json"),
    (b"content-length", b"17"),
    (b"cache-control", b"no-store"),
]
WSGI_HEADERS = [(name.decode(), value.decode()) for name, value in HEADERS]
HUNG = os.environ.get("BENCH_HUNG") == "1"
RUNS = [0]
_HANG = threading.Event()  # never set


def check_sync() -> bool:
    RUNS[0] += 1
    time.sleep(0.002)
    return True


async def check_async() -> bool:
    RUNS[0] += 1
    await asyncio.sleep(0.002)
    return True


async def hang_async() -> bool:
    await asyncio.Event().wait()
    return True


def hang_sync() -> bool:
    _HANG.wait()
    return True


def _runs_body() -> bytes:
    return str(RUNS[0]).encode()


# -- the physical limit --------------------------------------------------------------------


async def bare_asgi(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": list(HEADERS), "trailers": False}
    )
    await send({"type": "http.response.body", "body": BODY, "more_body": False})


def bare_wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", list(WSGI_HEADERS))
    return [BODY]


# -- health_middleware ---------------------------------------------------------------------


def _health() -> Any:
    from health_middleware import Health

    health = Health(interval=1.0, timeout=1.0)
    health.add_check("dependency:responseTime", check_async)
    if HUNG:
        health.add_check("hung", hang_async, critical=False)
    return _listening(health)


def _listening(health: Any) -> Any:
    """``health`` with the probe port ``HEALTH_MIDDLEWARE_LISTEN`` names, as the
    one-liners read it (these apps make their own ``Health``)."""
    listen = os.environ.get("HEALTH_MIDDLEWARE_LISTEN")
    if listen and hasattr(health, "listen"):
        from health_middleware.config.environment import listen_address

        host, port = listen_address(listen)
        health.listen(port, host)
    return health


async def _counting_asgi(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = _runs_body() if scope["path"] == "/_runs" else BODY
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _counting_wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [_runs_body() if environ["PATH_INFO"] == "/_runs" else BODY]


def _ours_asgi() -> Any:
    from health_middleware import HealthMiddleware

    return HealthMiddleware(_counting_asgi, _health())


def _ours_wsgi_around(app: Any) -> Any:
    from health_middleware import Health, WSGIHealthMiddleware

    health = Health(interval=1.0, timeout=1.0)
    health.add_check("dependency:responseTime", check_sync)
    if HUNG:
        health.add_check("hung", hang_sync, critical=False)
    return WSGIHealthMiddleware(app, _listening(health))


def _ours_wsgi() -> Any:
    return _ours_wsgi_around(_counting_wsgi)


# -- route-based endpoints and the peers ---------------------------------------------------


def _starlette_route() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    async def health(request: Any) -> JSONResponse:
        await check_async()
        if HUNG:
            await hang_async()
        return JSONResponse({"status": "pass"})

    async def runs(request: Any) -> PlainTextResponse:
        return PlainTextResponse(_runs_body())

    return Starlette(routes=[Route("/health", health), Route("/_runs", runs)])


def _fastapi_route() -> Any:
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        await check_async()
        if HUNG:
            await hang_async()
        return {"status": "pass"}

    @app.get("/_runs", response_class=PlainTextResponse)
    async def runs() -> bytes:
        return _runs_body()

    return app


def _fastapi_health() -> Any:
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse
    from fastapi_health import health

    app = FastAPI()
    conditions = [check_async, hang_async] if HUNG else [check_async]
    app.add_api_route("/health", health(conditions))

    @app.get("/_runs", response_class=PlainTextResponse)
    async def runs() -> bytes:
        return _runs_body()

    return app


def _flask_healthcheck() -> Any:
    from flask import Flask
    from healthcheck import HealthCheck

    app = Flask(__name__)
    checker = HealthCheck()

    def dependency() -> tuple[bool, str]:
        check_sync()
        if HUNG:
            hang_sync()
        return True, "ok"

    checker.add_check(dependency)
    app.add_url_rule("/health", "health", view_func=checker.run)
    app.add_url_rule("/_runs", "runs", view_func=_runs_body)
    return app


def _django_health_check() -> Any:
    import django
    from django.conf import settings
    from django.http import HttpResponse
    from django.urls import path
    from health_check.base import HealthCheck as DjangoCheck
    from health_check.views import HealthCheckView

    class Dependency(DjangoCheck):
        async def run(self) -> None:
            await check_async()
            if HUNG:
                await hang_async()

    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        SECRET_KEY="bench",
        MIDDLEWARE=[],
        INSTALLED_APPS=["health_check"],
        TEMPLATES=[
            {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}
        ],
    )
    django.setup()
    global urlpatterns  # Django reads it from ROOT_URLCONF
    urlpatterns = [
        path("health", HealthCheckView.as_view(checks=[Dependency])),
        path("_runs", lambda request: HttpResponse(_runs_body())),
    ]
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


urlpatterns: list[Any] = []


def _spin(seconds: float) -> None:
    """Burn ``seconds`` of CPU (holding the GIL and, in an ASGI app, the loop)."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def _slow_wsgi() -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/work":
            time.sleep(2.0)
        return _counting_wsgi(environ, start_response)

    return _ours_wsgi_around(app)


def _cpu_asgi() -> Any:
    from health_middleware import HealthMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/work":
            _spin(0.2)
        await _counting_asgi(scope, receive, send)

    return HealthMiddleware(app, _health())


_BUILDERS = {
    "ours_asgi": _ours_asgi,
    "ours_wsgi": _ours_wsgi,
    "starlette_route": _starlette_route,
    "fastapi_route": _fastapi_route,
    "fastapi_health": _fastapi_health,
    "flask_healthcheck": _flask_healthcheck,
    "django_health_check": _django_health_check,
    "slow_wsgi": _slow_wsgi,
    "cpu_asgi": _cpu_asgi,
}


def __getattr__(name: str) -> Any:
    """Build an app only when a server asks for it (each needs its own framework)."""
    if name in _BUILDERS:
        app = _BUILDERS[name]()
        globals()[name] = app
        return app
    raise AttributeError(name)


def build(name: str) -> Any:
    """The app ``name``, for servers that look it up by evaluating their argument in the
    module's namespace (hypercorn: ``benchmarks.apps:build('ours_asgi')``), which misses
    the module's ``__getattr__``."""
    return globals()[name] if name in globals() else __getattr__(name)
