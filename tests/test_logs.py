"""Every change of status is logged through the ``health_middleware`` logger, a
recovery as loud as the failure it ends, and under a server's default logging the
lines say who speaks (issue 22, item 14)."""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

import pytest

from health_middleware.config.logs import LastResort
from tests.support import server, uvicorn


@pytest.mark.server
def test_a_failure_and_its_recovery_both_reach_a_default_server_log(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    env = {"HM_FLAG": str(flag), "HM_INTERVAL": "0.2"}
    with server(uvicorn("tests.apps.flagged:asgi_app"), env) as running:
        for wanted in (503, 200):  # fail, then heal
            flag.touch() if wanted == 503 else flag.unlink()
            deadline = time.monotonic() + 10
            while running.get("/health/ready").status != wanted:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        time.sleep(0.3)
    lines = running.output().splitlines()
    assert "WARNING health_middleware: check 'flag:pid' is failing" in lines
    assert "WARNING health_middleware: check 'flag:pid' is passing again (was failing)" in lines
    assert "WARNING health_middleware: the service is passing again (was failing)" in lines


def test_the_fallback_speaks_only_where_nothing_else_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger = logging.getLogger("health_middleware.tests")
    record = logger.makeRecord(logger.name, logging.WARNING, __file__, 1, "it fails", (), None)
    fallback, written = LastResort(), io.StringIO()
    monkeypatch.setattr("sys.stderr", written)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    assert fallback.handle(record)
    assert written.getvalue() == "WARNING health_middleware.tests: it fails\n"
    monkeypatch.setattr(root, "handlers", [logging.NullHandler()])  # configured
    assert not fallback.handle(record)
    assert written.getvalue().count("\n") == 1
