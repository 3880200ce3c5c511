"""Wrong configuration is refused at once, with an error that says what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from health_middleware import CheckResult, Health, HealthMiddleware, WSGIHealthMiddleware


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
        ("db", ok, {"tags": "live"}, TypeError, "not a string"),
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
