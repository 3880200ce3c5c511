"""Set-ups that would answer falsely are refused, or named in the log, before they
serve (issue 22, "false green"):

- an endpoint counting a group no check carries is refused as the runtime starts
  (``StartError``, as a probe port that cannot be had): the ASGI lifespan startup
  fails (uvicorn exits), a gunicorn worker fails to boot (gunicorn exits), a start by
  a first request fails that request with a 500;
- the middleware of one interface given an app of the other is refused when made,
  each framework's app tried with both;
- ``HEALTH_MIDDLEWARE_LISTEN`` opens the probe port however the middleware is made,
  and disagreeing with ``health.listen()`` stops the start naming both addresses;
- unknown ``HEALTH_MIDDLEWARE_*`` variables are named; a one-liner without
  ``HEALTH_MIDDLEWARE_HEALTH`` is refused; a ``Health`` with no checks is logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from health_middleware import Health, HealthMiddleware, StartError, WSGIHealthMiddleware, serve
from health_middleware.config.environment import KNOWN, LISTEN
from health_middleware.serve import health_from_environment
from tests.support import (
    REPO,
    call,
    free_port,
    get,
    gunicorn,
    lifespan_startup,
    poll,
    run_to_exit,
    server,
    uvicorn,
)
from tests.test_asgi import plain_app

# -- an endpoint's group -------------------------------------------------------------------


def misgrouped() -> Health:
    health = Health(interval=0.2)
    health.endpoint("/z", group="redy")  # accepted here: its checks may come later
    health.add_check("db", lambda: True, tags={"db"})
    return health


def test_an_endpoint_of_a_group_no_check_carries_is_refused_at_start() -> None:
    health = misgrouped()
    with pytest.raises(StartError) as caught:
        health.runtime.start_in_thread()
    message = str(caught.value)
    assert "'/z'" in message
    assert "'redy'" in message
    assert "did you mean 'ready'?" in message
    assert "the known groups are all, live, ready, started, db" in message
    assert health.runtime.running is None  # nothing half-started
    assert not health.activated


async def test_a_tag_registered_after_its_endpoint_makes_a_group() -> None:
    health = Health(interval=0.2)
    health.endpoint("/db", group="db")
    health.add_check("db", lambda: True, tags={"db"})
    health.add_check("other", lambda: True)
    app = HealthMiddleware(plain_app, health)
    answer = await poll(app, "/db", lambda r: r.status == 200 and "checks" in r.json())
    assert list(answer.json()["checks"]) == ["db"]
    await health.stop_async()


@pytest.mark.parametrize(
    ("tag", "meant"),
    [
        ("liev", "live"),
        ("Ready", "ready"),
        ("liveness", "live"),
        ("redy", "ready"),
        ("readyy", "ready"),
        ("dbb", "db"),
    ],
)
def test_a_tag_that_reads_as_a_served_group_is_refused_at_start(tag: str, meant: str) -> None:
    """A check tagged ``liev`` counts in no probe: its failures would go unseen."""
    health = Health(interval=0.2)
    health.endpoint("/db", group="db")
    health.add_check("db", lambda: True, tags={"db"})
    health.add_check("cache", lambda: True, tags={tag})
    with pytest.raises(StartError) as caught:
        health.runtime.start_in_thread()
    message = str(caught.value)
    assert f"check 'cache' carries tag {tag!r}" in message
    assert f"did you mean {meant!r}?" in message
    assert f"tags={{{meant!r}}}" in message
    assert health.runtime.running is None


@pytest.mark.parametrize(
    "tag", ["team-payments", "reads", "line", "lively", "read", "lives", "olive", "alive"]
)
def test_a_tag_of_the_users_own_is_left_alone(tag: str) -> None:
    """A word a letter away by replacement (``reads``, ``line``) or at its ends
    (``read``, ``lives``, ``olive``) may be meant."""
    health = Health(interval=0.2)
    health.add_check("db", lambda: True, tags={tag, "live"})
    health.runtime.start_in_thread()
    try:
        assert health.runtime.running is not None
    finally:
        health.stop()


@pytest.mark.parametrize("tag", ["ddb", "db2", "d", "dbs-replica"])
def test_a_word_beside_a_custom_group_is_left_alone(tag: str) -> None:
    health = Health(interval=0.2)
    health.endpoint("/db", group="db")
    health.add_check("db", lambda: True, tags={"db"})
    health.add_check("dynamo", lambda: True, tags={tag})
    health.runtime.start_in_thread()
    health.stop()


def test_a_misspelt_tag_added_after_the_start_is_refused_as_it_is_added() -> None:
    health = Health(interval=0.2)
    health.add_check("db", lambda: True)
    health.runtime.start_in_thread()
    try:
        with pytest.raises(ValueError, match=r"carries tag 'liev'.*did you mean 'live'"):
            health.add_check("cache", lambda: False, tags={"liev"})
        assert [check.name for check in health.registry.checks()] == ["db"]
        health.add_check("cache", lambda: False, tags={"live"})
    finally:
        health.stop()


def test_an_unknown_check_option_is_refused_naming_the_closest_and_all() -> None:
    health = Health()
    with pytest.raises(TypeError) as caught:
        health.add_check("db", lambda: True, critcal=False)  # type: ignore[call-arg]
    message = str(caught.value)
    assert "unknown option 'critcal' (did you mean 'critical'?)" in message
    assert "the options are affected_endpoints, component_id" in message


def test_a_called_check_function_is_refused_naming_the_function() -> None:
    health = Health()

    async def database() -> bool:
        return True

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the coroutine is closed: no "never awaited"
        with pytest.raises(TypeError, match=r"what calling database\(\) returns: pass the async"):
            health.add_check("db", database())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"got bool True: pass a function of no arguments"):
        health.add_check("db", True)  # type: ignore[arg-type]
    assert not list(health.engine.results.states())


def test_the_asgi_lifespan_startup_fails_with_the_message() -> None:
    sent = lifespan_startup(misgrouped())
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "'redy'" in sent[0]["message"]


async def test_a_first_request_start_fails_that_request_every_time() -> None:
    health = misgrouped()
    app = HealthMiddleware(plain_app, health)
    for path in ("/z", "/health/ready", "/z"):
        with pytest.raises(StartError, match="redy"):
            await call(app, path)
    wsgi = Client(WSGIHealthMiddleware(lambda environ, start_response: [b""], health))
    with pytest.raises(StartError, match="redy"):
        wsgi.get("/z")


def exits(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run a server that must stop by itself at start-up: its exit code and output."""
    port = str(free_port())
    return run_to_exit([a.replace("{port}", port) for a in args], env, timeout=60)


