"""WSGIHealthMiddleware through werkzeug's test client and its LintMiddleware."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from typing import Any

from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client

from health_middleware import Health, WSGIHealthMiddleware


class Body:
    """The app's own iterable, to check it comes back untouched."""

    def __iter__(self) -> Any:
        return iter([b"app"])

    def close(self) -> None: ...


BODY = Body()


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return BODY


def wait_started(client: Client, path: str = "/health/started") -> None:
    deadline = time.monotonic() + 10
    while True:
        response = client.get(path)
        response.close()
        if response.status_code == 200:
            return
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_lint_clean_for_every_path_and_method() -> None:
    health = Health(interval=0.05)
    health.add_check("ok", lambda: True)
    client = Client(LintMiddleware(WSGIHealthMiddleware(wsgi_app, health)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any lint warning fails the test
        wait_started(client)
        for path in ("/health", "/health/", "/health/live", "/health/ready", "/x"):
            get = client.get(path)
            get_data = get.get_data()
            get.close()
            for method in ("GET", "HEAD", "POST", "DELETE"):
                response = client.open(path, method=method)
                data = response.get_data()
                response.close()
                if path == "/x":
                    assert data == b"app"
                elif method in ("GET", "HEAD"):
                    assert response.status_code == 200
                    assert response.headers["Content-Type"] == "application/health+json"
                    assert response.headers["Cache-Control"] == "no-store"
                    # The server drops a HEAD body (RFC 9110); the app sends GET's.
                    assert response.headers == get.headers
                    assert data == get_data
                else:
                    assert response.status_code == 405
                    assert response.headers["Allow"] == "GET, HEAD"
    health.stop()


def test_the_apps_iterable_and_environ_pass_through_untouched() -> None:
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        seen.append((environ, start_response))
        return BODY

    middleware = WSGIHealthMiddleware(app, Health())
    environ = {"PATH_INFO": "/healthy", "REQUEST_METHOD": "GET"}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return lambda data: None

    assert middleware(environ, start_response) is BODY
    assert seen[0][0] is environ
    assert seen[0][1] is start_response


def test_script_name_mount_matches_on_path_info() -> None:
    health = Health(interval=0.05)
    client = Client(WSGIHealthMiddleware(wsgi_app, health))
    wait_started(client)
    response = client.get("/health", environ_overrides={"SCRIPT_NAME": "/api"})
    assert response.status_code == 200
    health.stop()


def test_the_refresher_runs_async_checks_on_its_own_thread() -> None:
    import asyncio
    import threading

    ran_on: list[str] = []
    health = Health(interval=60)

    @health.check("async")
    async def check() -> None:
        await asyncio.sleep(0)
        ran_on.append(threading.current_thread().name)

    client = Client(WSGIHealthMiddleware(wsgi_app, health))
    wait_started(client)
    health.stop()
    assert ran_on == ["health-refresher"]
