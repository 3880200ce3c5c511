"""``python -m health_middleware``: the probe's exit codes and the demo."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import REPO, free_port, server, uvicorn

pytestmark = pytest.mark.server


def probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "health_middleware", "probe", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        check=False,
    )


def test_probe_exit_codes_against_a_live_server(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    with server(
        uvicorn("tests.apps.flagged:asgi_app"), {"HM_FLAG": str(flag), "HM_INTERVAL": "0.2"}
    ) as running:
        base = f"http://127.0.0.1:{running.port}"
        deadline = time.monotonic() + 10
        while probe(f"{base}/health/ready").returncode != 0:
            assert time.monotonic() < deadline, running.output()
        flag.touch()
        deadline = time.monotonic() + 10
        while (result := probe(f"{base}/health/ready")).returncode == 0:
            assert time.monotonic() < deadline, running.output()
        assert result.returncode == 1
        assert "503" in result.stderr
        assert probe(f"{base}/health/live").returncode == 0


def test_probe_fails_on_a_closed_port() -> None:
    result = probe(f"http://127.0.0.1:{free_port()}/health", "--timeout", "2")
    assert result.returncode == 1
    assert "no answer" in result.stderr


def test_probe_fails_within_its_timeout_on_a_server_that_never_answers() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # the kernel accepts the connection; nobody ever answers
        port = listener.getsockname()[1]
        started = time.monotonic()
        result = probe(f"http://127.0.0.1:{port}/health", "--timeout", "0.5")
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "timed out" in result.stderr
    assert elapsed < 20  # bounded by the timeout, not hung (generous: interpreter start-up)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["ftp://127.0.0.1/health"],
        ["http://127.0.0.1/", "--timeout", "0"],
        ["http://127.0.0.1/", "--timeout", "x"],
    ],
)
def test_probe_usage_errors_exit_1(args: list[str]) -> None:
    """Docker reserves exit code 2 for HEALTHCHECK: every failure is 1."""
    result = probe(*args)
    assert result.returncode == 1
    assert "usage:" in result.stderr


def test_demo_serves_prints_urls_and_stops_cleanly_on_ctrl_c() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "health_middleware", "demo", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while probe(f"{base}/health", "--timeout", "1").returncode != 0:
            assert process.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert probe(f"{base}/health/ready").returncode == 0
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert f"curl -i {base}/health/ready" in output
    assert "Traceback" not in output


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "health-middleware"
    assert script.exists(), "pip install should have created the health-middleware script"
    result = subprocess.run(
        [str(script), "probe", f"http://127.0.0.1:{free_port()}/health", "--timeout", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "no answer" in result.stderr
