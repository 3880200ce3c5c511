"""Shared state is the server's own, and ends with it: another local user cannot plant
a drain, results or a probe-port marker (the state folder is private and checked), a
planted or linked drain_file is ignored, and a named instance's drain and results end
with the servers that held them (issue 22, items 1 and 11)."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from health_middleware import Health, HealthMiddleware
from health_middleware.instance import folder as private
from health_middleware.instance.database import SharedState
from health_middleware.instance.master import Instance, current, start_time
from tests.support import free_port, get, gunicorn, poll, server
from tests.test_asgi import plain_app
from tests.test_probe_port import busy_env, probe

NOBODY = 65534  # a uid that is not this server's


def _as_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("planting another user's files needs root (chown)")


def test_the_state_folder_is_private_and_anything_else_is_refused(tmp_path: Path) -> None:
    folder = Path(private.state_folder(str(tmp_path)))
    assert folder.parent == tmp_path
    assert folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o755)
    with pytest.raises(private.Untrusted, match="open to other users"):
        private.state_folder(str(tmp_path))
    folder.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    folder.symlink_to(elsewhere)
    with pytest.raises(private.Untrusted, match="not a folder"):
        private.state_folder(str(tmp_path))
    folder.unlink()
    _as_root()
    folder.mkdir(mode=0o700)
    os.chown(folder, NOBODY, NOBODY)
    with pytest.raises(private.Untrusted, match="belongs to uid 65534"):
        private.state_folder(str(tmp_path))


def test_a_database_file_that_is_a_link_is_refused(tmp_path: Path) -> None:
    folder = Path(private.state_folder(str(tmp_path)))
    target = tmp_path / "target.sqlite3"
    sqlite3.connect(target).close()
    (folder / "scope-x.sqlite3").symlink_to(target)
    state = SharedState(str(folder / "scope-x.sqlite3"))
    with pytest.raises(private.Untrusted, match="not this user's own regular file"):
        state.join(current())


@pytest.mark.server
def test_planted_state_is_never_trusted_and_the_server_runs_alone(tmp_path: Path) -> None:
    """Another user got to the state folder's name first, with a draining database and
    a probe-port marker naming pid 1 inside (and the marker where earlier versions
    read it): the server boots, answers from its own checks, and says why."""
    _as_root()
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o1777)  # like /dev/shm
    planted = state / f"health-middleware-{os.geteuid()}"
    planted.mkdir(mode=0o700)
    probe_port = free_port()
    ns = private.pid_namespace()
    marker = f"ns{ns}-port-{probe_port}.owner"
    pid1 = Instance(1, start_time(1)).encode()
    (planted / marker).write_text(pid1)
    (state / f"health-middleware-{os.geteuid()}-{marker}").write_text(pid1)
    for path in (planted, planted / marker, state / f"health-middleware-{os.geteuid()}-{marker}"):
        os.chown(path, NOBODY, NOBODY)
    env = {**busy_env(probe_port), "HEALTH_MIDDLEWARE_STATE_DIR": str(state)}
    args = gunicorn(
        "tests.apps.busy:inner_wsgi", "-c", "python:health_middleware.gunicorn", "-w", "2"
    )
    with server(args, env) as running:
        deadline = time.monotonic() + 15
        while probe(probe_port, "/health/ready").status != 200:
            assert time.monotonic() < deadline, running.output()
            time.sleep(0.1)
        assert {probe(probe_port, "/health/ready").status for _ in range(10)} == {200}
        assert running.get("/health/ready").status == 200
    assert "refusing the instance's shared state" in running.output()
    assert "belongs to uid 65534" in running.output()


def _live_drain_file(path: Path) -> None:
    path.write_text(current().encode())  # names this process: a live instance


async def test_a_drain_file_of_another_user_or_a_link_is_ignored(tmp_path: Path) -> None:
    _as_root()
    planted = tmp_path / "planted"
    _live_drain_file(planted)
    os.chown(planted, NOBODY, NOBODY)
    mine = tmp_path / "mine"
    _live_drain_file(mine)
    linked = tmp_path / "linked"
    linked.symlink_to(mine)
    for drain_file, drained in ((planted, False), (linked, False), (mine, True)):
        health = Health(drain_file=drain_file, interval=0.05)
        health.add_check("ok", lambda: True)
        app = HealthMiddleware(plain_app, health)
        try:
            await poll(app, "/health/live", lambda r: r.status == 200)
            await poll(app, "/health", lambda r: r.status == 200)
            ready = await poll(app, "/health/ready", lambda r: r.status in (200, 503))
            assert (ready.status == 503) is drained, (drain_file, ready)
        finally:
            await health.stop_async()


def _drain(port: int, token: str) -> None:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/health/prestop", headers={"Authorization": f"Bearer {token}"})
    assert connection.getresponse().status == 200
    connection.close()


def _ready_answers(port: int, seconds: float) -> list[str]:
    found = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        body = get(port, "/health/ready").json()
        found.append(body.get("output", body["status"]))
        time.sleep(0.05)
    return found


@pytest.mark.server
def test_a_named_instance_holds_nothing_past_its_servers(tmp_path: Path) -> None:
    token = "k8s-prestop-token-0123456789"
    state = tmp_path / "state"
    state.mkdir()
    flag = tmp_path / "flag"
    env = {
        "HEALTH_MIDDLEWARE_STATE_DIR": str(state),
        "HM_INSTANCE": "orders",
        "HM_TOKEN": token,
        "HM_PRESTOP_DELAY": "0.1",
        "HM_INTERVAL": "0.3",
        "HM_JITTER": "0",
        "HM_FLAG": str(flag),
    }
    args = gunicorn("tests.apps.flagged:wsgi_app", "-w", "2")
    flag.touch()  # the first server's results: failing
    with server(args, env) as first, server(args, env) as second:
        assert "failing: flag:pid" in _ready_answers(first.port, 1.0)
        _drain(first.port, token)
        time.sleep(0.3)
        # Shared on purpose: the drain reaches the other server while the first lives.
        assert set(_ready_answers(second.port, 0.5)) == {"draining"}
    flag.unlink()  # both gone; the dependency heals
    with server(args, env) as third:
        answers = _ready_answers(third.port, 2.0)
    assert "draining" not in answers, answers
    assert "failing: flag:pid" not in answers, answers  # no result of the servers gone
    assert answers[-1] == "pass"


async def test_a_fifo_planted_as_drain_file_never_blocks(tmp_path: Path) -> None:
    """Opening a FIFO for reading waits for a writer: a planted one must be refused
    without being opened (under ASGI the first refresh runs on the app's loop)."""
    fifo = tmp_path / "drain"
    os.mkfifo(fifo)
    health = Health(drain_file=fifo, interval=0.05)
    health.add_check("ok", lambda: True)
    app = HealthMiddleware(plain_app, health)
    try:
        ready = await poll(app, "/health/ready", lambda r: r.status == 200, timeout=5)
        assert ready.status == 200
    finally:
        await health.stop_async()


def test_a_drain_file_in_a_folder_others_can_write_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    Health(drain_file=shared / "drain")
    assert "in a folder other users can write" in caplog.text
    caplog.clear()
    Health(drain_file=tmp_path / "drain")  # the test's own folder
    assert "other users can write" not in caplog.text