@pytest.mark.server
def test_uvicorn_exits_at_startup_with_the_message() -> None:
    code, output = exits(uvicorn("tests.apps.misgrouped:asgi_app"), {})
    assert code != 0, output
    assert "counts group 'redy'" in output, output
    assert "Application startup failed" in output, output


@pytest.mark.server
def test_hypercorn_stops_at_startup_with_the_message() -> None:
    """hypercorn raises from the server's ``send`` of ``lifespan.startup.failed``: that
    exception must reach it (it used to be swallowed, and hypercorn served on)."""
    args = ["hypercorn", "tests.apps.misgrouped:asgi_app", "--bind", "127.0.0.1:{port}"]
    started = time.monotonic()
    _, output = exits(args, {})
    assert time.monotonic() - started < 30, output  # stopped by itself, not by the timeout
    assert "LifespanFailureError" in output, output
    assert "counts group 'redy'" in output, output


@pytest.mark.server
def test_gunicorn_exits_when_its_worker_cannot_boot() -> None:
    code, output = exits(gunicorn("tests.apps.misgrouped:wsgi_app"), {})
    assert code != 0, output
    assert "counts group 'redy'" in output, output


@pytest.mark.server
def test_a_first_request_start_answers_500_and_logs_through_uvicorn() -> None:
    with server(uvicorn("tests.apps.misgrouped:asgi_app", "--lifespan", "off"), ready="/") as s:
        assert s.get("/").status == 200  # the app itself serves
        assert [s.get(path).status for path in ("/z", "/health/ready", "/z")] == [500] * 3
        assert "counts group 'redy'" in s.output()


# -- the middleware and the kind of app ------------------------------------------------------


async def asgi3(scope: Any, receive: Any, send: Any) -> None:
    await plain_app(scope, receive, send)


def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [b"app"]


def quart_app() -> Any:
    from quart import Quart

    return Quart(__name__)


def litestar_app() -> Any:
    from litestar import Litestar

    return Litestar(route_handlers=[])


def flask_app() -> Any:
    from tests.apps.fw_flask import app

    return app


def starlette_app() -> Any:
    from tests.apps.fw_starlette import app

    return app


def fastapi_app() -> Any:
    from tests.apps.fw_fastapi import app

    return app


