"""One line for every server: each cell a real server on 127.0.0.1, probed over HTTP.

| server    | how                                                | apps                          |
|-----------|----------------------------------------------------|-------------------------------|
| uvicorn   | factory; lifespan auto/on/off; --workers 2; root   | Starlette, FastAPI, Django, 2 |
| gunicorn  | call syntax and the hook; sync, gthread, uvicorn   | Flask, Django WSGI, FastAPI   |
| hypercorn | factory (module and attribute apart)               | FastAPI, Django ASGI          |
| granian   | --interface asgi / wsgi, --factory                 | Starlette, Flask              |
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

import pytest

from health_middleware import serve
from tests.support import Server, granian, gunicorn, server, uvicorn

pytestmark = pytest.mark.server

HEALTH = {"HEALTH_MIDDLEWARE_HEALTH": "tests.apps.flagged:health", "HM_INTERVAL": "0.2"}
ASGI = "health_middleware.serve:asgi"


def call(factory: str, app: str) -> str:
    """gunicorn's call syntax: ``health_middleware.serve:wsgi("module:attribute")``."""
    return f'health_middleware.serve:{factory}("{app}")'


@dataclass
class Cell:
    args: list[str]
    body: bytes  # what the app's own route answers
    env: dict[str, str] = field(default_factory=dict)
    prefix: str = ""  # where the app is mounted, as clients see it


def factory_env(app: str) -> dict[str, str]:
    return {"HEALTH_MIDDLEWARE_APP": app}


def granian_factory(interface: str, factory: str) -> list[str]:
    return granian(interface, factory, "--factory")


def hypercorn(app: str) -> list[str]:
    return ["hypercorn", app, "--bind", "127.0.0.1:{port}"]


HOOK = ["-c", "python:health_middleware.gunicorn"]
CELLS = {
    "uvicorn-starlette-lifespan-auto": Cell(
        uvicorn(ASGI, "--factory"), b"starlette", factory_env("tests.apps.fw_starlette:app")
    ),
    "uvicorn-fastapi-lifespan-on": Cell(
        uvicorn(ASGI, "--factory", "--lifespan", "on"),
        b"fastapi",
        factory_env("tests.apps.fw_fastapi:app"),
    ),
    "uvicorn-django-lifespan-on": Cell(
        uvicorn(ASGI, "--factory", "--lifespan", "on"),
        b"django",
        factory_env("tests.apps.fw_django:asgi"),
    ),
    "uvicorn-asgi2-lifespan-off": Cell(
        uvicorn(ASGI, "--factory", "--lifespan", "off"),
        b"asgi2",
        factory_env("tests.apps.fw_asgi2:App"),
    ),
    "uvicorn-starlette-workers-2": Cell(
        uvicorn(ASGI, "--factory", "--workers", "2"),
        b"starlette",
        factory_env("tests.apps.fw_starlette:app"),
    ),
    "uvicorn-fastapi-root-path": Cell(
        uvicorn(ASGI, "--factory", "--root-path", "/api"),
        b"fastapi",
        factory_env("tests.apps.fw_fastapi:app"),
    ),
    "gunicorn-flask-call-sync": Cell(
        gunicorn(call("wsgi", "tests.apps.fw_flask:app"), "-k", "sync"), b"flask"
    ),
    "gunicorn-flask-script-name": Cell(
        gunicorn(call("wsgi", "tests.apps.fw_flask:app")),
        b"flask",
        {"SCRIPT_NAME": "/api"},
        prefix="/api",
    ),
    "gunicorn-django-hook-gthread-preload": Cell(
        gunicorn("tests.apps.fw_django:wsgi", *HOOK, "-k", "gthread", "--preload", "-w", "2"),
        b"django",
    ),
    "gunicorn-django-call-gthread-preload": Cell(
        gunicorn(
            call("wsgi", "tests.apps.fw_django:wsgi"),
            "-k",
            "gthread",
            "--threads",
            "2",
            "--preload",
        ),
        b"django",
    ),
    "gunicorn-fastapi-call-uvicorn-worker": Cell(
        gunicorn(call("asgi", "tests.apps.fw_fastapi:app"), "-k", "uvicorn_worker.UvicornWorker"),
        b"fastapi",
    ),
    "gunicorn-fastapi-hook-uvicorn-worker": Cell(
        gunicorn("tests.apps.fw_fastapi:app", *HOOK, "-k", "uvicorn_worker.UvicornWorker"),
        b"fastapi",
    ),
    "gunicorn-fastapi-hook-asgi-worker": Cell(
        gunicorn("tests.apps.fw_fastapi:app", *HOOK, "-k", "asgi"), b"fastapi"
    ),
    "hypercorn-fastapi": Cell(
        hypercorn('health_middleware.serve:asgi("tests.apps.fw_fastapi", "app")'), b"fastapi"
    ),
    "hypercorn-django": Cell(
        hypercorn('health_middleware.serve:asgi("tests.apps.fw_django", "asgi")'), b"django"
    ),
    "granian-asgi-starlette": Cell(
        granian_factory("asgi", ASGI), b"starlette", factory_env("tests.apps.fw_starlette:app")
    ),
    "granian-wsgi-flask": Cell(
        granian_factory("wsgi", "health_middleware.serve:wsgi"),
        b"flask",
        factory_env("tests.apps.fw_flask:app"),
    ),
}


