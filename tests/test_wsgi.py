"""WSGIHealthMiddleware through werkzeug's test client and its LintMiddleware."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from typing import Any

import orjson
import pytest
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client

from health_middleware import Health, WSGIHealthMiddleware
from tests.support import gunicorn, server


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
                with warnings.catch_warnings():
                    if method == "HEAD" and path != "/x":
                        # werkzeug's lint does not know HEAD: RFC 9110 gives a HEAD
                        # response the GET's Content-Length and no body.
                        warnings.filterwarnings("ignore", "Content-Length and the number")
                    response = client.open(path, method=method)
                    data = response.get_data()
                    response.close()
                if path == "/x":
                    assert data == b"app"
                elif method in ("GET", "HEAD"):
                    assert response.status_code == 200
                    assert response.headers["Content-Type"] == "application/health+json"
                    assert response.headers["Cache-Control"] == "no-store"
                    assert response.headers == get.headers
                    assert data == (get_data if method == "GET" else b"")
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


# -- HEAD sends no body, whatever the server does with one ----------------------------------


def _head_then_get(port: int) -> tuple[int, bytes, int, bytes]:
    """HEAD then GET on one keep-alive connection: a HEAD body the server sent would
    be read as the start of the GET's response."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("HEAD", "/health/live")
        head = connection.getresponse()
        head_body = head.read()
        connection.request("GET", "/health/live")
        get = connection.getresponse()
        return head.status, head_body, get.status, get.read()
    finally:
        connection.close()


@pytest.mark.server
@pytest.mark.parametrize(
    "args",
    [
        ["waitress", "--listen=127.0.0.1:{port}", "tests.apps.flagged:wsgi_app"],
        gunicorn("tests.apps.flagged:wsgi_app", "-k", "gthread", "--threads", "2"),
    ],
    ids=["waitress", "gunicorn-gthread"],
)
def test_head_then_get_on_one_keep_alive_connection(args: list[str]) -> None:
    with server(args) as running:
        head_status, head_body, get_status, get_body = _head_then_get(running.port)
    assert (head_status, head_body) == (200, b"")
    assert get_status == 200
    assert orjson.loads(get_body) == {"status": "pass"}


def test_head_on_wsgiref_sends_headers_only() -> None:
    """wsgiref writes whatever the app returns, HEAD or not."""
    import socket
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None: ...

    health = Health(interval=0.05)
    httpd = make_server("127.0.0.1", 0, WSGIHealthMiddleware(wsgi_app, health), handler_class=Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        port = httpd.server_address[1]
        deadline = time.monotonic() + 10
        while True:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"HEAD /health/live HTTP/1.0\r\nHost: x\r\n\r\n")
                raw = b""
                while chunk := sock.recv(65536):
                    raw += chunk
            head, _, body = raw.partition(b"\r\n\r\n")
            if b" 200 " in head.split(b"\r\n")[0]:
                break
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert b"content-length: 17" in head.lower()  # the GET's length: {"status":"pass"}
        assert body == b""
    finally:
        httpd.shutdown()
        health.stop()


# -- the Authorization header: any scheme case, any bytes ---------------------------------


def test_bearer_scheme_is_case_insensitive_and_odd_headers_never_raise() -> None:
    token = "details-token-0123456789abcdef"
    health = Health(interval=0.05, details_token=token)

    def failing() -> None:
        raise ConnectionError("db.internal refused")

    health.add_check("db", failing)
    health.prestop("prestop-token-0123456789", delay=0.01)
    client = Client(WSGIHealthMiddleware(wsgi_app, health))
    wait_started(client)
    for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
        detailed = client.get("/health", headers={"Authorization": f"{scheme} {token}"})
        assert b"db.internal refused" in detailed.get_data(), scheme
    for odd in ("Bearer \u20ac\u4e2d", "\u4e2d\u6587", "Bearer", "", "Basic " + token, token):
        plain = client.get("/health", headers={"Authorization": odd})
        assert plain.status_code == 503
        assert b"db.internal refused" not in plain.get_data()
        assert client.get("/health/prestop", headers={"Authorization": odd}).status_code == 401
    drained = client.get(
        "/health/prestop", headers={"Authorization": "bearer prestop-token-0123456789"}
    )
    assert drained.status_code == 200
    assert health.draining
    health.stop()