def asgi2_app() -> Any:
    from tests.apps.fw_asgi2 import App

    return App


APPS: dict[str, tuple[Callable[[], Any], str]] = {
    "starlette": (starlette_app, "asgi"),
    "fastapi": (fastapi_app, "asgi"),
    "quart": (quart_app, "asgi"),
    "litestar": (litestar_app, "asgi"),
    "an ASGI 2 class": (asgi2_app, "asgi"),
    "an async function": (lambda: asgi3, "asgi"),
    "flask": (flask_app, "wsgi"),
    "flask's wsgi_app": (lambda: flask_app().wsgi_app, "wsgi"),
    "a WSGI function": (lambda: wsgi, "wsgi"),
}
FACES = {"asgi": HealthMiddleware, "wsgi": WSGIHealthMiddleware}


@pytest.mark.parametrize("name", sorted(APPS))
def test_each_framework_is_accepted_by_its_face_and_refused_by_the_other(name: str) -> None:
    make, kind = APPS[name]
    app = make()
    right, wrong = FACES[kind], FACES["wsgi" if kind == "asgi" else "asgi"]
    assert right(app, Health()).app is not None
    with pytest.raises(TypeError, match=rf"wrap it with {right.__name__}\(app, health\)"):
        wrong(app, Health())


def test_a_callable_of_unknown_kind_is_accepted_by_both() -> None:
    def odd(*args: Any) -> Any:  # a framework's callable that says nothing of its kind
        return None

    for face in FACES.values():
        face(odd, Health())


