"""A real load balancer: HAProxy (docs/deploy/haproxy.cfg) in front of two uvicorn
backends, checking /health/ready. Draining one takes it out with zero failed client
requests; a failing critical dependency takes a backend out, and recovery puts it back."""

from __future__ import annotations

import contextlib
import http.client
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO, Server, debian_tool, free_port, get, server, stop, uvicorn

pytestmark = pytest.mark.server

TOKEN = "k8s-prestop-token-0123456789"
CONFIG = REPO / "docs" / "deploy" / "haproxy.cfg"
INTER, FALL, RISE = 0.2, 2, 2  # as in the config
CHECK_INTERVAL = 0.2  # the backends' own check interval


@contextlib.contextmanager
def haproxy(binary: str, backends: list[int], tmp_path: Path) -> Iterator[int]:
    port = free_port()
    text = CONFIG.read_text().replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    text = text.replace("127.0.0.1:8001", f"127.0.0.1:{backends[0]}")
    text = text.replace("127.0.0.1:8002", f"127.0.0.1:{backends[1]}")
    config = tmp_path / "haproxy.cfg"
    config.write_text(text)
    with running(binary, config):
        yield port


@contextlib.contextmanager
def running(binary: str, config: Path) -> Iterator[None]:
    """HAProxy on ``config``, stopped by pid whatever happens."""
    process = subprocess.Popen(
        [binary, "-f", str(config), "-db"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield
    finally:
        stop(process)


def who(port: int) -> str:
    """Which backend answered a request through the load balancer."""
    response = get(port, "/", timeout=5)
    assert response.status == 200, response
    return response.body.decode().split(":")[0]


def seen(port: int, n: int = 20) -> set[str]:
    return {who(port) for _ in range(n)}


def wait_for(port: int, expected: set[str], timeout: float) -> float:
    started = time.monotonic()
    while seen(port, 8) != expected:
        assert time.monotonic() - started < timeout, f"never routed to exactly {expected}"
        time.sleep(0.05)
    return time.monotonic() - started


class Stream(threading.Thread):
    """A client sending a steady stream of requests through the load balancer."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.results: list[tuple[float, str]] = []  # (time, backend name or error)
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 60  # bounded whatever happens
        while not self.done.is_set() and time.monotonic() < deadline:
            try:
                name = who(self.port)
            except (OSError, http.client.HTTPException, AssertionError) as exc:
                name = f"error: {exc!r}"
            self.results.append((time.monotonic(), name))
            time.sleep(0.005)


def test_haproxy_drain_and_dependency_failure(tmp_path: Path) -> None:
    binary = debian_tool("haproxy", "haproxy")
    flags = {name: tmp_path / f"{name}.flag" for name in ("app1", "app2")}

    def backend(name: str) -> contextlib.AbstractContextManager[Server]:
        env = {
            "HM_NAME": name,
            "HM_FLAG": str(flags[name]),
            "HM_TOKEN": TOKEN,
            "HM_INTERVAL": str(CHECK_INTERVAL),
            "HM_PRESTOP_DELAY": "1.5",
        }
        return server(uvicorn("tests.apps.flagged:asgi_app"), env)

    with backend("app1") as app1, backend("app2") as app2:
        ports = [app1.port, app2.port]
        with haproxy(binary, ports, tmp_path) as lb:
            deadline = time.monotonic() + 20
            while True:
                with contextlib.suppress(OSError, AssertionError, http.client.HTTPException):
                    if seen(lb) == {"app1", "app2"}:
                        break
                assert time.monotonic() < deadline, "HAProxy never routed to both backends"
                time.sleep(0.1)

            # A critical dependency of app2 fails: taken out; it recovers: put back.
            flags["app2"].touch()
            wait_for(lb, {"app1"}, timeout=CHECK_INTERVAL + 0.5 + INTER * FALL + 3)
            assert seen(lb, 40) == {"app1"}
            flags["app2"].unlink()
            wait_for(lb, {"app1", "app2"}, timeout=CHECK_INTERVAL + INTER * RISE + 3)

            # Drain app1 through its pre-stop endpoint under a steady stream of requests.
            stream = Stream(lb)
            stream.start()
            time.sleep(0.5)
            drained_at = time.monotonic()
            connection = http.client.HTTPConnection("127.0.0.1", app1.port, timeout=10)
            connection.request(
                "GET", "/health/prestop", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert connection.getresponse().status == 200
            connection.close()
            time.sleep(0.5)
            stream.done.set()
            stream.join(10)

    errors = [name for _, name in stream.results if name.startswith("error")]
    assert errors == [], errors
    assert len(stream.results) > 50
    before = {name for t, name in stream.results if t < drained_at}
    assert before == {"app1", "app2"}
    last_app1 = max(t for t, name in stream.results if name == "app1")
    # Out of rotation within HAProxy's detection time (inter x fall) plus slack for
    # one in-flight check and a loaded machine.
    assert last_app1 - drained_at < INTER * (FALL + 1) + 0.5, last_app1 - drained_at
    after = {name for t, name in stream.results if t > drained_at + INTER * (FALL + 1) + 0.5}
    assert after == {"app2"}


def test_the_documented_config_checks_readiness() -> None:
    text = CONFIG.read_text()
    assert re.search(r"^\s*option httpchk\s*$", text, re.M)
    assert "uri /health/ready" in text
