"""Wrong configuration is refused at once, with an error that says what is wrong."""

from __future__ import annotations

import functools
import time
from typing import Any

import pytest

from health_middleware import (
    CheckResult,
    Health,
    HealthMiddleware,
    WSGIHealthMiddleware,
    checks,
)
from tests.support import call, poll
from tests.test_asgi import plain_app


def ok() -> None: ...


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"base_path": "health"}, ValueError, "must start with '/'"),
        ({"base_path": "/a?b"}, ValueError, "plain path"),
        ({"base_path": 3}, TypeError, "must be a string"),
        ({"interval": 0}, ValueError, "positive"),
        ({"interval": -1}, ValueError, "positive"),
        ({"interval": float("nan")}, ValueError, "finite"),
        ({"interval": "10"}, TypeError, "number of seconds"),
        ({"timeout": True}, TypeError, "number of seconds"),
        ({"stale_after": 1}, ValueError, "at least 2"),
        ({"max_threads": 0}, ValueError, "at least 1"),
        ({"status_case": "title"}, ValueError, "status_case"),
        ({"expose_errors": "yes"}, TypeError, "expose_errors"),
        ({"version": 1}, TypeError, "version must be a string"),
        ({"interval": 1e-6}, ValueError, "interval must be at least 0.01 s"),
        ({"timeout": 0.001}, ValueError, "timeout must be at least 0.01 s"),
        ({"max_threads": "8"}, TypeError, "max_threads must be a whole number"),
        ({"max_threads": 2.0}, TypeError, "max_threads must be a whole number"),
        ({"drain_file": ""}, ValueError, "drain_file must be a non-empty path"),
        ({"drain_file": 3}, TypeError, "drain_file must be a path"),
        ({"wait_first_round": 1}, TypeError, "wait_first_round"),
        ({"notes": "one note"}, TypeError, "notes must be a collection of strings"),
        ({"notes": [1]}, TypeError, "notes must be a collection of strings"),
        ({"links": {"self": 1}}, TypeError, "links must map strings to strings"),
    ],
)
def test_bad_health_options(options: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Health(**options)


@pytest.mark.parametrize(
    ("name", "fn", "options", "error", "message"),
    [
        ("db", "not callable", {}, TypeError, "must be callable"),
        ("db check", ok, {}, ValueError, "component:measurement"),
        ("a:b:c", ok, {}, ValueError, "component:measurement"),
        ("", ok, {}, ValueError, "component:measurement"),
        (None, ok, {}, ValueError, "component:measurement"),
        ("db", ok, {"interval": 0}, ValueError, "interval"),
        ("db", ok, {"timeout": -2}, ValueError, "timeout"),
        ("db", ok, {"critical": "yes"}, TypeError, "critical"),
        ("db", ok, {"tags": "live"}, TypeError, "tags must be a collection of strings"),
        ("db", ok, {"tags": ["has space"]}, ValueError, "simple word"),
        ("db", ok, {"failure_threshold": 0}, ValueError, "failure_threshold"),
        ("db", ok, {"component_type": ""}, TypeError, "component_type"),
    ],
)
def test_bad_checks(
    name: Any, fn: Any, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Health().add_check(name, fn, **options)


def test_duplicate_names_and_paths() -> None:
    health = Health()
    health.add_check("db:responseTime", ok)
    with pytest.raises(ValueError, match="already registered"):

        @health.check("db:responseTime")
        def again() -> None: ...

    with pytest.raises(ValueError, match="already exists"):
        health.endpoint("/health/ready/")


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"format": "xml"}, ValueError, "unknown format"),
        ({"status_codes": {"pass": 200, "fail": 503}}, ValueError, "missing"),
        (
            {"status_codes": {"pass": 200, "warn": 200, "fail": 503, "meh": 1}},
            ValueError,
            "unknown",
        ),
        ({"status_codes": {"pass": 200, "warn": 200, "fail": 99}}, ValueError, "200 to 599"),
        ({"status_codes": {"pass": 204, "warn": 200, "fail": 503}}, ValueError, "carries a body"),
        ({"status_codes": {"pass": 200, "warn": 205, "fail": 503}}, ValueError, "carries a body"),
        ({"status_codes": {"pass": 304, "warn": 200, "fail": 503}}, ValueError, "carries a body"),
        ({"status_codes": {"pass": 101, "warn": 200, "fail": 503}}, ValueError, "200 to 599"),
        ({"status_codes": {"pass": "200", "warn": 200, "fail": 503}}, TypeError, "an int"),
        # The IETF draft: pass and warn in 2xx-3xx, fail in 4xx-5xx.
        ({"status_codes": {"pass": 200, "warn": 200, "fail": 200}}, ValueError, "IETF"),
        ({"status_codes": {"pass": 200, "warn": 429, "fail": 503}}, ValueError, "IETF"),
        ({"status_codes": {"pass": 503, "warn": 200, "fail": 503}}, ValueError, "IETF"),
        ({"group": ""}, TypeError, "group"),
        ({"details": 1}, TypeError, "details"),
    ],
)
def test_bad_endpoints(options: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Health().endpoint("/x", **options)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"status": "green"}, ValueError),
        ({"status": 1}, TypeError),
        ({"observed_unit": 5}, TypeError),
        ({"output": b"bytes"}, TypeError),
        ({"affected_endpoints": "/a"}, TypeError),
        ({"links": {"self": 1}}, TypeError),
    ],
)
def test_bad_check_results(fields: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        CheckResult(**fields)


@pytest.mark.parametrize("alias", ["ok", "UP", "Pass"])
def test_pass_aliases(alias: str) -> None:
    assert CheckResult(alias).status == "pass"


@pytest.mark.parametrize("alias", ["error", "DOWN", "Fail"])
def test_fail_aliases(alias: str) -> None:
    assert CheckResult(alias).status == "fail"


def test_middleware_arguments() -> None:
    with pytest.raises(TypeError, match="Health object"):
        HealthMiddleware(ok, object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ASGI application"):
        HealthMiddleware(None, Health())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="WSGI application"):
        WSGIHealthMiddleware(None, Health())  # type: ignore[arg-type]


def test_other_formats_may_map_statuses_freely() -> None:
    health = Health()
    health.endpoint("/lb", format="text", status_codes={"pass": 200, "warn": 429, "fail": 200})


def test_a_second_prestop_is_refused_not_silently_replaced() -> None:
    health = Health()
    health.prestop("a-token-of-sixteen+chars")
    with pytest.raises(ValueError, match="already served at '/health/prestop'"):
        health.prestop("another-token-of-sixteen+", path="/other")


async def test_generators_are_read_once_and_kept() -> None:
    """Any iterable is accepted for notes, tags and affected_endpoints, a generator
    too: validation must not consume what it then keeps."""
    health = Health(interval=60, notes=(note for note in ["rolling out"]))

    def failing() -> CheckResult:
        return CheckResult("fail", affected_endpoints=(e for e in ["/from-result"]))

    health.add_check(
        "db",
        failing,
        tags=(tag for tag in ["ready", "db"]),
        affected_endpoints=(e for e in ["/orders"]),
    )
    health.add_check("other", lambda: False, affected_endpoints=(e for e in ["/carts"]))
    health.endpoint("/db", group="db")
    app = HealthMiddleware(plain_app, health)
    report = (await poll(app, "/health", lambda r: "db" in r.json().get("checks", {}))).json()
    assert report["notes"] == ["rolling out"]
    assert report["checks"]["db"][0]["affectedEndpoints"] == ["/from-result"]
    assert report["checks"]["other"][0]["affectedEndpoints"] == ["/carts"]
    assert "db" in (await call(app, "/db")).json()["checks"]  # the tag was kept
    await health.stop_async()


def test_a_check_that_needs_arguments_is_refused_naming_them() -> None:
    health: Any = Health()  # to pass what the annotations forbid
    with pytest.raises(TypeError, match=r"check 'a' must be callable with no arguments.*\(x\)"):
        health.add_check("a", lambda x: True)
    with pytest.raises(TypeError, match=r"functools\.partial"):
        health.add_check("b", lambda x, *, y: True)
    assert not list(health.engine.results.states())


def test_callables_of_no_arguments_are_accepted_in_every_shape() -> None:
    class Probe:
        def __call__(self, retries: int = 1) -> bool:
            return True

    health = Health()
    health.add_check("defaults", lambda x=1, *rest: True)
    health.add_check("instance", Probe())
    health.add_check("partial", functools.partial(lambda x: True, 1))
    health.add_check("no-signature", dict)  # a type whose signature cannot be read
    health.add_check("builtin", time.time)
    assert len(list(health.engine.results.states())) == 5


@pytest.mark.parametrize("name", sorted(set(checks.__all__) - {"Check"}))
def test_a_check_factory_registered_uncalled_is_refused_with_its_call(name: str) -> None:
    factory = getattr(checks, name)
    with pytest.raises(
        TypeError, match=rf"checks\.{name} makes a check: call it, checks\.{name}\("
    ):
        Health().add_check("x", factory)


def test_the_factory_message_shows_the_call() -> None:
    health: Any = Health()
    with pytest.raises(TypeError) as caught:
        health.add_check("pg", checks.postgres)
    assert str(caught.value) == (
        "check 'pg': checks.postgres makes a check: call it, checks.postgres(dsn)"
    )


def test_the_decorator_without_its_name_is_refused_showing_the_right_use() -> None:
    health = Health()
    with pytest.raises(TypeError, match=r'write @health\.check\("database"\)'):

        @health.check  # type: ignore[arg-type]
        def database() -> bool:
            return True

    assert not list(health.engine.results.states())