def test_django_handlers_are_accepted_by_their_face_and_refused_by_the_other() -> None:
    """In a process of its own: Django's settings are made once per process."""
    script = """
from health_middleware import Health, HealthMiddleware, WSGIHealthMiddleware
from tests.apps.fw_django import asgi, wsgi
HealthMiddleware(asgi, Health())
WSGIHealthMiddleware(wsgi, Health())
for face, app in ((WSGIHealthMiddleware, asgi), (HealthMiddleware, wsgi)):
    try:
        face(app, Health())
    except TypeError as exc:
        print(exc)
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert "'ASGIHandler'" in lines[0]
    assert "wrap it with HealthMiddleware(app, health)" in lines[0]
    assert "'WSGIHandler'" in lines[1]
    assert "wrap it with WSGIHealthMiddleware(app, health)" in lines[1]


# -- HEALTH_MIDDLEWARE_LISTEN ------------------------------------------------------------------


def checked() -> Health:
    health = Health(interval=0.2)
    health.add_check("ok", lambda: True)
    return health


@contextlib.contextmanager
def running(health: Health) -> Iterator[None]:
    health.runtime.start_in_thread()
    try:
        yield
    finally:
        health.stop()


def test_the_listen_variable_opens_the_port_of_a_health_made_in_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    monkeypatch.setenv(LISTEN, f"127.0.0.1:{port}")
    health = checked()
    with running(health):
        assert health.listening == ("127.0.0.1", port)
        assert get(port, "/health/live").status == 200


def test_the_listen_variable_and_listen_must_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    code, variable = free_port(), free_port()
    monkeypatch.setenv(LISTEN, f"127.0.0.1:{variable}")
    health = Health()
    health.listen(code, "127.0.0.1")
    with pytest.raises(StartError) as caught:
        health.runtime.start_in_thread()
    assert f"127.0.0.1:{code}" in str(caught.value)
    assert f"127.0.0.1:{variable}" in str(caught.value)
    assert health.runtime.running is None
    monkeypatch.setenv(LISTEN, f"127.0.0.1:{code}")  # the same wish twice is one
    with running(health):
        assert health.listening == ("127.0.0.1", code)


def test_a_malformed_listen_variable_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LISTEN, "somewhere")
    with pytest.raises(StartError, match=f"{LISTEN}='somewhere' must look like 'host:port'"):
        Health().runtime.start_in_thread()


@pytest.mark.server
@pytest.mark.parametrize(
    "args",
    [uvicorn("tests.apps.busy:asgi_app"), gunicorn("tests.apps.busy:wsgi_app", "-w", "2")],
    ids=["uvicorn", "gunicorn"],
)
def test_the_listen_variable_through_servers_of_a_middleware_made_in_code(
    args: list[str],
) -> None:
    probe_port = free_port()
    with server(args, {LISTEN: f"127.0.0.1:{probe_port}"}) as running:
        deadline = time.monotonic() + 10
        while True:
            try:
                if get(probe_port, "/health/live").status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, running.output()[-3000:]
            time.sleep(0.05)


@pytest.mark.server
def test_uvicorn_exits_when_the_variable_and_listen_disagree() -> None:
    code_port, variable_port = free_port(), free_port()
    env = {
        "HM_GROUP": "db",
        "HM_LISTEN": f"127.0.0.1:{code_port}",
        LISTEN: f"127.0.0.1:{variable_port}",
    }
    code, output = exits(uvicorn("tests.apps.misgrouped:asgi_app"), env)
    assert code != 0, output
    assert f"127.0.0.1:{code_port}" in output, output
    assert f"127.0.0.1:{variable_port}" in output, output


# -- what the one-liners say ----------------------------------------------------------------


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "health_middleware" and record.levelno == logging.WARNING
    ]


def test_unknown_variables_are_named_with_the_closest_known_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HEALTH_MIDDLEWARE_QUIET_PROBE", "1")
    monkeypatch.setenv("health_middleware_listen", "8081")
    monkeypatch.setenv("HEALTH_MIDDLEWARE_NOTHING_LIKE_IT", "1")
    monkeypatch.setenv("HEALTH_MIDDLEWARE_SOAK_SECONDS", "60")  # the tests' own
    monkeypatch.setenv("HEALTH_MIDDLEWARE_HEALTH", "tests.apps.busy:health")
    with caplog.at_level(logging.WARNING, "health_middleware"):
        health_from_environment()
        health_from_environment()  # once per name and process
    found = warnings_of(caplog)
    for known in KNOWN:  # the package's own, and its tests', are never named
        assert not [m for m in found if f"variable {known} " in m], found
    mine = ("QUIET_PROBE ", "NOTHING_LIKE_IT ", "health_middleware_listen ")
    found = [m for m in found if any(name in m for name in mine)]
    assert len(found) == 3, found
    nothing, quiet, lower = found  # sorted by name
    assert "HEALTH_MIDDLEWARE_QUIET_PROBE " in quiet
    assert "did you mean HEALTH_MIDDLEWARE_QUIET_PROBES?" in quiet
    assert "HEALTH_MIDDLEWARE_NOTHING_LIKE_IT" in nothing
    assert "the known ones are HEALTH_MIDDLEWARE_APP" in nothing
    assert "did you mean HEALTH_MIDDLEWARE_LISTEN?" in lower


def test_a_one_liner_without_a_health_is_refused_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A forgotten HEALTH_MIDDLEWARE_HEALTH would serve 200 pass on every endpoint."""
    for unset in (None, "", "  "):
        if unset is None:
            monkeypatch.delenv("HEALTH_MIDDLEWARE_HEALTH", raising=False)
        else:
            monkeypatch.setenv("HEALTH_MIDDLEWARE_HEALTH", unset)
        with pytest.raises(StartError, match="HEALTH_MIDDLEWARE_HEALTH is not set") as refused:
            health_from_environment()
        assert "HEALTH_MIDDLEWARE_HEALTH=package.module:attribute" in str(refused.value)
        assert "HEALTH_MIDDLEWARE_HEALTH=none" in str(refused.value)
    for rendered in ("None", "NONE"):  # Python's None, a template's unset value
        monkeypatch.setenv("HEALTH_MIDDLEWARE_HEALTH", rendered)
        with pytest.raises(StartError, match=r"rendered from nothing.*none \(lower case\)"):
            health_from_environment()
    monkeypatch.setenv("HEALTH_MIDDLEWARE_HEALTH", "tests.apps.unchecked:health")
    unchecked = health_from_environment()  # its checks may come in the app's lifespan
    with pytest.raises(StartError, match="names a Health with no checks"):
        unchecked.runtime.start_in_thread()
    unchecked.add_check("late", lambda: True)
    unchecked.runtime.start_in_thread()
    unchecked.stop()
    monkeypatch.setenv("HEALTH_MIDDLEWARE_HEALTH", " none ")  # no checks, on purpose
    assert not list(health_from_environment().engine.results.states())


def test_a_health_with_no_checks_is_named_once_a_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health = Health()
    with caplog.at_level(logging.WARNING, "health_middleware"):
        health.runtime.start_in_thread()
        health.stop()
        health.runtime.start_in_thread()
        health.stop()
    named = [m for m in warnings_of(caplog) if "this Health has no checks" in m]
    assert len(named) == 1, warnings_of(caplog)
    checked = Health()
    checked.add_check("ok", lambda: True)
    caplog.clear()
    with caplog.at_level(logging.WARNING, "health_middleware"):
        checked.runtime.start_in_thread()
        checked.stop()
    assert not [m for m in warnings_of(caplog) if "no checks" in m]


