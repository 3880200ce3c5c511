"""``health_middleware.celery.instrument``: real Celery workers (``tests.apps.celery_health``)
on the Redis broker through a cuttable proxy, with the prefork, threads and solo pools.

One worker per pool goes through everything in turn: starting until it consumes, then
ready; the broker cut fails readiness and never liveness, healing restores it; its
consumer loop blocked (a remote control command that sleeps) fails liveness, which
recovers; a warm shutdown (SIGTERM) answers ``draining`` until the worker exits. A
transport with no event loop (``filesystem://``) shows the loop's beats without a hub.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from health_middleware import Health
from tests.faultproxy import fault_proxy
from tests.support import Response, answer, celery_process, free_port, service

REDIS = 6379
DB = 9  # a Redis database of these tests' own
MAX_AGE = 3.0  # tests.apps.celery_health's
SLACK = 2.0  # a shared 2-core machine

pytestmark = pytest.mark.server


def watch(
    port: int,
    wanted: Callable[[Response | None, Response | None], bool],
    within: float,
    what: str,
    log: Path,
) -> list[tuple[int | None, int | None]]:
    """Poll readiness and liveness together until ``wanted(ready, live)``; return every
    (ready, live) status pair seen on the way (fail, with the worker's log, past
    ``within`` seconds)."""
    seen: list[tuple[int | None, int | None]] = []
    deadline = time.monotonic() + within
    while True:
        ready, live = answer(port, "/health/ready"), answer(port, "/health/live")
        seen.append((ready.status if ready else None, live.status if live else None))
        if wanted(ready, live):
            return seen
        assert time.monotonic() < deadline, f"{what}: last {ready} {live}\n{log.read_text()}"
        time.sleep(0.05)


def says(response: Response | None, code: int, words: str = "") -> bool:
    return response is not None and response.status == code and words in response.body.decode()


@pytest.mark.parametrize("pool", ["prefork", "threads", "solo"])
def test_a_celery_worker_through_start_outage_hang_and_shutdown(pool: str, tmp_path: Path) -> None:
    service("Redis", REDIS)
    port, log = free_port(), tmp_path / "worker.log"
    env = {"HM_PORT": str(port), "HM_LOG": str(log)}
    with (
        fault_proxy(REDIS) as proxy,
        celery_process(
            f"redis://127.0.0.1:{proxy.port}/{DB}", "tests.apps.celery_health", pool, env
        ) as (client, worker),
    ):
        # Starting: the port opens early (worker_init), ready once the worker consumes.
        seen = watch(port, lambda ready, live: says(ready, 200), 60, "never ready", log)
        assert client.control.ping(timeout=2)  # it consumes: it answers a control command
        assert (503, 200) in seen  # starting was answered before the worker consumed
        assert says(answer(port, "/health/started"), 200)

        # The broker cut: readiness fails, liveness never does; healing restores it.
        proxy.cut()
        seen = watch(port, lambda r, live: says(r, 503, "celery:broker"), 15, "cut", log)
        time.sleep(1.0)  # the worker keeps reconnecting meanwhile
        proxy.heal()
        seen += watch(port, lambda ready, live: says(ready, 200), 30, "never healed", log)
        assert {live for _, live in seen} == {200}

        # The consumer's loop blocked: liveness fails, and recovers with the loop.
        block = MAX_AGE + 3
        client.control.broadcast("hm_block", arguments={"seconds": block}, reply=False)
        watch(port, lambda r, live: says(live, 503, "celery:consumer"), block, "live", log)
        watch(port, lambda ready, live: says(live, 200), block + SLACK, "live back", log)

        # A warm shutdown, a task in flight: draining until the worker exits.
        client.send_task("hm.sleep", (2.0,))
        time.sleep(0.5)
        os.kill(worker.pid, signal.SIGTERM)  # the main process only, as Kubernetes does
        draining = 0
        deadline = time.monotonic() + 30
        while worker.poll() is None:
            ready, live = answer(port, "/health/ready"), answer(port, "/health/live")
            draining += says(ready, 503, "draining") and says(live, 200)
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert draining, "never answered draining before exiting"
        assert worker.returncode == 0
        assert answer(port, "/health/live") is None  # the port went with the process


def test_without_an_event_loop_hub_the_consumer_beats_too(tmp_path: Path) -> None:
    """``filesystem://`` has no event loop support: Celery runs its blocking loop, and
    the beats are handed to it by the worker's timer thread."""
    port, log, folder = free_port(), tmp_path / "worker.log", tmp_path / "broker"
    folder.mkdir()
    env = {"HM_PORT": str(port), "HM_LOG": str(log), "HM_FS_DIR": str(folder)}
    with celery_process("filesystem://", "tests.apps.celery_health", "solo", env) as (
        client,
        _,
    ):
        client.conf.broker_transport_options = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(folder),
        }
        watch(port, lambda ready, live: says(ready, 200), 60, "never ready", log)
        time.sleep(MAX_AGE)  # beats keep coming: still live after max_age
        assert says(answer(port, "/health/live"), 200)
        # Under solo a task runs on the loop: longer than max_age, it fails liveness.
        client.send_task("hm.sleep", (MAX_AGE + 2,))
        watch(port, lambda r, live: says(live, 503, "celery:consumer"), 20, "live", log)
        watch(port, lambda ready, live: says(live, 200), 20, "live back", log)


def test_instrument_refuses_mistakes() -> None:
    from celery import Celery

    from health_middleware.celery import instrument

    app = Celery("refusals", broker="memory://")
    with pytest.raises(TypeError, match="Celery application"):
        instrument(object(), Health(), 8081)
    with pytest.raises(TypeError, match="Health"):
        instrument(app, object(), 8081)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="port"):
        instrument(app, Health(), 70000)
    with pytest.raises(ValueError, match="max_age"):
        instrument(app, Health(), 8081, max_age=0)
    health = Health()
    instrument(app, health, 8081)
    assert list(health.engine.results.states()) == []  # the checks come with a worker, not here
    with pytest.raises(ValueError, match="already instrumented"):
        instrument(app, Health(), 8082)


def test_a_worker_whose_health_port_is_taken_does_not_consume(tmp_path: Path) -> None:
    """Celery's signals swallow a handler's Exception: the worker must stop, naming
    the port, rather than consume with no health port."""
    import socket

    service("Redis", REDIS)
    log = tmp_path / "worker.log"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"HM_PORT": str(port), "HM_LOG": str(log)}
        broker = f"redis://127.0.0.1:{REDIS}/{DB}"
        with celery_process(broker, "tests.apps.celery_health", "solo", env) as (_, process):
            code = process.wait(60)
    assert code != 0
    assert f"cannot listen on the probe port 127.0.0.1:{port}" in log.read_text()
