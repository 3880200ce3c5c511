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


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "health_middleware", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        check=False,
    )


def probe(*args: str) -> subprocess.CompletedProcess[str]:
    return cli("probe", *args)


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


# -- health-middleware check MODULE:ATTR ---------------------------------------------


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return cli("check", *args)


def test_check_prints_a_table_and_exits_0_when_every_check_passes() -> None:
    result = check("tests.apps.checkable:passing")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "TIME", "OUTPUT"]
    rows = {line.split()[0]: line.split() for line in lines[1:3]}
    assert rows["sync"][1] == "pass"
    assert rows["async:responseTime"][1:3][0] == "pass"
    assert rows["async:responseTime"][3] == "ms"
    assert lines[-1] == "pass (2 checks)"


def test_check_exits_0_on_warn_and_1_on_fail_bounded_by_the_timeouts() -> None:
    warned = check("tests.apps.checkable:warning")
    assert warned.returncode == 0
    assert "flaky" in warned.stdout
    assert warned.stdout.splitlines()[-1].startswith("warn")
    started = time.monotonic()
    failed = check("tests.apps.checkable:failing")
    elapsed = time.monotonic() - started
    assert failed.returncode == 1
    rows = {line.split()[0]: line for line in failed.stdout.splitlines()[1:4]}
    assert "ConnectionRefusedError" in rows["refused"]
    assert rows["slow"].split()[1] == "fail"
    assert rows["slow"].rstrip().endswith("timeout")
    assert failed.stdout.splitlines()[-1].startswith("fail")
    assert elapsed < 4.5  # the slow check sleeps 5 s: its 0.3 s timeout ended the run


def test_check_json_is_the_full_ietf_report() -> None:
    import jsonschema
    import orjson

    from tests import schemas

    result = check("tests.apps.checkable:failing", "--json")
    assert result.returncode == 1
    doc = orjson.loads(result.stdout)
    jsonschema.validate(doc, schemas.SEED_004)
    assert doc["status"] == "fail"
    assert set(doc["checks"]) == {"fine", "refused", "slow"}
    assert doc["checks"]["slow"][0]["output"] == "timeout"


MESSAGE = "connection to db.internal:5432 refused: is it running?"


def test_check_shows_failure_messages_with_errors() -> None:
    import orjson

    plain = check("tests.apps.checkable:explained")
    assert plain.returncode == 1
    assert "ConnectionRefusedError" in plain.stdout
    assert MESSAGE not in plain.stdout  # the kind alone, as a response would say
    shown = check("tests.apps.checkable:explained", "--errors")
    assert shown.returncode == 1
    row = shown.stdout.splitlines()[1]
    assert row.split()[:2] == ["db", "fail"]
    assert row.endswith(MESSAGE)
    doc = orjson.loads(check("tests.apps.checkable:explained", "--json", "--errors").stdout)
    assert MESSAGE in doc["checks"]["db"][0]["output"]
    doc = orjson.loads(check("tests.apps.checkable:explained", "--json").stdout)
    assert doc["checks"]["db"][0]["output"] == "ConnectionRefusedError"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["tests.apps.checkable"],
        ["tests.apps.nowhere:health"],
        ["tests.apps.checkable:nothing"],
        ["tests.apps.checkable:not_a_health"],
        ["tests.apps.checkable:passing", "--bogus"],
    ],
)
def test_check_usage_errors_exit_1(args: list[str]) -> None:
    result = check(*args)
    assert result.returncode == 1
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_stops_cleanly_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "health_middleware", "check", "tests.apps.checkable:hanging"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)  # imported, and the check is running on its thread
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stderr


def test_check_shows_control_characters_instead_of_obeying_them() -> None:
    result = check("tests.apps.checkable:hostile")
    assert result.returncode == 1
    assert "\x1b" not in result.stdout
    assert "\r" not in result.stdout
    assert "\\x1b[2J" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith("escape"))
    assert "second" in row  # the newline did not break the table


def test_check_gives_every_check_a_thread_of_its_own() -> None:
    """120 checks of 0.3 s with max_threads=2: a one-shot run must not fail them as
    'not started' behind each other."""
    result = check("tests.apps.checkable:many")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "not started" not in result.stdout


def test_check_survives_a_reader_that_went_away() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "health_middleware", "check", "tests.apps.checkable:passing"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    assert process.stdout is not None
    process.stdout.close()  # as `| true` does
    _, error = process.communicate(timeout=30)
    assert process.returncode == 0
    assert b"Traceback" not in error


def test_the_check_table_shows_invisible_format_characters() -> None:
    """A bidirectional override (U+202E) would reorder what a person reads; a
    zero-width space hide a difference: both are shown as escapes."""
    from health_middleware.cli.command import printable

    assert printable("ok\u202eliaf\u200b") == "ok\\u202eliaf\\u200b"
    assert printable("café ✓") == "café ✓"  # other text is left alone