@pytest.mark.server
def test_a_misspelt_health_variable_stops_uvicorn_naming_the_fix() -> None:
    env = {
        "HEALTH_MIDDLEWARE_APP": "tests.apps.fw_starlette:app",
        "HEALTH_MIDDLEWARE_HEALT": "tests.apps.busy:health",
        "HEALTH_MIDDLEWARE_HEALTH": "",
    }
    args = [
        a.replace("{port}", str(free_port()))
        for a in uvicorn("health_middleware.serve:asgi", "--factory")
    ]
    code, output = run_to_exit(args, env)
    assert code != 0, output
    assert "HEALTH_MIDDLEWARE_HEALT is not one health_middleware reads" in output, output
    assert "did you mean HEALTH_MIDDLEWARE_HEALTH?" in output, output
    assert "HEALTH_MIDDLEWARE_HEALTH is not set" in output, output


@pytest.mark.server
def test_the_gunicorn_hook_without_a_health_stops_gunicorn_naming_the_fix() -> None:
    args = gunicorn("tests.apps.fw_flask:app", "-c", "python:health_middleware.gunicorn")
    args = [a.replace("{port}", str(free_port())) for a in args]
    code, output = run_to_exit(args, {"HEALTH_MIDDLEWARE_HEALTH": ""})
    assert code != 0, output
    assert "HEALTH_MIDDLEWARE_HEALTH is not set" in output, output


@pytest.mark.server
def test_a_misspelt_variable_is_named_through_the_gunicorn_hook() -> None:
    args = gunicorn("tests.apps.fw_flask:app", "-c", "python:health_middleware.gunicorn")
    env = {"HEALTH_MIDDLEWARE_HEALTH": "tests.apps.busy:health", "HEALTH_MIDDLEWARE_LISTN": "1"}
    with server(args, env) as running:
        assert running.get("/health/live").status == 200
        output = running.output()
    assert "HEALTH_MIDDLEWARE_LISTN is not one" in output, output
    assert "did you mean HEALTH_MIDDLEWARE_LISTEN?" in output, output
    assert "has no checks" not in output, output


@pytest.mark.server
@pytest.mark.parametrize("app", ["tests.apps.wrapped:app", "tests.apps.wrapped:traced"])
@pytest.mark.parametrize("variable", ["", "none"])
def test_the_gunicorn_hook_leaves_an_app_with_a_health_inside_as_it_is(
    app: str, variable: str
) -> None:
    """Flask's ``app.wsgi_app = WSGIHealthMiddleware(...)``, wrapped once more: the hook
    neither refuses it (no variable is needed) nor puts an empty Health in front of
    the app's own (``none``), whose failing check must show."""
    args = gunicorn(app, "-c", "python:health_middleware.gunicorn", "--preload")
    with server(args, {"HEALTH_MIDDLEWARE_HEALTH": variable}, ready="/") as running:
        deadline = time.monotonic() + 10
        while (ready := running.get("/health/ready")).json()["output"] != "failing: db":
            assert ready.status == 503, ready.body  # starting, then failing: never 200
            assert time.monotonic() < deadline, ready.body
            time.sleep(0.1)
        assert ready.status == 503


