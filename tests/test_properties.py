"""hypothesis: pass-through of every non-health path, and any mix of check outcomes
gives a report valid against the seeds' schemas with a consistent HTTP status."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from health_middleware import CheckResult, Health, HealthMiddleware, WSGIHealthMiddleware
from health_middleware.model.status import aggregate
from tests.schemas import SEED_001, SEED_004
from tests.support import http_scope
from tests.test_wsgi import wsgi_app

HEALTH = Health(base_path="/health")
HEALTH.endpoint("/api/v1/health")
HEALTH_PATHS = {p for path in HEALTH.paths for p in (path, path + "/")}


@given(st.text(st.characters(codec="utf-8"), max_size=40).map(lambda s: "/" + s))
@settings(max_examples=300)
def test_every_other_path_reaches_the_app_untouched(path: str) -> None:
    if path in HEALTH_PATHS:
        return
    seen: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    async def receive() -> Any: ...
    async def send(message: Any) -> None: ...

    scope = http_scope(path)
    snapshot = dict(scope)
    coroutine = HealthMiddleware(inner, HEALTH)(scope, receive, send)  # type: ignore[arg-type]
    with contextlib.suppress(StopIteration):
        coroutine.send(None)
    assert seen == [(scope, receive, send)]
    assert seen[0][0] is scope
    assert scope == snapshot

    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    marker = object()
    result = WSGIHealthMiddleware(lambda e, s: marker, HEALTH)(environ, lambda *a: None)  # type: ignore[arg-type, return-value]
    assert result is marker


KINDS = ["pass", "warn", "fail", "raise", "hang", "garbage", "false", "value"]
EXPECTED = {"pass": "pass", "warn": "warn", "value": "pass"}  # every other kind fails


def make_check(kind: str, is_async: bool, release: threading.Event) -> Any:
    def check() -> Any:
        if kind == "raise":
            raise OSError("boom")
        if kind == "hang":
            release.wait(30)
        if kind == "garbage":
            return object()
        if kind == "false":
            return False
        if kind == "value":
            return CheckResult("up", observed_value=12.5, observed_unit="ms")
        return CheckResult(kind, output=None if kind == "pass" else f"{kind} output")

    async def async_check() -> Any:
        if kind == "hang":
            await asyncio.Event().wait()
        return check()

    return async_check if is_async else check


mixes = st.lists(
    st.tuples(st.sampled_from(KINDS), st.booleans(), st.booleans()), min_size=0, max_size=6
)


@given(mixes, st.sampled_from(["lower", "upper"]))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_mix_of_outcomes_gives_a_valid_consistent_report(
    mix: list[tuple[str, bool, bool]], case: str
) -> None:
    release = threading.Event()
    health = Health(
        version="1.0.0", release_id="1.0.0-build.1", interval=60, timeout=0.05, status_case=case
    )
    for i, (kind, critical, is_async) in enumerate(mix):
        health.add_check(f"c{i}:{kind}", make_check(kind, is_async, release), critical=critical)
    client = Client(WSGIHealthMiddleware(wsgi_app, health))
    try:
        deadline = time.monotonic() + 10
        while client.get("/health/started").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        response = client.get("/health")
    finally:
        release.set()
        health.stop()
    doc = response.json
    assert doc is not None
    jsonschema.validate(doc, SEED_001 if case == "upper" else SEED_004)
    expected = aggregate((critical, EXPECTED.get(kind, "fail")) for kind, critical, _ in mix)  # type: ignore[misc]
    assert doc["status"].lower() == expected
    assert response.status_code == (503 if expected == "fail" else 200)
    assert len(doc["checks"]) == len(mix)
