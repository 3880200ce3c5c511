"""One URL, every reader: ``format="negotiate"`` chooses a pre-rendered variant by
``?format=`` and the Accept header; endpoints that do not opt in keep the fast path."""

from __future__ import annotations

import http.client
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from health_middleware import Health, HealthMiddleware, WSGIHealthMiddleware
from health_middleware.engine.snapshot import Snapshot
from health_middleware.formats import Negotiate
from health_middleware.web.negotiate import choose, format_parameter, parse_accept
from tests.support import (
    Response,
    _collect,
    call_without_waiting,
    http_scope,
    poll,
    server,
    uvicorn,
)
from tests.test_asgi import plain_app

OFFERS = Negotiate().offers
PROMETHEUS = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "query", "chosen"),
    [
        (None, None, "ietf"),
        ("*/*", None, "ietf"),
        ("application/health+json", None, "ietf"),
        ("application/json", None, "ietf"),
        ("text/plain", None, "text"),
        ("application/openmetrics-text; version=1.0.0", None, "openmetrics"),
        (PROMETHEUS, None, "openmetrics"),
        ("text/html", None, "html"),
        (BROWSER, None, "html"),
        ("text/*", None, "text"),  # the server's order breaks the tie: text before html
        ("text/html;q=0.5, text/plain;q=0.9", None, "text"),
        ("text/plain;q=0, */*", None, "ietf"),
        ("text/html;q=0, text/*", None, "text"),
        ("image/png", None, "ietf"),  # nothing acceptable: the default, never a 406
        ("text/html;q=2, text/plain", None, "text"),  # an unreadable q drops its range
        ("text/html;q=abc", None, "ietf"),
        ("text/html", b"format=text", "text"),  # the query string wins
        ("text/html", b"a=1&format=ietf", "ietf"),
        ("text/html", b"format=nonsense", "html"),  # an unknown name is ignored
        (None, "format=HTML", "html"),
    ],
)
def test_choice(accept: str | None, query: bytes | str | None, chosen: str) -> None:
    assert choose(accept, OFFERS, "ietf", query) == chosen


def test_parser_is_strict_and_bounded() -> None:
    assert parse_accept("text/html;level=1;q=0.7, */*;q=0.001") == [
        ("text", "html", 0.7),
        ("*", "*", 0.001),
    ]
    for bad in ("text", "/html", "*/json", "te xt/html", "text/html;q=0.0001", "text/html;q"):
        assert parse_accept(bad) == []
    assert len(parse_accept(b"text/plain," * 10_000)) == 64
    assert format_parameter(b"x=format&format") is None


@given(
    st.one_of(st.binary(max_size=300), st.text(max_size=300)),
    st.one_of(st.none(), st.text(max_size=50)),
)
def test_malformed_headers_never_raise(accept: bytes | str, query: str | None) -> None:
    assert choose(accept, OFFERS, "ietf", query) in {name for name, _ in OFFERS}


def _health() -> Health:
    health = Health(interval=0.05, service_id="svc")
    health.add_check("db", lambda: True)
    health.endpoint("/health/any", format="negotiate")
    return health


def test_endpoints_that_do_not_opt_in_keep_the_fast_path() -> None:
    health = _health()
    health.engine.publisher.activated = True
    health.engine.publisher.publish()
    answers = health.snapshot.answers
    for path in ("/health", "/health/live", "/health/ready", "/health/started", "/health/info"):
        assert answers[path].slow is False
        assert answers[path].negotiation is None
        assert all(k != b"vary" for k, _ in answers[path].get.headers)
    negotiated = answers["/health/any"]
    assert negotiated.slow is True
    assert negotiated.negotiation is not None
    assert set(negotiated.negotiation.variants) == {"ietf", "text", "html", "openmetrics"}


async def test_requests_to_other_endpoints_never_reach_the_slow_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    health = _health()
    app = HealthMiddleware(plain_app, health)
    try:
        await poll(app, "/health/any", lambda r: b'"db":[' in r.body)  # its first result

        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError("the fast path called Snapshot.decide")

        monkeypatch.setattr(Snapshot, "decide", refuse)
        for path in ("/health", "/health/ready", "/health/live"):
            assert call_without_waiting(app, path).status == 200
        with pytest.raises(AssertionError, match="fast path"):
            call_without_waiting(app, "/health/any")
    finally:
        await health.stop_async()