def wait_ready(running: Server, prefix: str) -> None:
    """Ready on every worker: ten answers in a row on fresh connections."""
    deadline = time.monotonic() + 20
    in_a_row = 0
    while in_a_row < 10:
        in_a_row = in_a_row + 1 if running.get(f"{prefix}/health/ready").status == 200 else 0
        assert time.monotonic() < deadline, running.output()
        if not in_a_row:
            time.sleep(0.05)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_server_cell(name: str) -> None:
    cell = CELLS[name]
    with server(cell.args, {**HEALTH, **cell.env}, ready=f"{cell.prefix}/health/live") as running:
        wait_ready(running, cell.prefix)
        full = running.get(f"{cell.prefix}/health")
        assert full.status == 200, running.output()
        assert full.headers["content-type"] == "application/health+json"
        assert "flag:pid" in full.json()["checks"]
        head = running.get(f"{cell.prefix}/health", "HEAD")
        assert head.status == 200
        assert head.body == b""
        assert head.headers["content-length"] == full.headers["content-length"]
        assert running.get(f"{cell.prefix}/health/live/").status == 200
        assert running.get(f"{cell.prefix}/health", "POST").status == 405
        assert running.get(f"{cell.prefix}/").body == cell.body
    assert "Traceback" not in running.output(), running.output()


def test_websockets_pass_through_to_starlette() -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    env = {**HEALTH, **factory_env("tests.apps.fw_starlette:app")}
    with server(uvicorn(ASGI, "--factory"), env) as running:
        with connect(f"ws://127.0.0.1:{running.port}/ws", open_timeout=5) as websocket:
            websocket.send("hi")
            assert websocket.recv(timeout=5) == "echo:hi"
        # A websocket on a health path is the app's business too (Starlette has no route).
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{running.port}/health", open_timeout=5)
        assert refused.value.response.status_code == 403


@pytest.mark.parametrize("server_name", ["uvicorn", "gunicorn"])
def test_probes_kept_out_of_the_access_log(server_name: str) -> None:
    env = {**HEALTH, "HEALTH_MIDDLEWARE_QUIET_PROBES": "1"}
    if server_name == "uvicorn":
        args = uvicorn(ASGI, "--factory", "--access-log")
        env |= factory_env("tests.apps.fw_starlette:app")
    else:
        args = gunicorn(call("wsgi", "tests.apps.fw_flask:app"), "--access-logfile", "-")
    with server(args, env) as running:
        wait_ready(running, "")
        for path in ("/health", "/health/ready/", "/health/live?x=1", "/"):
            running.get(path)
        time.sleep(0.3)
    output = running.output()
    assert "GET / " in output, output
    assert "GET /health" not in output, output


