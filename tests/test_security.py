"""Error text never leaves the process unless the user opts in."""

from __future__ import annotations

from typing import Any

import pytest

from health_middleware import CheckResult, Health, HealthMiddleware
from tests.support import call, poll
from tests.test_asgi import plain_app

SECRET = "postgres://admin:s3cr3t-Pa55@db.internal:5432"


class Leaky:
    def __repr__(self) -> str:
        return f"Leaky({SECRET})"


def secret_checks(health: Health) -> None:
    def raises() -> None:
        raise ConnectionError(f"could not connect to {SECRET}")

    async def raises_async() -> None:
        raise RuntimeError(SECRET)

    health.add_check("raises", raises, critical=False)
    health.add_check("raises-async", raises_async, critical=False)
    health.add_check("garbage", Leaky, critical=False)
    health.add_check("bad-value", lambda: CheckResult(observed_value=Leaky()), critical=False)


async def bodies(expose: bool) -> list[bytes]:
    health = Health(interval=60, expose_errors=expose)
    secret_checks(health)
    health.endpoint("/custom", group="all")
    app = HealthMiddleware(plain_app, health)
    await poll(app, "/health/started", lambda r: r.status == 200)
    paths = [*health.paths, "/health/"]
    result = [(await call(app, path, method)).body for path in paths for method in ("GET", "HEAD")]
    await health.stop_async()
    return result


async def test_a_secret_in_an_exception_reaches_no_endpoint() -> None:
    for body in await bodies(expose=False):
        assert b"s3cr3t" not in body


async def test_expose_errors_shows_the_messages() -> None:
    exposed = b"".join(await bodies(expose=True))
    assert b"ConnectionError: could not connect to " + SECRET.encode() in exposed
    assert b"Leaky(" in exposed  # the garbage return's repr


@pytest.mark.parametrize("expose", [False, True])
async def test_the_failure_kind_is_always_published(expose: bool) -> None:
    health = Health(interval=60, expose_errors=expose)
    secret_checks(health)
    app = HealthMiddleware(plain_app, health)
    doc: Any = (await poll(app, "/health/started", lambda r: r.status == 200)).json()
    doc = (await call(app, "/health")).json()
    await health.stop_async()
    assert doc["checks"]["raises"][0]["output"].startswith("ConnectionError")
    assert "unsupported Leaky" in doc["checks"]["garbage"][0]["output"]