def test_wsgi_negotiates_too() -> None:
    health = _health()
    app = WSGIHealthMiddleware(lambda environ, start: [], health)
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append((status, headers))

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/health/any", "HTTP_ACCEPT": "text/plain"}
    try:
        app(environ, start_response)  # the first request starts the refresher
        health.engine.publisher.wait_first_round_sync()
        for extra, content_type in (
            ({}, "text/plain; charset=utf-8"),
            ({"QUERY_STRING": "format=html"}, "text/html; charset=utf-8"),
            ({"HTTP_ACCEPT": "application/json"}, "application/health+json"),
        ):
            body = b"".join(app({**environ, **extra}, start_response))
            headers = dict(seen[-1][1])
            assert headers["content-type"] == content_type
            assert headers["vary"] == "Accept"
            assert body
    finally:
        health.stop()


async def _get(app: Any, path: str, accept: bytes | None = None, query: bytes = b"") -> Response:
    scope = http_scope(path)
    scope["query_string"] = query
    if accept is not None:
        scope["headers"] = [*scope["headers"], (b"accept", accept)]
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    return _collect(messages)


async def test_in_process_variants_and_the_details_token() -> None:
    health = Health(interval=0.05, details_token="s3cret-token-value")
    health.add_check("db", lambda: 1 / 0)
    health.endpoint("/health/any", format=Negotiate(default="text"))
    app = HealthMiddleware(plain_app, health)
    try:
        await poll(app, "/health", lambda r: "db" in r.json().get("checks", {}))
        plain = await _get(app, "/health/any")
        assert (plain.status, plain.body, plain.headers["vary"]) == (503, b"fail", "Accept")
        page = await _get(app, "/health/any", b"text/html")
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert b"ZeroDivisionError" in page.body
        assert b"division by zero" not in page.body
    finally:
        await health.stop_async()


def _raw(port: int, path: str, accept: str | None, method: str = "GET") -> Response:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, headers={} if accept is None else {"Accept": accept})
        response = connection.getresponse()
        body = response.read()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        connection.close()


@pytest.mark.server
def test_negotiation_through_uvicorn() -> None:
    with server(uvicorn("tests.apps.negotiated:app"), ready="/health/live") as running:
        port = running.port
        for _ in range(100):
            if b"cache" in _raw(port, "/health", None).body:
                break
            import time

            time.sleep(0.05)
        cases = [
            (None, "/health/any", "application/health+json"),
            ("application/health+json", "/health/any", "application/health+json"),
            ("application/json", "/health/any", "application/health+json"),
            ("text/plain", "/health/any", "text/plain; charset=utf-8"),
            (
                PROMETHEUS,
                "/health/any",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ),
            ("text/html", "/health/any", "text/html; charset=utf-8"),
            (BROWSER, "/health/any", "text/html; charset=utf-8"),
            ("image/png", "/health/any", "application/health+json"),
            ("text/html", "/health/any?format=text", "text/plain; charset=utf-8"),
            ("text/plain", "/health/any?format=html", "text/html; charset=utf-8"),
        ]
        for accept, path, content_type in cases:
            response = _raw(port, path, accept)
            assert response.headers["content-type"] == content_type, (accept, path)
            assert response.headers["vary"] == "Accept"
            assert response.status == 200
            head = _raw(port, path, accept, "HEAD")
            assert head.headers["content-type"] == content_type
            assert head.body == b""
        assert orjson.loads(_raw(port, "/health/any", "application/json").body)["status"] == "warn"
        assert _raw(port, "/health/any", "text/plain").body == b"warn"
        page = _raw(port, "/health/any", BROWSER).body
        assert b"&lt;b&gt;full&lt;/b&gt;" in page
        assert b"<b>full</b>" not in page
        # An endpoint that does not opt in ignores Accept and says nothing of Vary.
        plain = _raw(port, "/health", "text/html")
        assert plain.headers["content-type"] == "application/health+json"
        assert "vary" not in plain.headers


def test_a_cut_header_never_reverses_what_the_client_asked() -> None:
    from health_middleware.web.negotiate import MAX_ACCEPT

    head = "application/x-filler-" + "a" * 20
    filler = ",".join([head] * 60)[: MAX_ACCEPT - len(",text/html")]
    accept = filler + ",text/html;q=0"  # the cut falls inside the refusal
    assert ("text", "html", 1.0) not in parse_accept(accept)


def test_a_range_with_thousands_of_parameters_is_read_cheaply_and_right() -> None:
    ranges = parse_accept("text/plain;q=0.5" + ";x=1" * 1000)  # within MAX_ACCEPT
    assert ranges == [("text", "plain", 0.5)]