def test_a_bad_app_string_stops_the_server_with_a_clear_error() -> None:
    env = {**HEALTH, **factory_env("tests.apps.no_such_module:app")}
    with (
        pytest.raises(AssertionError) as failed,
        server(uvicorn(ASGI, "--factory"), env, timeout=20),
    ):
        pass
    assert "no module named 'tests.apps.no_such_module'" in str(failed.value)


@pytest.mark.parametrize(
    ("args", "app", "factory"),
    [
        (hypercorn(ASGI), "tests.apps.fw_fastapi:app", "asgi"),
        (granian("asgi", ASGI), "tests.apps.fw_starlette:app", "asgi"),
        (gunicorn("health_middleware.serve:wsgi"), "tests.apps.fw_flask:app", "wsgi"),
    ],
    ids=["hypercorn-uncalled", "granian-without-factory", "gunicorn-uncalled"],
)
def test_a_factory_served_as_the_app_answers_no_pass_and_names_the_fix(
    args: list[str], app: str, factory: str
) -> None:
    """A server handed the factory itself calls it with each request: no health path
    may pass, and the log says how to run the factory."""
    with server(args, {**HEALTH, **factory_env(app)}) as running:
        assert running.get("/health/ready").status == 500
        assert running.get("/").status == 500
        output = running.output()
    assert f"health_middleware.serve:{factory} was called as the app" in output, output
    assert "add --factory" in output, output
    assert "call it in the command" in output, output
    if args[0] == "granian":
        return
    # The call the message names, taken literally, with the app's module and attribute.
    named = re.search(r"'(health_middleware\.serve:\w+\(.*?\))'", output)
    assert named is not None, output
    module, attribute = app.split(":")
    fixed = named[1].replace("package.module", module).replace('"attribute"', f'"{attribute}"')
    with server([args[0], fixed, *args[2:]], HEALTH) as running:
        assert running.get("/health/ready").status in (200, 503)
        assert running.get("/").status == 200


@pytest.mark.parametrize(
    ("factory", "args", "error", "message"),
    [
        (serve.asgi, ("tests.apps.no_such:app",), ImportError, "no module named"),
        (serve.asgi, ("tests.apps.fw_flask:nothing",), AttributeError, "no attribute 'nothing'"),
        (serve.asgi, ("tests.apps.fw_flask:app",), TypeError, "serve:wsgi"),
        (serve.wsgi, ("tests.apps.fw_starlette:app",), TypeError, "serve:asgi"),
        (serve.asgi, ("tests.apps.fw_django",), ValueError, "package.module:attribute"),
        (serve.asgi, ("tests.apps.fw_django:urlpatterns",), TypeError, "not an application"),
        (serve.asgi, (), ValueError, "HEALTH_MIDDLEWARE_APP"),
    ],
)
def test_bad_app_strings(
    factory: object,
    args: tuple[str, ...],
    error: type[Exception],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HEALTH_MIDDLEWARE_APP", raising=False)
    with pytest.raises(error, match=message):
        factory(*args)  # type: ignore[operator]


def test_a_bad_health_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTH_MIDDLEWARE_HEALTH", "tests.apps.fw_flask:app")
    with pytest.raises(TypeError, match="not a Health"):
        serve.wsgi("tests.apps.fw_flask:app")


def test_factories_start_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTH_MIDDLEWARE_HEALTH", "tests.apps.flagged:health")
    threads = threading.active_count()
    asgi_app = serve.asgi("tests.apps.fw_starlette", "app")
    wsgi_app = serve.wsgi("tests.apps.fw_flask:app")
    assert threading.active_count() == threads
    assert not asgi_app.health.activated
    assert not wsgi_app.health.activated