def test_a_one_liner_puts_no_empty_health_in_front_of_the_apps_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``none`` would hide the app's failing checks behind none; a Health named is
    put in front, as asked."""
    apps = ("tests.apps.wrapped:app", "tests.apps.wrapped:traced", "tests.apps.flagged:asgi_app")
    monkeypatch.setenv("HEALTH_MIDDLEWARE_HEALTH", "none")
    for app in apps:
        with pytest.raises(TypeError, match=r"health endpoints of its own.*serve the app as it"):
            (serve.asgi if "asgi" in app else serve.wsgi)(app)
    for named in ("tests.apps.flagged:health", "tests.apps.unchecked:health"):
        # named, even with its checks still to come (the lifespan's): put in front
        monkeypatch.setenv("HEALTH_MIDDLEWARE_HEALTH", named)
        assert isinstance(serve.wsgi("tests.apps.wrapped:traced"), WSGIHealthMiddleware)


def test_a_health_inside_an_app_is_found_without_running_its_code() -> None:
    """Properties, ``__getattr__`` and lazy proxies are not run; the walk is bounded."""
    from tests.apps import wrapped

    class Proxy:
        def __getattr__(self, name: str) -> object:  # a new object for every name
            return Proxy()

    class Loud:
        @property
        def app(self) -> object:
            raise AssertionError("a property was run")

    assert serve.healths_inside(Proxy()) == []
    assert serve.healths_inside(Loud()) == []
    assert serve.healths_inside(wrapped.traced) == [(wrapped.health, False)]
    assert serve.healths_inside(wrapped.asgi) == [(wrapped.health, False)]


@pytest.mark.server
@pytest.mark.parametrize("factory", ["", "1"], ids=["module", "factory"])
def test_a_worker_judges_its_set_up_once_its_app_is_loaded(factory: str) -> None:
    """A middleware made in a gunicorn worker starts at once, while its app still
    registers (in its module, or in the factory gunicorn calls after the import): an
    endpoint whose check comes two seconds later is no mistake, and a misspelt tag
    that comes two seconds later still stops the worker."""
    app = "tests.apps.slow_import:create()" if factory else "tests.apps.slow_import:app"
    args = gunicorn(app)
    with server(args, {"HM_IMPORT_SLEEP": "2", "HM_FACTORY": factory}, ready="/") as running:
        deadline = time.monotonic() + 10
        while running.get("/health/db").status != 200:
            assert time.monotonic() < deadline, running.output()[-2000:]
            time.sleep(0.1)
        time.sleep(1)
        assert running.process.poll() is None, running.output()[-2000:]
    args = [a.replace("{port}", str(free_port())) for a in args]
    code, output = run_to_exit(
        args, {"HM_IMPORT_SLEEP": "2", "HM_TAG": "bd", "HM_FACTORY": factory}
    )
    assert code != 0, output
    assert "counts group 'db', which no check carries as a tag (did you mean 'bd'?)" in output
    assert "failed to boot" in output, output


def test_an_app_factory_is_refused_where_an_app_is_wanted(tmp_path: Path) -> None:
    """``create_app`` (not called) would answer every health path while every request
    to the app fails."""

    def create_app() -> Any:
        return None

    for face in FACES.values():
        with pytest.raises(TypeError, match=r"app factory, not an app; call it .*create_app\(\)"):
            face(create_app, Health())
    module = tmp_path / "factories_here.py"
    module.write_text("def f():\n    return None\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from health_middleware import serve; serve.wsgi('factories_here:f')",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{REPO}:{tmp_path}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "looks like an app factory" in result.stderr


def test_an_endpoint_no_check_counts_never_passes() -> None:
    """Whatever the start (a gunicorn worker's late check of its set-up stops it only
    a moment later, see test_gunicorn_exits_when_its_worker_cannot_boot), an endpoint
    whose group no check carries answers 503, naming it, never 200."""
    health = Health(interval=0.05)
    health.add_check("db", lambda: True)
    health.endpoint("/z", group="redy")
    health.engine.publisher.activated = True  # answers as a started process would
    health.engine.publisher.publish()
    answer = health.snapshot.answers["/z"].get
    assert answer.status == 503
    assert b"no check carries the tag 'redy'" in answer.body


def test_event_loop_lag_in_milliseconds_is_refused() -> None:
    from health_middleware import checks

    with pytest.raises(ValueError, match=r"warn=100 is seconds, not milliseconds.*warn=0.1"):
        checks.event_loop_lag(warn=100, fail=500)
    checks.event_loop_lag(warn=0.1, fail=0.5)


def test_a_format_whose_render_takes_other_arguments_is_refused_when_registered() -> None:
    """A format written for another signature (the endpoint passed as well) must be
    refused where it is given, not answer 500 at every request."""
    from health_middleware.formats import Rendered, Report, Service

    class EndpointToo:
        def render(self, report: Report, endpoint: object, service: Service, t: float) -> Rendered:
            return Rendered(200, "text/plain", b"ok")

    class Takes:
        def render(self, report: Report, service: Service, now: float) -> Rendered:
            return Rendered(200, "text/plain", report.status.encode())

    health = Health()
    with pytest.raises(TypeError, match=r"render\(report, service, now\)"):
        health.endpoint("/old", format=EndpointToo())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"EndpointToo\.render"):
        Health(format=EndpointToo())  # type: ignore[arg-type]
    health.endpoint("/new", format=Takes())
    try:
        answer = Client(WSGIHealthMiddleware(wsgi, health)).get("/new")
    finally:
        health.stop()
    assert (answer.status_code, answer.text) == (200, "pass")
